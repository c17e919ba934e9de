"""All of the operator's Kubernetes (and Prometheus) I/O: observe a ShopRelease's world, ask the pure
planner what to do, and do it. The client and its errors are `kirana.operator.kube`; the shapes of
what is read are `kirana.operator.bodies`.

Called by `kirana.operator.handlers` (one `reconcile` per wake-up, in a worker thread: the
`kubernetes` client is synchronous). Nothing here decides anything; `kirana.operator.plan`
does. Every write is idempotent: Jobs are created once under deterministic names (an existing one
is kept), the other objects are server-side applied, deletes tolerate absence, and the status is
replaced with the resourceVersion that was read, so a concurrent writer makes us retry instead of
clobbering it.

Longer than 400 lines on purpose: it is the operator's only I/O, one function per kind of
write, so that everything it does to a cluster is read in one place.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from kirana.operator import bodies
from kirana.operator.kube import FIELD_MANAGER, Conflict, Kube, KubeError, NotFound, path_of
from kirana.operator.plan import backup as backup_planner
from kirana.operator.plan import release as planner
from kirana.operator.plan import resources as res
from kirana.operator.plan import restore as restore_planner
from kirana.operator.plan import validate
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
    BACKUP_KIND,
    GROUP,
    KIND,
    VERSION,
    PrometheusGate,
    RestoreStep,
    ShopBackupStatus,
    ShopReleaseSpec,
    Step,
    dump,
    parse_spec,
    parse_status,
)

log = logging.getLogger(__name__)

RESULT_STEPS = {
    Step.BACKUP: ("backup",),
    Step.MIGRATE: ("migrate",),
    Step.REPAIR_DATABASE: ("restore", "dbrollback"),
}


class InvalidSpec(Exception):
    """The stored spec does not parse (the CRD schema should have refused it)."""


@dataclass(frozen=True)
class Result:
    requeue_after: float | None  # None: the object is gone, stop
    phase: str | None = None
    changed: bool = False


# -- observe ----------------------------------------------------------------------------------------


def _deployment_state(d: bodies.Deployment | None) -> DeploymentState | None:
    """What the planner needs of a Deployment (None: it does not exist)."""
    if d is None:
        return None
    s: bodies.DeploymentStatus = d.get("status") or {}
    meta: bodies.ObjectMeta = d.get("metadata") or {}
    generation = meta.get("generation") or 1
    observed = s.get("observedGeneration") or 0
    stuck = any(
        c.get("type") == "Progressing"
        and c.get("status") == "False"
        and c.get("reason") == "ProgressDeadlineExceeded"
        for c in s.get("conditions") or []
    )
    spec: bodies.DeploymentSpec = d.get("spec") or {}
    return DeploymentState(
        image=spec["template"]["spec"]["containers"][0]["image"],
        replicas=spec.get("replicas", 1),
        generation=generation,
        observed_generation=observed,
        total=s.get("replicas") or 0,
        updated=s.get("updatedReplicas") or 0,
        ready=s.get("readyReplicas") or 0,
        available=s.get("availableReplicas") or 0,
        deadline_exceeded=stuck and observed >= generation,
        template=(meta.get("annotations") or {}).get(res.TEMPLATE_ANNOTATION),
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


def termination_message(pod: bodies.Pod) -> str:
    """The last termination message of the pod's containers ("" when none has one)."""
    message = ""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated") or {}
        if term.get("message"):
            message = str(term["message"]).strip()
    return message


def job_phase(job: bodies.Job) -> tuple[JobPhase, str]:
    """A Job's phase from its conditions, and why it failed ("" unless Failed).

    Finished means a `Complete` or `Failed` condition with status "True"; Complete wins if both
    are (they never are on one Job, but the order must not depend on the list's).
    """
    conds = {
        cd.get("type"): cd
        for cd in (job.get("status") or {}).get("conditions") or []
        if cd.get("status") == "True"
    }
    if "Complete" in conds:
        return JobPhase.SUCCEEDED, ""
    if "Failed" in conds:
        failed = conds["Failed"]
        return JobPhase.FAILED, failed.get("message") or failed.get("reason") or "failed"
    return JobPhase.RUNNING, ""


def _job_pod_output(c: Kube, namespace: str, job: str, phase: str) -> tuple[dict[str, Any] | None, str]:
    """The command's `--json` result and its last words, from the Job's pod.

    The termination message is read first (`FallbackToLogsOnError` puts the log tail there when the
    container fails); on success the result is read from the pod's log.
    """
    listing = c.request(
        "GET", path_of("Pod", namespace), query={"labelSelector": f"batch.kubernetes.io/job-name={job}"}
    )
    pods: list[bodies.Pod] = listing.get("items", [])
    pods = [p for p in pods if (p.get("status") or {}).get("phase") == phase] or pods
    if not pods:
        return None, ""
    pod = max(pods, key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp", "")))
    pod_name = (pod.get("metadata") or {}).get("name", "")
    message = termination_message(pod)
    result = _parse_json_output(message)
    if result is None and phase == "Succeeded":
        try:
            logs = c.request(
                "GET",
                path_of("Pod", namespace, pod_name) + "/log",
                query={"container": "kirana"},
                accept="text/plain",
            )
            result = _parse_json_output(logs)
        except KubeError as exc:
            log.debug("no log for pod %s: %s", pod_name, exc.reason)
    last = message.splitlines()[-1] if message else ""
    return result, last


def observe_jobs(c: Kube, owner: Owner, results_of: set[str]) -> dict[str, JobState]:
    """The release's Jobs; the command output is read only for finished Jobs in `results_of`."""
    listing = c.request(
        "GET", path_of("Job", owner.namespace), query={"labelSelector": f"{res.RELEASE_LABEL}={owner.name}"}
    )
    out: dict[str, JobState] = {}
    items: list[bodies.Job] = listing.get("items", [])
    for j in items:
        name = (j.get("metadata") or {}).get("name", "")
        phase, message = job_phase(j)
        if phase == JobPhase.RUNNING:
            out[name] = JobState(name=name, phase=phase)
            continue
        result: dict[str, Any] | None = None
        if name in results_of:
            result, last = _job_pod_output(c, owner.namespace, name, phase.value)
            if phase == JobPhase.FAILED and last:
                message = last
        out[name] = JobState(name=name, phase=phase, result=result, message=message)
    return out


def sample_health(gate: PrometheusGate) -> HealthSample:
    """Evaluate the gate's PromQL query once (instant query API)."""
    url = gate.url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": gate.query})
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # URL comes from the spec
            body = json.loads(resp.read())
    except Exception as exc:  # any failure means "could not evaluate"
        return HealthSample(value=None, error=str(exc))
    return parse_query_response(body)


def parse_query_response(body: Any) -> HealthSample:
    """One sample from a Prometheus instant-query answer: the first series' value, a scalar's, no
    data (an empty vector), or an error saying why the answer cannot be read."""
    if not isinstance(body, dict):
        return HealthSample(value=None, error="unexpected response: not a JSON object")
    if body.get("status") != "success":
        return HealthSample(value=None, error=str(body.get("error", "query failed")))
    data = body.get("data", {})
    if not isinstance(data, dict):
        return HealthSample(value=None, error="unexpected response: data is not an object")
    result: Any = data.get("result")
    try:
        if data.get("resultType") in ("scalar", "string"):
            return HealthSample(value=float(result[1]))
        if not result:
            return HealthSample(value=None)
        return HealthSample(value=float(result[0]["value"][1]))
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        return HealthSample(value=None, error=f"unexpected response: {exc}")


def observe(
    c: Kube,
    owner: Owner,
    spec: ShopReleaseSpec,
    status_raw: dict[str, Any] | None,
    annotations: dict[str, str] | None = None,
) -> Observed:
    status = parse_status(status_raw)
    rel = status.release
    results_of: set[str] = set()
    if rel is not None and rel.outcome is None:
        results_of |= {res.job_name(owner, step, rel.key) for step in RESULT_STEPS.get(rel.step, ())}
    restore = status.last_restore
    restoring = restore is not None and restore.outcome is None
    if restore is not None and restoring and restore.step == RestoreStep.RESTORE:
        results_of.add(restore_planner.restore_job_name(owner, restore.request_id))
    jobs = observe_jobs(c, owner, results_of)
    source = None
    source_release = None
    wanted = spec.restore is not None and (restore is None or restore.request_id != spec.restore.request_id)
    if spec.restore is not None and wanted and not restoring:
        raw = c.get(path_of(BACKUP_KIND, owner.namespace, spec.restore.backup_name))
        if raw is not None:
            source = ShopBackupStatus.model_validate(raw.get("status") or {})
            source_release = ((raw.get("spec") or {}).get("releaseRef") or {}).get("name")
    app_pods = None
    if restoring and restore is not None and restore.step == RestoreStep.SCALE_DOWN:
        app_pods = count_app_pods(c, owner)
    api = c.get(path_of("Deployment", owner.namespace, res.api_name(owner)))
    workers = c.get(path_of("Deployment", owner.namespace, res.workers_name(owner)))
    missing: tuple[tuple[str, str], ...] = ()
    notes = annotations or {}
    abort_request = notes.get(planner.ABORT_ANNOTATION) or None
    retry_request = notes.get(planner.RETRY_ANNOTATION) or None
    if planner.wants_reference_check(spec, status, retry_request):
        missing = missing_references(c, owner.namespace, validate.references(spec))
    health = None
    gate = spec.rollout.health_gate.prometheus
    if gate and planner.wants_health_sample(spec, status):
        health = sample_health(gate)
    return Observed(
        jobs=jobs,
        api=_deployment_state(api),
        workers=_deployment_state(workers),
        health=health,
        restore_source=source,
        restore_source_release=source_release,
        app_pods=app_pods,
        missing=missing,
        abort_request=abort_request,
        retry_request=retry_request,
    )


# Metadata only: the operator never needs what a Secret holds, only whether it exists.
METADATA_ONLY = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


Ref = tuple[str, str]  # (kind, name)


def missing_references(c: Kube, namespace: str, refs: tuple[Ref, ...]) -> tuple[Ref, ...]:
    """The (kind, name) of `refs` that do not exist. A kind the operator may not read (the chart
    with `rbac.checkSecrets=false` grants no access to Secrets) counts as present: unknown is not
    missing."""
    missing = []
    for kind, name in refs:
        try:
            c.request("GET", path_of(kind, namespace, name), accept=METADATA_ONLY)
        except NotFound:
            missing.append((kind, name))
        except KubeError as exc:
            if exc.status != 403:
                raise
    return tuple(missing)


def count_app_pods(c: Kube, owner: Owner) -> int:
    """The app's api and worker pods that may still run, terminating or not."""
    app = {k: v for k, v in res.selector(owner, "api").items() if k != "app.kubernetes.io/component"}
    selector = ",".join(
        [*(f"{k}={v}" for k, v in sorted(app.items())), "app.kubernetes.io/component in (api,workers)"]
    )
    # Pods that ended (Failed: evicted, shut down; Succeeded) run nothing and may linger until
    # pod garbage collection: they must not hold a restore back.
    ended = "status.phase!=Failed,status.phase!=Succeeded"
    query = {"labelSelector": selector, "fieldSelector": ended}
    listing = c.request("GET", path_of("Pod", owner.namespace), query=query)
    return len(listing.get("items", []))


# -- act --------------------------------------------------------------------------------------------


def _delete(c: Kube, namespace: str, kind: str, name: str) -> None:
    with contextlib.suppress(NotFound):
        c.request("DELETE", path_of(kind, namespace, name), query={"propagationPolicy": "Background"})


def _create_job(c: Kube, job: dict[str, Any]) -> bool:
    try:
        c.request("POST", path_of("Job", job["metadata"]["namespace"]), body=job)
    except Conflict:
        return False
    return True


def post_event(c: Kube, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
    meta = obj["metadata"]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = {
        # Named like client-go's recorder (name.<unix nanos in hex>): sorting by name keeps their order.
        "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion", f"{GROUP}/{VERSION}"),
            "kind": obj.get("kind", KIND),
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
        c.request(
            "POST", path_of("Event", meta["namespace"]), body={"apiVersion": "v1", "kind": "Event", **body}
        )
    except KubeError as exc:  # an event is never worth failing a reconcile for
        log.warning("could not post event %s: %s", reason, exc.reason)


def execute(c: Kube, obj: dict[str, Any], owner: Owner, decision: Decision) -> bool:
    """Carry out a decision; True when the status changed."""
    for job in decision.create_jobs:
        if _create_job(c, job):
            log.info("created Job %s/%s", owner.namespace, job["metadata"]["name"])
    for item in decision.apply:
        meta = item["metadata"]
        c.apply(path_of(item["kind"], meta["namespace"], meta["name"]), item)
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
        c.request("PUT", path_of(KIND, owner.namespace, owner.name) + "/status", body=body)
    for ev in decision.events:
        post_event(c, obj, ev.type, ev.reason, ev.message)
    return changed


def read(c: Kube, namespace: str, name: str) -> dict[str, Any] | None:
    obj = c.get(path_of(KIND, namespace, name))
    return dict(obj) if obj is not None else None


def reconcile(c: Kube, namespace: str, name: str, now: datetime | None = None) -> Result:
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
    observed = observe(c, owner, spec, obj.get("status"), meta.get("annotations") or {})
    status = parse_status(obj.get("status"))
    decision = planner.decide(owner, spec, status, observed, now or datetime.now(UTC))
    try:
        changed = execute(c, obj, owner, decision)
    except Conflict:
        return Result(requeue_after=1.0, phase=decision.status.phase.value)
    # Something moved: look again soon, since the next step may already be possible.
    st = decision.status
    busy = (st.release is not None and st.release.outcome is None) or (
        st.last_restore is not None and st.last_restore.outcome is None
    )
    requeue = 0.2 if changed and busy else None
    return Result(
        requeue_after=requeue if requeue is not None else decision.requeue_after,
        phase=decision.status.phase.value,
        changed=changed,
    )


# -- ShopBackup ---------------------------------------------------------------------------------------


def _job_state(c: Kube, namespace: str, name: str) -> JobState | None:
    j: bodies.Job | None = c.get(path_of("Job", namespace, name))
    if j is None:
        return None
    phase, message = job_phase(j)
    if phase == JobPhase.SUCCEEDED:
        result, _ = _job_pod_output(c, namespace, name, "Succeeded")
        return JobState(name=name, phase=phase, result=result)
    if phase == JobPhase.FAILED:
        _, last = _job_pod_output(c, namespace, name, "Failed")
        return JobState(name=name, phase=phase, message=last or message)
    return JobState(name=name, phase=phase)


def reconcile_backup(c: Kube, namespace: str, name: str, now: datetime | None = None) -> Result:
    """Observe, plan, act for one ShopBackup."""
    obj = c.get(path_of(BACKUP_KIND, namespace, name))
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return Result(requeue_after=None)
    meta = obj["metadata"]
    owner = Owner(name=name, namespace=namespace, uid=meta["uid"], kind=BACKUP_KIND)
    status = ShopBackupStatus.model_validate(obj.get("status") or {})
    release_name = ((obj.get("spec") or {}).get("releaseRef") or {}).get("name", "")
    view = None
    raw = read(c, namespace, release_name) if release_name else None
    if raw is not None:
        try:
            view = backup_planner.ReleaseView(
                owner=Owner(name=release_name, namespace=namespace, uid=raw["metadata"]["uid"]),
                spec=parse_spec(raw.get("spec") or {}),
                status=parse_status(raw.get("status")),
            )
        except ValidationError as exc:
            raise InvalidSpec(str(exc)) from exc
    job_name = status.job or res.on_demand_job_name(name)
    job = _job_state(c, namespace, job_name) if status.job else None
    decision = backup_planner.decide_backup(owner, status, view, job, now or datetime.now(UTC))
    for j in decision.create_jobs:
        if _create_job(c, j):
            log.info("created Job %s/%s", namespace, j["metadata"]["name"])
    new_status = dump(decision.status)
    changed = new_status != dump(status)
    if changed:
        body = {**{k: obj[k] for k in ("apiVersion", "kind", "spec") if k in obj}}
        body["metadata"] = {"name": name, "namespace": namespace, "resourceVersion": meta["resourceVersion"]}
        body["status"] = new_status
        try:
            c.request("PUT", path_of(BACKUP_KIND, namespace, name) + "/status", body=body)
        except Conflict:
            return Result(requeue_after=1.0, phase=decision.status.phase.value)
    for ev in decision.events:
        post_event(c, obj, ev.type, ev.reason, ev.message)
    requeue = decision.requeue_after
    if changed and requeue is not None:
        requeue = 0.2
    return Result(requeue_after=requeue, phase=decision.status.phase.value, changed=changed)


# -- deletion: the optional last backup ----------------------------------------------------------


def final_backup(
    c: Kube, namespace: str, name: str, now: datetime | None = None
) -> backup_planner.FinalBackup:
    """The last backup of a ShopRelease being deleted (`spec.backup.onDelete`), as
    `plan.backup.decide_final_backup` decides it: create its Job, post its events."""
    obj = read(c, namespace, name)
    if obj is None:
        return backup_planner.FinalBackup(True, "the ShopRelease is gone")
    try:
        spec = parse_spec(obj.get("spec") or {})
    except ValidationError:
        return backup_planner.FinalBackup(True, "the spec does not parse")
    status = parse_status(obj.get("status"))
    meta = obj["metadata"]
    owner = Owner(name=name, namespace=namespace, uid=meta["uid"], generation=meta.get("generation", 1))
    job = None
    if backup_planner.final_backup_wanted(spec, status):
        job = observe_jobs(c, owner, set()).get(backup_planner.final_backup_job_name(owner))
    now = now or datetime.now(UTC)
    deleted_at = meta.get("deletionTimestamp")
    plan = backup_planner.decide_final_backup(
        owner, spec, status, deleted_at=str(deleted_at) if deleted_at else None, job=job, now=now
    )
    if plan.create_job is None or _create_job(c, plan.create_job):
        for ev in plan.events:
            post_event(c, obj, ev.type, ev.reason, ev.message)
    return plan
