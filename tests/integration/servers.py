"""Start a real `kirana serve`-style server process for tests and wait until it is ready."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from kirana.api.devstack import free_port

REPO = Path(__file__).resolve().parents[2]


def start_server(
    env: dict[str, str], *, workers: int = 1, app_factory: str = "tests.integration.slowapp:factory"
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = (
        "from kirana.api import server; from kirana.api.settings import load_settings; "
        f"server.serve(load_settings(), port={port}, workers={workers}, app_factory={app_factory!r})"
    )
    full_env = os.environ | env | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=full_env, cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become ready")
