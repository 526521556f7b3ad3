#!/usr/bin/env bash
# Measures the server RSS held per idle WebSocket client.
# Usage: examples/engine-conformance/bench/idle.sh [N]   (builds idle-server in release)
set -euo pipefail
cd "$(dirname "$0")/../../.."
N="${1:-10000}"
cargo build --release -q -p engine-conformance --bin idle-server
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
coproc SERVER { exec target/release/idle-server 0; }
SERVER_PID=$SERVER_PID
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
read -r -u "${SERVER[0]}" _ ADDR
PORT="${ADDR##*:}"
sleep 0.5
BASE=$(rss "$SERVER_PID")
coproc CLIENTS { NODE_PATH=tests/node_modules exec node examples/engine-conformance/bench/idle-clients.js "$PORT" "$N"; }
read -r -u "${CLIENTS[0]}" READY
sleep 2
HELD=$(rss "$SERVER_PID")
echo "clients: $READY"
echo "server RSS: ${BASE} KiB idle, ${HELD} KiB with $N clients"
awk -v b="$BASE" -v h="$HELD" -v n="$N" 'BEGIN { printf "per client: %.2f KiB\n", (h - b) / n }'
kill "$CLIENTS_PID" 2>/dev/null || true
