#!/usr/bin/env bash
# Runs every interop script against the official Node socket.io server implementing the same
# apps (reference-server.js, reference-conformance-server.js). This proves the scripts assert
# what the official server does; the cargo tests of examples/interop and examples/conformance
# run the same scripts against sockeye.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ -d tests/node_modules/socket.io ] || { echo "tests/node_modules missing: run npm ci in tests/" >&2; exit 2; }
[ -x .venv/bin/python ] || { echo ".venv missing: python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt" >&2; exit 2; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts a server script on port 0 and stores the port it announced in the variable named
# first. It runs in this shell (not in a command substitution) so its PID reaches `cleanup`.
start() {
  local var=$1 script=$2 out
  out=$(mktemp)
  node "$script" 0 >"$out" 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 100); do
    if grep -q '^listening on ' "$out"; then
      printf -v "$var" '%s' "$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$out")"
      return 0
    fi
    sleep 0.1
  done
  echo "$script did not start within 10 s:" >&2
  cat "$out" >&2
  return 1
}

app=
conf=
recovery=
legacy=
start app tests/interop/reference-server.js
start conf tests/interop/reference-conformance-server.js
start recovery tests/interop/reference-recovery-server.js
# Legacy mode (interop-app.md §6): the same app with allowEIO3, for the 2.x client.
INTEROP_ALLOW_EIO3=1 start legacy tests/interop/reference-server.js

status=0
run() {
  echo "--- $*"
  timeout 180 "$@" || status=1
}
run node tests/interop/node-client.js "$app"
run .venv/bin/python tests/interop/python_client.py "$app"
run node tests/interop/conformance.js "$conf"
run node tests/interop/recovery-client.js "$recovery"
run node tests/interop/node-client-v2.js "$legacy"
exit "$status"
