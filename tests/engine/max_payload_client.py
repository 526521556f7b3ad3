"""The official python-engineio client (pinned in tests/requirements.txt) sends one polling
message over the server's maxPayload (1e6) and reports how its connection ended, as one JSON
line: {"reason": ...}. Usage: python max_payload_client.py BASE_URL"""
import json
import sys
import threading

import engineio

reasons = []
ended = threading.Event()
client = engineio.Client(request_timeout=10)


@client.on("disconnect")
def on_disconnect(reason=None):
    reasons.append(str(reason))
    ended.set()


client.connect(sys.argv[1], transports=["polling"], engineio_path="engine.io")
client.send("y" * 1_100_000)
ended.wait(20)
print(json.dumps({"reason": reasons[0] if reasons else None}))
if not reasons:
    client.disconnect()
