#!/usr/bin/env bash
# Long soak (issue 20; one hour by default, release build; not part of CI, run it by hand on a
# quiet machine):
#
#   tests/soak/soak-long.sh [SECONDS=3600] [CLIENTS=200] [CHURN_PER_SEC=20] [BROADCASTS_PER_SEC=20]
#
# Environment: PROFILE (release; debug to validate quickly), SAMPLE (60: seconds between
# samples), WARMUP (300: seconds left out of the flatness check), OUT (docs/soak-long.png),
# KEEP=1 to keep the work directory (logs, samples).
#
# Two bench-app nodes share broadcasts through their own redis-server (a free loopback port,
# never the shared 6379). The official socket.io-client churns CLIENTS sockets on each node
# (half WebSocket, half polling-then-upgrade; each joins one of 8 rooms and leaves it before
# disconnecting); node A's sender emits acked broadcasts, every fifth to one room only. Our
# own client (client-cli, reconnection on) stays connected to node B and calls `echo` every
# second. Node B is killed and started again on the same port at 1/3 and 2/3 of the run, so
# its sockets and the Rust client reconnect. Every SAMPLE seconds the RSS and open file
# descriptors of node A, node B and the Rust client go to samples.csv; at the end
# tests/soak/plot.py draws OUT and fails the run unless node A and the Rust client stay flat
# after warm-up (node B restarts, so it is drawn but not judged). The counts (sent, acked,
# received, connects, joins, leaves; the Rust client's acks and failed calls) are printed.
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=${1:-3600}
clients=${2:-200}
churn=${3:-20}
rate=${4:-20}
profile=${PROFILE:-release}
sample=${SAMPLE:-60}
warmup=${WARMUP:-300}
out=${OUT:-docs/soak-long.png}
target=${CARGO_TARGET_DIR:-target}

if [ "$profile" = release ]; then
  cargo build -q --release -p bench-app -p client-cli
else
  cargo build -q -p bench-app -p client-cli
fi
bench=$target/$profile/bench-app
cli=$target/$profile/client-cli
[ -d tests/node_modules/socket.io-client ] || { echo "run npm ci in tests/ first" >&2; exit 2; }
command -v redis-server >/dev/null || { echo "redis-server missing" >&2; exit 2; }

work=$(mktemp -d)
pids=()
cleanup() {
  exec 3>&- 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 100); do
    (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
wait_port "$redis_port"

# Starts a node on a fixed port; its PID in $node_pid.
start_node() {
  REDIS_URL="redis://127.0.0.1:$redis_port" "$bench" "$2" >>"$work/$1.log" 2>&1 &
  node_pid=$!
  pids+=("$node_pid")
  wait_port "$2"
}
port_a=$(free_port)
port_b=$(free_port)
start_node a "$port_a"
node_a=$node_pid
start_node b "$port_b"
node_b=$node_pid

ROOMS=1 node tests/soak/soak-client.js "$port_a" "$duration" "$clients" "$churn" "$rate" >"$work/js-a.log" 2>&1 &
js_a=$!
pids+=("$js_a")
ROOMS=1 node tests/soak/soak-client.js "$port_b" "$duration" "$clients" "$churn" 0 >"$work/js-b.log" 2>&1 &
js_b=$!
pids+=("$js_b")

mkfifo "$work/cli.in"
"$cli" "http://127.0.0.1:$port_b" <"$work/cli.in" >"$work/cli.out" 2>"$work/cli.err" &
rust=$!
pids+=("$rust")
exec 3>"$work/cli.in"

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
echo "t,node_a_rss_kib,node_a_fds,restarted_node_b_rss_kib,restarted_node_b_fds,rust_client_rss_kib,rust_client_fds" >"$work/samples.csv"
echo "nodes on $port_a and $port_b (redis $redis_port), $duration s, $clients clients per node, churn $churn/s, $rate broadcasts/s, $profile"

restarts=0
start=$SECONDS
next_sample=0
while [ $((SECONDS - start)) -lt "$duration" ]; do
  t=$((SECONDS - start))
  echo '?echo {"soak":true}' >&3
  if [ "$t" -ge "$next_sample" ]; then
    echo "$t,$(rss "$node_a"),$(fds "$node_a"),$(rss "$node_b"),$(fds "$node_b"),$(rss "$rust"),$(fds "$rust")" >>"$work/samples.csv"
    next_sample=$((next_sample + sample))
  fi
  if { [ "$restarts" -eq 0 ] && [ "$t" -ge $((duration / 3)) ]; } || { [ "$restarts" -eq 1 ] && [ "$t" -ge $((2 * duration / 3)) ]; }; then
    kill "$node_b"
    wait "$node_b" 2>/dev/null || true
    start_node b "$port_b"
    node_b=$node_pid
    restarts=$((restarts + 1))
    echo "node B restarted at $t s ($restarts)"
  fi
  sleep 1
done

status=0
wait "$js_a" || status=1
wait "$js_b" || status=1
exec 3>&-
for _ in $(seq 50); do kill -0 "$rust" 2>/dev/null || break; sleep 0.1; done

echo "node A clients: $(tail -n 1 "$work/js-a.log")"
echo "node B clients: $(tail -n 1 "$work/js-b.log")"
acks=$(grep -c '^< ack' "$work/cli.out" || true)
failed=$(grep -c '^!' "$work/cli.out" || true)
reconnects=$(grep -c '^\* connected' "$work/cli.out" || true)
echo "rust client: $acks acks, $failed failed calls, $reconnects connects"
python3 tests/soak/plot.py "$work/samples.csv" "$out" "$warmup" || status=1
echo "plot: $out"
cp "$work/samples.csv" "${out%.png}.csv"
[ "$acks" -gt 0 ] || { echo "the Rust client got no ack" >&2; status=1; }
echo "soak status: $status"
exit "$status"
