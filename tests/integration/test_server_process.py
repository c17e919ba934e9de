"""Real server processes: graceful SIGTERM under load, and metrics across worker processes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import psutil

from kirana.api.devstack import free_port
from tests.integration.servers import server_process, start_server


def _env(database_url: str, redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "KIRANA_DATABASE_URL": database_url,
        "KIRANA_REDIS_URL": redis_url,
        "KIRANA_DATA_DIR": str(tmp_path),
        "KIRANA_ENVIRONMENT": "test",
        "KIRANA_LOG_LEVEL": "WARNING",
        **extra,
    }


async def test_sigterm_drains_without_failing_in_flight_requests(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = _env(
        database_url, redis_url, tmp_path, KIRANA_DRAIN_SECONDS="1.5", KIRANA_SHUTDOWN_GRACE_SECONDS="10"
    )
    proc, base = start_server(env)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            # 40 slow requests are in flight when SIGTERM arrives.
            in_flight = [asyncio.create_task(client.get("/slow", params={"ms": 2500})) for _ in range(40)]
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            # Readiness fails first, while the process still answers other requests.
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["shutdown"] == "draining"
            during = await client.get("/slow", params={"ms": 10})
            assert during.status_code == 200
            responses = await asyncio.gather(*in_flight)
        assert [r.status_code for r in responses] == [200] * 40
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_metrics_add_up_across_worker_processes(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    metrics_port = free_port()
    extra = {"KIRANA_DRAIN_SECONDS": "0", "KIRANA_METRICS_PORT": str(metrics_port)}
    env = _env(database_url, redis_url, tmp_path, **extra)
    proc, base = start_server(env, workers=2)
    try:
        n = 120
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            # New connections each time so both worker processes take a share.
            results = await asyncio.gather(
                *[httpx.AsyncClient(base_url=base).get("/slow", params={"ms": 20}) for _ in range(n)]
            )
            assert all(r.status_code == 200 for r in results)
            # /metrics is on its own port, not the API's.
            assert (await client.get("/metrics")).status_code == 404
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        count = re.search(
            r'kirana_http_requests_total\{method="GET",route="/slow",status="200"\} (\S+)', text
        )
        assert count is not None, text[:2000]
        assert float(count.group(1)) == n
        pids = set(re.findall(r'pid="(\d+)"', text))
        assert "kirana_http_requests_in_flight" in text
        assert len(pids) <= 2 or pids == set()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _failed_login_ip(env: dict[str, str], database_url: str) -> str:
    import psycopg

    proc, base = start_server(env)
    try:
        r = httpx.post(
            base + "/v1/auth/login",
            json={"identifier": "nobody@example.com", "password": "wrong-password-123"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert r.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT actor_ip FROM audit_log WHERE action = 'auth.login' ORDER BY seq DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return str(row[0])


def test_client_ip_comes_from_trusted_proxies_only(database_url: str, redis_url: str, tmp_path: Path) -> None:
    base_env = _env(database_url, redis_url, tmp_path, KIRANA_DRAIN_SECONDS="0")
    # The test client connects from 127.0.0.1: trusted by default, so its forwarded address counts.
    assert _failed_login_ip(base_env, database_url) == "203.0.113.9"
    # A proxy we do not trust cannot choose the client's address (or dodge per-IP limits).
    untrusted = base_env | {"KIRANA_FORWARDED_ALLOW_IPS": "10.1.2.3"}
    assert _failed_login_ip(untrusted, database_url) == "127.0.0.1"


def _listeners_and_connections(proc: subprocess.Popen[bytes], port: int) -> dict[int, tuple[set[int], int]]:
    """Per worker pid: the inodes of its listening sockets on `port`, and its accepted connections."""
    seen: dict[int, tuple[set[int], int]] = {}
    for worker in psutil.Process(proc.pid).children():
        try:
            conns = worker.net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        listening = {
            os.stat(f"/proc/{worker.pid}/fd/{c.fd}").st_ino
            for c in conns
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        accepted = sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)
        if listening:
            seen[worker.pid] = (listening, accepted)
    return seen


def test_each_worker_listens_on_its_own_socket_so_connections_spread(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """With one shared socket the first worker awake accepts a whole burst of connections
    (splits of 44/6 were common); with a socket per worker (SO_REUSEPORT) the kernel spreads
    them by hash."""
    proc, base = start_server(_env(database_url, redis_url, tmp_path, KIRANA_DRAIN_SECONDS="0"), workers=2)
    port = int(base.rsplit(":", 1)[1])
    clients: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 30
        while len(workers := _listeners_and_connections(proc, port)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the second worker may still be starting
        assert len(workers) == 2, workers
        inodes = [listening for listening, _ in workers.values()]
        assert all(len(x) == 1 for x in inodes) and not inodes[0] & inodes[1], inodes
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        deadline = time.monotonic() + 10
        counts = _listeners_and_connections(proc, port)
        while sum(n for _, n in counts.values()) < 50:
            assert time.monotonic() < deadline, counts
            time.sleep(0.05)
            counts = _listeners_and_connections(proc, port)
        # Binomial(50, 1/2): fewer than 10 on one side happens about twice in 100,000 bursts.
        assert all(n >= 10 for _, n in counts.values()), counts
    finally:
        for c in clients:
            c.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0


def test_a_second_server_on_a_taken_port_refuses_to_start(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Every worker's socket has SO_REUSEPORT, which would let another server's join the address
    unnoticed and take a share of the traffic; the parent checks first and stops."""
    env = _env(database_url, redis_url, tmp_path, KIRANA_DRAIN_SECONDS="0")
    proc, base = start_server(env, workers=2)
    try:
        port = int(base.rsplit(":", 1)[1])
        second = server_process(env | {"KIRANA_DATA_DIR": str(tmp_path / "second")}, port=port, workers=2)
        assert second.wait(timeout=30) == 3  # uvicorn's startup-failure code
        log = Path(second.log_path).read_text()  # type: ignore[attr-defined]
        assert f"cannot listen on 127.0.0.1:{port}" in log and "Address already in use" in log
        assert httpx.get(base + "/readyz").status_code == 200  # the first one is unharmed
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
