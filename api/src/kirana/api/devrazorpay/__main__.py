"""`python -m kirana.api.devrazorpay`: the fake Razorpay as a process of its own, for the
container dev stack (compose.yaml), where the shop reaches it by service name rather than on
loopback. Development only: it accepts the keys it is given and stores nothing on disk."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from kirana.api.devrazorpay.server import DEV_KEY_ID, DEV_KEY_SECRET, DEV_WEBHOOK_SECRET, FakeServer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="python -m kirana.api.devrazorpay", description=__doc__)
    p.add_argument("--host", default=env("FAKE_RAZORPAY_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(env("FAKE_RAZORPAY_PORT", "9000")))
    p.add_argument(
        "--webhook-url",
        default=env("FAKE_RAZORPAY_WEBHOOK_URL") or None,
        help="where signed webhooks are posted (the shop's /v1/webhooks/razorpay)",
    )
    p.add_argument("--key-id", default=env("KIRANA_RAZORPAY_KEY_ID") or DEV_KEY_ID)
    p.add_argument("--key-secret", default=env("KIRANA_RAZORPAY_KEY_SECRET") or DEV_KEY_SECRET)
    p.add_argument("--webhook-secret", default=env("KIRANA_RAZORPAY_WEBHOOK_SECRET") or DEV_WEBHOOK_SECRET)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    server = FakeServer(
        key_id=args.key_id,
        key_secret=args.key_secret,
        webhook_secret=args.webhook_secret,
        host=args.host,
        port=args.port,
        webhook_url=args.webhook_url,
    ).start()
    logging.info("fake Razorpay on %s:%d (webhooks to %s)", args.host, server.port, args.webhook_url)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
