// The official Node engine.io server (the one socket.io uses, from tests/node_modules) as a
// bare echo server, for tests that compare what official clients see from it and from
// sockeye-engine. Path /engine.io/, pingInterval 1000, pingTimeout 3000, maxHttpBufferSize
// 1e6. Usage: node reference-engine-server.js [port]; prints "PORT <n>" once listening.
"use strict";
const path = require("path");
const http = require("http");
const engine = require(path.join(__dirname, "..", "node_modules", "engine.io"));

const httpServer = http.createServer();
const server = engine.attach(httpServer, {
  path: "/engine.io/",
  pingInterval: 1000,
  pingTimeout: 3000,
  maxHttpBufferSize: 1e6,
});
server.on("connection", (socket) => {
  socket.on("message", (data) => socket.send(data));
});
httpServer.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  process.stdout.write(`PORT ${httpServer.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
