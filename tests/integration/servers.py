"""Start a real `kirana serve`-style server process for tests and wait until it is ready."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from kirana.api.devstack import free_port

REPO = Path(__file__).resolve().parents[2]


def server_process(
    env: dict[str, str],
    *,
    port: int,
    workers: int = 1,
    app_factory: str = "tests.integration.slowapp:factory",
) -> subprocess.Popen[bytes]:
    """`kirana serve` on `port` (its output in the file at `proc.log_path`)."""
    code = (
        "from kirana.api import server; from kirana.api.settings import load_settings; "
        f"server.serve(load_settings(), port={port}, workers={workers}, app_factory={app_factory!r})"
    )
    full_env = os.environ | env | {"PYTHONPATH": str(REPO)}
    log = tempfile.NamedTemporaryFile(prefix="kirana-server-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-c", code], env=full_env, cwd=REPO, stdout=log, stderr=log)
    proc.log_path = log.name  # type: ignore[attr-defined]
    return proc


def start_server(
    env: dict[str, str],
    *,
    workers: int = 1,
    app_factory: str = "tests.integration.slowapp:factory",
    ready_within_s: float = 60,
) -> tuple[subprocess.Popen[bytes], str]:
    """`kirana serve` on a free port, once it answers /readyz."""
    port = free_port()
    proc = server_process(env, port=port, workers=workers, app_factory=app_factory)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_within_s
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


PASSWORD = "correct-horse-battery"


def signed_in_customers(database_url: str, base: str, count: int) -> list[str]:
    """Create `count` customer accounts and sign each in through the real `/v1/auth/login` API.

    Returns their bearer access tokens. Accounts go in with SQL (registration would need the
    verification e-mail); sign-in, token issuance and every later check are the production path.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from kirana.api.access.models import UserRole
    from kirana.api.accounts import passwords
    from kirana.api.accounts.models import User
    from kirana.api.db.base import utcnow
    from kirana.api.db.urls import sync_url

    password_hash = passwords.hash_password(PASSWORD)
    engine = create_engine(sync_url(database_url))
    emails = [f"shopper-{uuid.uuid4().hex[:12]}@example.com" for _ in range(count)]
    with Session(engine) as session, session.begin():
        for email in emails:
            user = User(
                email=email, password_hash=password_hash, name="Shopper", password_changed_at=utcnow()
            )
            session.add(user)
            session.flush()
            session.add(UserRole(user_id=user.id, role="customer", granted_at=utcnow()))
    engine.dispose()
    tokens = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for email in emails:
            r = client.post("/v1/auth/login", json={"identifier": email, "password": PASSWORD})
            r.raise_for_status()
            tokens.append(str(r.json()["access_token"]))
    return tokens
