"""`kirana run`: the whole shop on one machine with nothing installed by hand.

Starts real PostgreSQL and Redis (embedded wheels) unless URLs are configured, migrates, seeds
demo data, starts the fake Razorpay when no Razorpay keys are set, then runs the API and a
worker as child processes. Ctrl-C (or SIGTERM) stops the API
and worker first, then Redis and PostgreSQL, leaving no process behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from kirana.api import devstack
from kirana.api.devrazorpay.server import FakeServer
from kirana.api.settings import Settings

console = Console(stderr=True, highlight=False)

DEFAULT_PG_PORT = 54329
DEFAULT_REDIS_PORT = 63799
DEFAULT_FAKE_RAZORPAY_PORT = 8010


def _port(preferred: int) -> int:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return devstack.free_port()


@contextlib.contextmanager
def step(label: str) -> Iterator[None]:
    t0 = time.monotonic()
    with console.status(f"{label}…"):
        yield
    console.print(f"[green]✓[/] {label} [dim]({time.monotonic() - t0:.1f}s)[/]")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise devstack.DevStackError(f"the API exited with code {proc.returncode} while starting")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise devstack.DevStackError(f"the API was not ready at {url} within {timeout:.0f}s")


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _start_fake_razorpay(settings: Settings, data: Path, db_url: str, api_port: int) -> FakeServer:
    """No Razorpay keys: the fake Razorpay (kirana.api.devrazorpay) stands in, posting its
    webhooks to this shop; `kirana dev pay` finds it through `<data>/devrazorpay.json`."""
    from kirana.api.payments.cli import write_dev_file

    with step("Razorpay (local fake, no keys set) starting"):
        fake = FakeServer(
            port=_port(DEFAULT_FAKE_RAZORPAY_PORT),
            webhook_url=f"http://{settings.host}:{api_port}/v1/webhooks/razorpay",
        ).start()
        write_dev_file(
            data,
            database_url=db_url,
            base_url=fake.base_url,
            key_id=fake.account.key_id,
            key_secret=fake.account.key_secret,
        )
    console.print(f"  [dim]{fake.base_url}; pay an order with `kirana dev pay ORDER_ID --method upi`[/]")
    return fake


def fake_env(fake: FakeServer) -> dict[str, str]:
    return {
        "KIRANA_RAZORPAY_KEY_ID": fake.account.key_id,
        "KIRANA_RAZORPAY_KEY_SECRET": fake.account.key_secret,
        "KIRANA_RAZORPAY_WEBHOOK_SECRET": fake.account.webhook_secret,
        "KIRANA_RAZORPAY_BASE_URL": fake.base_url,
    }


def run(settings: Settings, *, port: int | None, workers: int, seed: bool) -> int:
    started = time.monotonic()
    data = settings.data_dir.resolve()
    pg: devstack.EmbeddedPostgres | None = None
    redis: devstack.EmbeddedRedis | None = None
    children: list[subprocess.Popen[bytes]] = []
    stopping = False
    fake: FakeServer | None = None

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        db_url = settings.database_url
        if not db_url:
            with step("PostgreSQL (embedded) starting"):
                pg = devstack.EmbeddedPostgres(data / "postgres", port=_port(DEFAULT_PG_PORT))
                db_url = pg.start()
        redis_url = settings.redis_url
        if not redis_url:
            with step("Redis (embedded) starting"):
                redis = devstack.EmbeddedRedis(data / "redis", port=_port(DEFAULT_REDIS_PORT))
                redis_url = redis.start()

        from kirana.api.db.lifecycle import Lifecycle, migrations_dir

        with step("Schema migrated"):
            lc = Lifecycle(db_url, scripts_path=migrations_dir(settings.migrations_dir))
            result = lc.migrate()
        if result["changed"]:
            console.print(
                f"  [dim]applied {len(result.get('applied', []))} revision(s), now at {result['to']}[/]"
            )
        if seed and settings.seed_demo_data:
            from kirana.api import seed as seeding

            with step("Demo data checked"):
                engine = lc.engine()
                try:
                    with engine.begin() as conn:
                        created = seeding.run_all(conn)
                finally:
                    engine.dispose()
            for ref, n in created.items():
                if n:
                    console.print(f"  [dim]{ref}: {n} rows[/]")

        api_port = port or settings.port
        env = os.environ | {
            "KIRANA_DATABASE_URL": db_url,
            "KIRANA_REDIS_URL": redis_url,
            "KIRANA_DATA_DIR": str(data),
        }
        if not settings.razorpay_key_id:
            fake = _start_fake_razorpay(settings, data, db_url, api_port)
            env |= fake_env(fake)
        env.setdefault("KIRANA_DRAIN_SECONDS", "0")  # nobody routes traffic to a laptop
        env.setdefault("KIRANA_LOG_JSON", "false" if sys.stderr.isatty() else "true")
        with step(f"API serving on http://{settings.host}:{api_port}"):
            api = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kirana.api",
                    "serve",
                    "--port",
                    str(api_port),
                    "--workers",
                    str(workers),
                ],
                env=env,
                start_new_session=True,
            )
            children.append(api)
            worker = subprocess.Popen(
                [sys.executable, "-m", "kirana.workers"], env=env, start_new_session=True
            )
            children.append(worker)
            _wait_ready(f"http://{settings.host}:{api_port}/readyz", api, 60)
        console.print(
            f"[bold green]Kirana is ready[/] in {time.monotonic() - started:.1f}s: "
            f"http://{settings.host}:{api_port}/docs   (Ctrl-C stops everything)"
        )
        while not stopping:
            for child in children:
                if child.poll() is not None:
                    console.print(f"[red]a child process exited with code {child.returncode}; stopping[/]")
                    return 1
            time.sleep(0.2)
        return 0
    except devstack.DevStackError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 1
    finally:
        console.print("[dim]stopping…[/]")
        for child in children:
            _stop(child)
        if fake is not None:
            fake.stop()
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()
        console.print("[dim]stopped[/]")
