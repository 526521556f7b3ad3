"""Drives a mixed cluster (one python-socketio node, one sockeye node, one Redis bus) with the
official python-socketio client (the sync one: the asyncio client would need aiohttp).
Usage: drive.py PY_URL RS_URL CHANNEL BUS_URL. Exits 0 when every check passed, 1 with the
failed check on stderr. With PYBUS_CAPTURE=DIR and a Redis bus, every bus message is also
written to DIR (the seeds of the fuzz target pybus_wire)."""
import hashlib
import os
import sys
import threading
import time

import redis
import socketio

PY, RS, CHANNEL, BUS = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
WAIT = 5.0
QUIET = 0.4


class Peer:
    def __init__(self, name):
        self.name = name
        self.got = {}
        self.disconnected = threading.Event()
        self.lock = threading.Lock()
        self.client = socketio.Client(reconnection=False)

        @self.client.on("*")
        def any_event(event, *args):
            with self.lock:
                self.got.setdefault(event, []).append(list(args))

        @self.client.on("server-ask")
        def server_ask(payload):
            return "answer", payload, self.name

        @self.client.event
        def disconnect(reason=None):
            self.disconnected.set()

    def connect(self, url, rooms=()):
        self.client.connect(url, auth={"rooms": list(rooms)}, transports=["websocket"],
                                  wait_timeout=WAIT)
        self.sid = self.client.get_sid()
        return self

    def call(self, event, *args):
        if not args:
            return self.client.call(event, timeout=WAIT)
        return self.client.call(event, args if len(args) != 1 else args[0], timeout=WAIT)

    def wait(self, event, n):
        for _ in range(int(WAIT / 0.02)):
            with self.lock:
                if len(self.got.get(event, [])) >= n:
                    return
            time.sleep(0.02)
        fail(f"{self.name}: expected {n} {event!r}, got {self.got.get(event)}")

    def take(self, event):
        with self.lock:
            return self.got.pop(event, [])


def until_in_room(asker, sid, room, present):
    """Room changes requested over the bus get no answer (python-socketio's managers send them
    fire-and-forget): ask the node holding `sid`, through `asker` (a client of that node), until
    the change is applied."""
    for _ in range(int(WAIT / 0.02)):
        rooms = asker.call("local-rooms", sid) or []
        if (room in rooms) == present:
            return
        time.sleep(0.02)
    fail(f"{sid} {'never joined' if present else 'never left'} {room!r} (asked via {asker.name})")


def fail(msg):
    print(f"FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def capture(directory, ready):
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    ps = r.pubsub(ignore_subscribe_messages=True)
    ps.subscribe(CHANNEL)
    os.makedirs(directory, exist_ok=True)
    ready.set()
    for m in ps.listen():
        data = m["data"]
        with open(os.path.join(directory, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
            f.write(data)


def main():
    if os.environ.get("PYBUS_CAPTURE") and BUS.startswith("redis://"):
        ready = threading.Event()
        threading.Thread(target=capture, args=(os.environ["PYBUS_CAPTURE"], ready),
                         daemon=True).start()
        ready.wait(WAIT)
    p1 = Peer("p1").connect(PY, ["red"])
    s1 = Peer("s1").connect(RS, ["red"])
    p2 = Peer("p2").connect(PY)
    s2 = Peer("s2").connect(RS)
    everyone = [p1, s1, p2, s2]

    # python-socketio subscribes at its first client: broadcast from the sockeye node until
    # a python client hears it, then forget the warm-up messages.
    for _ in range(int(WAIT / 0.1)):
        s2.call("broadcast", "warm-up")
        time.sleep(0.1)
        with p1.lock:
            if p1.got.get("broadcast-msg"):
                break
    else:
        fail("the python node never heard the bus")
    time.sleep(QUIET)
    for p in everyone:
        p.take("broadcast-msg")

    # Broadcasts, both ways, each client once.
    check(p2.call("broadcast", "from-py") is True, "python broadcast ack")
    check(s2.call("broadcast", "from-rs") is True, "sockeye broadcast ack")
    for p in everyone:
        p.wait("broadcast-msg", 2)
    time.sleep(QUIET)
    for p in everyone:
        got = sorted(a[0] for a in p.take("broadcast-msg"))
        check(got == ["from-py", "from-rs"], f"{p.name}: broadcasts once each, got {got}")

    # Rooms, both ways.
    p2.call("to-room", "red", "r-py")
    s2.call("to-room", "red", "r-rs")
    for p in (p1, s1):
        p.wait("room-msg", 2)
    time.sleep(QUIET)
    for p in (p1, s1):
        got = sorted(a[0] for a in p.take("room-msg"))
        check(got == ["r-py", "r-rs"], f"{p.name}: room messages once each, got {got}")
    for p in (p2, s2):
        check(p.take("room-msg") == [], f"{p.name} is not in red")

    # Binary arguments, both ways.
    p2.call("bin-broadcast")
    s2.call("bin-broadcast")
    for p in everyone:
        p.wait("bin-msg", 2)
        for args in p.take("bin-msg"):
            check(args == [b"\x00\x01\xff", {"n": 1}], f"{p.name}: binary arguments, got {args}")

    # An emit to a socket id on the other node.
    p2.call("to-room", s2.sid, "direct-to-rs")
    s2.call("to-room", p2.sid, "direct-to-py")
    s2.wait("room-msg", 1)
    p2.wait("room-msg", 1)
    check(s2.take("room-msg") == [["direct-to-rs"]], "python node to a sockeye sid")
    check(p2.take("room-msg") == [["direct-to-py"]], "sockeye node to a python sid")

    # Callbacks to a socket on the other node.
    reply = p2.call("ask-sid", {"sid": s1.sid, "payload": "q1", "timeoutMs": 5000})
    check(reply == {"ok": True, "reply": ["answer", "q1", "s1"]},
          f"python node asks a sockeye client: {reply}")
    reply = s2.call("ask-sid", {"sid": p1.sid, "payload": {"k": 2}, "timeoutMs": 5000})
    check(reply == {"ok": True, "reply": ["answer", {"k": 2}, "p1"]},
          f"sockeye node asks a python client: {reply}")

    # Room changes of a socket on the other node.
    p2.call("room-of", {"sid": s1.sid, "room": "blue"})
    s2.call("room-of", {"sid": p1.sid, "room": "blue"})
    until_in_room(s2, s1.sid, "blue", True)
    until_in_room(p2, p1.sid, "blue", True)
    p2.call("to-room", "blue", "b1")
    for p in (p1, s1):
        p.wait("room-msg", 1)
        check(p.take("room-msg") == [["b1"]], f"{p.name} joined blue remotely")
    p2.call("room-of", {"sid": s1.sid, "room": "blue", "join": False})
    s2.call("room-of", {"sid": p1.sid, "room": "blue", "join": False})
    until_in_room(s2, s1.sid, "blue", False)
    until_in_room(p2, p1.sid, "blue", False)
    s2.call("to-room", "blue", "b2")
    time.sleep(QUIET)
    for p in (p1, s1):
        check(p.take("room-msg") == [], f"{p.name} left blue remotely")

    # close_room, from each side: every socket of the room leaves it, on every node.
    s2.call("close-room", "red")
    # The ack says the request left; the other node applies it when the bus delivers it.
    until_in_room(p2, p1.sid, "red", False)
    p2.call("to-room", "red", "after-close")
    time.sleep(QUIET)
    for p in (p1, s1):
        check(p.take("room-msg") == [], f"{p.name} left red on close_room from sockeye")
    p2.call("room-of", {"sid": p1.sid, "room": "green"})
    s2.call("room-of", {"sid": s1.sid, "room": "green"})
    until_in_room(p2, p1.sid, "green", True)
    p2.call("close-room", "green")
    until_in_room(s2, s1.sid, "green", False)
    s2.call("to-room", "green", "after-close")
    time.sleep(QUIET)
    for p in (p1, s1):
        check(p.take("room-msg") == [], f"{p.name} left green on close_room from python")

    # Remote disconnects, both ways.
    p2.call("disconnect-sid", {"sid": s2.sid})
    check(s2.disconnected.wait(WAIT), "s2 disconnected by the python node")
    s1.call("disconnect-sid", {"sid": p2.sid})
    check(p2.disconnected.wait(WAIT), "p2 disconnected by the sockeye node")
    check(not p1.disconnected.is_set() and not s1.disconnected.is_set(), "only the targets left")

    for p in everyone:
        leftovers = {k: v for k, v in p.got.items() if v}
        check(leftovers == {}, f"{p.name}: unexpected events {leftovers}")
    for p in (p1, s1):
        p.client.disconnect()
    print("mixed cluster: every check passed")


main()
