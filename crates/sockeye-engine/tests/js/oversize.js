// The official engine.io-client sends one polling message over the server's maxPayload (1e6)
// and prints how its socket closed: {"reason": ..., "description": ...}.
// Usage: node oversize.js <base-url>; engine.io-client is found through NODE_PATH.
'use strict';

const { Socket } = require('engine.io-client');

setTimeout(() => {
  console.log(JSON.stringify({ error: 'timeout' }));
  process.exit(2);
}, 20000).unref();

const socket = new Socket(process.argv[2], { path: '/engine.io/', transports: ['polling'] });
socket.on('open', () => socket.send('y'.repeat(1100000)));
socket.on('close', (reason, description) => {
  console.log(JSON.stringify({ reason, description: String(description && description.message || description || '') }));
  process.exit(0);
});
