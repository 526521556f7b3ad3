#!/bin/bash
# Broadcast deliveries/s with receivers on one node vs split over two nodes sharing Redis.
# Needs release builds and a Redis on 127.0.0.1:6379 (see docs/redis.md, "Figures"):
#   cargo build --release -p bench-app
#   cargo build --release -p sockeye-redis --example split_proxy
#   cargo build --release --manifest-path ../shared/sio-bench/Cargo.toml --target-dir target/sio-bench
# Usage (from the workspace root): crates/sockeye-redis/bench/split.sh [N] [WINDOW] [SECONDS] [REPS]
# Ports 4711-4713 and 4721-4723 on 127.0.0.1 must be free.
set -u
N=${1:-200}; W=${2:-4}; D=${3:-5}; REPS=${4:-3}
BENCH=${BENCH:-target/sio-bench/release/sio-bench}
KEY=sockeye-bench-$$-$RANDOM
REDIS=redis://127.0.0.1:6379
ulimit -n 65536 2>/dev/null
target/release/bench-app 4711 >/dev/null & P1=$!
REDIS_URL=$REDIS REDIS_KEY=$KEY target/release/bench-app 4712 >/dev/null & P2=$!
REDIS_URL=$REDIS REDIS_KEY=$KEY target/release/bench-app 4713 >/dev/null & P3=$!
# Connections go to the backends in turn: the receivers alternate, the sender (connection N+1)
# lands on the first backend.
target/release/examples/split_proxy 4721 4711 >/dev/null & X1=$!
target/release/examples/split_proxy 4722 4712 4713 >/dev/null & X2=$!
target/release/examples/split_proxy 4723 4712 >/dev/null & X3=$!
trap 'kill $P1 $P2 $P3 $X1 $X2 $X3 2>/dev/null' EXIT
sleep 2
uptime
run() {
  "$BENCH" broadcast --url "$2" -n "$N" --window "$W" -d "$D" --warmup 1 --pid "$3" --label "$1" 2>/dev/null |
    python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); m=r["metrics"]; l=m["latency"]; print("%-22s deliveries/s=%-9s delivered=%s%% p50=%sus p99=%sus server_cpu=%s others_cpu=%s errors=%s" % (r["label"], m["deliveries_per_s"], m["delivered_pct"], l.get("p50_us"), l.get("p99_us"), r["server"].get("cpu_pct"), r["client"].get("others_cpu_pct"), r.get("errors")))'
}
for _ in $(seq "$REPS"); do
  run one-node-direct http://127.0.0.1:4711 $P1
  run one-node-proxy http://127.0.0.1:4721 $P1
  run one-node-redis-proxy http://127.0.0.1:4723 $P2
  run two-nodes-redis-proxy http://127.0.0.1:4722 $P2
done
uptime
