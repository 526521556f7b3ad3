#!/usr/bin/env node
// Cross-implementation vectors for sockeye-protocol, made and checked by the official parsers.
//
//   node vectors.js produce   -> stdout: JSON {engine: [...], sio: [...]}: packets described
//                                 portably, with the frames the official encoders produce
//   node vectors.js decode    <- stdin:  JSON {engine: [{payload, frames}], sio: [{parser, frames}]}
//                                 encoded by sockeye; stdout: what the official decoders read
//
// Portable form: binary is {"$bin": "<base64>"}; Socket.IO packet types are reported without the
// BINARY_ distinction (5 -> 2, 6 -> 3) since binary-ness follows from the data.
"use strict";
const path = require("path");
const modules = path.join(__dirname, "..", "node_modules");
const eio = require(path.join(modules, "engine.io-parser"));
const sio = require(path.join(modules, "socket.io-parser"));
const msgpack = require(path.join(modules, "socket.io-msgpack-parser"));

const B = (...bytes) => Buffer.from(bytes);

// Socket.IO packets, JS objects in the key order sockeye's encoders use: type, data, id, nsp.
function sioPackets() {
  return [
    ["connect root", { type: 0, nsp: "/" }],
    ["connect with auth", { type: 0, data: { token: "123", nested: { a: [1, 2] } }, nsp: "/admin" }],
    ["connect ok", { type: 0, data: { sid: "wZX3oN0bSVIhsaknAAAI" }, nsp: "/" }],
    ["disconnect", { type: 1, nsp: "/admin" }],
    ["event unicode", { type: 2, data: ["hello", "wörld ✓ 😀", "日本"], nsp: "/" }],
    ["event escaped name", { type: 2, data: ["esc\"ape\\\n\u0001ü", "\t"], nsp: "/" }],
    ["event empty strings", { type: 2, data: ["", ""], nsp: "/" }],
    ["event no args", { type: 2, data: ["empty"], nsp: "/" }],
    [
      "event key order and types",
      { type: 2, data: ["msg", { z: 1, a: [1, 2, { b: null }], m: "x" }, true, false, -3, 1.5, null], id: 42, nsp: "/chat" },
    ],
    ["ack empty", { type: 3, data: [], id: 0, nsp: "/" }],
    ["ack large id", { type: 3, data: ["a", { k: [] }], id: 9007199254740991, nsp: "/x" }],
    ["binary event", { type: 2, data: ["bin", B(1, 2, 3)], nsp: "/" }],
    [
      "nested binaries",
      { type: 2, data: ["nested", { a: B(1), b: [B(2, 3), { c: B(4, 5, 6) }] }, "tail"], id: 3, nsp: "/bin" },
    ],
    ["empty binary", { type: 2, data: ["empty", Buffer.alloc(0)], nsp: "/" }],
    ["binary ack", { type: 3, data: [B(255, 0, 128), "x"], id: 7, nsp: "/" }],
    ["connect error", { type: 4, data: { message: "Not authorized", data: { code: 4 } }, nsp: "/" }],
  ];
}

function portable(value) {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) {
    return { $bin: Buffer.from(value).toString("base64") };
  }
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("base64") };
  if (Array.isArray(value)) return value.map(portable);
  if (value && typeof value === "object") {
    const out = {};
    for (const k of Object.keys(value)) out[k] = portable(value[k]);
    return out;
  }
  return value;
}

function portablePacket(p) {
  const out = { type: p.type === 5 ? 2 : p.type === 6 ? 3 : p.type, nsp: p.nsp };
  if (p.data !== undefined) out.data = portable(p.data);
  if (p.id !== undefined && p.id !== null) out.id = p.id;
  return out;
}

const frame = (f) =>
  typeof f === "string" ? { text: f } : { binary: Buffer.from(f).toString("base64") };

function unframe(f) {
  return f.text !== undefined ? f.text : Buffer.from(f.binary, "base64");
}

function engineVectors() {
  const packets = [
    ["message", { type: "message", data: "hello" }],
    ["unicode message", { type: "message", data: "héllo ✓ 😀" }],
    ["empty message", { type: "message", data: "" }],
    ["ping probe", { type: "ping", data: "probe" }],
    ["pong", { type: "pong" }],
    ["binary", { type: "message", data: B(1, 2, 3, 4) }],
    ["empty binary", { type: "message", data: Buffer.alloc(0) }],
  ];
  const vectors = [];
  for (const [name, packet] of packets) {
    let ws;
    eio.encodePacket(packet, true, (encoded) => (ws = encoded));
    vectors.push({ name, packets: [portableEngine(packet)], frames: [frame(ws)] });
  }
  const all = packets.map(([, p]) => p);
  let payload;
  eio.encodePayload(all, (encoded) => (payload = encoded));
  vectors.push({ name: "payload", packets: all.map(portableEngine), payload });
  return vectors;
}

function portableEngine(p) {
  return { type: p.type, data: p.data === undefined ? "" : portable(p.data) };
}

function produce() {
  const out = { engine: engineVectors(), sio: [] };
  for (const [name, packet] of sioPackets()) {
    const encoded = new sio.Encoder().encode(structuredCloneWithBuffers(packet));
    out.sio.push({ name, parser: "json", packet: portablePacket(packet), frames: encoded.map(frame) });
    const mp = new msgpack.Encoder().encode(packet);
    out.sio.push({ name, parser: "msgpack", packet: portablePacket(packet), frames: mp.map(frame) });
  }
  process.stdout.write(JSON.stringify(out));
}

// The JSON encoder mutates binary packets (placeholders); keep the original intact.
function structuredCloneWithBuffers(v) {
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (Array.isArray(v)) return v.map(structuredCloneWithBuffers);
  if (v && typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) o[k] = structuredCloneWithBuffers(v[k]);
    return o;
  }
  return v;
}

function decodeWith(parser, frames) {
  const decoder = parser === "json" ? new sio.Decoder() : new msgpack.Decoder();
  const got = [];
  decoder.on("decoded", (p) => got.push(portablePacket(p)));
  try {
    for (const f of frames) decoder.add(unframe(f));
  } catch (e) {
    return { error: String(e && e.message) };
  }
  if (got.length !== 1) return { error: `decoded ${got.length} packets` };
  return got[0];
}

function decode(input) {
  const req = JSON.parse(input);
  const out = { engine: [], sio: [] };
  for (const v of req.engine) {
    const packets = eio.decodePayload(v.payload, "nodebuffer").map(portableEngine);
    const frames = v.frames.map((f) => portableEngine(eio.decodePacket(unframe(f), "nodebuffer")));
    out.engine.push({ payload: packets, frames });
  }
  for (const v of req.sio) out.sio.push(decodeWith(v.parser, v.frames));
  process.stdout.write(JSON.stringify(out));
}

const mode = process.argv[2];
if (mode === "produce") {
  produce();
} else if (mode === "decode") {
  let input = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (c) => (input += c));
  process.stdin.on("end", () => decode(input));
} else {
  console.error("usage: node vectors.js produce|decode");
  process.exit(2);
}
