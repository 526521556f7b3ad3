// The server of the official Socket.IO protocol test suite (conformance-notes.md §2) on the
// official Node `socket.io` package: the yardstick for conformance.js.
//   node tests/interop/reference-conformance-server.js PORT   (PORT 0 picks a free port)
// Prints `listening on 127.0.0.1:<port>` once it accepts connections.
"use strict";

const path = require("path");
const http = require("http");
const { Server } = require(path.join(__dirname, "..", "node_modules", "socket.io"));

const port = Number(process.argv[2] ?? "0");
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`usage: node reference-conformance-server.js PORT (got ${process.argv[2]})`);
  process.exit(2);
}

const httpServer = http.createServer();
const io = new Server(httpServer, {
  path: "/socket.io/",
  pingInterval: 300,
  pingTimeout: 200,
  maxHttpBufferSize: 1e6,
  connectTimeout: 1000,
  cors: { origin: "*" },
});

io.of("/").on("connection", (socket) => {
  socket.emit("auth", socket.handshake.auth);
  socket.on("message", (...args) => socket.emit("message-back", ...args));
  socket.on("message-with-ack", (...args) => {
    const ack = args.pop();
    if (typeof ack === "function") ack(...args);
  });
});
io.of("/custom").on("connection", (socket) => {
  socket.emit("auth", socket.handshake.auth);
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${httpServer.address().port}`);
});
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
