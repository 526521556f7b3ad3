// Cluster peer for sockeye-postgres tests: an optional Node socket.io server using the official
// @socket.io/postgres-adapter, official socket.io-client clients, and the official
// @socket.io/postgres-emitter, driven by JSON lines on stdin (one JSON reply line per command).
//
// usage: node cluster-peer.js <connection-string> <channel-prefix> <table> [--no-server]
"use strict";
const path = require("path");
const readline = require("readline");
const nm = path.join(__dirname, "..", "node_modules");
const { createServer } = require("http");
const { Server } = require(path.join(nm, "socket.io"));
const { createAdapter } = require(path.join(nm, "@socket.io/postgres-adapter"));
const { Emitter } = require(path.join(nm, "@socket.io/postgres-emitter"));
const { io: connect } = require(path.join(nm, "socket.io-client"));
const pg = require(path.join(nm, "pg"));

const [conn, channelPrefix, tableName, flag] = process.argv.slice(2);
const withServer = flag !== "--no-server";
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const clients = {};
const received = {};
let io = null;
let pool = null;
const emitters = {};
const emitterFor = (ns) => {
  // Emitter#of() drops the options (channel prefix, table): one emitter per namespace instead.
  if (!emitters[ns]) emitters[ns] = new Emitter(pool, ns, { channelPrefix, tableName });
  return emitters[ns];
};

async function startServer() {
  pool = new pg.Pool({ connectionString: conn, max: 4 });
  pool.on("error", () => {});
  if (!withServer) return 0;
  const http = createServer();
  io = new Server(http, {
    adapter: createAdapter(pool, { channelPrefix, tableName, heartbeatInterval: 1000, heartbeatTimeout: 3000 }),
  });
  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => { socket.join(room); if (ack) ack("ok"); });
  });
  io.of("/").on("ping-servers", (arg, ack) => { if (typeof ack === "function") ack("node"); });
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  return http.address().port;
}

const show = (a) => Buffer.isBuffer(a) ? { bin: [...a] }
  : (typeof a === "string" && a.length > 100) ? { len: a.length, head: a.slice(0, 8) } : a;

const ops = {
  async clients({ urls }) {
    const ids = {};
    await Promise.all(urls.map(({ name, port }) => new Promise((resolve, reject) => {
      const c = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: false, forceNew: true, query: { name } });
      received[name] = [];
      c.onAny((ev, ...args) => {
        const last = args[args.length - 1];
        if (typeof last === "function") { args.pop(); last(name); }
        received[name].push([ev, ...args.map(show)]);
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
  async node_count() { return { count: await io.of("/").adapter.serverCount() }; },
  async node_emit({ event, data, rooms = [], except = [], binary, big }) {
    let op = io; if (rooms.length) op = op.to(rooms); if (except.length) op = op.except(except);
    if (binary) op.emit(event, data, Buffer.from(binary));
    else if (big) op.emit(event, data, "x".repeat(big));
    else op.emit(event, data);
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
  async emitter_emit({ ns = "/", event, data, rooms = [], except = [], binary, big }) {
    let op = emitterFor(ns); if (rooms.length) op = op.to(rooms); if (except.length) op = op.except(except);
    if (binary) op.emit(event, data, Buffer.from(binary));
    else if (big) op.emit(event, data, "x".repeat(big));
    else op.emit(event, data);
    return {};
  },
  async emitter_join({ ns = "/", rooms = [], join }) {
    const e = emitterFor(ns); (rooms.length ? e.in(rooms) : e).socketsJoin(join); return {};
  },
  async emitter_leave({ ns = "/", rooms = [], leave }) {
    const e = emitterFor(ns); (rooms.length ? e.in(rooms) : e).socketsLeave(leave); return {};
  },
  async emitter_disconnect({ ns = "/", rooms = [] }) {
    const e = emitterFor(ns); (rooms.length ? e.in(rooms) : e).disconnectSockets(); return {};
  },
  async emitter_sse({ ns = "/", event, data }) { emitterFor(ns).serverSideEmit(event, data); return {}; },
  // Raw NOTIFY and table rows, for the malformed-input tests.
  async notify({ channel, payload }) {
    await pool.query("SELECT pg_notify($1, $2)", [channel, payload]); return {};
  },
  async attachment({ hex }) {
    const r = await pool.query(`INSERT INTO ${tableName} (payload) VALUES ($1) RETURNING id`, [Buffer.from(hex, "hex")]);
    return { id: r.rows[0].id };
  },
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
  rl.on("close", () => { if (io) io.close(); pool.end().finally(() => process.exit(0)); });
}, (e) => { out({ ready: false, error: String(e) }); process.exit(1); });
