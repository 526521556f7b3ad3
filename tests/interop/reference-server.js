// The interop app (shared/interop-app.md) on the official Node `socket.io` server.
//
// It is the yardstick for the interop scripts: every script in this folder must pass against
// it, which proves the scripts assert what the official server does. Usage:
//   node tests/interop/reference-server.js PORT      (PORT 0 picks a free port)
// Prints `listening on 127.0.0.1:<port>` once it accepts connections.
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
      });
    });

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

setup(io.of("/"));
setup(io.of("/custom"));

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${httpServer.address().port}`);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
