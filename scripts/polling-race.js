#!/usr/bin/env node
// Measures how often a server handles the second of two HTTP connections opened at the same
// moment before the first: the situation of the official Engine.IO suite's "forcefully closes
// the session" (polling) case. For each of PAIRS fresh polling sessions it sends a long-poll
// `GET` and a `POST` carrying the CLOSE packet `1`, each on a new connection (no keep-alive,
// like the suite's node-fetch), the GET first. When the server takes the POST first, the session
// is gone before the GET is seen and the GET is answered 400; when it takes the GET first, the
// GET is answered 200 with the noop `6` that ends it.
//
//   node scripts/polling-race.js URL [PAIRS] [burst|seq]
//
// URL is the server's Engine.IO endpoint, e.g. http://127.0.0.1:3000/engine.io/ (the
// engine-conformance example). `burst` (default) opens the sessions first, then fires every
// pair at once; `seq` runs one pair at a time, as the suite does. Prints one line:
// `pairs N: GET first X, POST first Y, other Z`.
"use strict";
const http = require("http");

const [url, pairsArg, modeArg] = process.argv.slice(2);
if (!url) {
  console.error("usage: polling-race.js URL [PAIRS] [burst|seq]");
  process.exit(2);
}
const pairs = Number(pairsArg || 100);
const mode = modeArg || "burst";
const base = new URL(url);

// One request on its own connection; resolves to { status, body }.
function request(method, query, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        path: `${base.pathname}?${query}`,
        method,
        agent: false,
        headers: body === undefined ? {} : { "Content-Type": "text/plain;charset=UTF-8" },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function open() {
  const { status, body } = await request("GET", "EIO=4&transport=polling");
  if (status !== 200 || body[0] !== "0") throw new Error(`handshake answered ${status} ${body}`);
  return JSON.parse(body.slice(1)).sid;
}

// "get" when the GET was served first, "post" when the POST was, "other" for anything else.
async function race(sid) {
  const q = `EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`;
  const [get, post] = await Promise.all([request("GET", q), request("POST", q, "1")]);
  if (post.status !== 200) return "other";
  if (get.status === 200 && get.body === "6") return "get";
  if (get.status === 400) return "post";
  return "other";
}

(async () => {
  const counts = { get: 0, post: 0, other: 0 };
  if (mode === "seq") {
    for (let i = 0; i < pairs; i++) counts[await race(await open())]++;
  } else {
    const sids = await Promise.all(Array.from({ length: pairs }, open));
    for (const r of await Promise.all(sids.map(race))) counts[r]++;
  }
  console.log(`pairs ${pairs} (${mode}): GET first ${counts.get}, POST first ${counts.post}, other ${counts.other}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
