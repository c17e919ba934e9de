"""The load kit's shopper socket (tests/load/locustfile.py `Notifications`) survives the server
closing it: it reconnects, resubscribes with `since` set to the last message it saw (or, after
a `resync`, to where the resync said to go on), and the announcement sent after the reconnects
still reaches the journey waiting for it.

A real WebSocket server on loopback plays Kirana's side of docs/realtime.md (the first
connection is closed with 1012 after one message, as a draining replica does). It runs in a
subprocess because importing Locust patches the standard library with gevent.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.localrun import REPO, clean_env

SCRIPT = r"""
import json
import threading

import gevent
from websockets.sync.server import serve

from tests.load import journeys, locustfile

seen = []
channel = "user:u1:orders"


def handler(ws):
    sub = json.loads(ws.recv())
    seen.append(sub)
    if len(seen) == 1:  # a draining replica: one message, then 1012
        ws.send(json.dumps({"type": "subscribed", "channel": channel, "epoch": "e1", "seq": 41}))
        ws.send(json.dumps({"channel": channel, "seq": 42, "epoch": "e1", "type": "order.status",
                            "data": {"order_id": "o1", "to": "confirmed"}}))
        ws.close(1012, "restarting")
        return
    if len(seen) == 2:  # Redis lost the channel: resync under a new epoch, then 1012 again
        ws.send(json.dumps({"type": "resync", "channel": channel, "epoch": "e2", "seq": 7}))
        ws.close(1012, "restarting")
        return
    ws.send(json.dumps({"type": "subscribed", "channel": channel, "epoch": "e2", "seq": 7}))
    ws.send(json.dumps({"channel": channel, "seq": 8, "epoch": "e2", "type": "payment.result",
                        "data": {"order_id": "o2", "status": "captured"}}))
    try:
        ws.recv()
    except Exception:
        pass


server = serve(handler, "127.0.0.1", 0, subprotocols=["kirana.v1"])
threading.Thread(target=server.serve_forever, daemon=True).start()
port = server.socket.getsockname()[1]
fired = []
account = journeys.Account(identifier="+919800000000", password="x", user_id="u1", token="t")
n = locustfile.Notifications(f"http://127.0.0.1:{port}", account, {}, lambda *a: fired.append(a))
ok = n.wait_paid("o2", timeout=10)
n.close()
server.shutdown()
print(json.dumps({"ok": ok, "subscribes": seen, "fired": [[name, exc is None] for name, _t, exc in fired]}))
"""


def test_the_shopper_socket_reconnects_and_resumes_from_the_last_message() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        env=clean_env(PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["ok"], "the paid announcement sent after the reconnect was not seen"
    first, second, third = got["subscribes"]
    assert "since" not in first
    assert second["since"] == {"epoch": "e1", "seq": 42}, "resumed from the last message seen"
    assert third["since"] == {"epoch": "e2", "seq": 7}, "went on from where the resync said"
    assert got["fired"] == [["ws: reconnect", True], ["ws: reconnect", True]]
