#!/usr/bin/env bash
# The sockeye benchmark: builds every server, runs sio-bench's matrix against them (servers
# pinned to CPU 0, the load generator to CPU 1, 3 interleaved repetitions, medians) and
# writes the tables with sockeye's ratios to each peer.
#
#   bench/run.sh [OUT_DIR]            # full run (~25 min), results in OUT_DIR
#   QUICK=1 REPS=1 bench/run.sh       # smoke run of the whole pipeline (~3 min)
#
# Peers: sockeye (examples/bench-app), socketioxide and Node socket.io (sio-bench anchors),
# python-socketio with PYTHON=1, and the raw WebSocket ceiling (bench/raw-ws; echo and binary
# only, run right after the matrix because the matrix takes one extra peer at a time).
# Everything is built into target/; ../shared is only read. Loopback only, ports 4001-4005.
#
# Environment: QUICK, REPS, SCENARIOS, NOISE_MAX, RETRIES are passed to run-matrix.sh;
# PYTHON=1 adds python-socketio; RAW=0 skips the raw WebSocket runs; SKIP_BUILD=1 reuses
# the binaries already built.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SIO_BENCH_SRC="${SIO_BENCH_SRC:-$ROOT/../shared/sio-bench}"
WORK="$ROOT/target/bench"
OUT="${1:-$WORK/results/$(date +%Y%m%d-%H%M%S)}"
BENCH="$ROOT/target/sio-bench/release/sio-bench"
ANCHORS="$WORK/anchors"
APP="$ROOT/target/release/bench-app"
RAW_BIN="$WORK/raw-ws/release/raw-ws"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"

need() { command -v "$1" >/dev/null || { echo "missing tool: $1 ($2)" >&2; exit 1; }; }
need taskset "util-linux"; need jq "jq"; need node "Node.js 18+"; need python3 "python 3"
need cargo "the Rust toolchain"; need npm "npm"

build() {
  echo "== building (sio-bench, bench-app, raw-ws, anchors)" >&2
  cargo build --release --manifest-path "$SIO_BENCH_SRC/Cargo.toml" --target-dir "$ROOT/target/sio-bench"
  (cd "$ROOT" && cargo build --release -p bench-app)
  cargo build --release --manifest-path "$ROOT/bench/raw-ws/Cargo.toml" --target-dir "$WORK/raw-ws"
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

{
  echo "date: $(date -Is)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD) $(git -C "$ROOT" status --porcelain --untracked-files=no -- crates examples/bench-app | wc -l) files modified"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) x $(nproc)"
  echo "kernel: $(uname -r)"
  echo "rustc: $(rustc --version)"
  echo "node: $(node --version)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "env: QUICK=${QUICK:-0} REPS=${REPS:-3} PEERS=$PEERS RAW=${RAW:-1}"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

export BENCH ANCHORS LOGDIR="$OUT/logs"
echo "== matrix: $PEERS" >&2
PEERS="$PEERS" EXTRA_PEER="sockeye:4004:$APP 4004" \
  "$SIO_BENCH_SRC/scripts/run-matrix.sh" "$RESULTS"

if [[ "${RAW:-1}" == 1 ]]; then
  echo "== raw WebSocket ceiling (echo, binary)" >&2
  PEERS="rawws" EXTRA_PEER="rawws:4005:$RAW_BIN 4005" SCENARIOS="echo binary" \
    "$SIO_BENCH_SRC/scripts/run-matrix.sh" "$RESULTS"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

ORDER="node,socketioxide,python,sockeye,rawws"
{
  echo "# sockeye benchmark $(date -I)"
  echo
  sed 's/^/    /' "$OUT/machine.txt"
  echo
  echo "## sockeye against each peer (medians; ratios of sockeye's figure to the peer's)"
  echo
  python3 "$ROOT/bench/compare.py" "$RESULTS" --subject sockeye
  echo
  echo "## All peers (sio-bench summarize.py, ratios to socketioxide)"
  echo
  python3 "$SIO_BENCH_SRC/scripts/summarize.py" "$RESULTS" --compact --baseline socketioxide --order "$ORDER"
} >"$OUT/summary.md"
python3 "$SIO_BENCH_SRC/scripts/summarize.py" "$RESULTS" --baseline socketioxide --order "$ORDER" >"$OUT/detail.md"
echo "== done: $OUT/summary.md (tables), $OUT/detail.md (every metric), $RESULTS" >&2
