// The interop app (shared/interop-app.md) on the official Node `socket.io` server.
//
// It is the yardstick for the interop scripts: every script in this folder must pass against
// it, which proves the scripts assert what the official server does. Usage:
//   node tests/interop/reference-server.js PORT      (PORT 0 picks a free port)
// Prints `listening on 127.0.0.1:<port>` once it accepts connections.
//
// Cluster mode (interop-app.md §4): INTEROP_ADAPTER `memory` (default), `redis`
// (@socket.io/redis-adapter), `redis-sharded` (its createShardedAdapter on a Redis Cluster:
// INTEROP_BROKER_URL names one node, or several comma-separated), `redis-streams`
// (@socket.io/redis-streams-adapter) or `postgres` (@socket.io/postgres-adapter; creates its
// attachments table if missing), with
// INTEROP_BROKER_URL, INTEROP_CHANNEL, INTEROP_RECOVERY_MS and INTEROP_NODE; other modes exit 2.
"use strict";

const path = require("path");
const http = require("http");

const modules = path.join(__dirname, "..", "node_modules");
const { Server } = require(path.join(modules, "socket.io"));

const port = Number(process.argv[2] ?? "0");
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`usage: node reference-server.js PORT (got ${process.argv[2]})`);
  process.exit(2);
}

const mode = process.env.INTEROP_ADAPTER || "memory";
if (!["memory", "redis", "redis-sharded", "redis-streams", "postgres"].includes(mode)) {
  console.error(`reference-server.js: INTEROP_ADAPTER=${mode} is not implemented here`);
  process.exit(2);
}
// With none of the cluster variables set, whoami is exactly that of §3.
const clusterMode = ["INTEROP_ADAPTER", "INTEROP_BROKER_URL", "INTEROP_CHANNEL", "INTEROP_RECOVERY_MS", "INTEROP_NODE"]
  .some((name) => process.env[name]);
const nodeName = process.env.INTEROP_NODE || String(process.pid);
const recoveryMs = process.env.INTEROP_RECOVERY_MS ? Number(process.env.INTEROP_RECOVERY_MS) : null;

const httpServer = http.createServer();
const io = new Server(httpServer, {
  path: "/socket.io/",
  pingInterval: 1000,
  pingTimeout: 3000,
  maxHttpBufferSize: 1e6,
  connectTimeout: 45000,
  transports: ["polling", "websocket"],
  allowUpgrades: true,
  // Legacy mode (interop-app.md §6): Engine.IO v3 / Socket.IO v4 clients too.
  allowEIO3: process.env.INTEROP_ALLOW_EIO3 === "1",
  ...(recoveryMs === null
    ? {}
    : { connectionStateRecovery: { maxDisconnectionDuration: recoveryMs, skipMiddlewares: true } }),
});

/** The acknowledgement callback if the client asked for one (always the last argument). */
function splitAck(args) {
  if (args.length > 0 && typeof args[args.length - 1] === "function") {
    return [args.slice(0, -1), args[args.length - 1]];
  }
  return [args, null];
}

/** The socket's rooms, sorted, without its private room. */
function roomsOf(socket) {
  return [...socket.rooms].filter((r) => r !== socket.id).sort();
}

function setup(nsp) {
  nsp.use((socket, next) => {
    const auth = socket.handshake.auth;
    if (auth && typeof auth === "object" && auth.reject === true) {
      const err = new Error("rejected by server");
      err.data = { code: 4001, reason: "auth.reject was set" };
      next(err);
      return;
    }
    next();
  });

  nsp.on("connection", (socket) => {
    const echoAck = (...all) => {
      const [args, ack] = splitAck(all);
      if (ack) ack(...args);
    };

    socket.on("echo", (...args) => socket.emit("echo-back", ...args));
    socket.on("echo-ack", echoAck);
    socket.on("ünïcødé-✓-🚀", echoAck);

    socket.on("whoami", (...all) => {
      const [, ack] = splitAck(all);
      if (!ack) return;
      ack({
        id: socket.id,
        ns: nsp.name,
        auth: socket.handshake.auth,
        transport: socket.conn.transport.name,
        ...(clusterMode ? { node: nodeName, recovered: socket.recovered } : {}),
      });
    });

    clusterEvents(nsp, socket);

    socket.on("ask-client", (...all) => {
      const [args, ack] = splitAck(all);
      if (!ack) return;
      const req = args[0] ?? {};
      socket.timeout(req.timeoutMs).emit("server-ask", req.payload, (err, ...reply) => {
        if (err) ack({ ok: false, error: "timeout" });
        else ack({ ok: true, reply });
      });
    });

    socket.on("join", (room, ack) => {
      socket.join(room);
      if (typeof ack === "function") ack(roomsOf(socket));
    });

    socket.on("leave", (room, ack) => {
      socket.leave(room);
      if (typeof ack === "function") ack(roomsOf(socket));
    });

    socket.on("to-room", (room, payload, ack) => {
      socket.to(room).emit("room-msg", { room, from: socket.id, payload });
      if (typeof ack === "function") ack(true);
    });

    socket.on("broadcast", (payload, ack) => {
      nsp.emit("broadcast-msg", { from: socket.id, payload });
      if (typeof ack === "function") ack(true);
    });

    socket.on("make-payload", (req, ack) => {
      if (typeof ack !== "function") return;
      // Anything but a non-negative integer counts as 0 (as in examples/interop).
      const size = req && Number.isInteger(req.size) && req.size >= 0 ? req.size : 0;
      ack(req && req.binary ? Buffer.alloc(size, 0x2a) : "x".repeat(size));
    });

    socket.on("disconnect-me", () => socket.disconnect());

    socket.emit("auth", socket.handshake.auth);
  });
}

/** The cluster events of interop-app.md §4. */
function clusterEvents(nsp, socket) {
  const ackFn = (all) => {
    const ack = all[all.length - 1];
    return typeof ack === "function" ? ack : () => {};
  };
  socket.on("cluster-sockets", async (...all) => {
    const sockets = await nsp.fetchSockets();
    const listed = sockets
      .map((s) => ({ id: s.id, rooms: [...s.rooms].filter((r) => r !== s.id).sort() }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    ackFn(all)(listed);
  });
  socket.on("cluster-join", (room, target, ...all) => {
    nsp.in(target).socketsJoin(room);
    ackFn(all)(true);
  });
  socket.on("cluster-disconnect", (room, ...all) => {
    nsp.in(room).disconnectSockets();
    ackFn(all)(true);
  });
  socket.on("close-room", (room, ...all) => {
    nsp.in(room).socketsLeave(room);
    ackFn(all)(true);
  });
  socket.on("server-count", async (...all) => {
    ackFn(all)(await nsp.adapter.serverCount());
  });
  socket.on("broadcast-ask", (payload, timeoutMs, ...all) => {
    const ack = ackFn(all);
    nsp.timeout(timeoutMs).emit("broadcast-question", payload, (err, replies) => {
      const sorted = (replies || [])
        .map((r) => [JSON.stringify(r), r])
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
        .map((p) => p[1]);
      ack({ ok: !err, replies: sorted });
    });
  });
  socket.on("disconnect-sid", (req, ...all) => {
    const ack = ackFn(all);
    if (!req || typeof req.sid !== "string") return ack({ ok: false, error: "sid missing" });
    nsp.in(req.sid).disconnectSockets();
    ack(true);
  });
  socket.on("room-of", (req, ...all) => {
    const ack = ackFn(all);
    if (!req || typeof req.sid !== "string" || typeof req.room !== "string") {
      return ack({ ok: false, error: "sid and room required" });
    }
    if (req.join === false) nsp.in(req.sid).socketsLeave(req.room);
    else nsp.in(req.sid).socketsJoin(req.room);
    ack(true);
  });
  socket.on("ask-sid", async (req, ...all) => {
    const ack = ackFn(all);
    try {
      const replies = await nsp.to(req.sid).timeout(req.timeoutMs).emitWithAck("server-ask", req.payload);
      ack({ ok: true, reply: [replies[0]] });
    } catch {
      ack({ ok: false, error: "timeout" });
    }
  });
}

setup(io.of("/"));
setup(io.of("/custom"));

/** Connects the adapter of INTEROP_ADAPTER, then listens. */
async function start() {
  if (mode === "postgres") {
    const pg = require(path.join(modules, "pg"));
    const { createAdapter } = require(path.join(modules, "@socket.io/postgres-adapter"));
    const pool = new pg.Pool({
      connectionString: process.env.INTEROP_BROKER_URL || "postgres://postgres@127.0.0.1:5432/test",
    });
    pool.on("error", (e) => console.error(`reference-server.js: postgres: ${e.message}`));
    await pool.query(`CREATE TABLE IF NOT EXISTS socket_io_attachments (
      id bigserial UNIQUE, created_at timestamptz DEFAULT NOW(), payload bytea)`).catch(async (e) => {
      // Two nodes creating it at once: one loses the race, the table is there all the same.
      await pool.query("SELECT 1 FROM socket_io_attachments LIMIT 0").catch(() => { throw e; });
    });
    const channel = process.env.INTEROP_CHANNEL;
    io.adapter(createAdapter(pool, channel ? { channelPrefix: channel } : {}));
  } else if (mode !== "memory") {
    const { createClient } = require(path.join(modules, "redis"));
    const url = process.env.INTEROP_BROKER_URL || "redis://127.0.0.1:6379/0";
    const channel = process.env.INTEROP_CHANNEL;
    if (mode === "redis-sharded") {
      const { createCluster } = require(path.join(modules, "redis"));
      const { createShardedAdapter } = require(path.join(modules, "@socket.io/redis-adapter"));
      const rootNodes = url.split(",").map((u) => ({ url: u.trim() }));
      const pub = createCluster({ rootNodes });
      const sub = pub.duplicate();
      await Promise.all([pub.connect(), sub.connect()]);
      io.adapter(createShardedAdapter(pub, sub, channel ? { channelPrefix: channel } : {}));
      httpServer.listen(port, "127.0.0.1", () => {
        console.log(`listening on 127.0.0.1:${httpServer.address().port}`);
      });
      return;
    }
    const client = createClient({ url });
    await client.connect();
    if (mode === "redis") {
      const { createAdapter } = require(path.join(modules, "@socket.io/redis-adapter"));
      const sub = client.duplicate();
      await sub.connect();
      io.adapter(createAdapter(client, sub, channel ? { key: channel } : {}));
    } else {
      const { createAdapter } = require(path.join(modules, "@socket.io/redis-streams-adapter"));
      io.adapter(createAdapter(client, channel ? { streamName: channel, channelPrefix: channel } : {}));
    }
  }
  httpServer.listen(port, "127.0.0.1", () => {
    console.log(`listening on 127.0.0.1:${httpServer.address().port}`);
  });
}

start().catch((e) => {
  console.error(`reference-server.js: ${e.stack || e}`);
  process.exit(1);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
