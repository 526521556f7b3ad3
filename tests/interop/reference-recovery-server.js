// The recovery app on the official Node `socket.io` server: the yardstick of recovery-client.js
// (examples/interop/src/bin/recovery.rs is the same app on sockeye).
//
//   node tests/interop/reference-recovery-server.js PORT      (PORT 0 picks a free port)
//
// Prints `listening on 127.0.0.1:<port>` once it accepts connections. One port, two servers:
// - path /socket.io/: connection-state recovery on, maxDisconnectionDuration 3000 ms,
//   skipMiddlewares true;
// - path /plain/: recovery off.
// Both have on `/`: a connect middleware counting its runs in the session data (`mwRuns`),
// `join(room, ack)`, `tag(value, ack)` (kept in the session data), `whoami(ack)` answering
// `{id, recovered, tag, mwRuns}`, and `publish(room, from, to, ack)` broadcasting
// `item(i)` to `room` for each i in from..to-1 before answering `"published"`.
"use strict";

const path = require("path");
const http = require("http");

const modules = path.join(__dirname, "..", "node_modules");
const { Server } = require(path.join(modules, "socket.io"));

const port = Number(process.argv[2] ?? "0");
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`usage: node reference-recovery-server.js PORT (got ${process.argv[2]})`);
  process.exit(2);
}

const httpServer = http.createServer();
const common = { pingInterval: 1000, pingTimeout: 3000, destroyUpgrade: false };
const recovering = new Server(httpServer, {
  ...common,
  path: "/socket.io/",
  connectionStateRecovery: { maxDisconnectionDuration: 3000, skipMiddlewares: true },
});
const plain = new Server(httpServer, { ...common, path: "/plain/" });

function install(io) {
  io.use((socket, next) => {
    socket.data.mwRuns = (socket.data.mwRuns ?? 0) + 1;
    next();
  });
  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => {
      socket.join(room);
      ack("joined");
    });
    socket.on("tag", (value, ack) => {
      socket.data.tag = value;
      ack("tagged");
    });
    socket.on("whoami", (ack) => {
      ack({
        id: socket.id,
        recovered: socket.recovered,
        tag: socket.data.tag ?? null,
        mwRuns: socket.data.mwRuns ?? 0,
      });
    });
    socket.on("publish", (room, from, to, ack) => {
      for (let i = from; i < to; i++) io.to(room).emit("item", i);
      ack("published");
    });
  });
}
install(recovering);
install(plain);

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${httpServer.address().port}`);
});
