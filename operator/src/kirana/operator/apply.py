"""All of the operator's Kubernetes (and Prometheus) I/O: observe a ShopRelease's world, ask the pure
planner what to do, and do it.

Called by `kirana.operator.handlers` (one `reconcile` per wake-up, in a worker thread: the
`kubernetes` client is synchronous). Nothing here decides anything; `kirana.operator.plan.release`
does. Every write is idempotent: Jobs are created once under deterministic names (an existing one
is kept), the other objects are server-side applied, deletes tolerate absence, and the status is
replaced with the resourceVersion that was read, so a concurrent writer makes us retry instead of
clobbering it.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from kirana.operator.plan import release as planner
from kirana.operator.plan import resources as res
from kirana.operator.plan.model import (
    Decision,
    DeploymentState,
    HealthSample,
    JobPhase,
    JobState,
    Observed,
    Owner,
)
from kirana.operator.spec import (
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    PrometheusGate,
    ShopReleaseSpec,
    Step,
    dump,
    parse_spec,
    parse_status,
)

log = logging.getLogger(__name__)

FIELD_MANAGER = "kirana-operator"
TIMEOUT = (5, 30)  # (connect, read) seconds for every request: nothing may hang a reconcile
RESULT_STEPS = {
    Step.BACKUP: ("backup",),
    Step.MIGRATE: ("migrate",),
    Step.REPAIR_DATABASE: ("restore", "dbrollback"),
}


class InvalidSpec(Exception):
    """The stored spec does not parse (the CRD schema should have refused it)."""


@dataclass
class Clients:
    api: client.ApiClient
    core: client.CoreV1Api
    apps: client.AppsV1Api
    batch: client.BatchV1Api
    policy: client.PolicyV1Api
    custom: client.CustomObjectsApi

    @classmethod
    def connect(cls) -> Clients:
        """In a pod: its service account; elsewhere: $KUBECONFIG (how tests run the operator)."""
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        api = client.ApiClient()
        return cls(
            api=api,
            core=client.CoreV1Api(api),
            apps=client.AppsV1Api(api),
            batch=client.BatchV1Api(api),
            policy=client.PolicyV1Api(api),
            custom=client.CustomObjectsApi(api),
        )


@dataclass(frozen=True)
class Result:
    requeue_after: float | None  # None: the object is gone, stop
    phase: str | None = None
    changed: bool = False


def _absent(exc: ApiException) -> bool:
    return bool(exc.status == 404)


def _get(fn: Callable[..., Any], *args: Any) -> Any | None:
    try:
        return fn(*args, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if _absent(exc):
            return None
        raise


# -- observe ----------------------------------------------------------------------------------------


def _deployment_state(d: Any) -> DeploymentState | None:
    if d is None:
        return None
    s = d.status
    generation = d.metadata.generation or 1
    observed = (s.observed_generation if s else None) or 0
    stuck = any(
        c.type == "Progressing" and c.status == "False" and c.reason == "ProgressDeadlineExceeded"
        for c in ((s.conditions if s else None) or [])
    )
    return DeploymentState(
        image=d.spec.template.spec.containers[0].image,
        replicas=d.spec.replicas if d.spec.replicas is not None else 1,
        generation=generation,
        observed_generation=observed,
        total=(s.replicas if s else 0) or 0,
        updated=(s.updated_replicas if s else 0) or 0,
        ready=(s.ready_replicas if s else 0) or 0,
        available=(s.available_replicas if s else 0) or 0,
        deadline_exceeded=stuck and observed >= generation,
    )


def _parse_json_output(text: str | None) -> dict[str, Any] | None:
    """The JSON object a `kirana ... --json` command printed, wherever it starts in the text."""
    if not text:
        return None
    start = text.find("{")
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _job_pod_output(c: Clients, namespace: str, job: str, phase: str) -> tuple[dict[str, Any] | None, str]:
    """The command's `--json` result and its last words, from the Job's pod.

    The termination message is read first (`FallbackToLogsOnError` puts the log tail there when the
    container fails); on success the result is read from the pod's log.
    """
    pods: list[Any] = c.core.list_namespaced_pod(
        namespace, label_selector=f"batch.kubernetes.io/job-name={job}", _request_timeout=TIMEOUT
    ).items
    pods = [p for p in pods if p.status and p.status.phase == phase] or pods
    if not pods:
        return None, ""
    pod = max(pods, key=lambda p: p.metadata.creation_timestamp)
    message = ""
    for cs in (pod.status.container_statuses or []) if pod.status else []:
        term = cs.state.terminated if cs.state else None
        if term and term.message:
            message = term.message.strip()
    result = _parse_json_output(message)
    if result is None and phase == "Succeeded":
        try:
            logs = c.core.read_namespaced_pod_log(
                pod.metadata.name, namespace, container="kirana", _request_timeout=TIMEOUT
            )
            result = _parse_json_output(logs)
        except ApiException as exc:
            log.debug("no log for pod %s: %s", pod.metadata.name, exc.reason)
    last = message.strip().splitlines()[-1] if message.strip() else ""
    return result, last


def observe_jobs(
    c: Clients, owner: Owner, status_key: str | None, result_steps: tuple[str, ...]
) -> dict[str, JobState]:
    jobs: list[Any] = c.batch.list_namespaced_job(
        owner.namespace, label_selector=f"{res.RELEASE_LABEL}={owner.name}", _request_timeout=TIMEOUT
    ).items
    out: dict[str, JobState] = {}
    for j in jobs:
        name = j.metadata.name
        all_conds = (j.status.conditions if j.status else None) or []
        conds = {cd.type: cd for cd in all_conds if cd.status == "True"}
        if "Complete" in conds:
            phase = JobPhase.SUCCEEDED
        elif "Failed" in conds:
            phase = JobPhase.FAILED
        else:
            out[name] = JobState(name=name, phase=JobPhase.RUNNING)
            continue
        step = (j.metadata.labels or {}).get(res.STEP_LABEL, "")
        result: dict[str, Any] | None = None
        message = ""
        if phase == JobPhase.FAILED:
            message = conds["Failed"].message or conds["Failed"].reason or "failed"
        if status_key and name.endswith(f"-{status_key}") and step in result_steps:
            result, last = _job_pod_output(c, owner.namespace, name, phase.value)
            if phase == JobPhase.FAILED and last:
                message = last
        out[name] = JobState(name=name, phase=phase, result=result, message=message)
    return out


def sample_health(gate: PrometheusGate) -> HealthSample:
    """Evaluate the gate's PromQL query once (instant query API)."""
    url = gate.url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": gate.query})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - URL comes from the spec
            body = json.loads(resp.read())
    except Exception as exc:  # noqa: BLE001 - any failure means "could not evaluate"
        return HealthSample(value=None, error=str(exc))
    if body.get("status") != "success":
        return HealthSample(value=None, error=str(body.get("error", "query failed")))
    data = body.get("data", {})
    result = data.get("result")
    try:
        if data.get("resultType") in ("scalar", "string"):
            return HealthSample(value=float(result[1]))
        if not result:
            return HealthSample(value=None)
        return HealthSample(value=float(result[0]["value"][1]))
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        return HealthSample(value=None, error=f"unexpected response: {exc}")


def observe(c: Clients, owner: Owner, spec: ShopReleaseSpec, status_raw: dict[str, Any] | None) -> Observed:
    status = parse_status(status_raw)
    rel = status.release
    in_flight = rel is not None and rel.outcome is None
    key = rel.key if rel is not None and in_flight else None
    steps = RESULT_STEPS.get(rel.step, ()) if rel is not None and in_flight else ()
    jobs = observe_jobs(c, owner, key, steps)
    api = _get(c.apps.read_namespaced_deployment, res.api_name(owner), owner.namespace)
    workers = _get(c.apps.read_namespaced_deployment, res.workers_name(owner), owner.namespace)
    health = None
    gate = spec.rollout.health_gate.prometheus
    if gate and planner.wants_health_sample(spec, status):
        health = sample_health(gate)
    return Observed(jobs=jobs, api=_deployment_state(api), workers=_deployment_state(workers), health=health)


# -- act --------------------------------------------------------------------------------------------


def _ssa(c: Clients, obj: dict[str, Any]) -> None:
    kind, name, ns = obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"]
    patch = {
        "Deployment": c.apps.patch_namespaced_deployment,
        "Service": c.core.patch_namespaced_service,
        "PodDisruptionBudget": c.policy.patch_namespaced_pod_disruption_budget,
        "CronJob": c.batch.patch_namespaced_cron_job,
    }[kind]
    patch(
        name,
        ns,
        obj,
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type="application/apply-patch+yaml",
        _request_timeout=TIMEOUT,
    )


def _delete(c: Clients, namespace: str, kind: str, name: str) -> None:
    fn = {"CronJob": c.batch.delete_namespaced_cron_job, "Job": c.batch.delete_namespaced_job}[kind]
    try:
        fn(name, namespace, propagation_policy="Background", _request_timeout=TIMEOUT)
    except ApiException as exc:
        if not _absent(exc):
            raise


def _create_job(c: Clients, job: dict[str, Any]) -> bool:
    try:
        c.batch.create_namespaced_job(
            job["metadata"]["namespace"],
            cast(client.V1Job, client.V1Job.from_dict(job)),
            _request_timeout=TIMEOUT,
        )
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


def post_event(c: Clients, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
    meta = obj["metadata"]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = {
        # Named like client-go's recorder (name.<unix nanos in hex>): sorting by name keeps their order.
        "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta.get("resourceVersion"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": type_,
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
        "reportingInstance": FIELD_MANAGER,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        event = cast(client.CoreV1Event, client.CoreV1Event.from_dict(body))
        c.core.create_namespaced_event(meta["namespace"], event, _request_timeout=TIMEOUT)
    except ApiException as exc:  # an event is never worth failing a reconcile for
        log.warning("could not post event %s: %s", reason, exc.reason)


def execute(c: Clients, obj: dict[str, Any], owner: Owner, decision: Decision) -> bool:
    """Carry out a decision; True when the status changed."""
    for job in decision.create_jobs:
        if _create_job(c, job):
            log.info("created Job %s/%s", owner.namespace, job["metadata"]["name"])
    for item in decision.apply:
        _ssa(c, item)
    for kind, name in decision.delete:
        _delete(c, owner.namespace, kind, name)
    new_status = dump(decision.status)
    old_status = dump(parse_status(obj.get("status")))
    changed = new_status != old_status
    if changed:
        body = {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "metadata": {
                "name": owner.name,
                "namespace": owner.namespace,
                "resourceVersion": obj["metadata"]["resourceVersion"],
            },
            "spec": obj.get("spec", {}),
            "status": new_status,
        }
        c.custom.replace_namespaced_custom_object_status(
            GROUP, VERSION, owner.namespace, PLURAL, owner.name, body, _request_timeout=TIMEOUT
        )
    for ev in decision.events:
        post_event(c, obj, ev.type, ev.reason, ev.message)
    return changed


def read(c: Clients, namespace: str, name: str) -> dict[str, Any] | None:
    obj = _get(c.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name)
    return dict(obj) if obj is not None else None


def reconcile(c: Clients, namespace: str, name: str, now: datetime | None = None) -> Result:
    """Observe, plan, act for one ShopRelease. A 409 on the status means "try again soon"."""
    obj = read(c, namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return Result(requeue_after=None)
    meta = obj["metadata"]
    owner = Owner(name=name, namespace=namespace, uid=meta["uid"], generation=meta.get("generation", 1))
    try:
        spec = parse_spec(obj.get("spec") or {})
    except ValidationError as exc:
        raise InvalidSpec(str(exc)) from exc
    observed = observe(c, owner, spec, obj.get("status"))
    status = parse_status(obj.get("status"))
    decision = planner.decide(owner, spec, status, observed, now or datetime.now(UTC))
    try:
        changed = execute(c, obj, owner, decision)
    except ApiException as exc:
        if exc.status == 409:
            return Result(requeue_after=1.0, phase=decision.status.phase.value)
        raise
    # Something moved: look again soon, since the next step may already be possible.
    requeue = 0.2 if changed and decision.status.release and decision.status.release.outcome is None else None
    return Result(
        requeue_after=requeue if requeue is not None else decision.requeue_after,
        phase=decision.status.phase.value,
        changed=changed,
    )
