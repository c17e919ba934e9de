"""ShopRelease failure handling end to end: a health gate that fails after the migration ran, and an
operator killed in the middle of a release.

The health gate reads a local server that speaks Prometheus' instant-query API (the only thing
faked); the restore runs the real `kirana db restore` against PostgreSQL via the job runner.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes import client

from kirana.api.devstack import free_port

from .jobrunner import DeploymentWatch, Shop, shoprelease

NAME = "shop"


class FakePrometheus:
    """Answers /api/v1/query with one vector sample of `value` (None: an empty result)."""

    def __init__(self) -> None:
        self.value: float | None = 0.0
        self.queries: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                outer.queries.append(self.path)
                result = (
                    [] if outer.value is None else [{"metric": {}, "value": [time.time(), str(outer.value)]}]
                )
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    prom = FakePrometheus()
    prom.thread.start()
    try:
        yield prom
    finally:
        prom.server.shutdown()


def test_failing_health_gate_rolls_back_and_restores_the_backup(
    shop: Shop, prometheus: FakePrometheus
) -> None:
    gate = {"url": prometheus.url, "query": "kirana:api_error_ratio:rate5m", "threshold": 0.05}
    spec = {"rollout": {"bakeSeconds": 30, "progressDeadlineSeconds": 60, "healthGate": {"prometheus": gate}}}
    shop.apply(shoprelease(NAME, "1.0.0"))
    shop.wait_phase(NAME, "Ready")
    v1_revision = shop.schema_revision()

    prometheus.value = 0.5  # v2 serves errors: 50% of requests fail
    shop.apply(shoprelease(NAME, "2.0.0", **spec))
    status = shop.wait_phase(NAME, "Degraded", timeout=180)["status"]

    assert prometheus.queries, "the gate never asked Prometheus"
    degraded = shop.condition(NAME, "Degraded")
    assert degraded["reason"] == "HealthGateFailed"
    assert "0.5" in degraded["message"] and "restored" in degraded["message"]
    # Migration ran, then the failure policy (Restore) put v1's data and schema back.
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate", "db restore"]
    assert shop.schema_revision() == v1_revision == status["schemaRevision"]
    assert not shop.table_exists("e2e_release_marker")
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}
    assert shop.pod_images() == {"kirana-api:1.0.0"}
    reasons = shop.event_reasons(NAME)
    for reason in (
        "HealthGateFailed",
        "RollbackStarted",
        "RollbackCompleted",
        "DatabaseRepaired",
        "ReleaseFailed",
    ):
        assert reason in reasons
    assert reasons.index("RollbackCompleted") < reasons.index("DatabaseRepairStarted")


def _wait_for_phase_in(shop: Shop, phases: set[str], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        phase = shop.get(NAME).get("status", {}).get("phase", "")
        if phase in phases:
            return phase
        time.sleep(0.05)
    raise AssertionError(f"never saw a phase in {phases}; last {shop.get(NAME).get('status')}")


def test_operator_killed_mid_release_completes_after_restart(shop: Shop) -> None:
    shop.apply(shoprelease(NAME, "1.0.0", api={"replicas": 4}))
    shop.wait_phase(NAME, "Ready")
    shop.apply(shoprelease(NAME, "2.0.0", api={"replicas": 4}, rollout={"bakeSeconds": 5}))

    # Killed while the migration Job runs: it finishes with nobody watching.
    _wait_for_phase_in(shop, {"Migrating"})
    shop.operator.kill()
    time.sleep(4)
    shop.operator.start()

    # Killed again once the new pods are rolling out (or already baking).
    _wait_for_phase_in(shop, {"RollingOut", "Baking"})
    shop.operator.kill()
    time.sleep(2)
    shop.operator.start()

    status = shop.wait_phase(NAME, "Ready", timeout=180)["status"]
    assert status["currentVersion"] == "2.0.0"
    assert shop.table_exists("e2e_release_marker")
    # Resumed, not restarted: the backup and the migration each ran exactly once for v2.
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate"]
    assert shop.deployment_images(NAME) == {"api": "kirana-api:2.0.0", "workers": "kirana-api:2.0.0"}
    assert status["history"][0]["version"] == "2.0.0" and status["history"][0]["outcome"] == "Succeeded"


def test_rollout_stuck_past_its_deadline_rolls_back_and_restores(shop: Shop) -> None:
    # Every pod states its CPU request, so a quota can hold the api at exactly 2 pods.
    cpu = {"resources": {"requests": {"cpu": "100m"}}}
    free = {"resources": {"requests": {"cpu": "0"}}}
    common: dict[str, Any] = {"api": cpu, "workers": free, "jobs": free}
    shop.apply(shoprelease(NAME, "1.0.0", **common))
    shop.wait_phase(NAME, "Ready")
    v1_revision = shop.schema_revision()
    # No room for the surge pod a zero-downtime rollout needs: v2 can never make progress.
    client.CoreV1Api(shop.api).create_namespaced_resource_quota(
        shop.namespace,
        {"metadata": {"name": "no-surge"}, "spec": {"hard": {"requests.cpu": "200m"}}},
    )

    with DeploymentWatch(shop.api, shop.namespace, f"{NAME}-api") as api_watch:
        shop.apply(shoprelease(NAME, "2.0.0", rollout={"progressDeadlineSeconds": 30}, **common))
        shop.wait_phase(NAME, "Degraded", timeout=240)

    degraded = shop.condition(NAME, "Degraded")
    assert degraded["reason"] == "RolloutStuck" and "made no progress" in degraded["message"]
    # The migration had run, so the failure policy (Restore) put v1's schema back.
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate", "db restore"]
    assert shop.schema_revision() == v1_revision
    assert not shop.table_exists("e2e_release_marker")
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}
    assert shop.pod_images() == {"kirana-api:1.0.0"}
    low = [s for s in api_watch.samples if s[3] < 2]
    assert api_watch.samples and not low, f"the api lost capacity while stuck: {low}"
    reasons = shop.event_reasons(NAME)
    assert (
        reasons.index("RolloutStuck") < reasons.index("RollbackCompleted") < reasons.index("DatabaseRepaired")
    )


def test_a_rollback_also_undoes_pod_changes_made_with_the_version(shop: Shop) -> None:
    """v2 also asks for bigger api pods, which the quota cannot fit: the rollback must bring back
    v1's pods as they were (its old ReplicaSet), not v1's image in v2's bigger pods."""
    free = {"resources": {"requests": {"cpu": "0"}}}
    shop.apply(
        shoprelease(NAME, "1.0.0", api={"resources": {"requests": {"cpu": "100m"}}}, workers=free, jobs=free)
    )
    shop.wait_phase(NAME, "Ready")
    client.CoreV1Api(shop.api).create_namespaced_resource_quota(
        shop.namespace,
        {"metadata": {"name": "two-small-pods"}, "spec": {"hard": {"requests.cpu": "200m"}}},
    )
    bigger = {"resources": {"requests": {"cpu": "150m"}}}
    shop.apply(
        shoprelease(
            NAME, "2.0.0", api=bigger, workers=free, jobs=free, rollout={"progressDeadlineSeconds": 30}
        )
    )
    shop.wait_phase(NAME, "Degraded", timeout=240)
    reasons = shop.event_reasons(NAME)
    assert "RollbackCompleted" in reasons and "RollbackStuck" not in reasons, reasons
    api = client.AppsV1Api(shop.api).read_namespaced_deployment(f"{NAME}-api", shop.namespace)
    container = api.spec.template.spec.containers[0]
    assert container.image == "kirana-api:1.0.0"
    assert container.resources.requests == {"cpu": "100m"}
    assert shop.pod_images() == {"kirana-api:1.0.0"}
