"""`make test-load`: the load run against a shop, starting a `kirana run` for it when none runs.

    python -m tests.load.withrun [tests.load.run arguments]

With `--host`, or while the `kirana run` in `.local/run.json` (`KIRANA_DATA_DIR`) is alive, this
is `python -m tests.load.run` unchanged. Otherwise it starts `kirana run` on loopback
(`KIRANA_HOST=127.0.0.1`, a free port, a fresh data dir under `.local/load-runs/`), waits at most
`START_TIMEOUT_S` for its record to say ready, runs the load against it (its record gives the
fake Razorpay, the SMS inbox and the webhook secret), then stops it with Ctrl-C (killed if it
has not gone within a minute) and removes the data dir; its output stays in `kirana-run.log`
beside the load's results. Exits as the load run does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from kirana.api import localshop
from kirana.api.devstack import free_port
from tests.load import run

START_TIMEOUT_S = 300.0  # a first start seeds the catalogue: minutes on a busy machine


def live_record() -> Path | None:
    """The record of a `kirana run` that is alive, if there is one."""
    data = Path(os.environ.get("KIRANA_DATA_DIR") or run.REPO / ".local")
    state = localshop.read(localshop.state_path(data))
    return localshop.state_path(data) if state and localshop.is_alive(state) and state.api_url else None


def _wait_ready(proc: subprocess.Popen[bytes], record: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        state = localshop.read(record)
        if state is not None and state.status == "ready" and state.pid == proc.pid:
            return True
        time.sleep(0.5)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> bool:
    """Ctrl-C, as a developer stops it; False when it had to be killed (its servers, in their
    own sessions, may still be running on the data: it is then kept)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--host" in argv or any(a.startswith("--host=") for a in argv) or live_record():
        return run.main(argv)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = run.REPO / "bench" / "results" / "load" / stamp
    if "--out" in argv:
        out = Path(argv[argv.index("--out") + 1])
    else:
        argv += ["--out", str(out)]
    out.mkdir(parents=True, exist_ok=True)
    data = run.REPO / ".local" / "load-runs" / stamp
    data.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIRANA_")}
    env |= {"KIRANA_DATA_DIR": str(data), "KIRANA_HOST": "127.0.0.1", "KIRANA_LOG_LEVEL": "WARNING"}
    print(f"no `kirana run` is running: starting one on 127.0.0.1 (data: {data})")  # noqa: T201
    with (out / "kirana-run.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kirana.api", "run", "--port", str(free_port())],
            env=env,
            cwd=run.REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            if not _wait_ready(proc, localshop.state_path(data), START_TIMEOUT_S):
                print(
                    f"error: `kirana run` was not ready in {START_TIMEOUT_S:.0f}s; see {log.name}",
                    file=sys.stderr,
                )  # noqa: T201
                return 1
            return run.main([*argv, "--record", str(localshop.state_path(data))])
        finally:
            if _stop(proc):
                shutil.rmtree(data, ignore_errors=True)
            else:
                print(f"`kirana run` had to be killed; its data is left in {data}", file=sys.stderr)  # noqa: T201


if __name__ == "__main__":
    sys.exit(main())
