// Captures what the official @socket.io/redis-streams-adapter 0.3 writes, as seeds of the
// `redis_streams` fuzz target: a Node socket.io server with the adapter and recovery on, a
// client in a room, then broadcasts (JSON and binary, rooms, except, volatile), socketsJoin,
// socketsLeave, disconnectSockets (stream entries), fetchSockets and serverSideEmit (pub/sub,
// captured by a second subscriber, which also makes the server count 2), and a session the
// adapter persists when the client's transport drops. Seeds are written to <out>/node-<n>-<kind>
// with the target's first byte (0 stream entry as NUL-separated fields, 1 pub/sub message,
// 2 session blob) before the payload.
//
// usage: node capture-redis-streams.js <redis-url> <out-dir>   (tests/node_modules must exist)
"use strict";
const fs = require("fs");
const path = require("path");
const nm = path.join(__dirname, "..", "..", "tests", "node_modules");
const { createServer } = require("http");
const { Server } = require(path.join(nm, "socket.io"));
const { createAdapter } = require(path.join(nm, "@socket.io/redis-streams-adapter"));
const { io: connect } = require(path.join(nm, "socket.io-client"));
const { createClient } = require(path.join(nm, "redis"));

const [url, out] = process.argv.slice(2);
const prefix = `seed-${process.pid}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const write = (kind, tag, bytes) => {
  fs.writeFileSync(path.join(out, `node-${String(n++).padStart(2, "0")}-${tag}`), Buffer.concat([Buffer.from([kind]), bytes]));
};

(async () => {
  fs.mkdirSync(out, { recursive: true });
  const redis = createClient({ url });
  const spy = redis.duplicate();
  await Promise.all([redis.connect(), spy.connect()]);
  await spy.subscribe(`${prefix}#/#`, (msg) => write(1, "pubsub", msg), true);
  const http = createServer();
  const io = new Server(http, {
    adapter: createAdapter(redis, { streamName: `${prefix}-stream`, channelPrefix: prefix, sessionKeyPrefix: `${prefix}:session:` }),
    connectionStateRecovery: { maxDisconnectionDuration: 60000 },
  });
  io.on("connection", (socket) => { socket.data.tag = "seed"; socket.join("r"); });
  await new Promise((r) => http.listen(0, "127.0.0.1", r));
  const client = connect(`http://127.0.0.1:${http.address().port}`, { transports: ["websocket"], reconnection: false });
  await new Promise((r) => client.once("connect", r));
  await sleep(200);
  io.emit("hello", { n: 1, s: "é" }, [1, 2.5, null, true]);
  io.to("r").except("x").emit("bin", Buffer.from([1, 2, 3]), { nested: Buffer.from("hi") });
  io.volatile.emit("v", 1);
  io.to(["r", "s"]).emit("many");
  io.in("r").socketsJoin(["a", "b"]);
  io.in("a").socketsLeave("b");
  io.in("nobody").disconnectSockets(true);
  await io.fetchSockets().catch(() => {});
  io.serverSideEmit("sse", 1, "two");
  await sleep(300);
  client.io.engine.close();
  await sleep(300);
  for (const entry of await redis.xRange(`${prefix}-stream`, "-", "+")) {
    const parts = [];
    for (const [k, v] of Object.entries(entry.message)) parts.push(Buffer.from(k), Buffer.from(v));
    const joined = [];
    parts.forEach((p, i) => { if (i) joined.push(Buffer.from([0])); joined.push(p); });
    write(0, `entry-type${entry.message.type}`, Buffer.concat(joined));
  }
  for (const key of await redis.keys(`${prefix}:session:*`)) {
    write(2, "session", Buffer.from(await redis.get(key)));
    await redis.del(key);
  }
  await redis.del(`${prefix}-stream`);
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
