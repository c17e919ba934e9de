"""The release checkpoints (deploy.checks) on the objects the API server returns."""

from __future__ import annotations

from typing import Any

import pytest

from deploy import checks


def release(
    *,
    phase: str = "Ready",
    current: str = "1.2.0",
    spec: str = "1.2.0",
    generation: int = 3,
    observed: int = 3,
) -> dict[str, Any]:
    ready = "True" if phase == "Ready" else "False"
    return {
        "metadata": {"name": "shop", "generation": generation},
        "spec": {"version": spec},
        "status": {
            "phase": phase,
            "observedGeneration": observed,
            "currentVersion": current,
            "conditions": [
                {"type": "Ready", "status": ready, "reason": "ReleaseLive", "observedGeneration": observed},
                {
                    "type": "Degraded",
                    "status": "True" if phase == "Degraded" else "False",
                    "reason": "Healthy",
                },
                {"type": "Migrated", "status": "True", "reason": "SchemaCurrent"},
            ],
        },
    }


def results(found: list[checks.Check]) -> dict[str, str]:
    return {c.name: c.result for c in found}


def test_a_live_release_passes_every_release_checkpoint() -> None:
    assert set(results(checks.release_checks(release(), "shop", "1.2.0")).values()) == {"PASS"}


@pytest.mark.parametrize(
    ("obj", "expected", "failing"),
    [
        (release(observed=2), "1.2.0", {"observedGeneration", "shoprelease Ready"}),
        (
            release(phase="Degraded", current="1.1.0"),
            "1.2.0",
            {"shoprelease Ready", "version", "not Degraded"},
        ),
        (release(), "1.3.0", {"version"}),
        (release(phase="Migrating", current="1.1.0"), "1.2.0", {"shoprelease Ready", "version"}),
    ],
)
def test_release_checkpoints_name_what_is_wrong(
    obj: dict[str, Any], expected: str, failing: set[str]
) -> None:
    found = results(checks.release_checks(obj, "shop", expected))
    assert {name for name, result in found.items() if result == "FAIL"} == failing


def test_a_missing_release_fails() -> None:
    [check] = checks.release_checks(None, "shop", "1.0.0")
    assert check.result == "FAIL" and "does not exist" in check.detail


def deployment(image: str = "kirana-api:1.2.0", **status: int) -> dict[str, Any]:
    counts = {"updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2, "replicas": 2} | status
    return {
        "metadata": {"generation": 4},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": image}]}}},
        "status": {"observedGeneration": 4, **counts},
    }


def test_a_rolled_out_deployment_passes() -> None:
    check = checks.deployment_check(deployment(), "shop-api", "kirana-api:1.2.0")
    assert check.result == "PASS" and check.detail == "2/2 ready on kirana-api:1.2.0"


@pytest.mark.parametrize(
    ("dep", "words"),
    [
        (deployment(image="kirana-api:1.1.0"), "expected kirana-api:1.2.0"),
        (deployment(readyReplicas=1, availableReplicas=1), "readyReplicas 1"),
        (deployment(updatedReplicas=1), "updatedReplicas 1"),
        (deployment(replicas=3), "1 old pods still terminating"),
        (None, "does not exist"),
    ],
)
def test_a_deployment_not_rolled_out_fails(dep: dict[str, Any] | None, words: str) -> None:
    check = checks.deployment_check(dep, "shop-api", "kirana-api:1.2.0")
    assert check.result == "FAIL" and words in check.detail


def test_migration_job_outcomes() -> None:
    done = {"status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}}
    failed = {
        "status": {
            "failed": 1,
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}],
        }
    }
    running = {"status": {"active": 1}}
    rel = release()
    assert checks.migration_check(done, "shop-migrate-ab", rel).result == "PASS"
    bad = checks.migration_check(failed, "shop-migrate-ab", rel)
    assert bad.result == "FAIL" and "BackoffLimitExceeded" in bad.detail
    assert checks.migration_check(running, "shop-migrate-ab", rel).result == "FAIL"
    # A Job past its TTL is gone: the Migrated condition answers for it.
    gone = checks.migration_check(None, "shop-migrate-ab", rel)
    assert gone.result == "PASS" and "ttlSecondsAfterFinished" in gone.detail


def test_endpoints_count_ready_not_terminating() -> None:
    slices = [
        {
            "endpoints": [
                {"conditions": {"ready": True}},
                {"conditions": {"ready": True, "terminating": True}},
            ]
        },
        {"endpoints": [{"conditions": {"ready": False}}]},
    ]
    assert checks.endpoints_check(slices, "shop-api", 1).result == "PASS"
    assert checks.endpoints_check(slices, "shop-api", 2).result == "FAIL"


def test_smoke_goes_through_the_ingress_address_or_says_why_not() -> None:
    ingress = {"spec": {"rules": [{"host": "shop.example.com"}], "tls": [{}]}, "status": {}}
    base, why = checks.ingress_base_url(ingress)
    assert base is None and "no load-balancer address" in why
    assert checks.smoke_check(base, why, "auto", lambda _url: (200, "")).result == "SKIP"
    assert checks.smoke_check(base, why, "required", lambda _url: (200, "")).result == "FAIL"
    ingress["status"] = {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}
    base, _ = checks.ingress_base_url(ingress)
    assert base == "https://shop.example.com"
    asked: list[str] = []

    def fetch(url: str) -> tuple[int, str]:
        asked.append(url)
        return (503 if url.endswith("/readyz") else 200), ""

    check = checks.smoke_check(base, "", "auto", fetch)
    assert asked == ["https://shop.example.com/readyz", "https://shop.example.com/livez"]
    assert check.result == "FAIL" and "/readyz answered 503" in check.detail
    assert checks.smoke_check(base, "", "auto", lambda _url: (200, "")).result == "PASS"
    assert checks.smoke_check(base, "", "off", fetch).result == "SKIP"


def test_the_table_aligns_and_any_fail_fails() -> None:
    found = [
        checks.Check("version", "PASS", "running 1.0.0"),
        checks.Check("smoke through ingress", "SKIP", "x"),
    ]
    lines = checks.table(found).splitlines()
    assert lines[0].startswith("checkpoint") and lines[2].index("PASS") == lines[3].index("SKIP")
    assert checks.passed(found)
    assert not checks.passed([*found, checks.Check("migration Job", "FAIL", "")])
