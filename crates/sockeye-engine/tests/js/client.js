// Drives the official engine.io-client against a sockeye engine; prints one JSON line per
// result. Usage: node client.js <base-url> <polling|websocket|upgrade> <echo|big|many> [count]
// engine.io-client is found through NODE_PATH (the workspace's tests/node_modules).
'use strict';

const { Socket } = require('engine.io-client');

const [base, mode, scenario, countArg] = process.argv.slice(2);
const transports = { polling: ['polling'], websocket: ['websocket'], upgrade: ['polling', 'websocket'] }[mode];
if (!base || !transports || !scenario) {
  console.error('usage: node client.js <base-url> <polling|websocket|upgrade> <echo|big|many> [count]');
  process.exit(64);
}

setTimeout(() => {
  console.log(JSON.stringify({ error: 'timeout' }));
  process.exit(2);
}, 45000).unref();

function toBytes(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new Error('not binary: ' + typeof data);
}

// Opens a socket; resolves once it is ready to send (after the upgrade in upgrade mode).
function open() {
  return new Promise((resolve, reject) => {
    const socket = new Socket(base, { path: '/engine.io/', transports, upgrade: mode === 'upgrade' });
    const info = { openTransport: null };
    socket.on('open', () => {
      info.openTransport = socket.transport.name;
      if (mode !== 'upgrade') resolve({ socket, info });
    });
    socket.on('upgrade', () => resolve({ socket, info }));
    socket.on('error', (err) => reject(new Error('socket error: ' + err)));
    socket.on('close', (reason, desc) => reject(new Error('closed before ready: ' + reason + ' ' + (desc && desc.message))));
  });
}

// Sends one message and resolves with the next message received.
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

async function echo() {
  const { socket, info } = await open();
  const text = await roundTrip(socket, 'hello ü 🦀');
  const binary = toBytes(await roundTrip(socket, Buffer.from([1, 2, 3, 4])));
  const result = { scenario: 'echo', openTransport: info.openTransport, transport: socket.transport.name, text, binary: [...binary] };
  socket.close();
  return result;
}

async function big() {
  const { socket } = await open();
  const size = 1 << 20;
  const text = await roundTrip(socket, 'x'.repeat(size));
  const binary = toBytes(await roundTrip(socket, Buffer.alloc(size, 7)));
  const result = {
    scenario: 'big',
    transport: socket.transport.name,
    textLength: text.length,
    textOk: text === 'x'.repeat(size),
    binaryLength: binary.length,
    binaryOk: binary.every((b) => b === 7),
  };
  socket.close();
  return result;
}

async function many() {
  const count = Number(countArg || 200);
  const clients = await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const { socket } = await open();
      const reply = await roundTrip(socket, 'client ' + i);
      return { socket, ok: reply === 'client ' + i };
    }),
  );
  const ok = clients.filter((c) => c.ok).length;
  for (const c of clients) c.socket.close();
  return { scenario: 'many', count, ok };
}

// Sends numbered messages from the moment the session opens on polling until well after the
// upgrade; every echo must come back exactly once and in order.
function ordered() {
  const total = Number(countArg || 300);
  return new Promise((resolve, reject) => {
    const socket = new Socket(base, { path: '/engine.io/', transports, upgrade: true });
    const got = [];
    let sent = 0;
    let upgradedAt = -1;
    socket.on('upgrade', () => {
      upgradedAt = sent;
    });
    socket.on('open', () => {
      const timer = setInterval(() => {
        if (sent < total) socket.send('n' + sent++);
        if (sent >= total) clearInterval(timer);
      }, 2);
    });
    socket.on('message', (data) => {
      got.push(data);
      if (got.length === total) {
        const inOrder = got.every((m, i) => m === 'n' + i);
        const result = { scenario: 'ordered', total, received: got.length, inOrder, upgradedAt, transport: socket.transport.name };
        resolve(result);
        socket.close();
      }
    });
    socket.on('close', (reason) => reject(new Error('closed: ' + reason + ' after ' + got.length)));
    socket.on('error', (err) => reject(new Error('socket error: ' + err)));
  });
}

const scenarios = { echo, big, many, ordered };
(scenarios[scenario] || (() => Promise.reject(new Error('unknown scenario ' + scenario))))()
  .then((result) => {
    console.log(JSON.stringify(result));
    // Let the close reach the server (polling sends a CLOSE packet in a POST).
    setTimeout(() => process.exit(0), 300);
  })
  .catch((err) => {
    console.log(JSON.stringify({ error: String(err && err.stack ? err.stack : err) }));
    process.exit(1);
  });
