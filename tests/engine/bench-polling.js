// Polling round trips against scripts/bench-protocol-reach.sh's server with Node's fetch:
// N messages of about SIZE bytes, each POSTed then read back by a GET that sends
// `Accept-Encoding: ENCODING` (identity, gzip, br or deflate; fetch decodes the answer).
// Usage: node bench-polling.js PORT N SIZE ENCODING; prints {"ms": ..., "encoding": ...}.
'use strict';

const { message } = require('./bench-messages');

async function main() {
  const [port, n, size] = process.argv.slice(2, 5).map(Number);
  const encoding = process.argv[5] || 'identity';
  const base = `http://127.0.0.1:${port}/engine.io/?EIO=4&transport=polling`;
  const open = await (await fetch(base)).text();
  const sid = JSON.parse(open.slice(1)).sid;
  const url = `${base}&sid=${sid}`;
  let seenEncoding = null;
  const started = Date.now();
  for (let i = 0; i < n; i++) {
    const body = message(size, i).replace(/^4?/, '4');
    const post = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    await post.text();
    const res = await fetch(url, { headers: { 'accept-encoding': encoding } });
    seenEncoding = res.headers.get('content-encoding');
    const echo = await res.text();
    if (echo !== body) throw new Error(`echo mismatch at ${i}: ${echo.slice(0, 40)}`);
  }
  console.log(JSON.stringify({ ms: Date.now() - started, encoding: seenEncoding }));
}

main().catch((e) => { console.error(e); process.exit(1); });
