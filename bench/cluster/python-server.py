"""The sio-bench bench app (same handlers as ../shared/sio-bench/anchors/python/server.py) on
python-socketio with a cluster manager, for bench/cluster.sh. Runs under uvicorn (ASGI), one
process, one worker.

Usage: python-server.py PORT
  CLUSTER_ADAPTER=python-redis (default): AsyncRedisManager at BROKER_URL
                                          (default redis://127.0.0.1:6379/0)
  CLUSTER_ADAPTER=python-amqp:            AsyncAioPikaManager at BROKER_URL
                                          (default amqp://guest:guest@127.0.0.1:5672/)
  REDIS_KEY: the manager's channel (default "socketio").
Prints "listening on 127.0.0.1:PORT" on stdout once the port accepts connections.
"""

import asyncio
import logging
import os
import sys

import socketio
import uvicorn


def manager(mode: str, channel: str):
    if mode == "python-redis":
        url = os.environ.get("BROKER_URL", "redis://127.0.0.1:6379/0")
        return socketio.AsyncRedisManager(url, channel=channel)
    if mode == "python-amqp":
        url = os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
        return socketio.AsyncAioPikaManager(url, channel=channel)
    raise SystemExit(f"CLUSTER_ADAPTER={mode} is unknown (python-redis or python-amqp)")


def build(mode: str, channel: str) -> socketio.AsyncServer:
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager(mode, channel),
        # the anchor's settings: library defaults except the payload cap
        max_http_buffer_size=10_000_000,
        logger=False,
        engineio_logger=False,
        cors_allowed_origins=None,
    )

    @sio.on("echo")
    async def echo(sid, *args):
        return args

    @sio.on("broadcast")
    async def broadcast(sid, *args):
        # to every socket of "/" on every node (through the manager), then an empty ack
        await sio.emit("broadcast", args)
        return None

    return sio


async def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("PORT", "4003"))
    mode = os.environ.get("CLUSTER_ADAPTER", "python-redis")
    channel = os.environ.get("REDIS_KEY", "socketio")
    logging.basicConfig(level=logging.WARNING)
    sio = build(mode, channel)
    config = uvicorn.Config(socketio.ASGIApp(sio), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            return
        await asyncio.sleep(0.05)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await serving


if __name__ == "__main__":
    try:
        import uvloop  # optional: faster event loop when installed
        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
