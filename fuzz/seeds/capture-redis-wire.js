// Captures the broker messages of the official @socket.io/redis-adapter 8.3 and
// @socket.io/redis-emitter 5.1 as seeds of the `redis_wire` fuzz target: two Node socket.io
// servers share a Redis, clients join rooms, and every operation that publishes is run once
// (broadcasts with every operator and binary, emitter calls, fetchSockets, allRooms,
// serverSideEmit with ack, broadcast with ack, remote join/leave/disconnect). Each message is
// written to <out>/node-<n>-<channel kind> with the target's first byte (0 broadcast, 1 room
// broadcast, 2 request, 3 response) before the payload.
//
// usage: node capture-redis-wire.js <redis-url> <out-dir>   (tests/node_modules must exist)
"use strict";
const fs = require("fs");
const path = require("path");
const nm = path.join(__dirname, "..", "..", "tests", "node_modules");
const { createServer } = require("http");
const { Server } = require(path.join(nm, "socket.io"));
const { createAdapter } = require(path.join(nm, "@socket.io/redis-adapter"));
const { Emitter } = require(path.join(nm, "@socket.io/redis-emitter"));
const { io: connect } = require(path.join(nm, "socket.io-client"));
const { createClient } = require(path.join(nm, "redis"));

const [url, out] = process.argv.slice(2);
const key = "seed";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function server(name) {
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const http = createServer();
  const io = new Server(http, { adapter: createAdapter(pub, sub, { key, requestsTimeout: 1000 }) });
  io.on("connection", (s) => {
    s.join(["room", `r-${name}`]);
    s.on("ack-me", (x, ack) => ack && ack({ from: name, x }));
  });
  io.on("sse", (x, ack) => { if (typeof ack === "function") ack({ server: name, x }); });
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  return { io, port: http.address().port, clients: [pub, sub] };
}

async function main() {
  fs.mkdirSync(out, { recursive: true });
  const tap = createClient({ url });
  await tap.connect();
  let n = 0;
  const kindOf = (raw) => {
    const channel = raw.toString();
    if (channel.startsWith(`${key}-request#`)) return 2;
    if (channel.startsWith(`${key}-response#`)) return 3;
    const rest = channel.slice(`${key}#/#`.length);
    return rest === "" ? 0 : 1;
  };
  const names = ["broadcast", "room", "request", "response"];
  await tap.pSubscribe(`${key}*`, (msg, channel) => {
    const kind = kindOf(channel);
    const file = path.join(out, `node-${String(n++).padStart(2, "0")}-${names[kind]}`);
    fs.writeFileSync(file, Buffer.concat([Buffer.from([kind]), msg]));
  }, true);

  const a = await server("a");
  const b = await server("b");
  const clients = [];
  for (const port of [a.port, a.port, b.port]) {
    const c = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"], forceNew: true });
    c.on("ev", () => {});
    c.on("bin", () => {});
    c.on("ack-ev", (x, ack) => ack(`got ${x}`));
    await new Promise((r) => c.once("connect", r));
    clients.push(c);
  }
  const emitClient = createClient({ url });
  await emitClient.connect();
  const emitter = new Emitter(emitClient, { key });

  a.io.emit("ev", "hello", 1, 2.5, true, null, { nested: [1, { deep: "x" }] });
  a.io.to("room").emit("ev", "to one room");
  a.io.to(["room", "r-b"]).except("r-a").emit("ev", "two rooms except one");
  a.io.volatile.emit("ev", "volatile");
  a.io.compress(false).emit("bin", Buffer.from([0, 1, 2, 255]), { file: Buffer.from("abc") });
  a.io.to(123).emit("ev", "numeric room");
  emitter.emit("ev", "from the emitter", [1, 2, 3]);
  emitter.to("room").except("r-a").emit("bin", Buffer.from([9, 8, 7]));
  emitter.of("/other").emit("ev", "other namespace");
  emitter.in("room").socketsJoin(["joined"]);
  emitter.in("joined").socketsLeave("joined");
  emitter.serverSideEmit("sse", { from: "emitter" });
  await sleep(300);
  const fetched = await a.io.fetchSockets();
  const rooms = await a.io.of("/").adapter.allRooms();
  const sse = await a.io.serverSideEmitWithAck("sse", 42);
  const acks = await a.io.timeout(1000).emitWithAck("ack-ev", "please");
  await a.io.in("r-b").fetchSockets();
  a.io.in("r-b").socketsJoin("more");
  a.io.in("more").socketsLeave("more");
  const sockets = await a.io.of("/").adapter.sockets(new Set(["room"]));
  const remote = fetched.find((s) => !a.io.sockets.sockets.has(s.id));
  if (remote) { remote.join("single"); remote.leave("single"); }
  await sleep(300);
  a.io.in("r-b").disconnectSockets(true);
  await sleep(500);
  console.log(JSON.stringify({ captured: n, fetched: fetched.length, rooms: [...rooms].length, sse, acks, sockets: sockets.size }));
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
