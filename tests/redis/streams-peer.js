// Streams-mode cluster peer for sockeye-redis tests: a Node socket.io server using the official
// @socket.io/redis-streams-adapter with connection-state recovery, and official socket.io-client
// clients (reconnection off; a client is moved to another node by hand, keeping its pid and
// offset as socket.io-client does), driven by JSON lines on stdin (one JSON reply per command).
//
// usage: node streams-peer.js <redis-url> <prefix>
// The prefix isolates the run: stream `<prefix>-stream`, channels `<prefix>#...`, sessions
// `<prefix>:session:<pid>` (the Rust side uses the same).
"use strict";
const path = require("path");
const readline = require("readline");
const nm = path.join(__dirname, "..", "node_modules");
const { createServer } = require("http");
const { Server } = require(path.join(nm, "socket.io"));
const { createAdapter } = require(path.join(nm, "@socket.io/redis-streams-adapter"));
const { io: connect } = require(path.join(nm, "socket.io-client"));
const { createClient } = require(path.join(nm, "redis"));

const [url, prefix] = process.argv.slice(2);
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const clients = {};
const received = {};
const ackDelay = {};
const serverEvents = [];
let io = null;

async function startServer() {
  const redis = createClient({ url });
  redis.on("error", () => {});
  await redis.connect();
  const http = createServer();
  io = new Server(http, {
    adapter: createAdapter(redis, {
      streamName: `${prefix}-stream`,
      channelPrefix: prefix,
      sessionKeyPrefix: `${prefix}:session:`,
      blockTimeInMs: 1000,
    }),
    connectionStateRecovery: { maxDisconnectionDuration: 30000, skipMiddlewares: true },
  });
  // Server-side emits (from other nodes or an emitter) of event "to-servers".
  io.of("/").on("to-servers", (...args) => serverEvents.push(args));
  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => { socket.join(room); if (ack) ack("ok"); });
    socket.on("whoami", (ack) => ack({ id: socket.id, recovered: socket.recovered, rooms: [...socket.rooms], data: socket.data }));
  });
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  return http.address().port;
}

function open(name, port) {
  return new Promise((resolve, reject) => {
    const c = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: false, forceNew: true });
    received[name] = received[name] || [];
    c.onAny((ev, ...args) => {
      const last = args[args.length - 1];
      if (typeof last === "function") {
        args.pop();
        const delay = ackDelay[name] || 0;
        if (delay > 0) setTimeout(() => last(name), delay); else last(name);
      }
      received[name].push([ev, ...args]);
    });
    c.on("disconnect", (reason) => received[name].push(["__disconnect", reason]));
    c.once("connect", () => { clients[name] = c; resolve(c); });
    c.once("connect_error", (e) => reject(new Error(`${name}: ${e.message}`)));
  });
}

const ops = {
  async clients({ urls }) {
    const ids = {};
    for (const { name, port } of urls) ids[name] = (await open(name, port)).id;
    return { ids };
  },
  // Makes a client answer acks `ms` late.
  async client_ack_delay({ name, ms }) { ackDelay[name] = ms; return {}; },
  async client_join({ name, room }) {
    return { ack: await clients[name].timeout(5000).emitWithAck("join", room) };
  },
  async received() { return { received }; },
  async server_events() { return { events: serverEvents }; },
  async clear() { for (const k of Object.keys(received)) received[k] = []; return {}; },
  // Kills the client's transport (no Socket.IO DISCONNECT: the server keeps the session) and
  // points it at another node for the next connect.
  async client_drop({ name, port }) {
    const c = clients[name];
    c.io.uri = `http://127.0.0.1:${port}`;
    const gone = new Promise((r) => c.once("disconnect", r));
    c.io.engine.close();
    await gone;
    return { pid: c._pid || null, offset: c._lastOffset || null };
  },
  async client_reconnect({ name }) {
    const c = clients[name];
    await new Promise((resolve, reject) => {
      c.once("connect", resolve);
      c.once("connect_error", (e) => reject(new Error(`${name}: ${e.message}`)));
      c.connect();
    });
    return { id: c.id, recovered: c.recovered };
  },
  // The pid and last offset socket.io-client keeps for recovery.
  async client_state({ name }) {
    const c = clients[name];
    return { pid: c._pid || null, offset: c._lastOffset || null, connected: c.connected };
  },
  // Points a disconnected client at another node (what a load balancer would do).
  async client_retarget({ name, port }) { clients[name].io.uri = `http://127.0.0.1:${port}`; return {}; },
  async client_call({ name, event, args = [] }) {
    return { reply: await clients[name].timeout(5000).emitWithAck(event, ...args) };
  },
  async client_whoami({ name }) {
    return { me: await clients[name].timeout(5000).emitWithAck("whoami") };
  },
  async node_emit({ event, data, rooms = [], except = [] }) {
    let op = io; if (rooms.length) op = op.to(rooms); if (except.length) op = op.except(except);
    op.emit(event, data); return {};
  },
  async node_fetch({ rooms = [] }) {
    const sockets = await (rooms.length ? io.in(rooms) : io).fetchSockets();
    return { sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms] })) };
  },
  async node_count() { return { count: await io.of("/").adapter.serverCount() }; },
  async node_join({ rooms = [], join }) { (rooms.length ? io.in(rooms) : io).socketsJoin(join); return {}; },
  async close_clients() { for (const c of Object.values(clients)) c.disconnect(); return {}; },
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
