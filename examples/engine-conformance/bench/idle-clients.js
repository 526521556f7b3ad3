// Opens N Engine.IO WebSocket sessions and holds them idle (answering pings).
// Usage: node idle-clients.js PORT N ; prints "ready" once all are open, then waits for stdin EOF.
'use strict';
const WebSocket = require('ws');

const [port, countArg] = process.argv.slice(2);
const count = Number(countArg || 1000);
let open = 0;
let failed = 0;
const sockets = [];

function connect() {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/engine.io/?EIO=4&transport=websocket`);
    ws.on('message', (data) => {
      const text = data.toString();
      if (text.startsWith('0')) {
        open++;
        resolve();
      } else if (text === '2') {
        ws.send('3');
      }
    });
    ws.on('error', () => {
      failed++;
      resolve();
    });
    sockets.push(ws);
  });
}

(async () => {
  for (let i = 0; i < count; i += 250) {
    await Promise.all(Array.from({ length: Math.min(250, count - i) }, connect));
  }
  console.log(JSON.stringify({ ready: true, open, failed }));
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
})();
