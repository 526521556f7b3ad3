// The Node `ws` client (pinned in tests/package.json) with permessage-deflate against a
// sockeye engine: opens a WebSocket session, sends text and binary messages of SIZE bytes and
// checks their echoes; prints one JSON line with the negotiated extensions.
// Usage: node ws-deflate.js <base-url> <size> [ws-port-override]
'use strict';

const WebSocket = require('ws');

const [base, sizeArg, portOverride] = process.argv.slice(2);
const size = Number(sizeArg || 4096);
let url = base.replace(/^http/, 'ws') + '/engine.io/?EIO=4&transport=websocket';
if (portOverride) url = url.replace(/:\d+\//, ':' + portOverride + '/');

setTimeout(() => {
  console.log(JSON.stringify({ error: 'timeout' }));
  process.exit(2);
}, 20000).unref();

const ws = new WebSocket(url, { perMessageDeflate: { threshold: 0 } });
const text = '4' + 'hello sockeye '.repeat(Math.ceil(size / 14)).slice(0, size);
const binary = Buffer.alloc(size, 7);
const got = [];
ws.on('message', (data, isBinary) => {
  got.push({ data, isBinary });
  if (got.length === 1) {
    ws.send(text);
  } else if (got.length === 2) {
    ws.send(binary);
  } else if (got.length === 3) {
    const result = {
      extensions: ws.extensions,
      open: got[0].data.toString().startsWith('0{'),
      textOk: !got[1].isBinary && got[1].data.toString() === text,
      binaryOk: got[2].isBinary && Buffer.compare(got[2].data, binary) === 0,
    };
    ws.close();
    console.log(JSON.stringify(result));
  }
});
ws.on('error', (err) => {
  console.log(JSON.stringify({ error: String(err) }));
  process.exit(1);
});
