#!/usr/bin/env python3
"""Writes the hostile seeds of the `redis_wire` fuzz target into fuzz/seeds/redis_wire/:
deep nesting, lengths far beyond the bytes present, wrong types, unknown wire versions, a
sockeye-shaped message. First byte: 0 broadcast, 1 room broadcast ("room"), 2 request,
3 response (see fuzz/fuzz_targets/redis_wire.rs). No msgpack library needed."""
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "redis_wire")


def mp(v):
    """A minimal msgpack encoder: None, bool, int, float, str, bytes, list, dict, Raw."""
    if isinstance(v, Raw):
        return v.b
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xdb" + struct.pack(">I", len(b))) + b
    if isinstance(v, bytes):
        return b"\xc6" + struct.pack(">I", len(v)) + v
    if isinstance(v, list):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


class Raw:
    def __init__(self, b):
        self.b = b


def packet(data, nsp="/", ty=2):
    return {"type": ty, "data": data, "nsp": nsp}


def opts(rooms=(), except_=(), **extra):
    d = {"rooms": list(rooms), "except": list(except_), "flags": {}}
    d.update(extra)
    return d


seeds = {
    # Valid, sockeye-shaped (with the wire version), for the re-encode check.
    "ok-sockeye-broadcast": (0, mp(["uid1", packet(["ev", 1, b"\x00\x01", {"k": [1.5, None]}]), opts(["a"], ["b"], sockeyeWire=1)])),
    "ok-sockeye-room": (1, mp(["uid1", packet(["ev", "x"]), opts(["room"], sockeyeWire=1)])),
    "ok-sockeye-request": (2, json.dumps({"uid": "u", "requestId": "r", "type": 5, "opts": {"rooms": ["a"], "except": []}, "sockeyeWire": 1}).encode()),
    "ok-sockeye-response": (3, json.dumps({"requestId": "r", "sockets": [{"id": "s", "rooms": ["s", 7], "handshake": {"headers": {}}}], "sockeyeWire": 1}).encode()),
    # Future versions and bad version values.
    "version-2-broadcast": (0, mp(["u", packet(["ev"]), opts(sockeyeWire=2)])),
    "version-string-request": (2, json.dumps({"type": 0, "requestId": "r", "sockeyeWire": "1"}).encode()),
    "version-negative-response": (3, json.dumps({"requestId": "r", "sockeyeWire": -1}).encode()),
    "version-huge-request": (2, json.dumps({"type": 1, "requestId": "r", "sockeyeWire": 18446744073709551615}).encode()),
    # Deep nesting.
    "deep-msgpack-array": (0, b"\x91" * 10000),
    "deep-msgpack-in-args": (0, mp(["u", packet(["ev", Raw(b"\x91" * 5000 + b"\xc0")]), opts()])),
    "deep-msgpack-map": (2, b"\x81\xa1a" * 2000 + b"\xc0"),
    "deep-json": (2, b'{"a":' * 2000 + b"1" + b"}" * 2000),
    "deep-json-array-in-string": (3, b'{"requestId":"r","s":"' + b"[" * 10000 + b'"}'),
    "deep-json-unbalanced": (2, b"{" + b"[" * 5000),
    # Lengths far beyond the bytes present.
    "huge-array32": (0, b"\xdd\xff\xff\xff\xff"),
    "huge-map32": (2, b"\xdf\xff\xff\xff\xff\xa1a"),
    "huge-str32": (0, b"\x93\xdb\xff\xff\xff\xffabc"),
    "huge-bin32": (0, b"\x93\xa1u\xc6\xff\xff\xff\xff"),
    "huge-ext32": (3, b"\xc9\xff\xff\xff\xff\x01"),
    "huge-array-in-data": (0, mp(["u", {"type": 2, "data": Raw(b"\xdd\x7f\xff\xff\xff\xa2ev"), "nsp": "/"}, opts()])),
    # Wrong types in every position.
    "uid-int": (0, mp([1, packet(["ev"]), opts()])),
    "packet-array": (0, mp(["u", ["ev"], opts()])),
    "opts-string": (0, mp(["u", packet(["ev"]), "opts"])),
    "rooms-map": (0, mp(["u", packet(["ev"]), {"rooms": {"a": 1}}])),
    "room-float-nan": (0, mp(["u", packet(["ev"]), opts([float("nan"), float("inf"), -0.0])])),
    "room-binary": (1, mp(["u", packet(["ev"]), opts([b"room"])])),
    "event-not-string": (0, mp(["u", packet([1, 2]), opts()])),
    "event-binary": (0, mp(["u", packet([b"ev"]), opts()])),
    "type-float": (0, mp(["u", packet(["ev"], ty=2.0), opts()])),
    "type-ack": (0, mp(["u", packet(["ev"], ty=3), opts()])),
    "nsp-int": (0, mp(["u", packet(["ev"], nsp=7), opts()])),
    "non-utf8-str": (0, b"\x93\xa2\xff\xfe" + mp(packet(["ev"])) + mp(opts())),
    "ext-values": (0, mp(["u", packet(["ev", Raw(b"\xd4\x00\x00"), Raw(b"\xd7\xff" + b"\x00" * 8)]), opts()])),
    "map-int-keys": (0, mp(["u", packet(["ev", Raw(b"\x82\x01\xa1a\xc0\xc0")]), opts()])),
    "timeout-huge": (2, mp({"uid": "u", "requestId": "r", "type": 7, "packet": packet(["ev"]), "opts": opts(flags={"timeout": 2**64 - 1})})),
    "timeout-float": (2, json.dumps({"uid": "u", "requestId": "r", "type": 7, "packet": {"type": 2, "data": ["e"]}, "opts": {"flags": {"timeout": 1e300}}}).encode()),
    "request-type-unknown": (2, json.dumps({"type": 99, "requestId": "r"}).encode()),
    "request-id-number": (2, json.dumps({"type": 0, "requestId": 5}).encode()),
    "join-by-sid-no-room": (2, json.dumps({"type": 2, "sid": "s", "requestId": "r"}).encode()),
    "disconnect-close-string": (2, json.dumps({"type": 4, "opts": {"rooms": []}, "close": "yes"}).encode()),
    "sse-data-object": (2, json.dumps({"type": 6, "data": {"0": "ev"}}).encode()),
    "json-big-number": (2, b'{"type":' + b"9" * 5000 + b',"requestId":"r"}'),
    "json-dup-keys": (3, b'{"requestId":"r","requestId":"s","type":8,"clientCount":-1}'),
    "response-sockets-garbage": (3, json.dumps({"requestId": "r", "sockets": [1, None, {"id": 5}, {"id": "x", "rooms": "r"}]}).encode()),
    "response-ack-packet-deep": (3, mp({"type": 9, "requestId": "r", "packet": Raw(b"\x91" * 63 + b"\xc0")})),
    "trailing-bytes": (0, mp(["u", packet(["ev"]), opts()]) + b"\x00"),
    "empty": (0, b""),
    "only-brace": (2, b"{"),
}

os.makedirs(OUT, exist_ok=True)
for name, (kind, payload) in seeds.items():
    with open(os.path.join(OUT, "hostile-" + name), "wb") as f:
        f.write(bytes([kind]) + payload)
print(f"{len(seeds)} hostile seeds in {OUT}")
