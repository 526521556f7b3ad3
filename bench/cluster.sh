#!/usr/bin/env bash
# Cluster broadcast bench: 3 Socket.IO nodes on one broker, 1 000 receivers spread round-robin
# over them, one sender on node 0 emitting the bench app's `broadcast` ack-paced (1 and 16 in
# flight) and at a fixed rate (10 broadcasts/s: the same work per second for every server). Per run: deliveries per second of total server CPU (the 3 processes, from
# /proc/<pid>/stat), deliveries/s, delivery latency p50/p99, losses. Driver: bench/cluster.
#
#   bench/cluster.sh [OUT.jsonl]                       # default matrix, 3 reps
#   KINDS="sockeye-redis node-redis" REPS=1 bench/cluster.sh
#
# Kinds (server × adapter):
#   sockeye-redis      examples/bench-app, classic Redis adapter (BENCH_ADAPTER=redis)
#   sockeye-streams    examples/bench-app, sockeye_redis::streams (BENCH_ADAPTER=redis-streams)
#   sockeye-pyredis    examples/bench-app, python-socketio's Redis bus (sockeye-pybus)
#   sockeye-pyamqp     examples/bench-app, python-socketio's AMQP bus (sockeye-pybus, RabbitMQ)
#   node-redis         socket.io 4.8.4 + @socket.io/redis-adapter 8.3.0 (bench/cluster/node-server.js)
#   node-streams       socket.io 4.8.4 + @socket.io/redis-streams-adapter 0.3.1
#   socketioxide-redis socketioxide 0.18.9 + socketioxide-redis 0.4.4 (bench/cluster/socketioxide)
#   python-redis       python-socketio 5.18.1 AsyncRedisManager under uvicorn (bench/cluster/python-server.py)
#   python-amqp        python-socketio 5.18.1 AsyncAioPikaManager under uvicorn (RabbitMQ)
#   sockeye-postgres   examples/bench-app, sockeye-postgres (BENCH_ADAPTER=postgres)
#   node-postgres      socket.io 4.8.4 + @socket.io/postgres-adapter 0.5.0 on pg 8.23.1 (a pool of 10)
#   sockeye-nats       examples/bench-app, sockeye-nats on core NATS (BENCH_ADAPTER=nats; neither
#                      the Node server nor python-socketio has a NATS adapter to compare with)
#
# Redis: a private redis-server started by this script on a free port (pinned with the
# servers; its CPU is reported as the broker's), unless REDIS_URL is given. RabbitMQ: the one
# at AMQP_URL (default the loopback one on 5672; its CPU is not measured: it is shared).
# PostgreSQL: the one at PG_URL (default the loopback one, database `test`), with a channel
# prefix unique to each run; the broker CPU reported is that of the backends serving the
# three nodes (found in pg_stat_activity by application_name, with psql), not that of the
# postmaster or its background processes (shared with other users). NATS: the one at NATS_URL
# (default the loopback one on 4222), with a subject prefix unique to each run; its CPU is not
# measured (it is shared).
# Servers and broker on CPU 0, the driver on CPU 1. Only the PIDs this script started are
# stopped.
#
# Environment: KINDS, REPS (3), WINDOWS ("1 16"), RATES ("10"; "" for none), N (1000), SIZE (64), WARMUP (1), DURATION (5),
# DRAIN (10), SKIP_BUILD=1 (reuse the builds), REDIS_URL, AMQP_URL, PG_URL, NATS_URL, PORT_BASE (4101).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DEFAULT_KINDS="sockeye-redis node-redis socketioxide-redis sockeye-streams node-streams python-redis sockeye-pyredis python-amqp sockeye-pyamqp"
KINDS="${KINDS:-$DEFAULT_KINDS}"
REPS="${REPS:-3}"
WINDOWS="${WINDOWS-1 16}"
RATES="${RATES-10}"
N="${N:-1000}"
SIZE="${SIZE:-64}"
WARMUP="${WARMUP:-1}"
DURATION="${DURATION:-5}"
DRAIN="${DRAIN:-10}"
PORT_BASE="${PORT_BASE:-4101}"
AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
PG_URL="${PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
OUT="${1:-$ROOT/bench/results/$(date +%F)-cluster.jsonl}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
WORK="$ROOT/target/bench/cluster"
LOGS="$WORK/logs"
DRIVER="$TARGET/release/cluster-bench"
APP="$TARGET/release/bench-app"
SXD="$WORK/socketioxide/release/cluster-socketioxide"
VENV="$ROOT/.venv"
mkdir -p "$LOGS" "$(dirname "$OUT")"

need() { command -v "$1" >/dev/null || { echo "missing tool: $1 ($2)" >&2; exit 1; }; }
need taskset util-linux; need cargo "the Rust toolchain"

wants() { [[ " $KINDS " == *" $1"* ]]; }

build() {
  echo "== building" >&2
  cargo build --release -p bench-app -p cluster-bench
  if wants socketioxide; then
    cargo build --release --manifest-path bench/cluster/socketioxide/Cargo.toml \
      --target-dir "$WORK/socketioxide"
  fi
  if wants node; then
    need node "Node.js 18+"
    [[ -d tests/node_modules/@socket.io/redis-adapter && -d tests/node_modules/@socket.io/postgres-adapter ]] || (cd tests && npm ci --no-audit --no-fund)
  fi
  if wants python; then
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r tests/requirements.txt
  fi
}
[[ "${SKIP_BUILD:-0}" == 1 ]] || build

STARTED=()   # every PID this script started, stopped on exit
stop_pids() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}
cleanup() { ((${#STARTED[@]})) && stop_pids "${STARTED[@]}"; return 0; }
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "no free port from $1" >&2; exit 1
}

BROKER_PID=""
if [[ -z "${REDIS_URL:-}" ]]; then
  need redis-server "Redis"
  RPORT=$(free_port 6390)
  taskset -c 0 redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no \
    >"$LOGS/redis.log" 2>&1 &
  BROKER_PID=$!
  STARTED+=("$BROKER_PID")
  REDIS_URL="redis://127.0.0.1:$RPORT"
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$RPORT") 2>/dev/null && break; sleep 0.1; done
fi

# Starts one node of KIND on PORT; prints its PID.
start_node() {
  local kind=$1 port=$2 log="$LOGS/$1-$2.log"
  local -a cmd
  local -a envs=(REDIS_KEY=bench-cluster)
  case "$kind" in
    *-postgres | *-nats) envs=(REDIS_KEY="$RUN_KEY") ;;
  esac
  case "$kind" in
    sockeye-redis)   cmd=("$APP" "$port"); envs+=(BENCH_ADAPTER=redis BROKER_URL="$REDIS_URL") ;;
    sockeye-streams) cmd=("$APP" "$port"); envs+=(BENCH_ADAPTER=redis-streams BROKER_URL="$REDIS_URL") ;;
    sockeye-pyredis) cmd=("$APP" "$port"); envs+=(BENCH_ADAPTER=python-redis BROKER_URL="$REDIS_URL/0") ;;
    sockeye-pyamqp)  cmd=("$APP" "$port"); envs+=(BENCH_ADAPTER=python-amqp BROKER_URL="$AMQP_URL") ;;
    node-redis)      cmd=(node bench/cluster/node-server.js "$port"); envs+=(NODE_PATH="$ROOT/tests/node_modules" CLUSTER_ADAPTER=redis REDIS_URL="$REDIS_URL") ;;
    node-streams)    cmd=(node bench/cluster/node-server.js "$port"); envs+=(NODE_PATH="$ROOT/tests/node_modules" CLUSTER_ADAPTER=redis-streams REDIS_URL="$REDIS_URL") ;;
    sockeye-postgres) cmd=("$APP" "$port"); envs+=(BENCH_ADAPTER=postgres BROKER_URL="$PG_URL") ;;
    node-postgres)   cmd=(node bench/cluster/node-server.js "$port"); envs+=(NODE_PATH="$ROOT/tests/node_modules" CLUSTER_ADAPTER=postgres PG_URL="$PG_URL" PG_APP_NAME="bench-cluster $RUN_KEY") ;;
    sockeye-nats)    cmd=("$APP" "$port"); envs+=(BENCH_ADAPTER=nats BROKER_URL="$NATS_URL") ;;
    socketioxide-redis) cmd=("$SXD" "$port"); envs+=(REDIS_URL="$REDIS_URL") ;;
    python-redis)    cmd=("$VENV/bin/python" bench/cluster/python-server.py "$port"); envs+=(CLUSTER_ADAPTER=python-redis BROKER_URL="$REDIS_URL/0") ;;
    python-amqp)     cmd=("$VENV/bin/python" bench/cluster/python-server.py "$port"); envs+=(CLUSTER_ADAPTER=python-amqp BROKER_URL="${AMQP_URL/\%2f/}") ;;
    *) echo "unknown kind $kind" >&2; exit 2 ;;
  esac
  (ulimit -n 65536 2>/dev/null || true; exec env "${envs[@]}" taskset -c 0 "${cmd[@]}") >"$log" 2>&1 &
  echo $!
}

wait_listening() {
  local log=$1 pid=$2
  for _ in $(seq 300); do
    grep -q '^listening on' "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { echo "server exited: $log" >&2; tail -5 "$log" >&2; return 1; }
    sleep 0.1
  done
  echo "server not listening after 30 s: $log" >&2; return 1
}

adapter_of() {
  case "$1" in
    python-redis | sockeye-pyredis) echo python-redis ;;
    python-amqp | sockeye-pyamqp) echo python-amqp ;;
    *-streams) echo redis-streams ;;
    *-postgres) echo postgres ;;
    *-nats) echo nats ;;
    *) echo redis ;;
  esac
}

{
  echo "date: $(date -Is)"
  echo "commit: $(git rev-parse --short HEAD) ($(git status --porcelain --untracked-files=no | wc -l) files modified)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) x $(nproc)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "kinds: $KINDS; reps $REPS; windows $WINDOWS; rates $RATES; n $N; size $SIZE; warmup $WARMUP s; duration $DURATION s"
  echo "redis: $REDIS_URL${BROKER_PID:+ (private, pid $BROKER_PID)}; amqp: $AMQP_URL; postgres: $PG_URL; nats: $NATS_URL"
} | tee "$WORK/machine.txt" >&2

# The PIDs of the PostgreSQL backends serving the nodes of KIND (logs in LOGS), comma-separated;
# empty when psql is missing or finds none.
pg_backends() {
  local kind=$1; shift
  command -v psql >/dev/null || { echo "psql missing: PostgreSQL's CPU not counted" >&2; return 0; }
  local names="" port n
  if [[ $kind == node-postgres ]]; then
    names="'bench-cluster $RUN_KEY'"
  else
    for port in "$@"; do
      n=$(sed -n 's/^postgres application_name: //p' "$LOGS/$kind-$port.log" | head -1)
      [[ -n $n ]] && names+="${names:+,}'$n'"
    done
  fi
  [[ -n $names ]] || return 0
  psql "$PG_URL" -XAtc "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name IN ($names)" \
    || echo "psql failed: PostgreSQL's CPU not counted" >&2
}

FAILED=0
RUN=0
LOADS=""
for w in $WINDOWS; do LOADS+=" window:$w"; done
for r in $RATES; do LOADS+=" rate:$r"; done
for rep in $(seq "$REPS"); do
  for load in $LOADS; do
    for kind in $KINDS; do
      echo "== rep $rep/$REPS $load $kind" >&2
      RUN=$((RUN + 1))
      RUN_KEY="bench_cluster_$$_$RUN"
      pids=(); ports=()
      for i in 0 1 2; do
        port=$((PORT_BASE + i))
        pid=$(start_node "$kind" "$port")
        STARTED+=("$pid"); pids+=("$pid"); ports+=("$port")
      done
      ok=1
      for i in 0 1 2; do wait_listening "$LOGS/$kind-${ports[$i]}.log" "${pids[$i]}" || ok=0; done
      broker="$BROKER_PID"   # the private redis-server
      # The shared nats-server and RabbitMQ are not measured; PostgreSQL: the nodes' backends.
      if [[ $kind == *-nats || $kind == *-postgres || $kind == *amqp ]]; then broker=""; fi
      if ((ok)) && [[ $kind == *-postgres ]]; then
        broker=$(pg_backends "$kind" "${ports[@]}")
        echo "postgres backends: ${broker:-none found}" >&2
      fi
      if ((ok)); then
        taskset -c 1 "$DRIVER" --ports "$(IFS=,; echo "${ports[*]}")" --pids "$(IFS=,; echo "${pids[*]}")" \
          ${broker:+--broker-pid "$broker"} -n "$N" "--${load%%:*}" "${load#*:}" --size "$SIZE" \
          --warmup "$WARMUP" --duration "$DURATION" --drain "$DRAIN" \
          --label "$kind" --adapter "$(adapter_of "$kind")" --out "$OUT" >/dev/null || { FAILED=$((FAILED + 1)); echo "run failed" >&2; }
      else
        FAILED=$((FAILED + 1))
      fi
      stop_pids "${pids[@]}"
      # Forget the stopped PIDs.
      keep=(); for p in "${STARTED[@]}"; do [[ " ${pids[*]} " == *" $p "* ]] || keep+=("$p"); done
      STARTED=("${keep[@]}")
    done
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$WORK/machine.txt" >&2
python3 bench/cluster/summarize.py "$OUT"
echo "== results: $OUT ($FAILED failed runs)" >&2
