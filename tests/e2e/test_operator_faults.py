"""Faults under a release, on the testbed with the real operator: each release completes, or fails
safely with the database at a known revision and the app on a version that matches it.

Covered here: the migration Job's pod deleted while it runs; every connection between the operator
and the API server cut (its watch streams with them) during the migration and again during the
rollout. (The operator killed mid-release is tests/e2e/test_operator_failures.py.)
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kirana.api.devstack import free_port

from . import k8s
from .jobrunner import OperatorProcess, Shop, shoprelease

NAME = "shop"


def test_migration_pod_deleted_mid_run_fails_safely(shop: Shop) -> None:
    shop.apply(shoprelease(NAME, "1.0.0"))
    shop.wait_phase(NAME, "Ready")
    v1_revision = shop.schema_revision()
    core = client.CoreV1Api(shop.api)
    shop.runner.hold()  # the next Job pods stay Running with their command not yet run
    # Migrate first (no backup Job to hold), and a failure repaired by `kirana db rollback`.
    shop.apply(
        shoprelease(NAME, "2.0.0", backup={"beforeUpgrade": False}, failurePolicy={"database": "Downgrade"})
    )

    def migrate_pod() -> Any | None:
        pods = core.list_namespaced_pod(shop.namespace, label_selector="kirana.dev/step=migrate").items
        fresh = [p for p in pods if "2.0.0" in p.spec.containers[0].image and p.status.phase == "Running"]
        return fresh[0] if fresh else None

    pod = k8s.wait_for("the 2.0.0 migration pod to run", migrate_pod, timeout=120)
    core.delete_namespaced_pod(pod.metadata.name, shop.namespace, grace_period_seconds=0)
    shop.runner.release()

    def settled() -> dict[str, Any] | None:
        status = shop.get(NAME).get("status") or {}
        rel = status.get("release") or {}
        return status if rel.get("version") == "2.0.0" and rel.get("outcome") else None

    status = k8s.wait_for("the release of 2.0.0 to end", settled, timeout=300)
    if status["release"]["outcome"] == "Succeeded":  # the Job made a new pod and it ran
        assert status["currentVersion"] == "2.0.0"
        assert shop.schema_revision() == status["schemaRevision"] != v1_revision
        assert shop.deployment_images(NAME) == {"api": "kirana-api:2.0.0", "workers": "kirana-api:2.0.0"}
    else:  # failed: the app stays on 1.0.0 and the database is back at 1.0.0's revision
        assert status["phase"] == "Degraded"
        assert status["release"]["failure"]["reason"] == "MigrationFailed"
        assert status["currentVersion"] == "1.0.0"
        assert shop.schema_revision() == v1_revision
        assert status["schemaRevision"] == v1_revision
        assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}


class CuttableProxy:
    """A TCP relay on loopback between the operator and the API server (TLS passes through it
    untouched) that can drop every open connection at once, as a failing load balancer would."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []
        self.accepted = 0
        self.cut_connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                down.close()
                continue
            up.settimeout(None)
            with self.lock:
                self.open += [down, up]
                self.accepted += 1
            for a, b in ((down, up), (up, down)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s_ in (src, dst):
                with contextlib.suppress(OSError):
                    s_.shutdown(socket.SHUT_RDWR)

    def cut(self) -> int:
        """Reset every open connection; how many there were."""
        with self.lock:
            victims, self.open = self.open, []
        for s_ in victims:
            with contextlib.suppress(OSError):
                s_.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s_.close()
        self.cut_connections += len(victims) // 2
        return len(victims) // 2

    def close(self) -> None:
        self.listener.close()
        self.cut()


@pytest.fixture
def proxy(kubeconfig: Path, tmp_path: Path) -> Iterator[tuple[CuttableProxy, Path]]:
    cfg = yaml.safe_load(kubeconfig.read_text())
    server = cfg["clusters"][0]["cluster"]["server"]
    host, port = server.removeprefix("https://").rsplit(":", 1)
    relay = CuttableProxy((host, int(port)))
    cfg["clusters"][0]["cluster"]["server"] = f"https://{host}:{relay.port}"
    path = tmp_path / "proxied.kubeconfig"
    path.write_text(yaml.safe_dump(cfg))
    try:
        yield relay, path
    finally:
        relay.close()


def _phase_in(shop: Shop, phases: set[str], timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = (shop.get(NAME).get("status") or {}).get("phase", "")
        if phase in phases:
            return str(phase)
        time.sleep(0.05)
    raise AssertionError(f"never saw a phase in {phases}; last {shop.get(NAME).get('status')}")


def test_watch_streams_cut_mid_release_the_operator_reconnects_and_finishes(
    shop_world: Shop, proxy: tuple[CuttableProxy, Path], tmp_path: Path
) -> None:
    relay, proxied = proxy
    shop = shop_world
    shop.operator = OperatorProcess(proxied, shop.namespace, tmp_path)
    shop.operator.start()
    shop.apply(shoprelease(NAME, "1.0.0"))
    shop.wait_phase(NAME, "Ready")
    shop.apply(shoprelease(NAME, "2.0.0", rollout={"bakeSeconds": 5}))
    _phase_in(shop, {"Migrating"})
    assert relay.cut() > 0  # the operator's watches (and any request in flight) are gone
    _phase_in(shop, {"RollingOut", "Baking"})
    assert relay.cut() > 0
    status = shop.wait_phase(NAME, "Ready", timeout=240)["status"]
    assert status["currentVersion"] == "2.0.0"
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate"]  # each step once
    assert relay.accepted > relay.cut_connections  # it came back through the relay after each cut
    assert shop.deployment_images(NAME) == {"api": "kirana-api:2.0.0", "workers": "kirana-api:2.0.0"}
