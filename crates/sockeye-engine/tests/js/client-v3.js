// Drives the official Engine.IO v3 client (engine.io-client 3.x, npm alias engine.io-client-v3)
// against a sockeye engine with allow_eio3; prints one JSON result line.
// Usage: node client-v3.js <base-url> <polling|websocket|upgrade> <b64: 0|1>
// engine.io-client-v3 is found through NODE_PATH (the workspace's tests/node_modules).
'use strict';

const eio = require('engine.io-client-v3');

const [base, mode, b64] = process.argv.slice(2);
const transports = { polling: ['polling'], websocket: ['websocket'], upgrade: ['polling', 'websocket'] }[mode];
if (!base || !transports) {
  console.error('usage: node client-v3.js <base-url> <polling|websocket|upgrade> <0|1>');
  process.exit(64);
}

setTimeout(() => {
  console.log(JSON.stringify({ error: 'timeout' }));
  process.exit(2);
}, 30000).unref();

function toBytes(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new Error('not binary: ' + typeof data);
}

function open() {
  return new Promise((resolve, reject) => {
    const socket = eio(base, {
      path: '/engine.io/',
      transports,
      upgrade: mode === 'upgrade',
      forceBase64: b64 === '1',
    });
    const info = { openTransport: null, pings: 0, pongs: 0 };
    socket.on('ping', () => info.pings++);
    socket.on('pong', () => info.pongs++);
    socket.on('open', () => {
      info.openTransport = socket.transport.name;
      if (mode !== 'upgrade') resolve({ socket, info });
    });
    socket.on('upgrade', () => resolve({ socket, info }));
    socket.on('error', (err) => reject(new Error('socket error: ' + err)));
    socket.on('close', (reason) => reject(new Error('closed before ready: ' + reason)));
  });
}

function roundTrip(socket, message) {
  return new Promise((resolve, reject) => {
    const onClose = (reason) => reject(new Error('closed: ' + reason));
    socket.once('close', onClose);
    socket.once('message', (data) => {
      socket.off('close', onClose);
      resolve(data);
    });
    socket.send(message);
  });
}

async function main() {
  const { socket, info } = await open();
  const text = await roundTrip(socket, 'hello ü 🦀');
  const binary = toBytes(await roundTrip(socket, Buffer.from([1, 2, 3, 4])));
  // Four ping intervals: the session must stay up on the client's own pings.
  await new Promise((r) => setTimeout(r, 1300));
  const later = await roundTrip(socket, 'still here');
  const result = {
    openTransport: info.openTransport,
    transport: socket.transport.name,
    text,
    binary: [...binary],
    later,
    pings: info.pings,
    pongs: info.pongs,
  };
  socket.close();
  console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.log(JSON.stringify({ error: String(err && err.stack || err) }));
  process.exit(1);
});
