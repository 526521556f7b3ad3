// Connection-state recovery with the official `socket.io-client`, against the recovery app
// (reference-recovery-server.js on Node, examples/interop/src/bin/recovery.rs on sockeye).
//
//   node tests/interop/recovery-client.js PORT [case-name ...]
//
// Each case connects, joins a room, receives one broadcast, has its transport killed
// (`socket.io.engine.close()`), misses broadcasts published by a second client, connects again
// and asserts what came back. Every wait is bounded. Prints one JSON summary line on stdout and
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

const { io } = requireTestModule("socket.io-client");
const clientVersion = testModuleVersion("socket.io-client");
const { port, only } = cliArgs("recovery-client.js");
const base = `http://127.0.0.1:${port}`;

/** The recovering server keeps a dropped socket this long (its maxDisconnectionDuration). */
const WINDOW_MS = 3000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `cond()` holds, polling every 10 ms, at most WAIT_MS. */
async function until(cond, what) {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

class Scope {
  constructor() {
    this.sockets = [];
  }

  socket(opts) {
    const socket = io(base, { forceNew: true, reconnection: false, autoConnect: false, ...opts });
    this.sockets.push(socket);
    return socket;
  }

  async connect(socket) {
    const connected = withTimeout(
      new Promise((resolve, reject) => {
        socket.once("connect", resolve);
        socket.once("connect_error", (err) => reject(new Error(`connect_error: ${err.message}`)));
      }),
      WAIT_MS,
      "connect",
    );
    socket.connect();
    await connected;
  }

  close() {
    for (const s of this.sockets) {
      s.disconnect();
      if (s.io && s.io.engine) s.io.engine.close();
    }
  }
}

/**
 * The common scenario: connect on `serverPath` with `transports`, join a room, tag the session,
 * get item 0, lose the transport, miss items 1..5 (published by another client), wait
 * `waitMs`, connect again. Returns what the test asserts on.
 */
async function dropAndReconnect(scope, name, { serverPath, transports, waitMs }) {
  const room = `room-${name}`;
  const socket = scope.socket({ path: serverPath, transports });
  const items = [];
  socket.on("item", (...args) => items.push(args));
  await scope.connect(socket);
  // The client computes `recovered` as `pid && pid === previous pid`: false on a first
  // connection to a recovering server, undefined when the CONNECT reply carries no pid.
  const fresh = serverPath === "/plain/" ? undefined : false;
  assert.equal(socket.recovered, fresh, "a first connection is not recovered");
  const firstId = socket.id;
  assert.deepEqual(await ack(socket, "join", room), ["joined"]);
  assert.deepEqual(await ack(socket, "tag", `tag-${name}`), ["tagged"]);

  const publisher = scope.socket({ path: serverPath });
  await scope.connect(publisher);
  assert.deepEqual(await ack(publisher, "publish", room, 0, 1), ["published"]);
  await until(() => items.length === 1, "item 0");

  const disconnected = next(socket, "disconnect");
  socket.io.engine.close();
  await disconnected;
  assert.deepEqual(await ack(publisher, "publish", room, 1, 6), ["published"]);
  // Let the server notice the dropped transport before the client comes back.
  await sleep(waitMs);

  await scope.connect(socket);
  return { socket, firstId, items, tag: `tag-${name}` };
}

/** Recovery on: same id, session data, rooms; items 1..5 once each, in order, with offsets. */
async function recovers(scope, name, transports) {
  const r = await dropAndReconnect(scope, name, { serverPath: "/socket.io/", transports, waitMs: 300 });
  assert.equal(r.socket.recovered, true, "socket.recovered after reconnecting within the window");
  assert.equal(r.socket.id, r.firstId, "same socket id");
  await until(() => r.items.length >= 6, "the missed items");
  await sleep(200); // nothing more may arrive
  assert.deepEqual(
    r.items.map((args) => args[0]),
    [0, 1, 2, 3, 4, 5],
    "every missed broadcast once, in order",
  );
  // Each carries its offset as a last, string argument, distinct from the others.
  for (const args of r.items) {
    assert.equal(args.length, 2, `item with its offset: ${JSON.stringify(args)}`);
    assert.equal(typeof args[1], "string");
  }
  assert.equal(new Set(r.items.map((args) => args[1])).size, 6, "distinct offsets");
  const [me] = await ack(r.socket, "whoami");
  assert.deepEqual(me, { id: r.firstId, recovered: true, tag: r.tag, mwRuns: 1 }, "middlewares skipped");
  return { transport: r.socket.io.engine.transport.name };
}

const cases = {
  "recover-websocket": (scope) => recovers(scope, "ws", ["websocket"]),
  "recover-polling": (scope) => recovers(scope, "polling", ["polling"]),
  "recover-upgrade": (scope) => recovers(scope, "upgrade", ["polling", "websocket"]),

  /** Recovery off on the server: a fresh socket, the missed items are lost, no offsets. */
  disabled: async (scope) => {
    const r = await dropAndReconnect(scope, "off", { serverPath: "/plain/", transports: ["websocket"], waitMs: 300 });
    assert.equal(r.socket.recovered, undefined, "not recovered, and no pid in the CONNECT reply");
    assert.notEqual(r.socket.id, r.firstId, "a new socket id");
    await sleep(300);
    assert.deepEqual(r.items, [[0]], "no offset argument, and nothing replayed");
    const [me] = await ack(r.socket, "whoami");
    assert.deepEqual(me, { id: r.socket.id, recovered: false, tag: null, mwRuns: 1 });
  },

  /** Back after the window: a fresh socket, the missed items are lost. */
  expired: async (scope) => {
    const r = await dropAndReconnect(scope, "expired", {
      serverPath: "/socket.io/",
      transports: ["websocket"],
      waitMs: WINDOW_MS + 1000,
    });
    assert.equal(r.socket.recovered, false);
    assert.notEqual(r.socket.id, r.firstId, "a new socket id");
    await sleep(300);
    assert.deepEqual(
      r.items.map((args) => args[0]),
      [0],
      "nothing replayed",
    );
    const [me] = await ack(r.socket, "whoami");
    assert.deepEqual(me, { id: r.socket.id, recovered: false, tag: null, mwRuns: 1 });
  },
};

runCases(cases, {
  only,
  newScope: () => new Scope(),
  summary: { client: "socket.io-client", version: clientVersion, port },
});
