// Drives the interop app (shared/interop-app.md) with the official `socket.io-client`.
//
//   node tests/interop/node-client.js PORT [case-name ...]
//
// Every case asserts exact values and every wait is bounded. Prints one JSON summary line on
// stdout and exits 1 if any case failed (2 on bad usage or a missing dependency).
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

const { io, Manager } = requireTestModule("socket.io-client");
const clientVersion = testModuleVersion("socket.io-client");
const { port, only } = cliArgs("node-client.js");
const base = `http://127.0.0.1:${port}`;

/** Records every event received by a socket, for "nothing else arrived" checks. */
function record(socket) {
  const seen = [];
  socket.onAny((event, ...args) => seen.push([event, ...args]));
  return seen;
}

/** Per-case resources, closed whatever the outcome. */
class Scope {
  constructor() {
    this.sockets = [];
  }

  /** A socket (not connected yet) with listeners for `auth` attached before connecting. */
  socket(nsp = "/", opts = {}) {
    const socket = io(base + nsp, { forceNew: true, reconnection: false, autoConnect: false, ...opts });
    this.track(socket);
    return socket;
  }

  track(socket) {
    this.sockets.push(socket);
    return socket;
  }

  /** Connects `socket` and resolves with the `auth` event's arguments. */
  async connect(socket) {
    const auth = next(socket, "auth", `auth event on ${socket.nsp}`);
    const connected = withTimeout(
      new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", (err) => reject(new Error(`connect_error on ${socket.nsp}: ${err.message}`)));
      }),
      WAIT_MS,
      `connect on ${socket.nsp}`,
    );
    socket.connect();
    await connected;
    return auth;
  }

  /** Opens and connects a socket; returns it once its `auth` event arrived. */
  async open(nsp = "/", opts = {}) {
    const socket = this.socket(nsp, opts);
    await this.connect(socket);
    return socket;
  }

  close() {
    for (const s of this.sockets) {
      s.disconnect();
      if (s.io && s.io.engine) s.io.engine.close();
    }
  }
}

// Values that must survive a round trip exactly.
const UNICODE = ["astral 😀𝄞", "nul \u0000 inside", "separators \u2028\u2029", "ünïcødé ✓ 🚀", ""];
const ARG_SETS = [
  [],
  [1],
  [1, "2", { 3: [true] }],
  [null, false, 0, -1.5, "", [], {}],
  [...UNICODE],
  [{ deep: { list: [1, [2, [3, { four: "4" }]]], nul: null } }],
];
function binaryArgs() {
  return [
    Buffer.from([1, 2, 3]),
    { a: { b: [Buffer.from([0xff, 0x00]), "s", { c: Buffer.alloc(0) }] } },
    "text between",
    [Buffer.from("héllo", "utf8"), [Buffer.from([42])]],
  ];
}

const cases = {
  /** The polling and WebSocket handshakes advertise the app's settings exactly. */
  async handshake() {
    const res = await withTimeout(
      fetch(`${base}/socket.io/?EIO=4&transport=polling`),
      WAIT_MS,
      "the polling handshake",
    );
    assert.equal(res.status, 200);
    const body = await res.text();
    assert.equal(body[0], "0", `handshake body ${body}`);
    const open = JSON.parse(body.slice(1));
    assert.equal(typeof open.sid, "string");
    assert.deepEqual(
      { ...open, sid: "" },
      { sid: "", upgrades: ["websocket"], pingInterval: 1000, pingTimeout: 3000, maxPayload: 1000000 },
    );
    const ws = new Manager(base, { transports: ["websocket"], reconnection: false, autoConnect: false });
    ws.open();
    const [data] = await next(ws.engine, "handshake", "WebSocket-only handshake");
    try {
      assert.equal(typeof data.sid, "string");
      assert.notEqual(data.sid, open.sid);
      assert.deepEqual(
        { ...data, sid: "" },
        { sid: "", upgrades: [], pingInterval: 1000, pingTimeout: 3000, maxPayload: 1000000 },
      );
    } finally {
      ws.engine.close();
    }
  },

  /** Auth on `/` and `/custom` over one connection: auth event, distinct ids, whoami. */
  async "connect-auth"(scope) {
    const manager = new Manager(base, { reconnection: false, autoConnect: false });
    const rootAuth = { token: "root-token", n: 1, nested: { ok: true } };
    const customAuth = { token: "custom-token", list: [1, "2", null] };
    const root = scope.track(manager.socket("/", { auth: rootAuth }));
    const custom = scope.track(manager.socket("/custom", { auth: customAuth }));
    const [rootSeen, customSeen] = await Promise.all([scope.connect(root), scope.connect(custom)]);
    assert.deepEqual(rootSeen, [rootAuth]);
    assert.deepEqual(customSeen, [customAuth]);
    const engineId = manager.engine.id;
    assert.equal(typeof root.id, "string");
    assert.ok(root.id.length > 0);
    assert.notEqual(root.id, engineId, "socket id on / must differ from the Engine.IO sid");
    assert.notEqual(custom.id, engineId, "socket id on /custom must differ from the Engine.IO sid");
    assert.notEqual(root.id, custom.id, "ids on / and /custom must differ");
    // The upgrade to WebSocket may complete while whoami is in flight, so the server may
    // report the transport of either side of it.
    for (const [socket, ns, auth] of [[root, "/", rootAuth], [custom, "/custom", customAuth]]) {
      const before = manager.engine.transport.name;
      const [me] = await ack(socket, "whoami");
      const after = manager.engine.transport.name;
      assert.ok([before, after].includes(me.transport), `transport ${me.transport}: was ${before}, then ${after}`);
      assert.deepEqual(me, { id: socket.id, ns, auth, transport: me.transport });
    }
  },

  /** Without auth the server reports `{}` in the auth event and in whoami. */
  async "connect-no-auth"(scope) {
    for (const nsp of ["/", "/custom"]) {
      const socket = scope.socket(nsp);
      assert.deepEqual(await scope.connect(socket), [{}]);
      const [me] = await ack(socket, "whoami");
      assert.deepEqual(me.auth, {});
      assert.equal(me.ns, nsp);
      assert.equal(me.id, socket.id);
    }
  },

  /** `auth.reject` is refused with message and data, on both namespaces. */
  async refusal(scope) {
    for (const nsp of ["/", "/custom"]) {
      const socket = scope.socket(nsp, { auth: { reject: true } });
      const [err] = await (socket.connect(), next(socket, "connect_error", `connect_error on ${nsp}`));
      assert.equal(err.message, "rejected by server");
      assert.deepEqual(err.data, { code: 4001, reason: "auth.reject was set" });
      assert.equal(socket.connected, false);
    }
    // `reject` must be exactly true.
    const lenient = scope.socket("/", { auth: { reject: "yes" } });
    assert.deepEqual(await scope.connect(lenient), [{ reject: "yes" }]);
  },

  /** An unknown namespace is refused with `Invalid namespace` and no data. */
  async "invalid-namespace"(scope) {
    const socket = scope.socket("/nope");
    const [err] = await (socket.connect(), next(socket, "connect_error", "connect_error on /nope"));
    assert.equal(err.message, "Invalid namespace");
    assert.equal(err.data, undefined);
  },

  /** `echo` comes back as `echo-back` with the same N arguments (N >= 0). */
  async echo(scope) {
    for (const nsp of ["/", "/custom"]) {
      const socket = await scope.open(nsp);
      for (const args of ARG_SETS) {
        const back = next(socket, "echo-back", `echo-back of ${JSON.stringify(args)}`);
        socket.emit("echo", ...args);
        assert.deepEqual(await back, args);
      }
    }
  },

  /** `echo-ack` acknowledges with the same N arguments; N = 0 gives an empty ack. */
  async "echo-ack"(scope) {
    for (const nsp of ["/", "/custom"]) {
      const socket = await scope.open(nsp);
      for (const args of ARG_SETS) {
        assert.deepEqual(await ack(socket, "echo-ack", ...args), args);
      }
    }
  },

  /** The non-ASCII event name is routed like echo-ack. */
  async "unicode-event"(scope) {
    const socket = await scope.open("/");
    assert.deepEqual(await ack(socket, "ünïcødé-✓-🚀"), []);
    assert.deepEqual(await ack(socket, "ünïcødé-✓-🚀", "a", { b: "😀" }), ["a", { b: "😀" }]);
    assert.deepEqual(await ack(socket, "ünïcødé-✓-🚀", Buffer.from([7])), [Buffer.from([7])]);
  },

  /** Binary at any depth round-trips as binary, both directions, event and ack. */
  async binary(scope) {
    for (const nsp of ["/", "/custom"]) {
      const socket = await scope.open(nsp);
      const args = binaryArgs();
      const got = await ack(socket, "echo-ack", ...args);
      assert.deepEqual(got, args);
      assert.ok(Buffer.isBuffer(got[0]), "top-level binary must come back as a Buffer");
      const back = next(socket, "echo-back", "binary echo-back");
      socket.emit("echo", ...binaryArgs());
      assert.deepEqual(await back, binaryArgs());
      // Binary alone as the only argument, and an empty binary.
      assert.deepEqual(await ack(socket, "echo-ack", Buffer.alloc(0)), [Buffer.alloc(0)]);
    }
  },

  /** The server asks the client (ack requested) and relays the client's answer. */
  async "ask-client-ok"(scope) {
    const socket = await scope.open("/");
    const asked = [];
    socket.on("server-ask", (...all) => {
      const cb = all.pop();
      asked.push(all);
      cb("got", all[0], Buffer.from([9, 8]));
    });
    const payload = { q: "question ✓", bin: Buffer.from([1, 2]) };
    const [res] = await ack(socket, "ask-client", { payload, timeoutMs: 5000 });
    assert.deepEqual(res, { ok: true, reply: ["got", payload, Buffer.from([9, 8])] });
    assert.deepEqual(asked, [[payload]]);
    // An answer with no argument is relayed as an empty list.
    socket.off("server-ask");
    socket.on("server-ask", (...all) => all.pop()());
    assert.deepEqual(await ack(socket, "ask-client", { payload: null, timeoutMs: 5000 }), [
      { ok: true, reply: [] },
    ]);
  },

  /** No answer within timeoutMs gives `{ok:false,error:"timeout"}`; a late answer is harmless. */
  async "ask-client-timeout"(scope) {
    const socket = await scope.open("/");
    socket.on("server-ask", () => {}); // never answers
    const started = Date.now();
    assert.deepEqual(await ack(socket, "ask-client", { payload: 1, timeoutMs: 300 }), [
      { ok: false, error: "timeout" },
    ]);
    assert.ok(Date.now() - started >= 250, "the timeout fired before timeoutMs");

    socket.off("server-ask");
    let late;
    const lateSent = new Promise((resolve) => {
      late = resolve;
    });
    socket.on("server-ask", (payload, cb) => setTimeout(() => { cb("too late"); late(); }, 600));
    assert.deepEqual(await ack(socket, "ask-client", { payload: 2, timeoutMs: 150 }), [
      { ok: false, error: "timeout" },
    ]);
    await withTimeout(lateSent, WAIT_MS, "the late answer to be sent");
    // The late ack reached the server; the socket must still work normally.
    assert.deepEqual(await ack(socket, "echo-ack", "still alive"), ["still alive"]);
    assert.equal(socket.connected, true);
  },

  /** join/leave lists, to-room excludes the sender, namespaces are separate. */
  async rooms(scope) {
    const a = await scope.open("/");
    const b = await scope.open("/");
    const c = await scope.open("/");
    const d = await scope.open("/custom");
    const seen = new Map([a, b, c, d].map((s) => [s, record(s)]));

    assert.deepEqual(await ack(a, "join", "r1"), [["r1"]]);
    assert.deepEqual(await ack(a, "join", "a-room"), [["a-room", "r1"]]);
    assert.deepEqual(await ack(a, "join", "a-room"), [["a-room", "r1"]]);
    assert.deepEqual(await ack(b, "join", "r1"), [["r1"]]);
    assert.deepEqual(await ack(d, "join", "r1"), [["r1"]]);

    const payload = { x: 1, bin: Buffer.from([5]) };
    const got = next(b, "room-msg", "room-msg on b");
    assert.deepEqual(await ack(a, "to-room", "r1", payload), [true]);
    assert.deepEqual(await got, [{ room: "r1", from: a.id, payload }]);
    // Each connection delivers in order: a round trip after the ack flushes anything misrouted.
    for (const s of [a, c, d]) await ack(s, "echo-ack");
    for (const s of [a, c, d]) assert.deepEqual(seen.get(s), [], `unexpected events on ${s.nsp}`);

    seen.get(b).length = 0; // b's room-msg was checked above

    assert.deepEqual(await ack(a, "leave", "r1"), [["a-room"]]);
    assert.deepEqual(await ack(a, "leave", "not-joined"), [["a-room"]]);
    assert.deepEqual(await ack(b, "to-room", "r1", "after leave"), [true]);
    for (const s of [a, b, c, d]) await ack(s, "echo-ack");
    for (const s of [a, b, c, d]) assert.deepEqual(seen.get(s), [], "nobody else is in r1 on /");
    // to-room into a room the sender is not in reaches its members.
    const gotA = next(a, "room-msg", "room-msg on a");
    assert.deepEqual(await ack(c, "to-room", "a-room", "hi"), [true]);
    assert.deepEqual(await gotA, [{ room: "a-room", from: c.id, payload: "hi" }]);
    assert.deepEqual(await ack(c, "join", "zz"), [["zz"]]);
    assert.deepEqual(await ack(c, "join", "aa"), [["aa", "zz"]]);
  },

  /** broadcast reaches every socket of the namespace, sender included, and no other namespace. */
  async broadcast(scope) {
    const sockets = [await scope.open("/"), await scope.open("/"), await scope.open("/")];
    const other = await scope.open("/custom");
    const otherSeen = record(other);
    const payload = { hello: "all ✓", bin: Buffer.from([1, 2, 3]), list: [Buffer.from([4])] };
    const sender = sockets[1];
    const arrivals = sockets.map((s, i) => next(s, "broadcast-msg", `broadcast-msg on socket ${i}`));
    assert.deepEqual(await ack(sender, "broadcast", payload), [true]);
    for (const got of arrivals) assert.deepEqual(await got, [{ from: sender.id, payload }]);
    await ack(other, "echo-ack");
    assert.deepEqual(otherSeen, []);
  },

  /** make-payload: n `x` characters or n bytes of 0x2a. */
  async "make-payload"(scope) {
    const socket = await scope.open("/");
    for (const size of [0, 1, 100000, 999999]) {
      const [s] = await ack(socket, "make-payload", { size, binary: false });
      assert.equal(typeof s, "string");
      assert.equal(s, "x".repeat(size));
      const [bin] = await ack(socket, "make-payload", { size, binary: true });
      assert.ok(Buffer.isBuffer(bin), "binary payload must be a Buffer");
      assert.ok(bin.equals(Buffer.alloc(size, 0x2a)), `binary payload of ${size} bytes`);
    }
  },

  /** disconnect-me ends one namespace with `io server disconnect`; the connection stays. */
  async "disconnect-me"(scope) {
    const manager = new Manager(base, { reconnection: false, autoConnect: false });
    const root = scope.track(manager.socket("/"));
    const custom = scope.track(manager.socket("/custom"));
    await Promise.all([scope.connect(root), scope.connect(custom)]);
    const engineId = manager.engine.id;
    const reason = next(custom, "disconnect", "disconnect of /custom");
    custom.emit("disconnect-me");
    assert.deepEqual((await reason)[0], "io server disconnect");
    assert.equal(custom.connected, false);
    assert.equal(root.connected, true);
    assert.deepEqual(await ack(root, "echo-ack", "root still works"), ["root still works"]);
    assert.equal(manager.engine.id, engineId, "the Engine.IO connection must stay open");
    // The last namespace: same reason.
    const rootReason = next(root, "disconnect", "disconnect of /");
    root.emit("disconnect-me");
    assert.deepEqual((await rootReason)[0], "io server disconnect");
  },

  /** Long-polling only: whoami says polling and binary still round-trips. */
  async "transport-polling"(scope) {
    const socket = await scope.open("/", { transports: ["polling"] });
    assert.equal(socket.io.engine.transport.name, "polling");
    const [me] = await ack(socket, "whoami");
    assert.deepEqual(me, { id: socket.id, ns: "/", auth: {}, transport: "polling" });
    assert.deepEqual(await ack(socket, "echo-ack", ...binaryArgs()), binaryArgs());
    const [big] = await ack(socket, "make-payload", { size: 200000, binary: true });
    assert.ok(big.equals(Buffer.alloc(200000, 0x2a)));
  },

  /** WebSocket only: whoami says websocket. */
  async "transport-websocket"(scope) {
    const socket = await scope.open("/", { transports: ["websocket"] });
    assert.equal(socket.io.engine.transport.name, "websocket");
    const [me] = await ack(socket, "whoami");
    assert.deepEqual(me, { id: socket.id, ns: "/", auth: {}, transport: "websocket" });
    assert.deepEqual(await ack(socket, "echo-ack", ...binaryArgs()), binaryArgs());
  },

  /** Default transports: opens on polling, upgrades to WebSocket, then whoami says websocket. */
  async "transport-upgrade"(scope) {
    const manager = new Manager(base, { reconnection: false, autoConnect: false });
    const upgraded = withTimeout(
      new Promise((resolve) => {
        manager.once("open", () => {
          const engine = manager.engine;
          const first = engine.transport.name;
          engine.once("upgrade", (t) => resolve([first, t.name]));
        });
      }),
      WAIT_MS,
      "the WebSocket upgrade",
    );
    const socket = scope.track(manager.socket("/"));
    await scope.connect(socket);
    assert.deepEqual(await upgraded, ["polling", "websocket"]);
    const [me] = await ack(socket, "whoami");
    assert.equal(me.transport, "websocket");
    assert.deepEqual(await ack(socket, "echo-ack", ...binaryArgs()), binaryArgs());
  },

  /** A WebSocket message over maxPayload closes the connection (`transport close`). */
  async "max-payload-websocket"(scope) {
    const socket = await scope.open("/", { transports: ["websocket"] });
    const gone = next(socket, "disconnect", "disconnect after an oversize message");
    socket.emit("echo", "y".repeat(1100000));
    assert.equal((await gone)[0], "transport close");
    // Just under the limit still works on a fresh connection.
    const ok = await scope.open("/", { transports: ["websocket"] });
    const big = "z".repeat(990000);
    assert.deepEqual(await ack(ok, "echo-ack", big), [big]);
  },

  /** A polling POST over maxPayload gets 413 and the session ends (`transport error`). */
  async "max-payload-polling"(scope) {
    const socket = await scope.open("/", { transports: ["polling"] });
    const gone = next(socket, "disconnect", "disconnect after an oversize POST");
    socket.emit("echo", "y".repeat(1100000));
    assert.equal((await gone)[0], "transport error");
    const ok = await scope.open("/", { transports: ["polling"] });
    const big = "z".repeat(990000);
    assert.deepEqual(await ack(ok, "echo-ack", big), [big]);
  },

  /** 200 clients at once: connect, echo-ack (emitted before CONNECT is answered), disconnect. */
  async "concurrent-200"(scope) {
    const started = Date.now();
    const one = async (i) => {
      const socket = scope.socket(i % 2 ? "/" : "/custom");
      const auth = next(socket, "auth", `auth of client ${i}`, 45000);
      socket.connect();
      // Emitted before the CONNECT reply: the client buffers it and sends it right after.
      const reply = withTimeout(
        new Promise((resolve) => socket.emit("echo-ack", i, `client-${i}`, (...r) => resolve(r))),
        45000,
        `echo-ack of client ${i}`,
      );
      assert.deepEqual(await reply, [i, `client-${i}`]);
      assert.deepEqual(await auth, [{}]);
      const gone = next(socket, "disconnect", `disconnect of client ${i}`);
      socket.disconnect();
      assert.equal((await gone)[0], "io client disconnect");
    };
    await Promise.all(Array.from({ length: 200 }, (_, i) => one(i)));
    return { clients: 200, elapsed_ms: Date.now() - started };
  },
};

runCases(cases, {
  only,
  newScope: () => new Scope(),
  summary: { client: "socket.io-client", version: clientVersion, port },
});
