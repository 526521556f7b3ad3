#!/usr/bin/env bash
# The protocol-reach figures of docs/benchmarks.md: bytes on the wire and server CPU per
# message with and without compression (WebSocket permessage-deflate, HTTP compression of
# polling answers), and server memory per idle WebSocket session over HTTP/1.1 and HTTP/2.
#
#   scripts/bench-protocol-reach.sh [SESSIONS=2000] [MESSAGES=2000]
#
# Release builds of crates/sockeye-engine/examples/{bench_server,bench_sessions}; load from
# the Node `ws` client and fetch (tests/engine/bench-*.js). Loopback only; every process it
# starts is ended by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
sessions=${1:-2000}
messages=${2:-2000}
cargo build --release -q -p sockeye-engine --example bench_server --example bench_sessions
bin=target/release/examples
[ -d tests/node_modules/ws ] || (cd tests && npm ci --no-audit --no-fund --loglevel=error)

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# start_server NAME ARGS...: runs bench_server with a FIFO on stdin; sets PORT.
start_server() {
  local name=$1; shift
  mkfifo "$work/$name.in"
  "$bin/bench_server" "$@" <"$work/$name.in" >"$work/$name.out" &
  pids+=("$!")
  exec {fd}>"$work/$name.in"
  eval "FD_$name=$fd"
  for _ in $(seq 1 100); do
    PORT=$(sed -n 's/^PORT //p' "$work/$name.out")
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  echo "bench_server did not start" >&2; exit 1
}
# stats NAME: the server's current stats line.
stats() {
  local name=$1 fd
  eval "fd=\$FD_$name"
  local before
  before=$(grep -c '^{' "$work/$name.out" || true)
  echo stats >&"$fd"
  for _ in $(seq 1 100); do
    [ "$(grep -c '^{' "$work/$name.out" || true)" -gt "$before" ] && break
    sleep 0.05
  done
  grep '^{' "$work/$name.out" | tail -1
}
field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" <<<"$1"; }

echo "## Memory per idle WebSocket session ($sessions sessions)"
echo
echo "| transport | server RSS before (KiB) | with the sessions (KiB) | per session (KiB) |"
echo "|---|---|---|---|"
for mode in h1 h2; do
  start_server "mem$mode" --max-streams $((sessions + 100))
  sleep 0.3
  before=$(stats "mem$mode")
  mkfifo "$work/client$mode.in"
  "$bin/bench_sessions" "$PORT" "$sessions" "$mode" <"$work/client$mode.in" >"$work/client$mode.out" &
  client=$!
  pids+=("$client")
  exec {cfd}>"$work/client$mode.in"
  for _ in $(seq 1 600); do
    grep -q '^READY' "$work/client$mode.out" && break
    sleep 0.1
  done
  sleep 1
  after=$(stats "mem$mode")
  [ "$(field "$after" sessions)" = "$sessions" ] || { echo "only $(field "$after" sessions) sessions open" >&2; exit 1; }
  rb=$(field "$before" rss_kb); ra=$(field "$after" rss_kb)
  label=$([ "$mode" = h1 ] && echo "HTTP/1.1 (one TCP connection each)" || echo "HTTP/2 (one h2c connection, extended CONNECT streams)")
  echo "| $label | $rb | $ra | $(awk "BEGIN{printf \"%.2f\", ($ra-$rb)/$sessions}") |"
  exec {cfd}>&-
  kill "$client" 2>/dev/null || true
done

echo
echo "## WebSocket permessage-deflate ($messages echoed messages each)"
echo
echo "| message size | deflate | bytes on the wire per message (both ways) | server CPU per message (µs) | wall time (ms) |"
echo "|---|---|---|---|---|"
for size in 100 1024 16384; do
  for deflate in 0 1; do
    name="ws${size}_$deflate"
    if [ "$deflate" = 1 ]; then start_server "$name" --deflate; else start_server "$name"; fi
    before=$(stats "$name")
    result=$(node tests/engine/bench-ws.js "$PORT" "$messages" "$size" "$deflate")
    after=$(stats "$name")
    bytes=$(( $(field "$after" bytes_in) + $(field "$after" bytes_out) - $(field "$before" bytes_in) - $(field "$before" bytes_out) ))
    cpu=$(( $(field "$after" cpu_us) - $(field "$before" cpu_us) ))
    ms=$(sed -n 's/.*"ms":\([0-9]*\).*/\1/p' <<<"$result")
    echo "| $size B | $([ "$deflate" = 1 ] && echo on || echo off) | $((bytes / messages)) | $(awk "BEGIN{printf \"%.1f\", $cpu/$messages}") | $ms |"
  done
done

echo
echo "## HTTP compression of polling answers ($((messages / 4)) POST + GET round trips each)"
echo
echo "| message size | Accept-Encoding | Content-Encoding | bytes on the wire per round trip | server CPU per round trip (µs) |"
echo "|---|---|---|---|---|"
rounds=$((messages / 4))
for size in 100 1024 16384; do
  for encoding in identity gzip br deflate; do
    name="poll${size}_$encoding"
    start_server "$name"
    before=$(stats "$name")
    result=$(node tests/engine/bench-polling.js "$PORT" "$rounds" "$size" "$encoding")
    after=$(stats "$name")
    bytes=$(( $(field "$after" bytes_in) + $(field "$after" bytes_out) - $(field "$before" bytes_in) - $(field "$before" bytes_out) ))
    cpu=$(( $(field "$after" cpu_us) - $(field "$before" cpu_us) ))
    got=$(sed -n 's/.*"encoding":"\{0,1\}\([a-z]*\).*/\1/p' <<<"$result")
    echo "| $size B | $encoding | ${got:-none} | $((bytes / rounds)) | $(awk "BEGIN{printf \"%.1f\", $cpu/$rounds}") |"
  done
done
