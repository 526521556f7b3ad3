#!/usr/bin/env bash
# Runs an official protocol test suite (Engine.IO v4 or Socket.IO v5, mocha) against our
# conformance server, several times, and prints the pass/fail summary of each run.
#
#   scripts/official-suites.sh engine   SUITE_DIR [RUNS]   # examples/engine-conformance
#   scripts/official-suites.sh socketio SUITE_DIR [RUNS]   # examples/conformance
#
# SUITE_DIR must be OUTSIDE this repository (that code is not ours and is never committed) and
# hold the suite's `test-suite.js` and `node-imports.js`. This script downloads nothing but npm
# packages into SUITE_DIR; get the suite files yourself from the public repositories:
#   engine:   socketio/engine.io-protocol, folder test-suite/ (archived; the same suite is kept
#             in socketio/socket.io, docs/engine.io-protocol/v4-test-suite/)
#   socketio: socketio/socket.io-protocol, folder test-suite/ (also socketio/socket.io,
#             docs/socket.io-protocol/v5-test-suite/)
# See docs/conformance.md for the versions used, the results and the known flaky cases.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd -P)

usage() { echo "usage: $0 engine|socketio SUITE_DIR [RUNS]" >&2; exit 2; }
[ $# -ge 2 ] || usage
kind=$1
suite=$(cd "$2" && pwd -P) || { echo "no such directory: $2" >&2; exit 2; }
runs=${3:-3}
case "$kind" in
  engine) example=engine-conformance ;;
  socketio) example=conformance ;;
  *) usage ;;
esac
case "$suite/" in
  "$repo"/*) echo "SUITE_DIR must be outside the repository ($repo): it is someone else's code" >&2; exit 2 ;;
esac
for f in test-suite.js node-imports.js; do
  [ -f "$suite/$f" ] || { echo "$suite/$f is missing: see the header of $0 for where to get it" >&2; exit 2; }
done

# The suites' package.json name chai ^4.3.6, chai-string ^1.5.0, mocha ^9.2.1, node-fetch ^3.2.0
# and ws ^8.x. ws is pinned to 8.16.0 on purpose: with 8.17 and later (and 8.5) two frames that
# arrive in one TCP read are dispatched synchronously, and the suites' one-shot `waitFor`
# listeners then miss the second one (the Node reference server fails 1 to 6 tests that way).
if [ ! -d "$suite/node_modules/mocha" ]; then
  (cd "$suite" && { [ -f package.json ] || echo '{"private":true,"type":"module"}' > package.json; } \
    && npm install --no-audit --no-fund --loglevel=error \
      chai@4.3.6 chai-string@1.5.0 mocha@9.2.1 node-fetch@3.2.0 ws@8.16.0)
fi

# The suites hard-code http://localhost:3000; our servers bind 127.0.0.1 on a free port.
if ! grep -q SUITE_URL "$suite/test-suite.js"; then
  sed -i 's|^const URL = "http://localhost:3000";|const URL = process.env.SUITE_URL \|\| "http://localhost:3000"; // local edit: port|' \
    "$suite/test-suite.js"
  grep -q SUITE_URL "$suite/test-suite.js" || { echo "could not find the URL line in test-suite.js" >&2; exit 1; }
fi

cargo build --quiet -p "$example"
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
log=$(mktemp)
RUST_LOG=${RUST_LOG:-warn} "target/debug/$example" "$port" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
kill -0 "$server" 2>/dev/null || { echo "$example did not start:" >&2; cat "$log" >&2; exit 1; }

echo "$example on 127.0.0.1:$port, suite $suite, $runs runs"
status=0
for run in $(seq "$runs"); do
  out=$(cd "$suite" && SUITE_URL="http://127.0.0.1:$port" timeout 180 npx mocha test-suite.js 2>&1) || status=1
  summary=$(printf '%s\n' "$out" | grep -E '^ +[0-9]+ (passing|failing|pending)' | tr -s ' ' | tr '\n' ' ')
  echo "run $run: $summary"
  # The failing tests' titles and assertion lines, without stack frames.
  printf '%s\n' "$out" | sed -n '/ failing$/,$p' | sed '1d' \
    | grep -vE '^\s+at |^\s*$|^\s+[-+]|expected - actual' | head -40 || true
done
exit "$status"
