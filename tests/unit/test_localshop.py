"""How a command finds the local shop from the run record: configured URLs win, a live record
fills in what is missing, a stale or missing one is a one-line refusal (kirana.api.localshop)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kirana.api import localshop
from kirana.api.settings import Settings

URL = "postgresql://postgres@127.0.0.1:54400/kirana"


@pytest.fixture(autouse=True)
def _nothing_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KIRANA_"):
            monkeypatch.delenv(name)


def _record(data: Path, *, alive: bool = True, **fields: str) -> localshop.RunState:
    if alive:
        state = localshop.this_process()
    else:
        dead = subprocess.Popen(["true"])
        dead.wait()
        state = localshop.RunState(pid=dead.pid, started=1.0)
    state = state.model_copy(update={"status": "ready", "database_url": URL} | fields)
    localshop.write(data, state)
    return state


def _settings(data: Path, **values: str) -> Settings:
    return Settings(data_dir=data, **values)  # type: ignore[arg-type]


def test_a_live_record_fills_in_the_database_and_says_so(tmp_path: Path) -> None:
    _record(tmp_path, redis_url="redis://127.0.0.1:63800/0")
    found = localshop.discover(_settings(tmp_path), ("database", "redis"))
    assert found.settings.database_url == URL
    assert found.settings.redis_url == "redis://127.0.0.1:63800/0"
    assert all("from the running `kirana run`" in line for line in found.sources)
    assert oct((tmp_path / "run.json").stat().st_mode & 0o777) == "0o600"


def test_a_configured_url_wins_and_its_password_is_not_shown(tmp_path: Path) -> None:
    _record(tmp_path)
    mine = "postgresql://app:s3cret@db.internal:5432/shop"
    found = localshop.discover(_settings(tmp_path, database_url=mine), ("database",))
    assert found.settings.database_url == mine
    assert "s3cret" not in found.sources[0] and "app:***@db.internal:5432" in found.sources[0]


def test_stale_and_missing_records_are_refused_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(localshop.NoShop, match=r"^KIRANA_DATABASE_URL is not set and no `kirana run`"):
        localshop.discover(_settings(tmp_path), ("database",))
    state = _record(tmp_path, alive=False)
    with pytest.raises(localshop.NoShop) as stale:
        localshop.discover(_settings(tmp_path), ("database",))
    assert f"(pid {state.pid}) is no longer running (stale record)" in str(stale.value)
    assert "\n" not in str(stale.value)


def test_a_reused_pid_is_not_mistaken_for_the_run(tmp_path: Path) -> None:
    state = localshop.this_process().model_copy(update={"database_url": URL})
    localshop.write(tmp_path, state.model_copy(update={"started": state.started - 3600}))
    with pytest.raises(localshop.NoShop, match="stale record"):
        localshop.discover(_settings(tmp_path), ("database",))


def test_razorpay_comes_from_the_record_only_without_keys(tmp_path: Path) -> None:
    _record(tmp_path, razorpay_key_id="rzp_test_x", razorpay_base_url="http://127.0.0.1:8010")
    fake = localshop.discover(_settings(tmp_path), ("database", "razorpay")).settings
    assert fake.razorpay_base_url == "http://127.0.0.1:8010" and fake.razorpay_key_id == "rzp_test_x"
    real = localshop.discover(_settings(tmp_path, razorpay_key_id="rzp_live_y"), ("razorpay",)).settings
    assert real.razorpay_key_id == "rzp_live_y" and "razorpay.com" in real.razorpay_base_url


def test_the_default_data_dir_is_found_from_a_subdirectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _record(tmp_path / ".local")
    sub = tmp_path / "api" / "src"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    monkeypatch.delenv("KIRANA_DATA_DIR", raising=False)
    path, state = localshop.locate(Settings())
    assert path == tmp_path / ".local" / "run.json" and state is not None and state.pid == os.getpid()


def test_remove_leaves_a_newer_runs_record(tmp_path: Path) -> None:
    old = localshop.RunState(pid=1, started=1.0)
    new = _record(tmp_path)
    localshop.remove(tmp_path, old)
    assert localshop.read(tmp_path / "run.json") == new
    localshop.remove(tmp_path, new)
    assert not (tmp_path / "run.json").exists()
