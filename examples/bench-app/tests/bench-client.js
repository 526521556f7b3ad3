// Drives the bench app with the official `socket.io-client`: the sio-bench contract, case by case.
//
//   node examples/bench-app/tests/bench-client.js PORT
//
// Every wait is bounded. Prints one JSON summary line on stdout; exits 1 if a case failed,
// 2 on bad usage or a missing dependency.
"use strict";

const path = require("path");
const assert = require("assert/strict");

const modules = path.join(__dirname, "..", "..", "..", "tests", "node_modules");
let io;
try {
  ({ io } = require(path.join(modules, "socket.io-client")));
} catch (e) {
  console.error(`socket.io-client not found under ${modules}: run \`npm ci\` in tests/ (${e.message})`);
  process.exit(2);
}

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error("usage: node bench-client.js PORT");
  process.exit(2);
}
const URL_ = `http://127.0.0.1:${port}`;
const WAIT_MS = 15000;

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function connect(transports) {
  const socket = io(URL_, { transports, forceNew: true, reconnection: false });
  return within(WAIT_MS, "connect", new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  }));
}

function ackOf(socket, event, ...args) {
  return within(WAIT_MS, `ack of ${event}`, new Promise((resolve) => {
    socket.emit(event, ...args, (...reply) => resolve(reply));
  }));
}

const cases = {
  async "echo-text-websocket"() {
    const s = await connect(["websocket"]);
    try {
      const args = ["x".repeat(64), { n: 1, nested: [true, null, "ü"] }, 42];
      assert.deepEqual(await ackOf(s, "echo", ...args), args);
    } finally { s.close(); }
  },
  async "echo-text-polling"() {
    const s = await connect(["polling"]);
    try {
      const payload = "y".repeat(4096);
      assert.deepEqual(await ackOf(s, "echo", payload), [payload]);
    } finally { s.close(); }
  },
  async "echo-binary-64k"() {
    const s = await connect(["websocket"]);
    try {
      const bytes = Buffer.alloc(65536);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
      const reply = await ackOf(s, "echo", bytes);
      assert.equal(reply.length, 1);
      assert.ok(Buffer.isBuffer(reply[0]) || reply[0] instanceof ArrayBuffer, "binary came back as binary");
      assert.ok(Buffer.from(reply[0]).equals(bytes), "binary content unchanged");
    } finally { s.close(); }
  },
  async "broadcast-reaches-everyone-then-empty-ack"() {
    const sockets = await Promise.all([connect(["websocket"]), connect(["websocket"]), connect(["polling"])]);
    try {
      const received = sockets.map((s) => within(WAIT_MS, "broadcast delivery", new Promise((resolve) => {
        s.once("broadcast", (...args) => resolve(args));
      })));
      const args = [Date.now(), "z".repeat(64)];
      const ack = await ackOf(sockets[0], "broadcast", ...args);
      assert.deepEqual(ack, [], "broadcast acks with no arguments");
      for (const got of await Promise.all(received)) assert.deepEqual(got, args);
    } finally { sockets.forEach((s) => s.close()); }
  },
};

(async () => {
  const failures = {};
  for (const [name, run] of Object.entries(cases)) {
    try {
      await run();
    } catch (e) {
      failures[name] = String(e && e.stack || e);
      console.error(`FAIL ${name}: ${failures[name]}`);
    }
  }
  const failed = Object.keys(failures).length;
  console.log(JSON.stringify({ passed: Object.keys(cases).length - failed, failed, failures }));
  process.exit(failed ? 1 : 0);
})();
