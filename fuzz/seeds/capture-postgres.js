// Captures the notifications and attachment rows of the official @socket.io/postgres-adapter
// 0.5 and @socket.io/postgres-emitter 0.1 as seeds of the `postgres_wire` fuzz target: two
// Node socket.io servers share a database, a client on each joins rooms, and every operation
// that publishes is run once (heartbeats, broadcasts with every operator, binary and large
// payloads, broadcast with ack, fetchSockets, serverSideEmit with ack, remote
// join/leave/disconnect, emitter calls, adapter close). Each notification is written to
// <out>/node-<n>-notify with the target's first byte 0 before its text, each attachment row
// to <out>/node-<n>-attachment with first byte 1 before its bytes.
//
// usage: node capture-postgres.js <connection-string> <out-dir>   (tests/node_modules must exist)
"use strict";
const fs = require("fs");
const path = require("path");
const nm = path.join(__dirname, "..", "..", "tests", "node_modules");
const { createServer } = require("http");
const { Server } = require(path.join(nm, "socket.io"));
const { createAdapter } = require(path.join(nm, "@socket.io/postgres-adapter"));
const { Emitter } = require(path.join(nm, "@socket.io/postgres-emitter"));
const { io: connect } = require(path.join(nm, "socket.io-client"));
const pg = require(path.join(nm, "pg"));

const [conn, out] = process.argv.slice(2);
const channelPrefix = `seed-${process.pid}`;
const tableName = "sockeye_seed_attachments";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  fs.mkdirSync(out, { recursive: true });
  const pool = new pg.Pool({ connectionString: conn });
  await pool.query(`CREATE TABLE IF NOT EXISTS ${tableName} (id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`);
  const listener = new pg.Client({ connectionString: conn });
  await listener.connect();
  let n = 0;
  const write = (kind, bytes) => {
    n += 1;
    fs.writeFileSync(path.join(out, `node-${String(n).padStart(3, "0")}-${kind}`), Buffer.concat([Buffer.from([kind === "notify" ? 0 : 1]), bytes]));
  };
  const pending = [];
  listener.on("notification", (msg) => {
    write("notify", Buffer.from(msg.payload, "utf8"));
    const m = JSON.parse(msg.payload);
    if (m.attachmentId) {
      pending.push(pool.query(`SELECT payload FROM ${tableName} WHERE id = $1`, [m.attachmentId])
        .then((r) => write("attachment", r.rows[0].payload)));
    }
  });
  await listener.query(`LISTEN "${channelPrefix}#/"`);
  const servers = [];
  for (const name of ["a", "b"]) {
    const http = createServer();
    const io = new Server(http, { adapter: createAdapter(pool, { channelPrefix, tableName }) });
    io.on("connection", (s) => {
      s.join(["room", `r-${name}`]);
      s.on("ack-me", (x, ack) => ack && ack({ from: name, x }));
    });
    io.on("sse", (x, ack) => { if (typeof ack === "function") ack({ server: name, x }); });
    await new Promise((r) => http.listen(0, "127.0.0.1", r));
    servers.push({ io, http, port: http.address().port });
  }
  await sleep(500);
  const clients = await Promise.all(servers.map(({ port }) => new Promise((resolve) => {
    const c = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true });
    c.on("question", (x, ack) => ack({ answer: x }));
    c.on("connect", () => resolve(c));
  })));
  const [a, b] = servers.map((s) => s.io);
  a.emit("plain", 1, "two", { three: [3] });
  a.to("room").except("r-b").emit("rooms", true);
  a.emit("binary", Buffer.from([1, 2, 3]), { nested: Buffer.from([4]) });
  a.emit("large", "x".repeat(9000));
  a.volatile.emit("volatile", null);
  await a.timeout(1000).emitWithAck("question", 42).catch(() => {});
  await a.fetchSockets();
  await a.in("r-b").fetchSockets();
  await a.serverSideEmitWithAck("sse", { hello: 1 }).catch(() => {});
  a.serverSideEmit("sse-no-ack", [1, 2]);
  a.in("r-b").socketsJoin("joined");
  a.in("r-b").socketsLeave("joined");
  const emitter = new Emitter(pool, "/", { channelPrefix, tableName });
  emitter.to("room").emit("from-emitter", { x: 1 });
  emitter.emit("emitter-binary", Buffer.from([9, 9]));
  emitter.in("room").socketsJoin("e-joined");
  emitter.serverSideEmit("emitter-sse", 1);
  await sleep(300);
  a.in("r-b").disconnectSockets(true);
  await sleep(500);
  for (const s of servers) s.io.close();
  await sleep(500);
  await Promise.all(pending);
  for (const c of clients) c.close();
  await listener.end();
  await pool.end();
  console.log(`captured ${n} seeds into ${out}`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
