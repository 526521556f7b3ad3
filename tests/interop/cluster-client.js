// Drives a two-node cluster of the interop app (interop-app.md §4) with the official
// socket.io-client: two clients on each node, then the cluster events across the nodes.
// Usage: node tests/interop/cluster-client.js PORT_A PORT_B
// The nodes may be sockeye's or the official Node server's (reference-server.js), on the same
// INTEROP_ADAPTER, broker and channel. Prints one JSON summary line (client-harness.js).
// INTEROP_CLUSTER_QUERIES=local: the python buses, where cluster-sockets and server-count
// answer for the asking node's sockets only (sockeye's bus carries the room-wide join and
// disconnect of one room as python-socketio's messages, so those still cross the nodes).
"use strict";

const assert = require("assert");
const { requireTestModule, runCases, next, ack, WAIT_MS } = require("./client-harness");

const { io } = requireTestModule("socket.io-client");

const ports = process.argv.slice(2, 4).map(Number);
if (ports.length !== 2 || !ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) {
  console.error("usage: node cluster-client.js PORT_A PORT_B");
  process.exit(2);
}

/** How long a client waits for a duplicate or a stray message before calling it absent. */
const QUIET_MS = 400;

const local = process.env.INTEROP_CLUSTER_QUERIES === "local";
// INTEROP_CLUSTER_RECOVERY=1 (nodes with INTEROP_RECOVERY_MS on an adapter that recovers
// across nodes): a client of node A loses its transport and is restored by node B.
const recovery = process.env.INTEROP_CLUSTER_RECOVERY === "1";
// INTEROP_CLUSTER_SETTLE_MS: a pause after joining rooms, before sending to them. The sharded
// adapter's default `dynamic` mode (the official one and ours) subscribes a node to a room's
// channel when the room gets its first member, after the join was acknowledged, so a message
// sent to the room at once can reach the broker before the subscription does.
const settleMs = Number(process.env.INTEROP_CLUSTER_SETTLE_MS || "0");

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The clients, `a1`, `a2` on node A and `b1`, `b2` on node B, each recording what it gets. */
const clients = {};

function connect(name, port) {
  const socket = io(`http://127.0.0.1:${port}`, {
    transports: ["websocket"],
    forceNew: true,
    reconnection: false,
  });
  const client = { name, socket, broadcasts: [], roomMsgs: [], disconnects: [] };
  socket.on("broadcast-msg", (m) => client.broadcasts.push(m));
  socket.on("room-msg", (m) => client.roomMsgs.push(m));
  socket.on("disconnect", (reason) => client.disconnects.push(reason));
  socket.on("broadcast-question", (payload, cb) => cb({ by: socket.id, payload }));
  // One argument only: the Node server's broadcast acks keep each client's first argument.
  socket.on("server-ask", (payload, cb) => {
    if (payload !== "no answer") cb({ by: socket.id, payload });
  });
  return client;
}

/** Waits until `check()` is true, polling; fails with `what` after WAIT_MS. */
async function until(check, what) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const all = () => Object.values(clients);
/** What `cluster-sockets` asked through `asker` lists of `expected`: everything, or its node's. */
const seen = (asker, expected) =>
  local
    ? expected.filter((s) => all().some((c) => c.socket.id === s.id && c.name[0] === asker.name[0]))
    : expected;
const ids = (list) => list.map((c) => c.socket.id).sort();

async function clusterSockets(client) {
  const [list] = await ack(client.socket, "cluster-sockets");
  return list;
}

const cases = {
  async connect() {
    for (const [name, port] of [["a1", ports[0]], ["a2", ports[0]], ["b1", ports[1]], ["b2", ports[1]]]) {
      clients[name] = connect(name, port);
    }
    await Promise.all(all().map((c) => (c.socket.connected ? null : next(c.socket, "connect", `${c.name} connect`))));
    const [a] = await ack(clients.a1.socket, "whoami");
    const [b] = await ack(clients.b1.socket, "whoami");
    assert.notStrictEqual(a.node, b.node, "the two clients are on one node");
    assert.strictEqual(a.recovered, false);
    return { nodes: [a.node, b.node] };
  },

  async "server-count"() {
    for (const c of [clients.a1, clients.b1]) {
      const [n] = await ack(c.socket, "server-count");
      assert.strictEqual(n, local ? 1 : 2, `server-count from ${c.name}`);
    }
  },

  async "cluster-sockets"() {
    const expected = ids(all()).map((id) => ({ id, rooms: [] }));
    for (const c of [clients.a1, clients.b1]) {
      assert.deepStrictEqual(await clusterSockets(c), seen(c, expected), `cluster-sockets from ${c.name}`);
    }
  },

  async broadcast() {
    for (const from of [clients.a1, clients.b1]) {
      for (const c of all()) c.broadcasts.length = 0;
      const payload = { from: from.name, n: [1, "two"] };
      const [ok] = await ack(from.socket, "broadcast", payload);
      assert.strictEqual(ok, true);
      await until(() => all().every((c) => c.broadcasts.length >= 1), `broadcast from ${from.name}`);
      await sleep(QUIET_MS);
      for (const c of all()) {
        assert.deepStrictEqual(
          c.broadcasts,
          [{ from: from.socket.id, payload }],
          `${c.name} got the broadcast from ${from.name} exactly once`,
        );
      }
    }
  },

  async "to-room"() {
    await ack(clients.a2.socket, "join", "r1");
    await ack(clients.b2.socket, "join", "r1");
    if (settleMs) await sleep(settleMs);
    for (const c of all()) c.roomMsgs.length = 0;
    await ack(clients.a1.socket, "to-room", "r1", "hello r1");
    await until(
      () => clients.a2.roomMsgs.length >= 1 && clients.b2.roomMsgs.length >= 1,
      "room-msg on both nodes",
    );
    // A socket id as the room reaches that socket on the other node.
    await ack(clients.b2.socket, "to-room", clients.a1.socket.id, "to a1");
    await until(() => clients.a1.roomMsgs.length >= 1, "room-msg to a1 by its id");
    await sleep(QUIET_MS);
    const msg = (room, from, payload) => [{ room, from: from.socket.id, payload }];
    assert.deepStrictEqual(clients.a2.roomMsgs, msg("r1", clients.a1, "hello r1"));
    assert.deepStrictEqual(clients.b2.roomMsgs, msg("r1", clients.a1, "hello r1"));
    assert.deepStrictEqual(clients.a1.roomMsgs, msg(clients.a1.socket.id, clients.b2, "to a1"));
    assert.deepStrictEqual(clients.b1.roomMsgs, [], "b1 is not in r1");
  },

  async "cluster-join"() {
    const [ok] = await ack(clients.b1.socket, "cluster-join", "r2", "r1");
    assert.strictEqual(ok, true);
    const inRooms = { [clients.a2.socket.id]: ["r1", "r2"], [clients.b2.socket.id]: ["r1", "r2"] };
    const all4 = ids(all()).map((id) => ({ id, rooms: inRooms[id] ?? [] }));
    for (const c of [clients.a1, clients.b1]) {
      let last;
      const expected = seen(c, all4);
      await until(async () => {
        last = await clusterSockets(c);
        return JSON.stringify(last) === JSON.stringify(expected);
      }, `r2 joined, seen from ${c.name}`).catch((e) => {
        throw new Error(`${e.message}: last ${JSON.stringify(last)}, expected ${JSON.stringify(expected)}`);
      });
    }
  },

  async "broadcast-ask"() {
    for (const from of [clients.a1, clients.b1]) {
      const [answer] = await ack(from.socket, "broadcast-ask", "q?", 3000);
      const expected = all()
        .map((c) => ({ by: c.socket.id, payload: "q?" }))
        .sort((x, y) => (JSON.stringify(x) < JSON.stringify(y) ? -1 : 1));
      assert.deepStrictEqual(answer, { ok: true, replies: expected }, `broadcast-ask from ${from.name}`);
    }
  },

  async "room-of"() {
    const [refused] = await ack(clients.a1.socket, "room-of", { sid: clients.b1.socket.id });
    assert.deepStrictEqual(refused, { ok: false, error: "sid and room required" });
    const [ok] = await ack(clients.a1.socket, "room-of", { sid: clients.b1.socket.id, room: "r3" });
    assert.strictEqual(ok, true);
    await until(async () => {
      const [rooms] = await ack(clients.b1.socket, "join", "probe");
      await ack(clients.b1.socket, "leave", "probe");
      return JSON.stringify(rooms) === JSON.stringify(["probe", "r3"]);
    }, "b1 in r3 (room-of from the other node)");
    await ack(clients.a1.socket, "room-of", { sid: clients.b1.socket.id, room: "r3", join: false });
    await until(async () => {
      const [rooms] = await ack(clients.b1.socket, "leave", "none");
      return rooms.length === 0;
    }, "b1 out of r3 again");
  },

  async "ask-sid"() {
    for (const [from, target] of [[clients.a1, clients.b1], [clients.b1, clients.a1]]) {
      const [answer] = await ack(from.socket, "ask-sid", { sid: target.socket.id, payload: [1, "x"], timeoutMs: 3000 });
      assert.deepStrictEqual(answer, { ok: true, reply: [{ by: target.socket.id, payload: [1, "x"] }] });
      const [late] = await ack(from.socket, "ask-sid", { sid: target.socket.id, payload: "no answer", timeoutMs: 300 });
      assert.deepStrictEqual(late, { ok: false, error: "timeout" });
    }
  },

  async "close-room"() {
    const [ok] = await ack(clients.a1.socket, "close-room", "r2");
    assert.strictEqual(ok, true);
    const inRooms = { [clients.a2.socket.id]: ["r1"], [clients.b2.socket.id]: ["r1"] };
    const expected = ids(all()).map((id) => ({ id, rooms: inRooms[id] ?? [] }));
    for (const c of [clients.a1, clients.b1]) {
      await until(
        async () => JSON.stringify(await clusterSockets(c)) === JSON.stringify(seen(c, expected)),
        `r2 closed, seen from ${c.name}`,
      );
    }
  },

  async "disconnect-sid"() {
    const [refused] = await ack(clients.a1.socket, "disconnect-sid", {});
    assert.deepStrictEqual(refused, { ok: false, error: "sid missing" });
    const gone = next(clients.b2.socket, "disconnect", "b2 disconnected");
    const [ok] = await ack(clients.a1.socket, "disconnect-sid", { sid: clients.b2.socket.id });
    assert.strictEqual(ok, true);
    const [reason] = await gone;
    assert.strictEqual(reason, "io server disconnect", "b2's disconnect reason");
  },

  async "cluster-disconnect"() {
    // a2 (node A) is the one socket left in r1; asked from node B.
    const gone = next(clients.a2.socket, "disconnect", "a2 disconnected");
    const [ok] = await ack(clients.b1.socket, "cluster-disconnect", "r1");
    assert.strictEqual(ok, true);
    const [reason] = await gone;
    assert.strictEqual(reason, "io server disconnect", "a2's disconnect reason");
    const expected = ids([clients.a1, clients.b1]).map((id) => ({ id, rooms: [] }));
    for (const c of [clients.a1, clients.b1]) {
      await until(
        async () => JSON.stringify(await clusterSockets(c)) === JSON.stringify(seen(c, expected)),
        `the disconnected sockets gone from cluster-sockets, seen from ${c.name}`,
      );
    }
    assert.ok(clients.a1.socket.connected && clients.b1.socket.connected);
  },
};

if (recovery) {
  cases["recovery-across-nodes"] = async () => {
    const socket = io(`http://127.0.0.1:${ports[0]}`, {
      transports: ["websocket"],
      forceNew: true,
      reconnectionDelay: 100,
      reconnectionDelayMax: 200,
    });
    const got = [];
    socket.on("room-msg", (m) => got.push(m));
    // With recovery on, the server's emits (this `auth` event) go through the adapter, which
    // gives them their offset: the client has one to recover from only once it got one.
    const authed = next(socket, "auth", "the auth event (with its offset)");
    try {
      await next(socket, "connect", "connect to node A");
      await authed;
      const [before] = await ack(socket, "whoami");
      assert.strictEqual(before.recovered, false);
      await ack(socket, "join", "rr");
      // The next connection goes to node B (the manager's URL), which restores the session.
      socket.io.uri = `http://127.0.0.1:${ports[1]}`;
      const back = next(socket, "connect", "reconnect to node B");
      socket.io.engine.close();
      await ack(clients.b1.socket, "to-room", "rr", "while away");
      await back;
      const [after] = await ack(socket, "whoami");
      assert.deepStrictEqual(
        { id: after.id, node: after.node, recovered: after.recovered },
        { id: before.id, node: (await ack(clients.b1.socket, "whoami"))[0].node, recovered: true },
      );
      await until(() => got.length >= 1, "the room message sent while away");
      await sleep(QUIET_MS);
      assert.deepStrictEqual(
        got.map((m) => m.payload),
        ["while away"],
        "the message sent while away, exactly once",
      );
      const [rooms] = await ack(socket, "join", "rr");
      assert.deepStrictEqual(rooms, ["rr"], "its room restored");
    } finally {
      socket.close();
    }
  };
}

runCases(cases, {
  only: new Set(),
  newScope: () => ({ close() {} }),
  summary: { ports },
  caseMs: 4 * WAIT_MS,
}).finally(() => {
  for (const c of all()) c.socket.close();
});
