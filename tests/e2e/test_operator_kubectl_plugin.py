"""`kubectl kirana` against the testbed with the real operator: what an SRE types during a release.

Each verb is run as the installed `kubectl-kirana` console script (through `kubectl` itself, which
finds plugins on PATH), reading and editing only the ShopRelease (and a ShopBackup).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from . import k8s
from .jobrunner import BIN, REPO, Shop, shoprelease

NAME = "shop"
PLUGIN = BIN / "kubectl-kirana"
Kirana = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def kirana(kubeconfig: Path, shop: Shop) -> Kirana:
    kubectl = REPO / ".local" / "bin" / "kubectl"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}

    def run(*args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(kubectl), "kirana", "-n", shop.namespace, *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


def test_the_plugin_is_found_by_kubectl(kirana: Kirana) -> None:
    assert PLUGIN.exists()
    out = kirana("--help")
    assert out.returncode == 0 and "status" in out.stdout and "wait" in out.stdout


def test_status_history_and_wait_through_a_release(shop: Shop, kirana: Kirana) -> None:
    shop.apply(shoprelease(NAME, "1.0.0"))
    done = kirana("wait", NAME, "--for=release", "--timeout=3m", timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1.0.0 is Ready" in done.stdout

    status = kirana("status", NAME)
    assert status.returncode == 0, status.stderr
    text = status.stdout
    assert "Phase:    Ready" in text
    assert "1.0.0 running, 1.0.0 wanted" in text
    assert f"{NAME}-api" in text and "ready 2/2  updated 2/2" in text
    assert f"{NAME}-workers" in text and "ready 1/1  updated 1/1" in text
    assert "migrate" in text and "Succeeded" in text
    assert "Ready        True" in text

    # Paused: the upgrade holds at its first step boundary; wait times out (exit 2).
    assert kirana("pause", NAME).returncode == 0
    assert shop.get(NAME)["spec"]["paused"] is True
    shop.apply(shoprelease(NAME, "2.0.0", paused=True))
    shop.wait_phase(NAME, "Paused")
    held = kirana("wait", NAME, "--timeout=5s")
    assert held.returncode == 2 and "timed out" in held.stdout
    assert shop.runner.commands() == ["db migrate"]

    assert kirana("resume", NAME).returncode == 0
    done = kirana("wait", NAME, "--timeout=4m", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert shop.get(NAME)["status"]["currentVersion"] == "2.0.0"
    history = kirana("history", NAME).stdout.splitlines()
    assert history[1].split()[:2] == ["2.0.0", "Succeeded"]
    assert history[2].split()[:2] == ["1.0.0", "Succeeded"]


def test_wait_exits_1_with_the_reason_when_the_release_fails(shop: Shop, kirana: Kirana) -> None:
    shop.apply(shoprelease(NAME, "1.0.0"))
    assert kirana("wait", NAME, "--timeout=3m", timeout=240).returncode == 0
    shop.apply(shoprelease(NAME, "3.0.0", failurePolicy={"database": "Downgrade"}))
    failed = kirana("wait", NAME, "--timeout=4m", timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "release of 3.0.0 failed: MigrationFailed" in failed.stdout


def test_backup_and_restore_with_confirmation(shop: Shop, kirana: Kirana) -> None:
    shop.apply(shoprelease(NAME, "1.0.0"))
    assert kirana("wait", NAME, "--timeout=3m", timeout=240).returncode == 0
    made = kirana("backup", NAME)
    assert made.returncode == 0, made.stderr
    backup = made.stdout.split()[0].removeprefix("shopbackup/")

    def completed() -> bool:
        obj = shop.custom.get_namespaced_custom_object(
            "kirana.dev", "v1alpha1", shop.namespace, "shopbackups", backup
        )
        return (obj.get("status") or {}).get("phase") == "Completed"

    k8s.wait_for(f"ShopBackup {backup} to complete", completed, timeout=120)
    assert backup in kirana("status", NAME).stdout

    refused = kirana("restore", NAME, backup, stdin="no\n")
    assert refused.returncode == 3 and "not restored" in refused.stdout
    assert "restore" not in shop.get(NAME)["spec"]

    asked = kirana("restore", NAME, backup, stdin=f"{NAME}\n")
    assert asked.returncode == 0, asked.stderr
    assert shop.get(NAME)["spec"]["restore"]["backupName"] == backup

    def restored() -> bool:
        rec = (shop.get(NAME).get("status") or {}).get("lastRestore") or {}
        return rec.get("outcome") == "Succeeded"

    k8s.wait_for("the restore to succeed", restored, timeout=180)
    assert "db restore" in shop.runner.commands()


def test_a_missing_release_is_a_one_line_error(kirana: Kirana) -> None:
    out = kirana("status", "nope")
    assert out.returncode == 3
    assert out.stderr.strip().startswith("error:") and "nope" in out.stderr


def test_abort_rolls_back_now_and_retry_releases_the_version_again(shop: Shop, kirana: Kirana) -> None:
    shop.apply(shoprelease(NAME, "1.0.0"))
    assert kirana("wait", NAME, "--timeout=3m", timeout=240).returncode == 0
    assert kirana("retry", NAME).returncode == 3  # nothing failed: nothing to retry
    shop.apply(shoprelease(NAME, "2.0.0", rollout={"bakeSeconds": 600, "progressDeadlineSeconds": 60}))
    shop.wait_phase(NAME, "Baking", timeout=180)
    asked = kirana("abort", NAME)
    assert asked.returncode == 0 and "abort" in asked.stdout, asked.stdout + asked.stderr
    failed = kirana("wait", NAME, "--timeout=4m", timeout=300)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Aborted" in failed.stdout
    status = shop.get(NAME)["status"]
    assert status["currentVersion"] == "1.0.0"
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}
    assert status["schemaRevision"] == shop.schema_revision()  # repaired by the failure policy (Restore)
    assert not shop.table_exists("e2e_release_marker")
    assert kirana("abort", NAME).returncode == 3  # nothing in flight any more

    shop.apply(shoprelease(NAME, "2.0.0"))  # a shorter bake; the version stays failed until retried
    retried = kirana("retry", NAME)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    done = kirana("wait", NAME, "--timeout=4m", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert shop.get(NAME)["status"]["currentVersion"] == "2.0.0"
    assert shop.table_exists("e2e_release_marker")
