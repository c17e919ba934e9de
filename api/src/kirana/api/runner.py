"""`kirana run`: the whole shop on one machine with nothing installed by hand.

Starts real PostgreSQL and Redis (embedded wheels) unless URLs are configured, migrates, seeds
demo data, starts the fake Razorpay when no Razorpay keys are set, then runs the API and a
worker as child processes. What it runs is recorded in `<data dir>/run.json` (kirana.api.localshop),
which is how `kirana db backup` and the other commands in a second terminal find this shop.
Ctrl-C (or SIGTERM, SIGHUP) stops the API and worker first, then Redis and PostgreSQL, leaving no
process behind, and removes the record. A second run on the same data dir is refused while the
first is alive; the children of a killed run are stopped before a new one starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from kirana.api import devstack, localshop
from kirana.api.devrazorpay.server import FakeServer
from kirana.api.devsms import FakeSmsServer
from kirana.api.settings import Settings

console = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_PG_PORT = devstack.DEFAULT_PG_PORT
DEFAULT_REDIS_PORT = devstack.DEFAULT_REDIS_PORT
DEFAULT_FAKE_RAZORPAY_PORT = devstack.DEFAULT_FAKE_RAZORPAY_PORT

_Server = TypeVar("_Server", devstack.EmbeddedPostgres, devstack.EmbeddedRedis)


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket() as s:
        # as the servers bind: a port held only by closed connections (TIME_WAIT) counts as free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def _port(preferred: int) -> int:
    return preferred if _port_free(preferred) else devstack.free_port()


def _start_server(make: Callable[[int], _Server], preferred: int) -> tuple[_Server, str]:
    """Start an embedded server on `preferred` if free, else on a free port. Another process (a
    second `make run` in another checkout) can take the free-looking port between the check and
    the server's bind; the server then exits while starting, and one retry on a fresh port wins."""
    port = _port(preferred)
    server = make(port)
    try:
        return server, server.start()
    except devstack.DevStackError:
        if port != preferred or _port_free(preferred):
            raise  # not the race: the error is the server's own
    server = make(devstack.free_port())
    return server, server.start()


def _where(url: str, preferred: int) -> None:
    from urllib.parse import urlsplit

    port = urlsplit(url).port
    moved = f" (port {preferred} was taken)" if port != preferred else ""
    console.print(f"  [dim]{localshop.redact(url)}{moved}[/]")


@contextlib.contextmanager
def step(label: str) -> Iterator[None]:
    t0 = time.monotonic()
    with console.status(f"{label}…"):
        yield
    console.print(f"[green]✓[/] {label} [dim]({time.monotonic() - t0:.1f}s)[/]")


def _until(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    """Poll `ready` (an OSError or Redis error counts as not yet) until it says so; fails when
    `proc` exits first or `timeout` passes."""
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise devstack.DevStackError(f"the {what} exited with code {proc.returncode} while starting")
        with contextlib.suppress(OSError, redis.RedisError):
            if ready():
                return
        time.sleep(0.1)
    raise devstack.DevStackError(f"the {what} was not ready within {timeout:.0f}s")


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    def answers() -> bool:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)

    _until(answers, proc, f"API at {url}", timeout)


def _wait_worker(redis_url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the worker has started its loops (its Redis connections show in CLIENT LIST under
    its name), so that what a ready shop is asked for at once (a sign-up's code) is handled."""
    import redis

    from kirana.api.redis import worker_client_name

    name = worker_client_name(proc.pid)
    with redis.Redis.from_url(redis_url, socket_timeout=2, decode_responses=True) as client:
        _until(lambda: any(c.get("name") == name for c in client.client_list()), proc, "worker", timeout)


def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _start_fake_razorpay(settings: Settings, api_port: int) -> FakeServer:
    """No Razorpay keys: the fake Razorpay (kirana.api.devrazorpay) stands in, posting its
    webhooks to this shop; `kirana dev pay` finds it through the run record."""
    with step("Razorpay (local fake, no keys set) starting"):
        fake = FakeServer(
            port=_port(DEFAULT_FAKE_RAZORPAY_PORT),
            webhook_url=f"http://{settings.host}:{api_port}/v1/webhooks/razorpay",
        ).start()
    console.print(f"  [dim]{fake.base_url}; pay an order with `kirana dev pay ORDER_ID --method upi`[/]")
    return fake


def fake_env(fake: FakeServer) -> dict[str, str]:
    return {
        "KIRANA_RAZORPAY_KEY_ID": fake.account.key_id,
        "KIRANA_RAZORPAY_KEY_SECRET": fake.account.key_secret,
        "KIRANA_RAZORPAY_WEBHOOK_SECRET": fake.account.webhook_secret,
        "KIRANA_RAZORPAY_BASE_URL": fake.base_url,
    }


def _claim(data: Path) -> localshop.RunState:
    """Record this run in the data dir, refusing if another live run holds it."""
    previous = localshop.read(localshop.state_path(data))
    if previous is not None and localshop.is_alive(previous):
        raise devstack.DevStackError(
            f"a shop is already running from {data} ({localshop.describe(previous)}); "
            "stop it first, or use another KIRANA_DATA_DIR"
        )
    if previous is not None:
        stopped = localshop.reap(previous)
        if stopped:
            console.print(f"[dim]stopped the {' and '.join(stopped)} a killed run left behind[/]")
    state = localshop.this_process()
    localshop.write(data, state)
    return state


def run(settings: Settings, *, port: int | None, workers: int, seed: bool) -> int:
    started = time.monotonic()
    data = settings.data_dir.resolve()
    pg: devstack.EmbeddedPostgres | None = None
    redis: devstack.EmbeddedRedis | None = None
    children: list[subprocess.Popen[bytes]] = []
    stopping = False
    fake: FakeServer | None = None
    sms: FakeSmsServer | None = None
    state: localshop.RunState | None = None

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        state = _claim(data)
        api_port = port or settings.port
        if not _port_free(api_port, settings.host):
            raise devstack.DevStackError(
                f"port {api_port} on {settings.host} is taken; stop what uses it or pass --port"
            )
        db_url = settings.database_url
        if not db_url:
            with step("PostgreSQL (embedded) starting"):
                pg, db_url = _start_server(
                    lambda p: devstack.EmbeddedPostgres(data / "postgres", port=p), DEFAULT_PG_PORT
                )
            _where(db_url, DEFAULT_PG_PORT)
        redis_url = settings.redis_url
        if not redis_url:
            with step("Redis (embedded) starting"):
                redis, redis_url = _start_server(
                    lambda p: devstack.EmbeddedRedis(data / "redis", port=p), DEFAULT_REDIS_PORT
                )
            _where(redis_url, DEFAULT_REDIS_PORT)
        state = state.model_copy(
            update={
                "database_url": db_url,
                "database": "embedded" if pg else "configured",
                "redis_url": redis_url,
                "redis": "embedded" if redis else "configured",
                "children": {
                    name: localshop.child(server.proc.pid)
                    for name, server in (("postgres", pg), ("redis", redis))
                    if server is not None and server.proc is not None
                },
            }
        )
        localshop.write(data, state)

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

        env = os.environ | {
            "KIRANA_DATABASE_URL": db_url,
            "KIRANA_REDIS_URL": redis_url,
            "KIRANA_DATA_DIR": str(data),
        }
        if not settings.razorpay_key_id:
            fake = _start_fake_razorpay(settings, api_port)
            env |= fake_env(fake)
            state = state.model_copy(
                update={
                    "razorpay_base_url": fake.base_url,
                    "razorpay_key_id": fake.account.key_id,
                    "razorpay_key_secret": fake.account.key_secret,
                    "razorpay_webhook_secret": fake.account.webhook_secret,
                }
            )
        if settings.sms_provider == "console":  # no SMS provider set: the local gateway and inbox
            with step("SMS gateway (local, with an inbox) starting"):
                sms = FakeSmsServer().start()
            console.print(f"  [dim]texts sent: {sms.base_url}/messages?to=+91...[/]")
            env |= sms.env()
            state = state.model_copy(update={"sms_gateway_url": sms.base_url})
        env.setdefault("KIRANA_DRAIN_SECONDS", "0")  # nobody routes traffic to a laptop
        env.setdefault("KIRANA_LOG_JSON", "false" if sys.stderr.isatty() else "true")
        api_url = f"http://{settings.host}:{api_port}"
        with step(f"API serving on {api_url}"):
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
            state = state.model_copy(
                update={
                    "api_url": api_url,
                    "children": state.children
                    | {"api": localshop.child(api.pid), "worker": localshop.child(worker.pid)},
                }
            )
            localshop.write(data, state)
            _wait_ready(f"{api_url}/readyz", api, 60)
        with step("Worker started"):
            _wait_worker(redis_url, worker, 120)
        state = state.model_copy(update={"status": "ready"})
        localshop.write(data, state)
        console.print(
            f"[bold green]Kirana is ready[/] in {time.monotonic() - started:.1f}s: "
            f"{api_url}/docs   (Ctrl-C stops everything)"
        )
        console.print(
            f"  [dim]other terminals find this shop through {localshop.state_path(data)}: "
            "try `kirana db current`, `kirana db backup`, `kirana status`[/]"
        )
        while not stopping:
            for proc in children:
                if proc.poll() is not None:
                    console.print(f"[red]a child process exited with code {proc.returncode}; stopping[/]")
                    return 1
            time.sleep(0.2)
        return 0
    except devstack.DevStackError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 1
    finally:
        if state is not None:  # None: refused before anything started
            console.print("[dim]stopping…[/]")
            for proc in children:
                _stop(proc)
            if fake is not None:
                fake.stop()
            if sms is not None:
                sms.stop()
            if redis is not None:
                redis.stop()
            if pg is not None:
                pg.stop()
            localshop.remove(data, state)
            console.print("[dim]stopped[/]")
