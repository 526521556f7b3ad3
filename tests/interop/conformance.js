// The official Socket.IO protocol test suite's expectations (conformance-notes.md §2), as raw
// HTTP requests and raw WebSocket frames (Node's `ws`), with exact strings.
//
//   node tests/interop/conformance.js PORT [case-name ...]
//
// Server settings expected: path /socket.io/, pingInterval 300, pingTimeout 200, maxPayload
// 1000000, connectTimeout 1000; `/` and `/custom` emit `auth`; `/` answers `message` with
// `message-back` and acks `message-with-ack`. Prints one JSON summary line; exits 1 on failure.
"use strict";

const assert = require("assert/strict");
const { requireTestModule, cliArgs, withTimeout, runCases } = require("./client-harness");

const WebSocket = requireTestModule("ws");
const { port, only } = cliArgs("conformance.js");
// Known server bugs: INTEROP_XFAIL, handled by the harness's runCases.
const HTTP = `http://127.0.0.1:${port}/socket.io/`;
const WS = `ws://127.0.0.1:${port}/socket.io/`;
const WAIT_MS = 5000;
const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One HTTP request; resolves with { status, body } (body as text). */
async function request(query, method = "GET", body = undefined) {
  const res = await fetch(`${HTTP}?${query}`, {
    method,
    body,
    headers: body === undefined ? {} : { "content-type": "text/plain;charset=UTF-8" },
    signal: AbortSignal.timeout(WAIT_MS),
  });
  return { status: res.status, body: await res.text() };
}

/** Polling handshake; returns the sid. */
async function pollingHandshake() {
  const { status, body } = await request("EIO=4&transport=polling");
  assert.equal(status, 200);
  assert.equal(body[0], "0");
  return JSON.parse(body.slice(1)).sid;
}

/** A WebSocket with a queue of received frames. */
class Conn {
  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.waiters = [];
    this.closed = null;
    /** When set, PINGs are answered at once and not queued. */
    this.autoPong = false;
    ws.on("message", (data, isBinary) => {
      if (this.autoPong && !isBinary && data.toString() === "2") {
        ws.send("3");
        return;
      }
      this.frames.push(isBinary ? Buffer.from(data) : data.toString());
      this.wake();
    });
    ws.on("close", (code) => {
      this.closed = { code };
      this.wake();
    });
    ws.on("error", () => {});
  }

  static open(query) {
    const ws = new WebSocket(`${WS}?${query}`);
    return withTimeout(
      new Promise((resolve, reject) => {
        ws.once("open", () => resolve(new Conn(ws)));
        ws.once("unexpected-response", (_, res) => reject(new Error(`HTTP ${res.statusCode}`)));
        ws.once("error", reject);
      }),
      WAIT_MS,
      "WebSocket open",
    );
  }

  wake() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next frame (string or Buffer); fails if the socket closed first. */
  async next(what = "a frame", ms = WAIT_MS) {
    const deadline = Date.now() + ms;
    while (this.frames.length === 0) {
      if (this.closed) throw new Error(`socket closed (code ${this.closed.code}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await withTimeout(new Promise((r) => this.waiters.push(r)), left, what).catch(() => {});
    }
    return this.frames.shift();
  }

  /** The next frame that is not a PING; PINGs are answered with PONG. */
  async nextData(what) {
    for (;;) {
      const f = await this.next(what);
      if (f === "2") {
        this.send("3");
        continue;
      }
      return f;
    }
  }

  send(data) {
    this.ws.send(data);
  }

  /** Resolves once the server closed the socket. */
  async waitClose(what, ms = WAIT_MS) {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the server did not close the socket (${what}) within ${ms} ms`);
      await withTimeout(new Promise((r) => this.waiters.push(r)), left, what).catch(() => {});
    }
  }

  close() {
    this.ws.terminate();
  }
}

const opened = [];
async function ws(query = "EIO=4&transport=websocket") {
  const c = await Conn.open(query);
  opened.push(c);
  return c;
}

/** Engine.IO open over WebSocket, handshake frame checked. */
async function wsOpen() {
  const c = await ws();
  const open = await c.next("the OPEN packet");
  assert.equal(open[0], "0");
  return c;
}

/** Engine.IO open + Socket.IO CONNECT to `/`, with the auth event checked. */
async function sioConnect() {
  const c = await wsOpen();
  c.send("40");
  const reply = await c.next("the CONNECT reply");
  assert.match(reply, /^40\{/);
  assert.equal(await c.next("the auth event"), '42["auth",{}]');
  return c;
}

function checkConnectReply(frame, prefix) {
  assert.ok(frame.startsWith(prefix), `${JSON.stringify(frame)} starts with ${prefix}`);
  const body = JSON.parse(frame.slice(prefix.length));
  assert.deepEqual(Object.keys(body), ["sid"]);
  assert.equal(typeof body.sid, "string");
  assert.ok(body.sid.length > 0);
  return body.sid;
}

const cases = {
  // ---- Engine.IO layer -------------------------------------------------------------------

  async "eio-handshake-polling"() {
    const { status, body } = await request("EIO=4&transport=polling");
    assert.equal(status, 200);
    assert.equal(body[0], "0");
    const open = JSON.parse(body.slice(1));
    assert.deepEqual(Object.keys(open).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
    assert.equal(typeof open.sid, "string");
    assert.deepEqual(open.upgrades, ["websocket"]);
    assert.equal(open.pingInterval, 300);
    assert.equal(open.pingTimeout, 200);
    assert.equal(open.maxPayload, 1000000);
  },

  async "eio-invalid-eio"() {
    assert.equal((await request("transport=polling")).status, 400);
    assert.equal((await request("EIO=abc&transport=polling")).status, 400);
  },

  async "eio-invalid-transport"() {
    assert.equal((await request("EIO=4")).status, 400);
    assert.equal((await request("EIO=4&transport=abc")).status, 400);
  },

  async "eio-invalid-method"() {
    assert.equal((await request("EIO=4&transport=polling", "POST", "")).status, 400);
    assert.equal((await request("EIO=4&transport=polling", "PUT", "")).status, 400);
  },

  async "eio-handshake-websocket"() {
    const c = await ws();
    const open = await c.next("the OPEN packet");
    assert.equal(open[0], "0");
    const body = JSON.parse(open.slice(1));
    assert.deepEqual(Object.keys(body).sort(), ["maxPayload", "pingInterval", "pingTimeout", "sid", "upgrades"]);
    assert.deepEqual(body.upgrades, []);
    assert.equal(body.pingInterval, 300);
    assert.equal(body.pingTimeout, 200);
    assert.equal(body.maxPayload, 1000000);
  },

  async "eio-invalid-websocket-params"() {
    // The official suite asserts nothing here. Refusing the upgrade (HTTP 400) or closing the
    // WebSocket before any OPEN packet are both acceptable; opening a session is not.
    for (const query of ["EIO=abc&transport=websocket", "EIO=4&transport=abc"]) {
      let c;
      try {
        c = await ws(query);
      } catch (e) {
        assert.match(e.message, /HTTP 400/);
        continue;
      }
      await c.waitClose(`invalid parameters ${query}`);
      assert.deepEqual(c.frames, [], `frames sent for ${query}`);
    }
  },

  async "eio-heartbeat-polling"() {
    const sid = await pollingHandshake();
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      const got = await request(`EIO=4&transport=polling&sid=${sid}`);
      assert.deepEqual(got, { status: 200, body: "2" });
      // The first PING comes one interval after the handshake, never at once.
      assert.ok(Date.now() - started >= PING_INTERVAL - 100, `PING ${i} came after ${Date.now() - started} ms`);
      assert.deepEqual(await request(`EIO=4&transport=polling&sid=${sid}`, "POST", "3"), {
        status: 200,
        body: "ok",
      });
    }
  },

  async "eio-heartbeat-websocket"() {
    const c = await wsOpen();
    for (let i = 0; i < 3; i++) {
      assert.equal(await c.next(`PING ${i}`), "2");
      c.send("3");
    }
  },

  async "eio-ping-timeout-polling"() {
    const sid = await pollingHandshake();
    // The official test sleeps exactly pingInterval + pingTimeout (500 ms) and has no margin
    // (even the Node server fails it now and then); 300 ms more keeps the check meaningful
    // without flakiness on a loaded machine.
    await sleep(PING_INTERVAL + PING_TIMEOUT + 300);
    assert.equal((await request(`EIO=4&transport=polling&sid=${sid}`)).status, 400);
  },

  async "eio-ping-timeout-websocket"() {
    const c = await wsOpen();
    await c.waitClose("no PONG", PING_INTERVAL + PING_TIMEOUT + 2000);
  },

  async "eio-close-polling"() {
    const sid = await pollingHandshake();
    const pending = request(`EIO=4&transport=polling&sid=${sid}`);
    await sleep(20);
    assert.equal((await request(`EIO=4&transport=polling&sid=${sid}`, "POST", "1")).status, 200);
    assert.deepEqual(await pending, { status: 200, body: "6" });
    assert.equal((await request(`EIO=4&transport=polling&sid=${sid}`)).status, 400);
  },

  async "eio-close-websocket"() {
    const c = await wsOpen();
    c.send("1");
    await c.waitClose("client CLOSE");
  },

  async "eio-upgrade"() {
    const sid = await pollingHandshake();
    const c = await ws(`EIO=4&transport=websocket&sid=${sid}`);
    c.send("2probe");
    assert.equal(await c.next("3probe"), "3probe");
    c.send("5");
    // After the upgrade, polling on that sid is refused.
    assert.equal((await request(`EIO=4&transport=polling&sid=${sid}`)).status, 400);
    // ...and the WebSocket carries the session: the heartbeat goes on there.
    assert.equal(await c.next("PING over the upgraded WebSocket"), "2");
    c.send("3");
  },

  async "eio-upgrade-noop-pending-get"() {
    const sid = await pollingHandshake();
    const c = await ws(`EIO=4&transport=websocket&sid=${sid}`);
    c.send("2probe");
    assert.equal(await c.next("3probe"), "3probe");
    // A GET issued during the upgrade is answered at once with NOOP.
    const got = await request(`EIO=4&transport=polling&sid=${sid}`);
    assert.deepEqual(got, { status: 200, body: "6" });
    c.send("5");
  },

  async "eio-upgrade-second-websocket"() {
    const sid = await pollingHandshake();
    const first = await ws(`EIO=4&transport=websocket&sid=${sid}`);
    first.send("2probe");
    assert.equal(await first.next("3probe"), "3probe");
    first.send("5");
    await sleep(50);
    let second;
    try {
      second = await ws(`EIO=4&transport=websocket&sid=${sid}`);
    } catch (e) {
      return; // refused at the HTTP level: also a close
    }
    await second.waitClose("a second WebSocket on an upgraded sid");
    assert.equal(await first.next("PING on the first WebSocket"), "2");
  },

  // ---- Socket.IO layer --------------------------------------------------------------------

  async "sio-connect-main"() {
    const c = await wsOpen();
    c.send("40");
    checkConnectReply(await c.next("CONNECT reply"), "40");
    // Right after the handshake: no PING may come in between.
    assert.equal(await c.next("auth"), '42["auth",{}]');
  },

  async "sio-connect-main-payload"() {
    const c = await wsOpen();
    c.send('40{"token":"123"}');
    checkConnectReply(await c.next("CONNECT reply"), "40");
    assert.equal(await c.next("auth"), '42["auth",{"token":"123"}]');
  },

  async "sio-connect-custom"() {
    const c = await wsOpen();
    c.send("40/custom,");
    checkConnectReply(await c.next("CONNECT reply"), "40/custom,");
    assert.equal(await c.next("auth"), '42/custom,["auth",{}]');
  },

  async "sio-connect-custom-payload"() {
    const c = await wsOpen();
    c.send('40/custom,{"token":"abc"}');
    checkConnectReply(await c.next("CONNECT reply"), "40/custom,");
    assert.equal(await c.next("auth"), '42/custom,["auth",{"token":"abc"}]');
  },

  async "sio-distinct-sids"() {
    const c = await ws();
    const open = JSON.parse((await c.next("OPEN")).slice(1));
    c.send("40");
    const root = checkConnectReply(await c.nextData("CONNECT /"), "40");
    assert.equal(await c.nextData("auth"), '42["auth",{}]');
    c.send("40/custom,");
    const custom = checkConnectReply(await c.nextData("CONNECT /custom"), "40/custom,");
    assert.notEqual(root, open.sid);
    assert.notEqual(custom, open.sid);
    assert.notEqual(root, custom);
  },

  async "sio-unknown-namespace"() {
    const c = await wsOpen();
    c.send("40/random");
    assert.equal(await c.next("CONNECT_ERROR"), '44/random,{"message":"Invalid namespace"}');
  },

  async "sio-invalid-handshake"() {
    const c = await wsOpen();
    c.send("4abc");
    await c.waitClose("an invalid Socket.IO packet");
  },

  async "sio-connect-timeout"() {
    const c = await wsOpen();
    const started = Date.now();
    // Answer PINGs so only the missing CONNECT can close the connection.
    c.autoPong = true;
    await c.waitClose("no CONNECT within connectTimeout", 2000);
    assert.ok(Date.now() - started >= 800, `closed after ${Date.now() - started} ms, before connectTimeout`);
  },

  async "sio-disconnect-main"() {
    const c = await sioConnect();
    c.send("41");
    // Nothing is sent back and the Engine.IO connection stays: the next frame is a PING.
    assert.equal(await c.next("the PING after DISCONNECT"), "2");
  },

  async "sio-disconnect-custom"() {
    const c = await sioConnect();
    c.send("40/custom");
    checkConnectReply(await c.nextData("CONNECT /custom"), "40/custom,");
    assert.equal(await c.nextData("auth"), '42/custom,["auth",{}]');
    c.send("41/custom");
    c.send('42["message","message to main namespace"]');
    assert.equal(await c.nextData("message-back"), '42["message-back","message to main namespace"]');
  },

  async "sio-event-plain"() {
    const c = await sioConnect();
    c.send('42["message",1,"2",{"3":[true]}]');
    assert.equal(await c.nextData("message-back"), '42["message-back",1,"2",{"3":[true]}]');
    c.send('42["message","only one"]');
    assert.equal(await c.nextData("message-back"), '42["message-back","only one"]');
  },

  async "sio-event-binary"() {
    const c = await sioConnect();
    c.send('452-["message",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    c.send(Buffer.from([1, 2, 3]));
    c.send(Buffer.from([4, 5, 6]));
    assert.equal(
      await c.nextData("binary message-back"),
      '452-["message-back",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
    );
    assert.deepEqual(await c.nextData("attachment 0"), Buffer.from([1, 2, 3]));
    assert.deepEqual(await c.nextData("attachment 1"), Buffer.from([4, 5, 6]));
  },

  async "sio-ack-plain"() {
    const c = await sioConnect();
    c.send('42456["message-with-ack",1,"2",{"3":[false]}]');
    assert.equal(await c.nextData("ACK"), '43456[1,"2",{"3":[false]}]');
  },

  async "sio-ack-binary"() {
    const c = await sioConnect();
    c.send('452-789["message-with-ack",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    c.send(Buffer.from([1, 2, 3]));
    c.send(Buffer.from([4, 5, 6]));
    assert.equal(
      await c.nextData("BINARY_ACK"),
      '462-789[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]',
    );
    assert.deepEqual(await c.nextData("attachment 0"), Buffer.from([1, 2, 3]));
    assert.deepEqual(await c.nextData("attachment 1"), Buffer.from([4, 5, 6]));
  },

  async "sio-invalid-packet-type"() {
    const c = await sioConnect();
    c.send("4abc");
    await c.waitClose("an unknown packet type");
  },

  async "sio-invalid-payload"() {
    const c = await sioConnect();
    c.send("42{}");
    await c.waitClose("an event payload that is not an array");
  },

  async "sio-invalid-ack-id"() {
    const c = await sioConnect();
    c.send('42abc["message-with-ack",1,"2",{"3":[false]}]');
    await c.waitClose("a bad ack id");
  },
};

runCases(cases, {
  only,
  // A case's connections are closed whatever its outcome.
  newScope: () => ({ close: () => opened.splice(0).forEach((c) => c.close()) }),
  summary: { suite: "socket.io-protocol §2", port },
  caseMs: 15000,
});
