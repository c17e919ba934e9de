"""The shop `kirana run` started on this machine, as other `kirana` commands find it.

`kirana run` records what it runs (the PostgreSQL, Redis, API and fake Razorpay URLs, and the
pids of itself and its children) in `<data dir>/run.json`, mode 0600 because it can hold the
fake Razorpay's keys and configured URLs. It rewrites the file as servers come up, removes it
on a clean stop, and a record whose `kirana run` process is gone is stale. Every other command
that needs the database or Redis calls `discover`: a URL set in the environment or `.env` wins,
else the running shop's URL is used, else it fails with one line (`NoShop`, exit code 2).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

import psutil
from pydantic import BaseModel, SecretStr, ValidationError

from kirana.api.settings import Settings

STATE_FILE = "run.json"
Need = Literal["database", "redis", "razorpay"]
_VARIABLES: dict[Need, str] = {
    "database": "KIRANA_DATABASE_URL",
    "redis": "KIRANA_REDIS_URL",
    "razorpay": "KIRANA_RAZORPAY_KEY_ID",
}


class RunState(BaseModel):
    """What one `kirana run` runs; `pid` and `started` (its create time) identify the process."""

    pid: int
    started: float
    status: Literal["starting", "ready"] = "starting"
    database_url: str = ""
    database: Literal["embedded", "configured", ""] = ""
    redis_url: str = ""
    redis: Literal["embedded", "configured", ""] = ""
    api_url: str = ""
    razorpay_base_url: str = ""
    razorpay_key_id: str = ""
    razorpay_key_secret: str = ""
    razorpay_webhook_secret: str = ""
    sms_gateway_url: str = ""  # the local SMS gateway (kirana.api.devsms), its inbox at /messages
    children: dict[str, tuple[int, float]] = {}  # name -> (pid, create time)


class NoShop(Exception):
    """Nothing configured and no running shop: one line for the user (exit code 2)."""


def _create_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def this_process() -> RunState:
    """A fresh record for the calling process (`kirana run`)."""
    pid = os.getpid()
    return RunState(pid=pid, started=_create_time(pid) or 0.0)


def child(pid: int) -> tuple[int, float]:
    return (pid, _create_time(pid) or 0.0)


def _same_process(pid: int, started: float) -> bool:
    # A pid can be reused after the process died: the create time tells them apart.
    now = _create_time(pid)
    return now is not None and abs(now - started) < 1.0


def is_alive(state: RunState) -> bool:
    return _same_process(state.pid, state.started)


def state_path(data_dir: Path) -> Path:
    return data_dir / STATE_FILE


def write(data_dir: Path, state: RunState) -> Path:
    """Replace the record atomically; only the owner can read it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = state_path(data_dir)
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(state.model_dump_json(indent=2) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def read(path: Path) -> RunState | None:
    """The record at `path`; None when there is none or it is unreadable (treated as absent)."""
    try:
        return RunState.model_validate_json(path.read_text())
    except (OSError, ValueError, ValidationError):
        return None


def remove(data_dir: Path, state: RunState) -> None:
    """Remove the record if it is still this run's (a newer run may have replaced it)."""
    path = state_path(data_dir)
    found = read(path)
    if found is not None and found.pid == state.pid and found.started == state.started:
        path.unlink(missing_ok=True)


def reap(state: RunState, timeout: float = 10) -> list[str]:
    """Stop the children (API, worker) a killed `kirana run` left running; their names.

    The embedded servers are left to kirana.api.devstack, which stops them through their pid
    files with the signal each needs for a clean shutdown.
    """
    stopped = []
    for name, (pid, started) in state.children.items():
        if name in ("postgres", "redis") or not _same_process(pid, started):
            continue
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except psutil.TimeoutExpired:
                proc.kill()
            stopped.append(name)
    return stopped


def _find(settings: Settings) -> Path:
    """Where to look for the record: the configured data dir, or the nearest `.local/run.json`
    from the working directory upwards (so a subdirectory of the project works too)."""
    if "data_dir" in settings.model_fields_set or settings.data_dir.is_absolute():
        return state_path(settings.data_dir.resolve())
    default = state_path(settings.data_dir.resolve())
    for parent in [Path.cwd(), *Path.cwd().parents]:
        candidate = state_path(parent / settings.data_dir)
        if candidate.exists():
            return candidate
    return default


def locate(settings: Settings) -> tuple[Path, RunState | None]:
    """The record `settings` point at (live or stale), and where it is or would be."""
    path = _find(settings)
    return path, read(path)


def redact(url: str) -> str:
    """The URL with any password replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _origin(variable: str) -> str:
    return f"{variable} in the environment" if variable in os.environ else f"{variable} in .env"


@dataclass
class Found:
    """Settings with what was missing filled in from the running shop, and where each came from."""

    settings: Settings
    sources: list[str] = field(default_factory=list)


def discover(settings: Settings, needs: tuple[Need, ...]) -> Found:
    """Fill in the URLs `needs` names that `settings` lacks from the running `kirana run`.

    Raises NoShop (one line) when the database or Redis is needed, unset, and no live shop has it.
    Razorpay is filled in only when no key is configured and the shop runs the fake.
    """
    configured = {
        "database": settings.database_url,
        "redis": settings.redis_url,
        "razorpay": settings.razorpay_key_id,
    }
    found = Found(settings)
    missing = [n for n in needs if not configured[n]]
    for need in needs:
        if configured[need]:
            value = {"database": settings.database_url, "redis": settings.redis_url}.get(need)
            shown = redact(value) if value else "the configured keys"
            found.sources.append(f"{need}: {shown} (from {_origin(_VARIABLES[need])})")
    if not missing:
        return found
    path, state = locate(settings)
    live = state is not None and is_alive(state)
    update: dict[str, object] = {}
    for need in missing:
        variable = _VARIABLES[need]
        if need == "razorpay":
            if live and state is not None and state.razorpay_key_id:
                update |= {
                    "razorpay_key_id": state.razorpay_key_id,
                    "razorpay_key_secret": SecretStr(state.razorpay_key_secret),
                    "razorpay_webhook_secret": SecretStr(state.razorpay_webhook_secret),
                    "razorpay_base_url": state.razorpay_base_url,
                }
                found.sources.append(
                    f"razorpay: the fake at {state.razorpay_base_url} "
                    f"(from the running `kirana run`, pid {state.pid}, {path})"
                )
            continue
        url = (state.database_url if need == "database" else state.redis_url) if state else ""
        if live and state is not None and url:
            update[f"{need}_url"] = url
            found.sources.append(
                f"{need}: {redact(url)} (from the running `kirana run`, pid {state.pid}, {path})"
            )
            continue
        fix = f"start the shop with `kirana run` (or `make run`) or set {variable}"
        if state is None:
            raise NoShop(f"{variable} is not set and no `kirana run` is running (no {path}); {fix}")
        if not live:
            raise NoShop(
                f"{variable} is not set and the `kirana run` recorded in {path} (pid {state.pid}) "
                f"is no longer running (stale record); {fix}"
            )
        raise NoShop(f"{variable} is not set and the `kirana run` (pid {state.pid}) is still starting")
    found.settings = settings.model_copy(update=update)
    return found


def describe(state: RunState) -> str:
    """One line naming a live run, for refusing a second one on the same data dir."""
    api = f", API {state.api_url}" if state.api_url else ""
    return f"pid {state.pid}{api}"


def dump_public(state: RunState) -> str:
    """The record without secrets (for `kirana status`-style output)."""
    data = state.model_dump()
    for key in ("razorpay_key_secret", "razorpay_webhook_secret"):
        if data.get(key):
            data[key] = "***"
    data["database_url"] = redact(data["database_url"])
    data["redis_url"] = redact(data["redis_url"])
    return json.dumps(data, indent=2)
