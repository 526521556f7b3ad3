#!/usr/bin/env bash
# User-space instructions per message, sockeye against socketioxide and the floor (bench/floor:
# the least work on this stack, no library), counted by callgrind
# (instruction counts do not depend on the machine's noise).
#
#   bench/callgrind.sh [OUT_DIR]                       # build, then measure (~3-4 min)
#   APP=/work/baseline/bench-app bench/callgrind.sh    # measure another bench-app binary
#   SERVERS="sockeye base=/work/baseline/bench-app" BASELINE=base bench/callgrind.sh   # A/B
#   bench/callgrind.sh --summary OUT_DIR|runs.tsv...   # the table again, several runs pooled
#
# For each server and scenario the server runs under `valgrind --tool=callgrind` (the server
# process only, pinned to SERVER_CPU; sio-bench on CLIENT_CPU), twice: sio-bench for SHORT
# and for LONG seconds (no warm-up). The whole process is counted, from start to a clean
# SIGINT shutdown (callgrind writes its counts at exit); start-up, the connects, the closes
# and the shutdown are the same in both runs, so
#
#   Ir per op = (Ir(LONG) - Ir(SHORT)) / (ops(LONG) - ops(SHORT))
#
# with the ops taken from sio-bench's JSON line of the same two runs:
#   echo       round trips = metrics.latency.count (every round trip of a run, warm-up 0)
#   broadcast  deliveries  = metrics.sent_total x metrics.receivers (every broadcast reached
#              every receiver: the run is refused otherwise; the sender's own copy is not counted)
#
# Scenarios: echo = ECHO_N clients, ECHO_SIZE-byte strings, closed loop; broadcast =
# BC_N receivers + 1 sender, 64 B, BC_WINDOW broadcasts in flight (ack-paced).
#
# Environment (defaults in brackets):
#   SERVERS     servers to measure, in this order      [sockeye socketioxide floor]
#               sockeye = $APP, socketioxide = the anchor, floor = bench/floor (built here);
#               NAME=PATH adds any binary that implements the bench app and takes its port
#               as first argument
#   APP         sockeye bench-app binary [target/release/bench-app, built here]; when set,
#               bench-app is not built
#   SCENARIOS   echo broadcast                         [echo broadcast]
#   SHORT/LONG  sio-bench --duration of the two runs, s [3 / 9]
#   REPS        pairs of runs per server and scenario  [3]
#   ECHO_N, ECHO_SIZE, BC_N, BC_WINDOW                 [100, 64, 1000, 16]
#   BASELINE    server the ratios are taken against   [socketioxide]
#   SERVER_CPU / CLIENT_CPU                            [0 / 1]
#   PORT        loopback port the servers listen on   [4110]
#   TIMEOUT_MS  sio-bench --timeout-ms (under valgrind the server is >10x slower) [60000]
#   RETRIES     times a failed run (sio-bench error, undelivered broadcast, no counts) is redone [1]
#   SKIP_BUILD=1  reuse the binaries already built
#   SIO_BENCH_SRC  sio-bench's source             [../shared/sio-bench next to the main checkout]
#
# Output: the table on stdout; OUT_DIR (default target/bench/callgrind/<date>) keeps every
# run's callgrind file, sio-bench JSON line and server log, runs.tsv and summary.md.
# Loopback only; the only processes stopped are the servers started here, by PID.
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
WORK="$ROOT/target/bench"
OUT="${1:-$WORK/callgrind/$(date +%Y%m%d-%H%M%S)}"
BENCH="$ROOT/target/sio-bench/release/sio-bench"
ANCHORS="$WORK/anchors"
SIOX_BIN="$ANCHORS/socketioxide/target/release/anchor-socketioxide"
FLOOR_BIN="$WORK/floor/release/floor"
BUILD_APP=1
if [[ -n "${APP:-}" ]]; then BUILD_APP=0; else APP="$ROOT/target/release/bench-app"; fi
SERVERS="${SERVERS:-sockeye socketioxide floor}"
SCENARIOS="${SCENARIOS:-echo broadcast}"
SHORT="${SHORT:-3}"
LONG="${LONG:-9}"
REPS="${REPS:-3}"
ECHO_N="${ECHO_N:-100}"
ECHO_SIZE="${ECHO_SIZE:-64}"
BC_N="${BC_N:-1000}"
BC_WINDOW="${BC_WINDOW:-16}"
BASELINE="${BASELINE:-socketioxide}"
SERVER_CPU="${SERVER_CPU:-0}"
CLIENT_CPU="${CLIENT_CPU:-1}"
PORT="${PORT:-4110}"
TIMEOUT_MS="${TIMEOUT_MS:-60000}"
RETRIES="${RETRIES:-1}"
# Both servers' default Engine.IO ping interval: a run whose sessions live longer than this
# pays for a ping round that the other run of the pair may not have.
PING_INTERVAL_S=25

# The table from one or more runs.tsv files (the runs of several invocations are pooled):
# one figure per pair of runs (same file, scenario, server and rep; LONG minus SHORT), the
# median of the pairs per server, every pair, their spread and the ratios to BASELINE.
summarize() {
  awk -F'\t' -v base="$BASELINE" '
    FNR == 1 { f++; next }
    {
      sc = $1; srv = $3; k = f SUBSEP sc SUBSEP srv SUBSEP $4
      if (!(sc in cfg)) { cfg[sc] = $2; S[++nc] = sc }
      if (!(srv in known)) { known[srv] = 1; N[++ns] = srv }
      if (!(k in d1)) { d1[k] = $5; o1[k] = $6; i1[k] = $7; P[++np] = k }
      else { d2[k] = $5; o2[k] = $6; i2[k] = $7 }
      durs[$5] = 1
    }
    function sortv(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }
    END {
      for (p = 1; p <= np; p++) {
        k = P[p]; if (!(k in d2) || d1[k] == d2[k] || o1[k] == o2[k]) continue
        split(k, kk, SUBSEP); g = kk[2] SUBSEP kk[3]
        if (d2[k] > d1[k]) v = (i2[k] - i1[k]) / (o2[k] - o1[k]); else v = (i1[k] - i2[k]) / (o1[k] - o2[k])
        cnt[g]++; val[g, cnt[g]] = v; list[g] = list[g] (cnt[g] > 1 ? " / " : "") sprintf("%.0f", v)
      }
      nd = 0; for (d in durs) dd[++nd] = d + 0; sortv(dd, nd)
      dl = ""; for (i = 1; i <= nd; i++) dl = dl (i > 1 ? ", " : "") dd[i] " s"
      print "User-space instructions per op (callgrind Ir; each figure: Ir difference / ops difference"
      print "of a short and a long run; durations " dl "):"
      print ""
      printf "| scenario | per |"; for (j = 1; j <= ns; j++) printf " %s |", N[j]
      for (j = 1; j <= ns; j++) if (N[j] != base && (base in known)) printf " %s / %s |", N[j], base
      printf "\n|---|---|"; for (j = 1; j <= ns; j++) printf "---|"
      for (j = 1; j <= ns; j++) if (N[j] != base && (base in known)) printf "---|"
      printf "\n"
      for (c = 1; c <= nc; c++) {
        sc = S[c]
        printf "| %s | %s |", sc, (sc == "echo" ? "round trip" : "delivery") " (" cfg[sc] ")"
        for (j = 1; j <= ns; j++) {
          g = sc SUBSEP N[j]; n = cnt[g]
          if (!n) { printf " – |"; continue }
          delete a; for (i = 1; i <= n; i++) a[i] = val[g, i]
          sortv(a, n); med[g] = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
          printf " **%.0f** (%s; spread %.1f %%) |", med[g], list[g], 100 * (a[n] - a[1]) / med[g]
        }
        for (j = 1; j <= ns; j++) if (N[j] != base && (base in known)) {
          g = sc SUBSEP N[j]; b = sc SUBSEP base
          if ((g in med) && (b in med)) printf " %.2f× |", med[g] / med[b]; else printf " – |"
        }
        printf "\n"
      }
      print ""
      print "Bold: median of the pairs; then every pair in run order; spread = (max - min) / median."
      print "Ratios: medians."
    }' "$@"
}

if [[ "${1:-}" == --summary ]]; then
  shift
  (( $# )) || { echo "usage: bench/callgrind.sh --summary OUT_DIR|runs.tsv..." >&2; exit 1; }
  files=(); for d in "$@"; do if [[ -d "$d" ]]; then files+=("$d/runs.tsv"); else files+=("$d"); fi; done
  summarize "${files[@]}"
  exit 0
fi

need() { command -v "$1" >/dev/null || { echo "missing tool: $1 ($2)" >&2; exit 1; }; }
[[ "${SKIP_BUILD:-0}" == 1 || -f "$SIO_BENCH_SRC/Cargo.toml" ]] ||
  { echo "sio-bench sources not found at $SIO_BENCH_SRC: set SIO_BENCH_SRC" >&2; exit 1; }
need valgrind "valgrind"; need taskset "util-linux"; need jq "jq"; need cargo "the Rust toolchain"
awk -v s="$SHORT" -v l="$LONG" 'BEGIN{exit !(l>s && s>0)}' ||
  { echo "LONG ($LONG) must be greater than SHORT ($SHORT) > 0" >&2; exit 1; }
[[ "$PORT" =~ ^4[0-9]{3}$ ]] || { echo "PORT must be in 4000-4999 (loopback bench ports)" >&2; exit 1; }

declare -A CMD=()
for s in $SERVERS; do
  case "$s" in
    sockeye) CMD[sockeye]="$APP" ;;
    socketioxide) CMD[socketioxide]="$SIOX_BIN" ;;
    floor) CMD[floor]="$FLOOR_BIN" ;;
    *=*) CMD[${s%%=*}]="${s#*=}" ;;
    *) echo "unknown server '$s' (sockeye, socketioxide, floor or NAME=PATH)" >&2; exit 1 ;;
  esac
done
NAMES=(); for s in $SERVERS; do NAMES+=("${s%%=*}"); done

build() {
  echo "== building (release): sio-bench, bench-app (unless APP is set), the anchor and floor if measured" >&2
  cargo build --release --manifest-path "$SIO_BENCH_SRC/Cargo.toml" --target-dir "$ROOT/target/sio-bench"
  if [[ "$BUILD_APP" == 1 ]]; then (cd "$ROOT" && cargo build --release -p bench-app); fi
  if [[ -n "${CMD[floor]:-}" ]]; then
    cargo build --release --manifest-path "$ROOT/bench/floor/Cargo.toml" --target-dir "$WORK/floor"
  fi
  if [[ -n "${CMD[socketioxide]:-}" ]]; then
    # As bench/run.sh: a writable copy of the anchors inside target/ (../shared is only
    # read), with its own [workspace] table since it sits inside this workspace's folder.
    if [[ ! -d "$ANCHORS" ]]; then
      mkdir -p "$WORK"
      cp -r "$SIO_BENCH_SRC/anchors" "$ANCHORS"
      chmod -R u+w "$ANCHORS"
    fi
    grep -q '^\[workspace\]' "$ANCHORS/socketioxide/Cargo.toml" ||
      printf '\n[workspace]\n' >>"$ANCHORS/socketioxide/Cargo.toml"
    (cd "$ANCHORS/socketioxide" && cargo build --release)
  fi
}
[[ "${SKIP_BUILD:-0}" == 1 ]] || build
[[ -x "$BENCH" ]] || { echo "missing $BENCH (run without SKIP_BUILD=1)" >&2; exit 1; }
for name in "${NAMES[@]}"; do
  [[ -x "${CMD[$name]%% *}" ]] || { echo "missing server binary for $name: ${CMD[$name]}" >&2; exit 1; }
done

mkdir -p "$OUT/runs"
RUNS="$OUT/runs.tsv"
printf 'scenario\tconfig\tserver\trep\tduration_s\tops\tIr\trun\n' >"$RUNS"
{
  echo "date: $(date -Is)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD) $(git -C "$ROOT" status --porcelain --untracked-files=no -- crates examples/bench-app | wc -l) files modified"
  for name in "${NAMES[@]}"; do
    bin="${CMD[$name]%% *}"
    echo "server $name: $bin sha256 $(sha256sum "$bin" | cut -c1-16)"
  done
  echo "valgrind: $(valgrind --version)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) x $(nproc)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "env: SERVERS=$SERVERS SCENARIOS=$SCENARIOS SHORT=$SHORT LONG=$LONG REPS=$REPS ECHO_N=$ECHO_N ECHO_SIZE=$ECHO_SIZE BC_N=$BC_N BC_WINDOW=$BC_WINDOW"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

SRV_PID=""
stop_server() {
  # SIGINT: both servers shut down cleanly on it, and callgrind writes its counts at exit.
  local pid=$SRV_PID rc=0
  [[ -z "$pid" ]] && return 0
  SRV_PID=""
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "  server $pid did not exit 60 s after SIGINT: killed, its counts are lost" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
  fi
  wait "$pid" 2>/dev/null || rc=$?
  [[ "$rc" == 0 ]] || echo "  server $pid exited with status $rc" >&2
  return 0
}
trap 'stop_server || true' EXIT

# One run: server under callgrind, sio-bench for $dur seconds, clean stop.
# Prints "ops Ir"; fails (after stopping the server) if anything in the run went wrong.
run_one() {
  local scenario=$1 name=$2 rep=$3 dur=$4
  local tag="$scenario-$name-r$rep-${dur}s" json ops ir t0 t1 bad config
  local cgout="$OUT/runs/$tag.callgrind" log="$OUT/runs/$tag.server.log"
  json="$OUT/runs/$tag.json"
  if port_open; then echo "port $PORT is already in use: set PORT" >&2; return 1; fi
  # exec keeps one PID: bash -> taskset -> valgrind, which runs the server in-process.
  # The bench app's own overrides are cleared so every binary runs its defaults.
  env -u PING_INTERVAL -u PING_TIMEOUT -u CONNECT_TIMEOUT -u MAX_PAYLOAD -u REDIS_URL -u PORT \
    bash -c "ulimit -n \$(ulimit -Hn); exec taskset -c $SERVER_CPU valgrind --tool=callgrind \
      --callgrind-out-file='$cgout' ${CMD[$name]} $PORT" >"$log" 2>&1 &
  SRV_PID=$!
  t0=$(date +%s)
  for _ in $(seq 600); do
    port_open && break
    kill -0 "$SRV_PID" 2>/dev/null || { echo "$name exited at start (log: $log)" >&2; SRV_PID=""; return 1; }
    sleep 0.1
  done
  port_open || { echo "$name not listening on $PORT after 60 s (log: $log)" >&2; stop_server; return 1; }

  local args=(--url "http://127.0.0.1:$PORT" --pid "$SRV_PID" --label "$name"
              --warmup 0 --duration "$dur" --timeout-ms "$TIMEOUT_MS")
  if [[ "$scenario" == echo ]]; then
    args=(echo -n "$ECHO_N" -s "$ECHO_SIZE" "${args[@]}")
    config="$ECHO_N clients, $ECHO_SIZE B"
  else
    args=(broadcast -n "$BC_N" -s 64 --window "$BC_WINDOW" --drain 60 "${args[@]}")
    config="$BC_N receivers, 64 B, $BC_WINDOW in flight"
  fi
  if ! taskset -c "$CLIENT_CPU" "$BENCH" "${args[@]}" >"$json" 2>>"$OUT/runs/$tag.bench.log"; then
    echo "sio-bench failed: $tag (see $OUT/runs/$tag.bench.log)" >&2; stop_server || true; return 1
  fi
  t1=$(date +%s)
  stop_server || return 1
  if (( t1 - t0 >= PING_INTERVAL_S - 1 )); then
    echo "  warning: $tag kept its sessions ~$((t1 - t0)) s, near the ${PING_INTERVAL_S} s ping interval: a ping round may be counted; lower LONG" >&2
  fi

  if [[ "$scenario" == echo ]]; then
    bad=$(jq -r --argjson n "$ECHO_N" '[
        (if .metrics.connections != $n then "connected \(.metrics.connections)/\($n)" else empty end),
        (if .metrics.failed_loops != 0 then "failed loops \(.metrics.failed_loops)" else empty end),
        (if .metrics.bad_acks != 0 then "bad acks \(.metrics.bad_acks)" else empty end),
        (if (.errors|length) > 0 then "errors \(.errors|tostring)" else empty end)] | join(", ")' "$json")
    ops=$(jq -r '.metrics.latency.count' "$json")
  else
    bad=$(jq -r --argjson n "$BC_N" '[
        (if .metrics.receivers != $n then "receivers \(.metrics.receivers)/\($n)" else empty end),
        (if .metrics.delivered != .metrics.expected then "delivered \(.metrics.delivered)/\(.metrics.expected)" else empty end),
        (if .metrics.failed_receivers != 0 then "failed receivers \(.metrics.failed_receivers)" else empty end),
        (if .metrics.acked != .metrics.sent_total then "acked \(.metrics.acked)/\(.metrics.sent_total)" else empty end),
        (if (.errors|length) > 0 then "errors \(.errors|tostring)" else empty end)] | join(", ")' "$json")
    ops=$(jq -r '.metrics.sent_total * .metrics.receivers' "$json")
  fi
  [[ -z "$bad" ]] || { echo "run $tag not usable: $bad (JSON: $json)" >&2; return 1; }
  ir=$(awk '/^totals:/ {print $2}' "$cgout")
  [[ "$ir" =~ ^[0-9]+$ ]] || { echo "no callgrind totals in $cgout" >&2; return 1; }
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$config" "$name" "$rep" "$dur" "$ops" "$ir" "$tag" >>"$RUNS"
  echo "  $tag: $ops ops, $ir Ir ($(awk -v i="$ir" -v o="$ops" 'BEGIN{printf "%.0f", i/o}') Ir/op with connects), $((t1 - t0)) s" >&2
}

for rep in $(seq "$REPS"); do
  for scenario in $SCENARIOS; do
    for name in "${NAMES[@]}"; do
      echo "== rep $rep/$REPS $scenario $name" >&2
      for dur in "$SHORT" "$LONG"; do
        for try in $(seq 0 "$RETRIES"); do
          if run_one "$scenario" "$name" "$rep" "$dur"; then break; fi
          (( try < RETRIES )) || { echo "giving up: $scenario $name ${dur}s failed $((RETRIES + 1)) times" >&2; exit 1; }
          echo "  retrying" >&2
        done
      done
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

summarize "$RUNS" | tee "$OUT/summary.md"
{ echo; sed 's/^/    /' "$OUT/machine.txt"; } >>"$OUT/summary.md"
echo "== done: $OUT/summary.md, $RUNS" >&2
