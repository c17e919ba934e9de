"""`kubectl kirana`: a ShopRelease seen and steered from the command line.

Installed as the `kubectl-kirana` console script of the operator package, so `kubectl kirana ...`
works once it is on PATH. Every verb only reads or edits Kubernetes objects (the ShopRelease's
spec, or a ShopBackup for an on-demand backup): RBAC and the audit log stay Kubernetes'. The
operator does the work; this only asks and reports. Uses the typed `kubernetes` client (a CLI's
memory does not matter) and the operator's pure status vocabulary.

    kubectl kirana status NAME [--watch]      the step, Jobs, Deployments, gate, backups
    kubectl kirana history NAME               past releases, newest first
    kubectl kirana pause|resume NAME          spec.paused (holds at the next step boundary)
    kubectl kirana abort NAME                 stop the release in flight and roll back now
    kubectl kirana retry NAME                 try the failed version again
    kubectl kirana backup NAME                an on-demand ShopBackup
    kubectl kirana restore NAME BACKUP [--yes]
    kubectl kirana wait NAME --for=release [--timeout=15m]
                                              exit 0 Ready at spec.version, 1 Degraded, 2 timeout

Longer than 400 lines: one small function per verb above, sharing the same readers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kirana.operator.spec import BACKUP_KIND, BACKUP_PLURAL, GROUP, PLURAL, VERSION

RELEASE_LABEL = "kirana.dev/release"
EXIT_READY, EXIT_DEGRADED, EXIT_TIMEOUT, EXIT_USAGE = 0, 1, 2, 3


class Cluster:
    """The few API calls the verbs make, in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.apps = client.AppsV1Api(api)

    def release(self, name: str) -> dict[str, Any]:
        obj: Any = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        return dict(obj)

    def annotate(self, name: str, key: str, value: str) -> None:
        body = {"metadata": {"annotations": {key: value}}}
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, body)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec}
        )

    def jobs(self, name: str) -> list[Any]:
        items = self.batch.list_namespaced_job(self.namespace, label_selector=f"{RELEASE_LABEL}={name}").items
        return sorted(items, key=lambda j: j.metadata.creation_timestamp or datetime.min.replace(tzinfo=UTC))

    def deployment(self, name: str) -> Any | None:
        try:
            return self.apps.read_namespaced_deployment(name, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def backups(self, name: str) -> list[dict[str, Any]]:
        listing: Any = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, BACKUP_PLURAL
        )
        mine = [
            b
            for b in listing.get("items", [])
            if (b.get("spec") or {}).get("releaseRef", {}).get("name") == name
        ]
        return sorted(mine, key=lambda b: str(b["metadata"].get("creationTimestamp", "")))

    def create_backup(self, release: str, backup: str) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": BACKUP_KIND,
            "metadata": {"name": backup, "namespace": self.namespace},
            "spec": {"releaseRef": {"name": release}},
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, BACKUP_PLURAL, body)


# -- status ------------------------------------------------------------------------------------------


def _ago(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return ""
    try:
        seconds = int((now - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds())
    except ValueError:
        return stamp
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"


def _job_phase(job: Any) -> str:
    for cond in job.status.conditions or []:
        if cond.status == "True" and cond.type in ("Complete", "Failed"):
            return "Succeeded" if cond.type == "Complete" else f"Failed ({cond.reason or 'failed'})"
    return "Running" if (job.status.active or 0) else "Pending"


def gate_sample(gate: dict[str, Any], timeout: float = 3.0) -> str:
    """The gate's query, evaluated from here once: "value V (threshold: C T)" or why not."""
    url = (
        str(gate.get("url", "")).rstrip("/")
        + "/api/v1/query?"
        + urllib.parse.urlencode({"query": gate.get("query", "")})
    )
    threshold = f"{gate.get('comparison', 'LessThanOrEqual')} {gate.get('threshold')}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # the URL is the spec's
            body = json.loads(resp.read())
        result = body["data"]["result"]
        if body["data"]["resultType"] == "scalar":
            value = result[1]
        else:
            value = result[0]["value"][1] if result else "no data"
    except Exception as exc:  # shown, not fatal: the gate may be unreachable from here
        return f"not reachable from here ({type(exc).__name__}); threshold {threshold}"
    return f"value {value} (threshold: {threshold})"


def render_status(cluster: Cluster, name: str, now: datetime, *, sample_gate: bool = True) -> str:
    obj = cluster.release(name)
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    rel = status.get("release") or {}
    lines = [
        f"ShopRelease {cluster.namespace}/{name}",
        f"  Phase:    {status.get('phase', 'Pending')}",
        f"  Version:  {status.get('currentVersion') or '-'} running, {spec.get('version')} wanted"
        + ("  (paused)" if spec.get("paused") else ""),
    ]
    if rel and rel.get("outcome") is None:
        started = rel.get("stepStartedAt")
        began = f"started {_ago(started, now)}" if started else "not begun (step boundary)"
        lines.append(f"  Step:     {rel.get('step')} of {rel.get('version')}, {began}")
    elif rel:
        lines.append(f"  Last:     {rel.get('version')} {rel.get('outcome')}")
    failure = rel.get("failure") if rel else None
    if failure:
        lines.append(f"  Failure:  {failure.get('reason')}: {failure.get('message')}")
    lines.append("Conditions:")
    for c in status.get("conditions") or []:
        lines.append(f"  {c['type']:<12} {c['status']:<6} {c.get('reason', ''):<18} {c.get('message', '')}")
    lines.append("Jobs:")
    jobs = cluster.jobs(name)
    for j in jobs[-8:]:
        step = (j.metadata.labels or {}).get("kirana.dev/step", "")
        lines.append(f"  {j.metadata.name:<40} {step:<14} {_job_phase(j)}")
    if not jobs:
        lines.append("  (none)")
    lines.append("Deployments:")
    for part, replicas in (
        ("api", (spec.get("api") or {}).get("replicas", 2)),
        ("workers", (spec.get("workers") or {}).get("replicas", 1)),
    ):
        d = cluster.deployment(f"{name}-{part}")
        if d is None:
            lines.append(f"  {name}-{part:<33} not created")
            continue
        st = d.status
        image = d.spec.template.spec.containers[0].image
        lines.append(
            f"  {d.metadata.name:<40} ready {st.ready_replicas or 0}/{replicas}  "
            f"updated {st.updated_replicas or 0}/{replicas}  available {st.available_replicas or 0}  {image}"
        )
    gate = ((spec.get("rollout") or {}).get("healthGate") or {}).get("prometheus")
    if gate:
        shown = (
            gate_sample(gate)
            if sample_gate
            else f"threshold {gate.get('comparison')} {gate.get('threshold')}"
        )
        lines.append(f"Gate:       {shown}")
    lines.append("Backups:")
    last = status.get("lastBackup")
    if last:
        size = f"{last['size']} bytes" if last.get("size") is not None else "size unknown"
        lines.append(f"  last pre-upgrade  {last.get('path')}  {last.get('time')}  {size}")
    for b in cluster.backups(name)[-5:]:
        bs = b.get("status") or {}
        lines.append(
            f"  {b['metadata']['name']:<30} {bs.get('phase', 'Pending'):<10} {bs.get('path') or ''}  "
            f"{bs.get('completedAt') or ''}"
        )
    if not last and not cluster.backups(name):
        lines.append("  (none)")
    restore = status.get("lastRestore")
    if restore:
        lines.append(
            f"Restore:    {restore.get('requestId')} from {restore.get('backupName')}: "
            f"{restore.get('outcome') or restore.get('step')} {restore.get('message', '')}"
        )
    return "\n".join(lines)


def render_history(obj: dict[str, Any]) -> str:
    rows = [f"{'VERSION':<12} {'OUTCOME':<10} {'STARTED':<22} {'FINISHED':<22} REASON"]
    for h in (obj.get("status") or {}).get("history") or []:
        rows.append(
            f"{h['version']:<12} {h['outcome']:<10} {h['startedAt']:<22} {h['finishedAt']:<22} "
            f"{h.get('reason', '')}"
        )
    return "\n".join(rows)


# -- wait --------------------------------------------------------------------------------------------


def release_verdict(obj: dict[str, Any]) -> tuple[int | None, str]:
    """(exit code, sentence) once the release the spec asks for has ended; (None, ...) before."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    seen = status.get("observedGeneration", 0) >= obj["metadata"].get("generation", 1)
    conds = {c["type"]: c for c in status.get("conditions") or []}
    if not seen:
        return None, "the operator has not seen the latest spec yet"
    version = spec.get("version")
    if status.get("phase") == "Ready" and status.get("currentVersion") == version:
        return EXIT_READY, f"{version} is Ready"
    degraded = conds.get("Degraded")
    if status.get("phase") == "Degraded" or (degraded and degraded["status"] == "True"):
        why = f"{degraded.get('reason')}: {degraded.get('message')}" if degraded else "degraded"
        return EXIT_DEGRADED, f"release of {version} failed: {why}"
    return None, f"phase {status.get('phase', 'Pending')}"


DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> float:
    """`15m`, `1h30m`, `90s` or plain seconds."""
    if text.isdigit():
        return float(text)
    m = DURATION.match(text)
    if not m or not any(m.groups()):
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 90s, 15m, 1h30m)")
    h, mi, s = (int(g or 0) for g in m.groups())
    return float(h * 3600 + mi * 60 + s)


def wait(
    read: Callable[[], dict[str, Any]],
    timeout: float,
    out: TextIO,
    *,
    poll: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    deadline = clock() + timeout
    last = ""
    while True:
        code, sentence = release_verdict(read())
        if sentence != last:
            print(sentence, file=out, flush=True)
            last = sentence
        if code is not None:
            return code
        if clock() >= deadline:
            print(f"timed out after {int(timeout)}s ({sentence})", file=out, flush=True)
            return EXIT_TIMEOUT
        sleep(poll)


# -- entry point -------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubectl kirana", description="See and steer Kirana ShopReleases.")
    p.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context")
    sub = p.add_subparsers(dest="verb", required=True)
    st = sub.add_parser("status", help="the release: step, Jobs, Deployments, gate, backups")
    st.add_argument("name")
    st.add_argument("-w", "--watch", action="store_true", help="redraw every 2 s until interrupted")
    st.add_argument("--no-gate", action="store_true", help="do not evaluate the gate's query from here")
    for verb, text in (
        ("history", "past releases"),
        ("pause", "set spec.paused: the release holds at its next step boundary"),
        ("resume", "clear spec.paused"),
        ("backup", "take an on-demand backup (a ShopBackup)"),
        ("abort", "stop the release in flight and roll back now (annotation kirana.dev/abort)"),
        ("retry", "try the failed version again (annotation kirana.dev/retry)"),
    ):
        sub.add_parser(verb, help=text).add_argument("name")
    rs = sub.add_parser("restore", help="restore a ShopBackup into the release's database")
    rs.add_argument("name")
    rs.add_argument("backup")
    rs.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    w = sub.add_parser("wait", help="wait for the release: exit 0 Ready, 1 Degraded, 2 timeout")
    w.add_argument("name")
    w.add_argument("--for", dest="condition", default="release", choices=["release"])
    w.add_argument("--timeout", type=parse_duration, default=parse_duration("15m"))
    return p


def connect(args: argparse.Namespace) -> Cluster:
    config.load_kube_config(config_file=args.kubeconfig, context=args.context)  # type: ignore[no-untyped-call]
    namespace = args.namespace
    if not namespace:
        _, active = config.list_kube_config_contexts(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
        namespace = (active or {}).get("context", {}).get("namespace") or "default"
        if args.context:
            contexts, _ = config.list_kube_config_contexts(config_file=args.kubeconfig)  # type: ignore[no-untyped-call]
            chosen: dict[str, Any] = next((c for c in contexts if c["name"] == args.context), {})
            namespace = chosen.get("context", {}).get("namespace") or "default"
    return Cluster(client.ApiClient(), namespace)


def run(args: argparse.Namespace, cluster: Cluster, out: TextIO, stdin: TextIO) -> int:
    def now() -> datetime:
        return datetime.now(UTC)

    if args.verb == "status":
        while True:
            text = render_status(cluster, args.name, now(), sample_gate=not args.no_gate)
            if not args.watch:
                print(text, file=out)
                return 0
            print("\033[H\033[2J" + text, file=out, flush=True)
            time.sleep(2)
    if args.verb == "history":
        print(render_history(cluster.release(args.name)), file=out)
        return 0
    if args.verb in ("pause", "resume"):
        cluster.release(args.name)  # a clear error if it does not exist
        cluster.patch_spec(args.name, {"paused": args.verb == "pause"})
        what = "paused: it holds at the next step boundary" if args.verb == "pause" else "resumed"
        print(f"shoprelease/{args.name} {what}", file=out)
        return 0
    if args.verb in ("abort", "retry"):
        obj = cluster.release(args.name)
        rel = (obj.get("status") or {}).get("release") or {}
        if args.verb == "abort" and (not rel or rel.get("outcome")):
            print(f"shoprelease/{args.name} has no release in flight", file=out)
            return EXIT_USAGE
        if args.verb == "retry" and rel.get("outcome") != "Failed":
            print(f"shoprelease/{args.name}: the last release did not fail; nothing to retry", file=out)
            return EXIT_USAGE
        token = uuid.uuid4().hex[:8]
        cluster.annotate(args.name, f"kirana.dev/{args.verb}", token)
        what = (
            f"abort {token} of {rel.get('version')} requested (a running migration Job is let finish first)"
            if args.verb == "abort"
            else f"retry {token} of {rel.get('version')} requested"
        )
        print(f"shoprelease/{args.name}: {what}", file=out)
        return 0
    if args.verb == "backup":
        cluster.release(args.name)
        backup = f"{args.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        cluster.create_backup(args.name, backup)
        print(f"shopbackup/{backup} created; `kubectl get shopbackup {backup} -w` follows it", file=out)
        return 0
    if args.verb == "restore":
        cluster.release(args.name)
        if not args.yes:
            print(
                f"Restore ShopBackup {args.backup} into the database of {args.name}? The app is scaled to 0 "
                "while it runs; the replaced database is kept. Type the release's name to go on: ",
                end="",
                file=out,
                flush=True,
            )
            if stdin.readline().strip() != args.name:
                print("not restored", file=out)
                return EXIT_USAGE
        request = uuid.uuid4().hex[:8]
        cluster.patch_spec(args.name, {"restore": {"backupName": args.backup, "requestId": request}})
        print(
            f"restore {request} of {args.backup} requested; `kubectl kirana status {args.name}` follows it",
            file=out,
        )
        return 0
    if args.verb == "wait":
        return wait(lambda: cluster.release(args.name), args.timeout, out)
    raise AssertionError(args.verb)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args, connect(args), sys.stdout, sys.stdin)
    except ApiException as exc:
        detail = exc.reason
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            detail = json.loads(exc.body or "").get("message", detail)
        print(f"error: {detail}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
