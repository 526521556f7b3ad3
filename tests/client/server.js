// Test server for crates/sockeye-client: the official Node socket.io server with the namespaces
// and handlers the client tests drive. Usage: node server.js [port] [msgpack]  (port 0 or none =
// ephemeral).
// Environment: SIO_DEFLATE=1 turns on WebSocket permessage-deflate (threshold 0);
// SIO_STICKY=1 plays a load balancer with cookie stickiness (as an AWS ALB's AWSALB cookie):
// every answer sets the cookie, and a request of an existing session (sid in the query:
// polling after the handshake, the upgrade) without it is refused, as if it had reached
// another node.
// Prints "PORT <n>" on stdout once listening.
"use strict";
const path = require("path");
const http = require("http");
const { Server } = require(path.join(__dirname, "..", "node_modules", "socket.io"));

const port = Number(process.argv[2] || 0);
// Optional second argument "msgpack": the socket.io-msgpack-parser wire format.
const options = { pingInterval: 2000, pingTimeout: 3000, maxHttpBufferSize: 1e7 };
if (process.argv[3] === "msgpack") {
  options.parser = require(path.join(__dirname, "..", "node_modules", "socket.io-msgpack-parser"));
}
if (process.env.SIO_DEFLATE === "1") {
  options.perMessageDeflate = { threshold: 0 };
}
const httpServer = http.createServer();
const io = new Server(httpServer, options);

const STICKY_COOKIE = "AWSALB=node-a";
if (process.env.SIO_STICKY === "1") {
  io.engine.on("headers", (headers) => {
    headers["Set-Cookie"] = `${STICKY_COOKIE}; Path=/`;
  });
  io.engine.use((req, res, next) => {
    const sid = new URL(req.url, "http://x").searchParams.get("sid");
    const cookie = req.headers.cookie || "";
    if (sid && !cookie.split(/;\s*/).includes(STICKY_COOKIE)) {
      next(new Error("no stickiness cookie: this request reached another node"));
    } else {
      next();
    }
  });
}

// Handlers shared by every echoing namespace.
function echoing(socket) {
  // Acks with the same arguments, or emits them back as "echo" when no ack was asked.
  socket.on("echo", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    if (ack) ack(...args);
    else socket.emit("echo", ...args);
  });
  // Never acks: the client's call must time out.
  socket.on("no-ack", () => {});
  // Server emit-with-ack to the client; what the client answers comes back as "answer".
  socket.on("ask", (...args) => {
    socket.timeout(5000).emit("question", ...args, (err, ...reply) => {
      socket.emit("answer", err ? { error: String(err) } : reply);
    });
  });
  // Binary from the server.
  socket.on("binary-please", () => {
    socket.emit("bin", Buffer.from([1, 2, 3, 4]), { nested: Buffer.from("hi") });
  });
  // What the server saw of the connection.
  socket.on("whoami", (ack) => {
    ack({
      nsp: socket.nsp.name,
      id: socket.id,
      auth: socket.handshake.auth,
      query: socket.handshake.query,
      header: socket.handshake.headers["x-test"] || null,
      transport: socket.conn.transport.name,
      // The WebSocket extensions negotiated (ws's `extensions`), null over polling.
      extensions: socket.conn.transport.name === "websocket" ? socket.conn.transport.socket.extensions : null,
    });
  });
  // Server-initiated Socket.IO disconnect: the client must not reconnect.
  socket.on("disconnect-me", () => socket.disconnect(true));
  // Transport loss without a Socket.IO DISCONNECT: the client must reconnect.
  socket.on("drop-transport", () => socket.conn.close());
  // Ignores the first delivery of each id, acks the second: exercises the client's retries.
  const seen = new Set();
  socket.on("flaky", (id, ack) => {
    if (seen.has(id)) ack("ok", id);
    else seen.add(id);
  });
  // Counts deliveries of "counted" per payload, so tests can check buffering and retries.
  const counts = {};
  socket.on("counted", (id) => { counts[id] = (counts[id] || 0) + 1; });
  socket.on("counts", (ack) => ack(counts));
}

io.on("connection", echoing);
for (const name of ["/a", "/b", "/c"]) io.of(name).on("connection", echoing);

// Refused with a message and data.
io.of("/refuse").use((socket, next) => {
  const err = new Error("not authorized");
  err.data = { reason: "token missing", code: 401 };
  next(err);
});
io.of("/refuse").on("connection", echoing);

// Needs auth.token === "secret"; counts successful connections.
let adminConnections = 0;
io.of("/admin").use((socket, next) => {
  if (socket.handshake.auth && socket.handshake.auth.token === "secret") next();
  else next(new Error("bad token"));
});
io.of("/admin").on("connection", (socket) => {
  adminConnections += 1;
  echoing(socket);
  socket.on("connections", (ack) => ack(adminConnections));
});

// Disconnects every client as soon as it connects.
io.of("/bye").on("connection", (socket) => socket.disconnect());

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(`PORT ${httpServer.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
