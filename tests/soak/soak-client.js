// Connect/disconnect churn with broadcasts against a bench app (shared/sio-bench contract).
//
//   node tests/soak/soak-client.js PORT SECONDS [CLIENTS] [CHURN_PER_SEC] [BROADCASTS_PER_SEC]
//
// Keeps CLIENTS sockets connected (half polling-then-upgrade, half WebSocket-only); every
// second CHURN_PER_SEC of them disconnect and as many new ones connect; one extra socket
// emits `broadcast` with an ack at BROADCASTS_PER_SEC. Prints one JSON line of counts every
// 10 s and a final one; exits 1 if a broadcast ack went missing for more than 10 s or no
// broadcast reached any client in a 10 s window. With ROOMS=1 in the environment, every
// socket joins one of 8 rooms on connect and leaves it before disconnecting, and every fifth
// broadcast goes to one room only (`room-broadcast`, bench app). BROADCASTS_PER_SEC 0: no
// sender (receivers only, for a second node of a cluster).
"use strict";

const path = require("path");
let io;
try {
  ({ io } = require(path.join(__dirname, "..", "node_modules", "socket.io-client")));
} catch (e) {
  console.error(`socket.io-client missing: run \`npm ci\` in tests/ (${e.message})`);
  process.exit(2);
}

const [port, seconds, clients = 200, churn = 20, rate = 20] = process.argv.slice(2).map(Number);
if (!port || !seconds) {
  console.error("usage: node soak-client.js PORT SECONDS [CLIENTS] [CHURN_PER_SEC] [BROADCASTS_PER_SEC]");
  process.exit(2);
}
const url = `http://127.0.0.1:${port}`;
const rooms = process.env.ROOMS === "1";
const counts = { joins: 0, leaves: 0, connects: 0, disconnects: 0, connectErrors: 0, received: 0, sent: 0, acked: 0 };
const live = [];
let turn = 0;

function open() {
  const ws = turn++ % 2 === 0;
  const s = io(url, { forceNew: true, reconnection: false, transports: ws ? ["websocket"] : ["polling", "websocket"] });
  const room = `room-${turn % 8}`;
  s.on("connect", () => {
    counts.connects++;
    if (rooms) {
      s.emit("join", room);
      counts.joins++;
    }
  });
  s.room = room;
  s.on("connect_error", () => counts.connectErrors++);
  s.on("broadcast", () => counts.received++);
  live.push(s);
}

function close(s) {
  if (rooms && s.connected) {
    s.emit("leave", s.room);
    counts.leaves++;
  }
  s.disconnect();
  counts.disconnects++;
}

for (let i = 0; i < clients; i++) open();
const sender = io(url, { forceNew: true, transports: ["websocket"] });
const pending = new Map();
let seq = 0;
const onAck = (n) => () => {
  pending.delete(n);
  counts.acked++;
};
const sendTimer = rate > 0 ? setInterval(() => {
  if (!sender.connected) return;
  const n = seq++;
  pending.set(n, Date.now());
  counts.sent++;
  const data = { n, pad: "x".repeat(200) };
  if (rooms && n % 5 === 4) {
    sender.emit("room-broadcast", `room-${n % 8}`, data, onAck(n));
  } else {
    sender.emit("broadcast", data, onAck(n));
  }
}, 1000 / rate) : null;
const churnTimer = setInterval(() => {
  for (let i = 0; i < churn && live.length > 0; i++) {
    close(live.splice(Math.floor(Math.random() * live.length), 1)[0]);
    open();
  }
}, 1000);

const started = Date.now();
let lastReceived = 0;
let failed = null;
const reportTimer = setInterval(() => {
  const now = Date.now();
  const oldest = Math.min(...pending.values(), now);
  console.log(JSON.stringify({ t: Math.round((now - started) / 1000), live: live.length, pending: pending.size, ...counts }));
  if (now - oldest > 10000) failed = `a broadcast ack missing for ${now - oldest} ms`;
  if (counts.received === lastReceived) failed = "no broadcast received in 10 s";
  lastReceived = counts.received;
}, 10000);

setTimeout(() => {
  if (sendTimer) clearInterval(sendTimer);
  clearInterval(churnTimer);
  clearInterval(reportTimer);
  for (const s of live) close(s);
  sender.disconnect();
  console.log(JSON.stringify({ final: true, ...counts, pendingAcks: pending.size, failed }));
  setTimeout(() => process.exit(failed ? 1 : 0), 500);
}, seconds * 1000);
