// Drives the interop app in legacy mode (shared/interop-app.md §6, INTEROP_ALLOW_EIO3=1) with
// the official `socket.io-client` 2.x (Engine.IO v3 / Socket.IO v4; npm alias
// `socket.io-client-v2`), over polling, WebSocket and the upgrade, and a 2.x client and a 4.x
// client in one room.
//
//   node tests/interop/node-client-v2.js PORT [case-name ...]
//
// The same script passes against the official Node server with `allowEIO3: true`
// (tests/interop/reference-server.js with INTEROP_ALLOW_EIO3=1, run by run-reference.sh), which
// proves it asserts what the official server does. Prints one JSON summary line on stdout and
// exits 1 if any case failed (2 on bad usage or a missing dependency).
"use strict";

const assert = require("assert/strict");
const {
  WAIT_MS,
  requireTestModule,
  testModuleVersion,
  cliArgs,
  withTimeout,
  next,
  ack,
  runCases,
} = require("./client-harness");

const ioV2 = requireTestModule("socket.io-client-v2");
const { io: ioV4 } = requireTestModule("socket.io-client");
const clientVersion = testModuleVersion("socket.io-client-v2");
const { port, only } = cliArgs("node-client-v2.js");
const base = `http://127.0.0.1:${port}`;

const TRANSPORTS = {
  polling: { transports: ["polling"] },
  websocket: { transports: ["websocket"] },
  upgrade: { transports: ["polling", "websocket"] },
};

/** Per-case resources, closed whatever the outcome. */
class Scope {
  constructor() {
    this.sockets = [];
  }

  /**
   * A 2.x socket on `nsp`, connected: resolves with `{ socket, auth }` once the server's
   * `auth` event arrived (the server connects `/` by itself; other namespaces are asked for).
   */
  async openV2(nsp = "/", opts = {}) {
    const socket = ioV2(base + nsp, { forceNew: true, reconnection: false, autoConnect: false, ...opts });
    this.sockets.push(socket);
    const auth = next(socket, "auth", `auth event on ${nsp}`);
    const connected = withTimeout(
      new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("error", (err) => reject(new Error(`error on ${nsp}: ${JSON.stringify(err)}`)));
        socket.once("connect_error", (err) => reject(new Error(`connect_error on ${nsp}: ${err}`)));
      }),
      WAIT_MS,
      `connect on ${nsp}`,
    );
    socket.open();
    await connected;
    const [payload] = await auth;
    return { socket, auth: payload };
  }

  /** A 4.x socket on `nsp`, connected. */
  async openV4(nsp = "/") {
    const socket = ioV4(base + nsp, { forceNew: true, reconnection: false, autoConnect: false });
    this.sockets.push(socket);
    const connected = next(socket, "connect", `v4 connect on ${nsp}`);
    const auth = next(socket, "auth", `v4 auth on ${nsp}`);
    socket.connect();
    await connected;
    await auth;
    return socket;
  }

  close() {
    for (const socket of this.sockets) socket.close();
  }
}

/** The transport name after an upgrade had its chance (the 2.x client upgrades at once). */
async function settledTransport(socket, mode) {
  if (mode === "upgrade" && socket.io.engine.transport.name !== "websocket") {
    await next(socket.io.engine, "upgrade", "the upgrade to websocket");
  }
  return socket.io.engine.transport.name;
}

function binaryArgs() {
  return ["text é 🚀", { nested: [Buffer.from([1, 2, 3]), { deep: Buffer.from([0, 255]) }] }, Buffer.from([9])];
}

const cases = {};

for (const [mode, opts] of Object.entries(TRANSPORTS)) {
  /** `/` is connected by the server; auth is `{}`; whoami names the namespace and transport. */
  cases[`connect-root-${mode}`] = async (scope) => {
    const { socket, auth } = await scope.openV2("/", opts);
    assert.deepEqual(auth, {});
    const transport = await settledTransport(socket, mode);
    assert.equal(transport, mode === "polling" ? "polling" : "websocket");
    const [me] = await ack(socket, "whoami");
    assert.equal(me.ns, "/");
    assert.deepEqual(me.auth, {});
    assert.equal(me.transport, transport);
    assert.equal(typeof me.id, "string");
  };

  /** Events, acks and binary at any depth, the unicode event name. */
  cases[`echo-${mode}`] = async (scope) => {
    const { socket } = await scope.openV2("/custom", opts);
    await settledTransport(socket, mode);
    const back = next(socket, "echo-back");
    socket.emit("echo", ...binaryArgs());
    assert.deepEqual(await back, binaryArgs());
    assert.deepEqual(await ack(socket, "echo-ack", ...binaryArgs()), binaryArgs());
    assert.deepEqual(await ack(socket, "echo-ack"), []);
    assert.deepEqual(await ack(socket, "ünïcødé-✓-🚀", "✓", 42), ["✓", 42]);
    const [big] = await ack(socket, "make-payload", { size: 200000, binary: true });
    assert.ok(Buffer.isBuffer(big) && big.length === 200000 && big.every((b) => b === 0x2a));
  };
}

/**
 * A namespace the app does not have: `{"message":"Invalid namespace"}`, the same object as for
 * 4.x clients (only middleware refusals send a 2.x client the bare message or data).
 */
cases["unknown-namespace"] = async (scope) => {
  const socket = ioV2(`${base}/nope`, { forceNew: true, reconnection: false });
  scope.sockets.push(socket);
  const [err] = await next(socket, "error", "the refusal of /nope");
  assert.deepEqual(err, { message: "Invalid namespace" });
};

/** The server asks the client and relays its answer. */
cases["ask-client"] = async (scope) => {
  const { socket } = await scope.openV2("/");
  socket.on("server-ask", (payload, reply) => reply("got", payload));
  const [answer] = await ack(socket, "ask-client", { payload: { q: 1 }, timeoutMs: 5000 });
  assert.deepEqual(answer, { ok: true, reply: ["got", { q: 1 }] });
};

/** Rooms, with a 2.x and a 4.x client in the same one; broadcasts reach both. */
cases["v2-and-v4-in-one-room"] = async (scope) => {
  const { socket: old } = await scope.openV2("/", TRANSPORTS.upgrade);
  const current = await scope.openV4("/");
  assert.deepEqual(await ack(old, "join", "mixed"), [["mixed"]]);
  assert.deepEqual(await ack(current, "join", "mixed"), [["mixed"]]);
  const [oldMe] = await ack(old, "whoami");
  const [currentMe] = await ack(current, "whoami");
  const toCurrent = next(current, "room-msg", "room-msg at the 4.x client");
  assert.deepEqual(await ack(old, "to-room", "mixed", { from: "v2", bin: Buffer.from([7]) }), [true]);
  assert.deepEqual(await toCurrent, [{ room: "mixed", from: oldMe.id, payload: { from: "v2", bin: Buffer.from([7]) } }]);
  const toOld = next(old, "room-msg", "room-msg at the 2.x client");
  assert.deepEqual(await ack(current, "to-room", "mixed", "from v4"), [true]);
  assert.deepEqual(await toOld, [{ room: "mixed", from: currentMe.id, payload: "from v4" }]);
  const both = [next(old, "broadcast-msg"), next(current, "broadcast-msg")];
  assert.deepEqual(await ack(old, "broadcast", "all"), [true]);
  for (const got of await Promise.all(both)) {
    assert.deepEqual(got, [{ from: oldMe.id, payload: "all" }]);
  }
  assert.deepEqual(await ack(old, "leave", "mixed"), [[]]);
};

/** The client pings (v3 heartbeat): the session outlives several ping intervals. */
cases["heartbeat"] = async (scope) => {
  const { socket } = await scope.openV2("/", TRANSPORTS.websocket);
  const pongs = [];
  socket.on("pong", (latency) => pongs.push(latency));
  await new Promise((r) => setTimeout(r, 3500));
  assert.ok(socket.connected, "disconnected while idle");
  assert.ok(pongs.length >= 2, `only ${pongs.length} pongs in 3.5 s at a 1 s interval`);
  assert.deepEqual(await ack(socket, "echo-ack", "still"), ["still"]);
};

/** A server-side disconnect of one namespace. */
cases["disconnect-me"] = async (scope) => {
  const { socket } = await scope.openV2("/custom");
  const gone = next(socket, "disconnect", "disconnect after disconnect-me");
  socket.emit("disconnect-me");
  assert.equal((await gone)[0], "io server disconnect");
};

runCases(cases, {
  only,
  newScope: () => new Scope(),
  summary: { client: "socket.io-client", version: clientVersion, port },
});
