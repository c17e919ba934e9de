"""Small helpers for e2e tests that talk to a real Kubernetes API server.

Used by tests/e2e/conftest.py (to find or start the testbed) and by the tests
themselves (waiting for a condition, reading status). Every client here is
built from an explicit kubeconfig path: nothing reads $KUBECONFIG or
~/.kube/config, so a developer's own cluster is never touched by accident.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTBED_DIR = REPO_ROOT / "testbed"
# Where testbed/up.sh writes its kubeconfig (TESTBED_STATE moves it, as in testbed/lib.sh).
TESTBED_KUBECONFIG = Path(os.environ.get("TESTBED_STATE", REPO_ROOT / ".local" / "testbed")) / "kubeconfig"

T = TypeVar("T")


def pinned_versions() -> dict[str, str]:
    """The KEY=VALUE pins of testbed/versions.env."""
    pins = {}
    for line in (TESTBED_DIR / "versions.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            pins[key.strip()] = value.strip()
    return pins


def api_client(kubeconfig: Path) -> client.ApiClient:
    """An API client for exactly this kubeconfig file."""
    return config.new_client_from_config(config_file=str(kubeconfig))


def is_ready(kubeconfig: Path) -> bool:
    """True when the kubeconfig exists and its API server answers."""
    if not kubeconfig.is_file():
        return False
    try:
        with api_client(kubeconfig) as api:
            client.VersionApi(api).get_code(_request_timeout=5)
    except Exception:  # any failure means "not usable"
        return False
    return True


def run_script(name: str) -> None:
    """Run a testbed script (build.sh, up.sh, down.sh); its progress goes to the terminal."""
    subprocess.run([str(TESTBED_DIR / name)], check=True, cwd=REPO_ROOT)


def wait_for(what: str, probe: Callable[[], T | None], *, timeout: float = 60.0, interval: float = 0.25) -> T:
    """Call probe until it returns something truthy and return that; fail after timeout.

    The failure names what was awaited and the last value seen, so a red test
    says what the cluster was doing instead of only "timed out".
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}")
        time.sleep(interval)


def condition(obj: Any, kind: str) -> Any | None:
    """The status condition of the given type on a typed object, or None."""
    for cond in (obj.status.conditions or []) if obj.status else []:
        if cond.type == kind:
            return cond
    return None


def ignore_not_found(call: Callable[[], Any]) -> None:
    """Run a delete that may find its object already gone."""
    try:
        call()
    except ApiException as exc:
        if exc.status != 404:
            raise
