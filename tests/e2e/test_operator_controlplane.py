"""Faults of the control plane itself under a release, on the testbed's real processes: the
kube-apiserver restarted during a migration and during a rollout, and etcd restarted during a
migration.

Each release either completes or fails safely, and either way the database is at a known
revision that matches the version the app runs; every Job step ran once. (Cut watch streams and
a deleted migration pod are tests/e2e/test_operator_faults.py; both operator replicas killed is
tests/e2e/test_operator_chart.py.)
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from . import k8s
from .controlplane import ControlPlane
from .jobrunner import Shop, shoprelease

NAME = "shop"


@pytest.fixture
def control_plane(kubeconfig: Path) -> ControlPlane:
    if os.environ.get("KIRANA_TEST_KUBECONFIG"):
        pytest.skip("restarts the testbed's own processes; KIRANA_TEST_KUBECONFIG names another cluster")
    return ControlPlane.of(kubeconfig)


def settled(shop: Shop, version: str, timeout: float = 300) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        status = shop.get(NAME).get("status") or {}
        rel = status.get("release") or {}
        return status if rel.get("version") == version and rel.get("outcome") else None

    return k8s.wait_for(f"the release of {version} to end", probe, timeout=timeout)


def assert_known_state(shop: Shop, status: dict[str, Any], v1_revision: str | None) -> str:
    """The app and the database agree: 2.0.0 and its schema, or 1.0.0 and the old one."""
    outcome = status["release"]["outcome"]
    if outcome == "Succeeded":
        assert status["phase"] == "Ready" and status["currentVersion"] == "2.0.0"
        assert shop.schema_revision() == status["schemaRevision"] != v1_revision
        assert shop.table_exists("e2e_release_marker")
        want = "kirana-api:2.0.0"
    else:
        assert status["phase"] == "Degraded" and status["currentVersion"] == "1.0.0", status
        assert shop.schema_revision() == v1_revision
        assert not shop.table_exists("e2e_release_marker")
        want = "kirana-api:1.0.0"
    k8s.wait_for(
        f"the app on {want}",
        lambda: shop.deployment_images(NAME) == {"api": want, "workers": want},
        timeout=60,
    )
    return str(outcome)


def migrate_pod_running(shop: Shop) -> Any:
    core = client.CoreV1Api(shop.api)

    def probe() -> Any | None:
        pods = core.list_namespaced_pod(shop.namespace, label_selector="kirana.dev/step=migrate").items
        fresh = [p for p in pods if "2.0.0" in p.spec.containers[0].image and p.status.phase == "Running"]
        return fresh[0] if fresh else None

    return k8s.wait_for("the 2.0.0 migration pod to run", probe, timeout=120)


def phase_in(shop: Shop, phases: set[str], timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = (shop.get(NAME).get("status") or {}).get("phase", "")
        if phase in phases:
            return str(phase)
        time.sleep(0.05)
    raise AssertionError(f"never saw a phase in {phases}; last {shop.get(NAME).get('status')}")


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_control_plane_restarted_during_the_migration(
    shop: Shop, control_plane: ControlPlane, component: str
) -> None:
    shop.apply(shoprelease(NAME, "1.0.0"))
    shop.wait_phase(NAME, "Ready")
    v1_revision = shop.schema_revision()
    shop.runner.hold()  # the migration pod stays Running, its command not yet run
    shop.apply(
        shoprelease(NAME, "2.0.0", backup={"beforeUpgrade": False}, failurePolicy={"database": "Downgrade"})
    )
    migrate_pod_running(shop)
    down = control_plane.restart(component, down_for=3)
    assert down >= 3
    shop.runner.release()
    status = settled(shop, "2.0.0")
    assert assert_known_state(shop, status, v1_revision) == "Succeeded", status
    assert shop.runner.commands() == ["db migrate", "db migrate"]  # each release migrated once


def test_apiserver_restarted_during_the_rollout(shop: Shop, control_plane: ControlPlane) -> None:
    spec = {"api": {"replicas": 4}, "rollout": {"bakeSeconds": 5, "progressDeadlineSeconds": 120}}
    shop.apply(shoprelease(NAME, "1.0.0", **spec))
    shop.wait_phase(NAME, "Ready")
    v1_revision = shop.schema_revision()
    shop.apply(shoprelease(NAME, "2.0.0", **spec))
    phase_in(shop, {"RollingOut"})
    control_plane.restart("kube-apiserver", down_for=3)
    status = settled(shop, "2.0.0")
    assert assert_known_state(shop, status, v1_revision) == "Succeeded", status
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate"]
