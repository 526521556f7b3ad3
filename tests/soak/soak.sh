#!/usr/bin/env bash
# Soak: connect/disconnect churn with broadcasts against the bench app for DURATION seconds
# (default 600), reporting the server's RSS at start, middle, end, and after every client left.
# Not part of CI (scripts/test): run it by hand on a quiet machine.
#
#   tests/soak/soak.sh [DURATION] [CLIENTS] [CHURN_PER_SEC] [BROADCASTS_PER_SEC]
#
# Builds bench-app in release (PROFILE=debug to skip), starts it on a free loopback port,
# drives it with tests/soak/soak-client.js (official socket.io-client), samples VmRSS.
set -euo pipefail
cd "$(dirname "$0")/../.."

duration=${1:-600}
clients=${2:-200}
churn=${3:-20}
rate=${4:-20}
profile=${PROFILE:-release}

if [ "$profile" = release ]; then
  cargo build -q --release -p bench-app
else
  cargo build -q -p bench-app
fi
bin=target/$profile/bench-app
[ -d tests/node_modules/socket.io-client ] || { echo "run npm ci in tests/ first" >&2; exit 2; }

log=$(mktemp)
"$bin" 0 >"$log" 2>&1 &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; rm -f "$log"; }
trap cleanup EXIT
for _ in $(seq 100); do
  port=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$log")
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "${port:-}" ] || { echo "bench-app did not start" >&2; cat "$log" >&2; exit 1; }

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }
echo "server pid $server port $port; $duration s, $clients clients, churn $churn/s, $rate broadcasts/s"
echo "rss_kib idle: $(rss)"

node tests/soak/soak-client.js "$port" "$duration" "$clients" "$churn" "$rate" &
client=$!
sleep 15
echo "rss_kib start (15 s): $(rss)"
sleep $(( duration / 2 - 15 ))
echo "rss_kib middle ($(( duration / 2 )) s): $(rss)"
sleep $(( duration / 2 - 5 ))
echo "rss_kib end ($(( duration - 5 )) s): $(rss)"
status=0
wait "$client" || status=$?
sleep 5
echo "rss_kib after all clients left (+5 s): $(rss)"
echo "soak client exit status: $status"
exit "$status"
