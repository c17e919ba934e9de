"""The checkpoints an SRE verifies after a release, as pure functions of what the API server says.

Called by `deploy.cli` (`make health-check`, and the last step of every deploy and rollback) with
objects read through the Kubernetes API as plain dicts (camelCase, as `kubectl get -o json`
prints them); tests/unit/deploy/ drives them with such dicts. Each gives one `Check`: PASS, FAIL,
or SKIP (the checkpoint cannot be made here, with the reason). On the testbed no pod runs, so the
smoke request is SKIPped there; everything else is checked as in a real cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass(frozen=True)
class Check:
    name: str
    result: str  # PASS, FAIL or SKIP
    detail: str


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


def release_checks(obj: dict[str, Any] | None, name: str, version: str | None) -> list[Check]:
    """The ShopRelease: seen by the operator, Ready at the version asked for, not Degraded."""
    if obj is None:
        return [Check("shoprelease", FAIL, f"shoprelease/{name} does not exist")]
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    generation = obj["metadata"].get("generation", 1)
    observed = status.get("observedGeneration", 0)
    conds = _conditions(obj)
    out = [
        Check(
            "observedGeneration",
            PASS if observed >= generation else FAIL,
            f"{observed} of generation {generation}"
            + ("" if observed >= generation else " (the operator has not seen the latest spec)"),
        )
    ]
    ready = conds.get("Ready", {})
    ready_gen = ready.get("observedGeneration", 0)
    ok = status.get("phase") == "Ready" and ready.get("status") == "True" and ready_gen >= generation
    out.append(
        Check(
            "shoprelease Ready",
            PASS if ok else FAIL,
            f"phase {status.get('phase', 'none')}, Ready={ready.get('status', 'unknown')} "
            f"({ready.get('reason', '-')}: {ready.get('message', '-')})",
        )
    )
    want = version or spec.get("version")
    current = status.get("currentVersion")
    out.append(
        Check(
            "version",
            PASS if current == want == spec.get("version") else FAIL,
            f"running {current or 'nothing'}, spec {spec.get('version')}, expected {want}",
        )
    )
    degraded = conds.get("Degraded", {})
    out.append(
        Check(
            "not Degraded",
            FAIL if degraded.get("status") == "True" else PASS,
            f"{degraded.get('reason', 'no condition')}: {degraded.get('message', '-')}",
        )
    )
    return out


def deployment_check(dep: dict[str, Any] | None, name: str, image: str | None) -> Check:
    """A Deployment rolled out as `kubectl rollout status` means it, on the expected image."""
    label = f"deployment {name}"
    if dep is None:
        return Check(label, FAIL, "does not exist")
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    want = spec.get("replicas", 1)
    running = spec["template"]["spec"]["containers"][0].get("image")
    counts = {k: status.get(k, 0) for k in ("updatedReplicas", "readyReplicas", "availableReplicas")}
    problems = []
    if status.get("observedGeneration", 0) < dep["metadata"].get("generation", 1):
        problems.append("controller has not seen the latest spec")
    if image and running != image:
        problems.append(f"image {running}, expected {image}")
    short = [f"{k} {v}" for k, v in counts.items() if v < want]
    if status.get("replicas", 0) > want:
        short.append(f"{status['replicas'] - want} old pods still terminating")
    problems += short
    detail = f"{counts['readyReplicas']}/{want} ready on {running}"
    return Check(
        label, FAIL if problems else PASS, detail + (f" ({'; '.join(problems)})" if problems else "")
    )


def migration_check(job: dict[str, Any] | None, name: str, release: dict[str, Any] | None) -> Check:
    """The migration Job of the running version's release succeeded (or the schema is current)."""
    conds = _conditions(release or {})
    migrated = conds.get("Migrated", {})
    schema = f"schema {(release or {}).get('status', {}).get('schemaRevision') or 'unknown'}"
    if job is None:
        # Finished Jobs are deleted after jobs.ttlSecondsAfterFinished: the condition remains.
        ok = migrated.get("status") == "True"
        return Check(
            "migration Job",
            PASS if ok else FAIL,
            f"job/{name} is gone (ttlSecondsAfterFinished); Migrated={migrated.get('status', 'unknown')}, "
            f"{schema}",
        )
    status = job.get("status") or {}
    jconds = {c["type"]: c for c in status.get("conditions") or [] if c.get("status") == "True"}
    if "Complete" in jconds or status.get("succeeded", 0) >= 1:
        return Check("migration Job", PASS, f"job/{name} succeeded; {schema}")
    if "Failed" in jconds:
        why = jconds["Failed"].get("reason", "Failed")
        return Check("migration Job", FAIL, f"job/{name} failed ({why}); {schema}")
    return Check("migration Job", FAIL, f"job/{name} has not finished (active {status.get('active', 0)})")


def endpoints_check(slices: Sequence[dict[str, Any]], service: str, replicas: int) -> Check:
    """The api Service has a ready endpoint for every api replica (what the ingress sends to)."""
    ready = sum(
        1
        for s in slices
        for e in s.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready") and not (e.get("conditions") or {}).get("terminating")
    )
    return Check(
        f"service {service} endpoints",
        PASS if ready >= replicas else FAIL,
        f"{ready} ready endpoints for {replicas} api replicas",
    )


def ingress_base_url(ingress: dict[str, Any] | None) -> tuple[str | None, str]:
    """(base URL, why none) for a smoke request through the Ingress."""
    if ingress is None:
        return None, "no Ingress (ingress.enabled is false)"
    spec = ingress.get("spec") or {}
    hosts = [r.get("host") for r in spec.get("rules") or [] if r.get("host")]
    lb = ((ingress.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if not hosts:
        return None, "the Ingress names no host"
    if not lb:
        return None, "the Ingress has no load-balancer address (no ingress controller has admitted it)"
    scheme = "https" if spec.get("tls") else "http"
    return f"{scheme}://{hosts[0]}", ""


def smoke_check(
    base_url: str | None,
    why_not: str,
    policy: str,
    fetch: Callable[[str], tuple[int, str]],
) -> Check:
    """GET /readyz and /livez through the ingress: 200 each. `policy` is auto, required or off."""
    if policy == "off":
        return Check("smoke through ingress", SKIP, "turned off (SMOKE=off)")
    if base_url is None:
        return Check("smoke through ingress", FAIL if policy == "required" else SKIP, why_not)
    problems, seen = [], []
    for path in ("/readyz", "/livez"):
        try:
            code, _ = fetch(base_url + path)
        except OSError as exc:
            problems.append(f"{path}: {exc}")
            continue
        seen.append(f"{path} {code}")
        if code != 200:
            problems.append(f"{path} answered {code}")
    detail = f"{base_url}: " + (", ".join(seen) or "no answer")
    return Check(
        "smoke through ingress", FAIL if problems else PASS, detail + "".join(f"; {p}" for p in problems)
    )


def table(checks: Sequence[Check]) -> str:
    """The checkpoints as an aligned table, one line each."""
    width = max([len("checkpoint"), *(len(c.name) for c in checks)])
    lines = [f"{'checkpoint':<{width}}  result  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{c.name:<{width}}  {c.result:<6}  {c.detail}" for c in checks]
    return "\n".join(lines)


def passed(checks: Sequence[Check]) -> bool:
    return all(c.result != FAIL for c in checks)
