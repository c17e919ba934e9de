"""The fake Razorpay run as a process of its own (`python -m kirana.api.devrazorpay`), as the
compose dev stack runs it: it serves the account it was given and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx

from kirana.api.devstack import free_port


def test_the_fake_runs_as_a_process_and_stops_on_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kirana.api.devrazorpay",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--key-id",
            "rzp_test_process",
            "--key-secret",
            "s3cret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base, answer = f"http://127.0.0.1:{port}", None
        for _ in range(200):  # up to ~20 s for the interpreter to start and bind
            try:
                answer = httpx.post(
                    f"{base}/v1/orders",
                    json={"amount": 5000, "currency": "INR", "receipt": "r-1"},
                    auth=("rzp_test_process", "s3cret"),
                    timeout=5,
                )
                break
            except httpx.ConnectError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200, answer.text if answer else "never answered"
        assert answer.json()["amount"] == 5000
        wrong = httpx.post(
            f"{base}/v1/orders", json={"amount": 1, "currency": "INR"}, auth=("x", "y"), timeout=5
        )
        assert wrong.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0
