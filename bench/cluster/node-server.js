// The sio-bench bench app (same handlers as ../shared/sio-bench/anchors/node/server.js) on the
// official socket.io server with a cluster adapter, for bench/cluster.sh.
//   node node-server.js PORT      with NODE_PATH=tests/node_modules (the pinned packages)
//   CLUSTER_ADAPTER=redis (default): @socket.io/redis-adapter on the `redis` client
//   CLUSTER_ADAPTER=redis-streams:   @socket.io/redis-streams-adapter
//   CLUSTER_ADAPTER=postgres:        @socket.io/postgres-adapter on a `pg` Pool at PG_URL
//     (default postgres://postgres@127.0.0.1:5432/test); creates its attachments table if missing.
//     The pool's connections are named `PG_APP_NAME` (application_name, to find their backends
//     in pg_stat_activity), opened before "listening" and never closed while idle, so the set
//     of backends does not change during a run.
//   REDIS_URL (default redis://127.0.0.1:6379), REDIS_KEY (channel prefix / stream name)
// Prints "listening on 127.0.0.1:PORT" once the adapter is connected and the port is open.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || process.env.PORT || 4001);
const host = "127.0.0.1";
const mode = process.env.CLUSTER_ADAPTER || "redis";
const url = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const key = process.env.REDIS_KEY || undefined;

function splitAck(args) {
  const last = args[args.length - 1];
  if (typeof last === "function") return [args.slice(0, -1), last];
  return [args, null];
}

async function adapter() {
  if (mode === "postgres") return postgresAdapter();
  const { createClient } = require("redis");
  if (mode === "redis") {
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url });
    const sub = pub.duplicate();
    for (const c of [pub, sub]) c.on("error", (e) => console.error("redis:", e.message));
    await Promise.all([pub.connect(), sub.connect()]);
    return createAdapter(pub, sub, key ? { key } : {});
  }
  if (mode === "redis-streams") {
    const { createAdapter } = require("@socket.io/redis-streams-adapter");
    const client = createClient({ url });
    client.on("error", (e) => console.error("redis:", e.message));
    await client.connect();
    return createAdapter(client, key ? { streamName: key, channelPrefix: key } : {});
  }
  throw new Error(`CLUSTER_ADAPTER=${mode} is unknown (redis, redis-streams or postgres)`);
}

// pg's default pool size; all of them opened up front.
const PG_POOL_SIZE = 10;

async function postgresAdapter() {
  const pg = require("pg");
  const { createAdapter } = require("@socket.io/postgres-adapter");
  const pool = new pg.Pool({
    connectionString: process.env.PG_URL || "postgres://postgres@127.0.0.1:5432/test",
    application_name: process.env.PG_APP_NAME || "bench-cluster node",
    max: PG_POOL_SIZE,
    idleTimeoutMillis: 0,
  });
  pool.on("error", (e) => console.error("postgres:", e.message));
  await pool.query(`CREATE TABLE IF NOT EXISTS socket_io_attachments (
    id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`).catch(async (e) => {
    // Several nodes creating it at once: the losers find it there all the same.
    await pool.query("SELECT 1 FROM socket_io_attachments LIMIT 0").catch(() => { throw e; });
  });
  // Open every pooled connection now (queries held concurrently), not in the middle of a run.
  await Promise.all(Array.from({ length: PG_POOL_SIZE }, () => pool.query("SELECT pg_sleep(0.05)")));
  return createAdapter(pool, key ? { channelPrefix: key } : {});
}

async function main() {
  const httpServer = http.createServer();
  httpServer.keepAliveTimeout = 60_000;
  const io = new Server(httpServer, {
    // The anchor's settings: library defaults except the payload cap.
    maxHttpBufferSize: 1e7,
    serveClient: false,
    adapter: await adapter(),
  });
  io.on("connection", (socket) => {
    socket.on("echo", (...raw) => {
      const [args, ack] = splitAck(raw);
      if (ack) ack(...args);
    });
    // io.emit reaches every socket of "/" on every node through the adapter, then ack().
    socket.on("broadcast", (...raw) => {
      const [args, ack] = splitAck(raw);
      io.emit("broadcast", ...args);
      if (ack) ack();
    });
  });
  httpServer.listen(port, host, () => {
    console.log(`listening on ${host}:${port}`);
  });
  for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => {
      io.close();
      process.exit(0);
    });
  }
}

main().catch((e) => {
  console.error(`node-server: ${e.stack || e}`);
  process.exit(1);
});
