#!/usr/bin/env bash
# The sockeye benchmark: builds every server, runs sio-bench's matrix against them (servers
# pinned to CPU 0, the load generator to CPU 1, 3 interleaved repetitions, medians) and
# writes the tables with sockeye's ratios to each peer.
#
#   bench/run.sh [OUT_DIR]            # full run (~25 min), results in OUT_DIR
#   QUICK=1 REPS=1 bench/run.sh       # smoke run of the whole pipeline (~3 min)
#
# Peers: sockeye (examples/bench-app), socketioxide and Node socket.io (sio-bench anchors),
# python-socketio with PYTHON=1, and the floor (bench/floor: the least work an echo and a
# broadcast can cost on tokio, hand-rolled WebSocket, no library; WebSocket only, so no
# connect runs; run right after the matrix because the matrix takes one extra peer at a time).
# Everything is built into target/; ../shared is only read. Loopback only, ports 4001-4005.
#
# Open-loop echo (latency a user sees): unless ECHO_RATES is set, a calibration run first
# measures socketioxide's saturated closed-loop echo (ECHO_RATE_N clients, 64 B, pinned like
# the matrix) and ECHO_RATES becomes ECHO_RATE_PCTS percent of its round trips/s; the matrix
# then runs `echo -n ECHO_RATE_N -s 64 --rate R` per rate and peer. Recorded in machine.txt.
#
# Idle memory at scale: after the matrix, `connect -n MEM_N --transport polling-upgrade`
# (server freshly started per run) for node, socketioxide, sockeye (python with PYTHON=1);
# the matrix itself covers WebSocket at MEM_N and polling-upgrade only at 1000.
#
# Environment: QUICK, REPS, SCENARIOS, NOISE_MAX, RETRIES, ECHO_RATE_N are passed to
# run-matrix.sh; ECHO_RATES="R1 R2 ..." fixes the open-loop rates (empty: no open-loop runs);
# ECHO_RATE_PCTS [50 80 100 120] the calibrated ones; MEM_N [10000; QUICK 200], MEM=0 skips
# the idle-memory runs; PYTHON=1 adds python-socketio; FLOOR=0 skips the floor runs;
# SKIP_BUILD=1 reuses the binaries already built.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${SIO_BENCH_SRC:-}" ]]; then
  # ../shared sits next to the main checkout; a git worktree may live elsewhere.
  SIO_BENCH_SRC="$ROOT/../shared/sio-bench"
  if [[ ! -d "$SIO_BENCH_SRC" ]]; then
    common="$(cd "$ROOT" && cd "$(git rev-parse --git-common-dir)" && pwd)"
    SIO_BENCH_SRC="$(dirname "$common")/../shared/sio-bench"
  fi
fi
[[ -f "$SIO_BENCH_SRC/scripts/run-matrix.sh" ]] ||
  { echo "sio-bench sources not found at $SIO_BENCH_SRC: set SIO_BENCH_SRC" >&2; exit 1; }
WORK="$ROOT/target/bench"
OUT="${1:-$WORK/results/$(date +%Y%m%d-%H%M%S)}"
BENCH="$ROOT/target/sio-bench/release/sio-bench"
ANCHORS="$WORK/anchors"
APP="$ROOT/target/release/bench-app"
FLOOR_BIN="$WORK/floor/release/floor"
SIOX_BIN="$ANCHORS/socketioxide/target/release/anchor-socketioxide"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"

need() { command -v "$1" >/dev/null || { echo "missing tool: $1 ($2)" >&2; exit 1; }; }
need taskset "util-linux"; need jq "jq"; need node "Node.js 18+"; need python3 "python 3"
need cargo "the Rust toolchain"; need npm "npm"

build() {
  echo "== building (sio-bench, bench-app, floor, anchors)" >&2
  cargo build --release --manifest-path "$SIO_BENCH_SRC/Cargo.toml" --target-dir "$ROOT/target/sio-bench"
  (cd "$ROOT" && cargo build --release -p bench-app)
  cargo build --release --manifest-path "$ROOT/bench/floor/Cargo.toml" --target-dir "$WORK/floor"
  # The anchors are copied (../shared may be read-only); the copy lives inside this
  # workspace's folder, so the socketioxide anchor gets its own [workspace] table.
  if [[ ! -d "$ANCHORS" ]]; then
    mkdir -p "$WORK"
    cp -r "$SIO_BENCH_SRC/anchors" "$ANCHORS"
    chmod -R u+w "$ANCHORS"
  fi
  grep -q '^\[workspace\]' "$ANCHORS/socketioxide/Cargo.toml" ||
    printf '\n[workspace]\n' >>"$ANCHORS/socketioxide/Cargo.toml"
  (cd "$ANCHORS/socketioxide" && cargo build --release)
  [[ -d "$ANCHORS/node/node_modules" ]] || (cd "$ANCHORS/node" && npm ci --no-audit --no-fund)
  if [[ "${PYTHON:-0}" == 1 && ! -x "$ANCHORS/python/.venv/bin/python" ]]; then
    python3 -m venv "$ANCHORS/python/.venv"
    "$ANCHORS/python/.venv/bin/pip" install -q -r "$ANCHORS/python/requirements.txt"
  fi
}
[[ "${SKIP_BUILD:-0}" == 1 ]] || build

PEERS="node socketioxide sockeye"
[[ "${PYTHON:-0}" == 1 ]] && PEERS="node socketioxide python sockeye"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
NOISE_MAX="${NOISE_MAX:-25}"
RETRIES="${RETRIES:-4}"
if [[ "${QUICK:-0}" == 1 ]]; then
  ECHO_RATE_N="${ECHO_RATE_N:-100}"; MEM_N="${MEM_N:-200}"; CAL=(--warmup 0.3 --duration 1)
else
  ECHO_RATE_N="${ECHO_RATE_N:-1000}"; MEM_N="${MEM_N:-10000}"; CAL=(--warmup 1 --duration 5)
fi
ECHO_RATE_PCTS="${ECHO_RATE_PCTS:-50 80 100 120}"
export ECHO_RATE_N SERVER_CPU CLIENT_CPU NOISE_MAX RETRIES
LOGDIR="$OUT/logs"
mkdir -p "$LOGDIR"

# The same commands and ports as run-matrix.sh, for the runs this script makes itself.
declare -A PORT=([node]=4001 [socketioxide]=4002 [python]=4003 [sockeye]=4004)
declare -A CMD=(
  [node]="node $ANCHORS/node/server.js 4001"
  [socketioxide]="$SIOX_BIN 4002"
  [python]="$ANCHORS/python/.venv/bin/python $ANCHORS/python/server.py 4003 --mode aiohttp"
  [sockeye]="$APP 4004"
)
SRV_PID=""
stop_server() {
  local pid=$SRV_PID
  [[ -z "$pid" ]] && return 0
  SRV_PID=""
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap stop_server EXIT
# As run-matrix.sh: pinned to SERVER_CPU, exec keeps one PID (sio-bench reads its RSS and CPU).
start_server() {
  local peer=$1 port=${PORT[$1]}
  stop_server
  bash -c "ulimit -n \$(ulimit -Hn); exec taskset -c $SERVER_CPU ${CMD[$peer]}" >>"$LOGDIR/$peer.log" 2>&1 &
  SRV_PID=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then sleep 0.3; return 0; fi
    kill -0 "$SRV_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "server $peer did not come up on port $port (log: $LOGDIR/$peer.log)" >&2
  return 1
}
# One sio-bench run against a freshly started server; prints its JSON line. Redone (up to
# RETRIES times) when other processes took more than NOISE_MAX % of a core, like the matrix;
# set-aside lines go to results.rejected.jsonl.
fresh_run() {
  local peer=$1 line others
  shift
  for _ in $(seq 0 "$RETRIES"); do
    start_server "$peer" || { stop_server; return 1; }
    line=$(taskset -c "$CLIENT_CPU" "$BENCH" "$@" --url "http://127.0.0.1:${PORT[$peer]}" \
             --pid "$SRV_PID" --label "$peer" 2>>"$LOGDIR/bench.log") || { stop_server; return 1; }
    stop_server
    others=$(jq -r '.client.others_cpu_pct // 0' <<<"$line")
    awk -v o="$others" -v m="$NOISE_MAX" 'BEGIN{exit !(o>m)}' || break
    echo "$line" >>"${RESULTS%.jsonl}.rejected.jsonl"
    echo "  noisy (others ${others}%), retry" >&2
    sleep 5
  done
  echo "$line"
}

# Open-loop rates: given, or calibrated on socketioxide's saturated closed loop.
if [[ -n "${ECHO_RATES+set}" ]]; then
  ECHO_RATES_FROM="given"
else
  echo "== calibration: socketioxide closed-loop echo -n $ECHO_RATE_N -s 64" >&2
  CAL_LINE=$(fresh_run socketioxide echo -n "$ECHO_RATE_N" -s 64 "${CAL[@]}") ||
    { echo "calibration run failed (log: $LOGDIR); set ECHO_RATES to skip it" >&2; exit 1; }
  echo "$CAL_LINE" >"$OUT/calibration.json"
  CAL_RATE=$(jq -r '.metrics.round_trips_per_s' <<<"$CAL_LINE")
  ECHO_RATES=$(awk -v r="$CAL_RATE" -v p="$ECHO_RATE_PCTS" \
    'BEGIN { n = split(p, a, " "); for (i = 1; i <= n; i++) printf "%s%d", (i > 1 ? " " : ""), r * a[i] / 100 + 0.5 }')
  ECHO_RATES_FROM="calibrated: socketioxide closed-loop echo -n $ECHO_RATE_N -s 64 ${CAL[*]} = $CAL_RATE round trips/s; ECHO_RATE_PCTS=$ECHO_RATE_PCTS % of it"
fi
export ECHO_RATES

{
  echo "date: $(date -Is)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD) $(git -C "$ROOT" status --porcelain --untracked-files=no -- crates examples/bench-app | wc -l) files modified"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) x $(nproc)"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "node: $(node --version)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "env: QUICK=${QUICK:-0} REPS=${REPS:-3} PEERS=$PEERS FLOOR=${FLOOR:-1} MEM=${MEM:-1} MEM_N=$MEM_N"
  echo "servers pinned to CPU $SERVER_CPU, sio-bench to CPU $CLIENT_CPU"
  echo "runtimes: sockeye bench-app = tokio multi-thread, default worker count (follows the affinity"
  echo "  mask: 1 worker on CPU $SERVER_CPU), as the socketioxide anchor; floor = tokio current-thread"
  echo "open-loop echo: ECHO_RATES=${ECHO_RATES:-none} (-n $ECHO_RATE_N -s 64), $ECHO_RATES_FROM"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

export BENCH ANCHORS LOGDIR
echo "== matrix: $PEERS" >&2
PEERS="$PEERS" EXTRA_PEER="sockeye:4004:$APP 4004" \
  "$SIO_BENCH_SRC/scripts/run-matrix.sh" "$RESULTS"

if [[ "${FLOOR:-1}" == 1 ]]; then
  # The floor speaks WebSocket only: no connect scenario (its polling-upgrade run would fail).
  FLOOR_SCENARIOS=""
  for sc in ${SCENARIOS:-echo binary broadcast}; do
    [[ "$sc" == connect ]] || FLOOR_SCENARIOS+="${FLOOR_SCENARIOS:+ }$sc"
  done
  if [[ -n "$FLOOR_SCENARIOS" ]]; then
    echo "== floor ($FLOOR_SCENARIOS)" >&2
    PEERS="floor" EXTRA_PEER="floor:4005:$FLOOR_BIN 4005" SCENARIOS="$FLOOR_SCENARIOS" \
      "$SIO_BENCH_SRC/scripts/run-matrix.sh" "$RESULTS"
  fi
fi

if [[ "${MEM:-1}" == 1 && " ${SCENARIOS:-connect} " == *" connect "* ]]; then
  echo "== idle memory: connect -n $MEM_N --transport polling-upgrade" >&2
  for rep in $(seq "${REPS:-3}"); do
    for peer in $PEERS; do
      if line=$(fresh_run "$peer" connect -n "$MEM_N" --transport polling-upgrade --settle 2 --hold 1); then
        echo "$line" >>"$RESULTS"
        jq -r '[.label, .scenario, .transport, (.params|tostring), (.metrics.connections_per_s|tostring), ("rss/conn B " + (.metrics.rss_per_conn_bytes | tostring))] | join("  ")' <<<"$line" >&2
      else
        echo "  run failed: $peer connect -n $MEM_N --transport polling-upgrade (rep $rep)" >&2
      fi
    done
  done
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

ORDER="node,socketioxide,python,sockeye,floor"
{
  echo "# sockeye benchmark $(date -I)"
  echo
  sed 's/^/    /' "$OUT/machine.txt"
  echo
  echo "## sockeye against each peer (medians; ratios of sockeye's figure to the peer's)"
  echo
  python3 "$ROOT/bench/compare.py" "$RESULTS" --subject sockeye --scripts "$SIO_BENCH_SRC/scripts"
  echo
  echo "## All peers (sio-bench summarize.py, ratios to socketioxide)"
  echo
  python3 "$SIO_BENCH_SRC/scripts/summarize.py" "$RESULTS" --compact --baseline socketioxide --order "$ORDER"
} >"$OUT/summary.md"
python3 "$SIO_BENCH_SRC/scripts/summarize.py" "$RESULTS" --baseline socketioxide --order "$ORDER" >"$OUT/detail.md"
echo "== done: $OUT/summary.md (tables), $OUT/detail.md (every metric), $RESULTS" >&2
