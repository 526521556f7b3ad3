// Sharded cluster peer for sockeye-redis tests: a Node socket.io server using the official
// createShardedAdapter of @socket.io/redis-adapter over a Redis Cluster (node-redis
// createCluster), and official socket.io-client clients, driven by JSON lines on stdin (one
// JSON reply line per command).
//
// usage: node sharded-peer.js <redis-url>[,<redis-url>...] <channel-prefix> <subscription-mode>
"use strict";
const path = require("path");
const readline = require("readline");
const nm = path.join(__dirname, "..", "node_modules");
const { createServer } = require("http");
const { Server } = require(path.join(nm, "socket.io"));
const { createShardedAdapter } = require(path.join(nm, "@socket.io/redis-adapter"));
const { io: connect } = require(path.join(nm, "socket.io-client"));
const { createCluster } = require(path.join(nm, "redis"));

const [urls, channelPrefix, subscriptionMode] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const clients = {};
const received = {};
let io = null;

async function startServer() {
  const rootNodes = urls.split(",").map((url) => ({ url }));
  const pub = createCluster({ rootNodes });
  const sub = pub.duplicate();
  for (const c of [pub, sub]) c.on("error", () => {});
  await Promise.all([pub.connect(), sub.connect()]);
  const http = createServer();
  io = new Server(http, { adapter: createShardedAdapter(pub, sub, { channelPrefix, subscriptionMode }) });
  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => { socket.join(room); if (ack) ack("ok"); });
  });
  io.of("/").on("ping-servers", (arg, ack) => { if (typeof ack === "function") ack("node"); });
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  return http.address().port;
}

const ops = {
  async clients({ urls }) {
    const ids = {};
    await Promise.all(urls.map(({ name, port }) => new Promise((resolve, reject) => {
      const c = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: false, forceNew: true, query: { name } });
      received[name] = [];
      c.onAny((ev, ...args) => {
        const last = args[args.length - 1];
        if (typeof last === "function") { args.pop(); last(name); }
        received[name].push([ev, ...args.map((a) => Buffer.isBuffer(a) ? { bin: [...a] } : a)]);
      });
      c.on("disconnect", (reason) => received[name].push(["__disconnect", reason]));
      c.once("connect", () => { clients[name] = c; ids[name] = c.id; resolve(); });
      c.once("connect_error", (e) => reject(new Error(`${name}: ${e.message}`)));
    })));
    return { ids };
  },
  async client_join({ name, room }) {
    return { ack: await clients[name].timeout(5000).emitWithAck("join", room) };
  },
  async received() { return { received }; },
  async clear() { for (const k of Object.keys(received)) received[k] = []; return {}; },
  async node_emit({ event, data, rooms = [], except = [], binary }) {
    let op = io; if (rooms.length) op = op.to(rooms); if (except.length) op = op.except(except);
    if (binary) op.emit(event, data, Buffer.from(binary)); else op.emit(event, data);
    return {};
  },
  async node_fetch({ rooms = [] }) {
    const sockets = await (rooms.length ? io.in(rooms) : io).fetchSockets();
    return { sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], handshake: s.handshake })) };
  },
  async node_ack({ event, timeout }) {
    try { return { responses: await io.timeout(timeout).emitWithAck(event) }; }
    catch (e) { return { error: e.message }; }
  },
  async node_sse_ack({ event, data }) {
    try { return { responses: await io.serverSideEmitWithAck(event, data) }; }
    catch (e) { return { error: e.message }; }
  },
  async node_join({ rooms = [], join }) {
    (rooms.length ? io.in(rooms) : io).socketsJoin(join); return {};
  },
  async node_leave({ rooms = [], leave }) {
    (rooms.length ? io.in(rooms) : io).socketsLeave(leave); return {};
  },
  async node_disconnect({ rooms = [] }) {
    (rooms.length ? io.in(rooms) : io).disconnectSockets(); return {};
  },
  async node_count() { return { count: await io.of("/").adapter.serverCount() }; },
};

startServer().then((port) => {
  out({ ready: true, port });
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", async (line) => {
    let cmd;
    try { cmd = JSON.parse(line); } catch (e) { out({ error: "bad json" }); return; }
    try { out(Object.assign({ seq: cmd.seq }, await ops[cmd.op](cmd))); }
    catch (e) { out({ seq: cmd.seq, error: String(e && e.message || e) }); }
  });
  rl.on("close", () => process.exit(0));
}, (e) => { out({ ready: false, error: String(e) }); process.exit(1); });
