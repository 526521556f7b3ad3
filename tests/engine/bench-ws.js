// WebSocket round trips against scripts/bench-protocol-reach.sh's server with the Node `ws`
// client: N text messages of about SIZE bytes, each echoed before the next is sent.
// permessage-deflate offered when DEFLATE is 1 (threshold 1024, as the server's default).
// Usage: node bench-ws.js PORT N SIZE DEFLATE; prints {"ms": ..., "extensions": ...}.
'use strict';

const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'node_modules', 'ws'));
const { message } = require('./bench-messages');

const [port, n, size, deflate] = process.argv.slice(2).map(Number);
const ws = new WebSocket(`ws://127.0.0.1:${port}/engine.io/?EIO=4&transport=websocket`, {
  perMessageDeflate: deflate ? { threshold: 1024 } : false,
});
let sent = 0;
let started = 0;
const send = () => ws.send(message(size, sent++).replace(/^4?/, '4'));
ws.on('message', (data) => {
  const text = data.toString();
  if (text.startsWith('0{')) {
    started = Date.now();
    send();
    return;
  }
  if (text === '2') { ws.send('3'); return; }
  if (sent < n) send();
  else {
    console.log(JSON.stringify({ ms: Date.now() - started, extensions: ws.extensions }));
    ws.close();
  }
});
ws.on('error', (e) => { console.error(String(e)); process.exit(1); });
