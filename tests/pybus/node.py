"""A python-socketio 5.18 node on the AsyncRedisManager bus, for the mixed-cluster test
(crates/sockeye-pybus/tests/it/mixed.rs). Usage: node.py PORT CHANNEL BUS_URL; an amqp:// URL
selects AsyncAioPikaManager, anything else AsyncRedisManager. Its events mirror the sockeye
node's of that test."""
import sys

import socketio
import uvicorn

port, channel, url = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if url.startswith("amqp://"):
    manager = socketio.AsyncAioPikaManager(url, channel=channel)
else:
    manager = socketio.AsyncRedisManager(url, channel=channel)
sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager)
app = socketio.ASGIApp(sio)


@sio.event
async def connect(sid, environ, auth):
    for room in (auth or {}).get("rooms", []):
        await sio.enter_room(sid, room)


@sio.on("whoami")
async def whoami(sid):
    return {"node": "python", "sid": sid}


@sio.on("broadcast")
async def broadcast(sid, payload):
    await sio.emit("broadcast-msg", payload)
    return True


@sio.on("bin-broadcast")
async def bin_broadcast(sid):
    await sio.emit("bin-msg", (b"\x00\x01\xff", {"n": 1}))
    return True


@sio.on("to-room")
async def to_room(sid, room, payload):
    await sio.emit("room-msg", payload, to=room)
    return True


@sio.on("ask-sid")
async def ask_sid(sid, req):
    try:
        reply = await sio.call("server-ask", req["payload"], to=req["sid"],
                               timeout=req["timeoutMs"] / 1000)
    except socketio.exceptions.TimeoutError:
        return {"ok": False, "error": "timeout"}
    return {"ok": True, "reply": list(reply) if isinstance(reply, tuple) else [reply]}


@sio.on("disconnect-sid")
async def disconnect_sid(sid, req):
    await sio.disconnect(req["sid"])
    return True


@sio.on("room-of")
async def room_of(sid, req):
    if req.get("join", True):
        await sio.enter_room(req["sid"], req["room"])
    else:
        await sio.leave_room(req["sid"], req["room"])
    return True


@sio.on("local-rooms")
async def local_rooms(sid, target):
    return sio.rooms(target)


@sio.on("close-room")
async def close_room(sid, room):
    await sio.close_room(room)
    return True


uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="wsproto",
            lifespan="off")
