"""`python -m deploy deploy|rollback|health-check ENV`: what make deploy-staging, deploy-prod,
deploy-rollback and health-check run (mk/deploy.mk), by hand or from the release workflow.

    deploy ENV --version V       helm upgrade --install charts/kirana at V with the environment's
                                 values; wait for the ShopRelease; health-check; on failure roll
                                 back to the revision that ran before and exit 1
    rollback ENV [--to REV|VER]  helm rollback to the previous (or the named) revision; wait; check
    health-check ENV [--version V]

Every line of progress starts with `[<verb> HH:MM:SS]`; the last line is the verdict,
`VERDICT PASS|FAIL <verb> <env> <version>: <sentence>`. Exit codes: 0 passed; 1 failed (a failed
deploy was rolled back and the previous version is healthy); 2 usage or a precondition (no
kubeconfig, no operator, no config Secret: nothing was changed); 3 failed and the rollback did not
bring a healthy shop back either: a human must act now.

One module past 400 lines on purpose: the three verbs share the progress printer, the verdict
and the rollback decision, and reading a deploy end to end in one file is what an SRE paged at
night needs; the helm and Kubernetes I/O lives in `deploy.cluster`, the checkpoints in
`deploy.checks`.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml

from deploy import checks
from deploy.cluster import CHART, REPO, Cluster, DeployError, Helm, deployed_revision, fetch, find_helm
from kirana.operator.cli import EXIT_READY, parse_duration, release_verdict

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ROLLBACK_FAILED = 0, 1, 2, 3
ABORT_ANNOTATION = "kirana.dev/abort"


@dataclass(frozen=True)
class Environment:
    name: str
    namespace: str
    values: Path
    smoke: str  # auto: smoke through the ingress when it has an address; required: fail without one


ENVIRONMENTS = {
    "staging": Environment("staging", "kirana-staging", REPO / "deploy" / "values" / "staging.yaml", "auto"),
    "production": Environment(
        "production", "kirana-production", REPO / "deploy" / "values" / "production.yaml", "required"
    ),
}


@dataclass
class Context:
    verb: str
    env: Environment
    namespace: str
    release: str
    values: list[Path]
    timeout: float
    smoke: str
    smoke_url: str | None
    helm: Helm
    cluster: Cluster
    out: TextIO
    poll: float = 2.0
    results: list[checks.Check] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(f"[{self.verb} {datetime.now(UTC):%H:%M:%S}] {text}", file=self.out, flush=True)

    def verdict(self, ok: bool, version: str | None, sentence: str) -> None:
        if self.results:
            print(checks.table(self.results), file=self.out)
        word = "PASS" if ok else "FAIL"
        print(
            f"VERDICT {word} {self.verb} {self.env.name} {version or '-'}: {sentence}",
            file=self.out,
            flush=True,
        )


# -- reading the release -----------------------------------------------------------------------------


def shoprelease_name(ctx: Context, revision: int | None = None) -> str:
    """The ShopRelease the chart made: fullnameOverride, else the release name (as _helpers.tpl)."""
    if revision is None:
        revision = deployed_revision(ctx.helm.history(ctx.release))
    if revision is None:
        return ctx.release
    override = ctx.helm.values(ctx.release, revision).get("fullnameOverride") or ""
    return str(override or ctx.release)[:40].rstrip("-")


def wait_release(ctx: Context, name: str, timeout: float) -> tuple[int | None, str]:
    """Poll until the operator says Ready at spec.version or Degraded; (None, last phase) on timeout."""
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        obj = ctx.cluster.release(name)
        if obj is None:
            code, sentence = None, f"shoprelease/{name} does not exist yet"
        else:
            code, sentence = release_verdict(obj)
            rel = (obj.get("status") or {}).get("release") or {}
            if code is None and rel.get("step") and not rel.get("outcome"):
                sentence += f" (step {rel['step']} of {rel.get('version')})"
        if sentence != last:
            ctx.say(sentence)
            last = sentence
        if code is not None:
            return code, sentence
        if time.monotonic() >= deadline:
            return None, f"timed out after {int(timeout)}s: {sentence}"
        time.sleep(ctx.poll)


def migration_job(ctx: Context, name: str, obj: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """The migration Job of the running version (the release that made it live)."""
    status = obj.get("status") or {}
    rel = status.get("release") or {}
    current = status.get("currentVersion")
    if rel.get("key") and rel.get("version") == current and rel.get("outcome") == "Succeeded":
        job_name = f"{name}-migrate-{rel['key']}"
        return ctx.cluster.job(job_name), job_name
    # The last release failed or was another version (a failed deploy rolled back): that version's Job.
    jobs = ctx.cluster.jobs(
        f"kirana.dev/release={name},kirana.dev/step=migrate,app.kubernetes.io/version={current}"
    )
    if not jobs:
        return None, f"{name}-migrate-<{current}>"
    return jobs[-1], str(jobs[-1]["metadata"]["name"])


def health(ctx: Context, name: str, version: str | None) -> list[checks.Check]:
    """Every checkpoint, in the order an SRE would look."""
    obj = ctx.cluster.release(name)
    found = checks.release_checks(obj, name, version)
    if obj is None:
        return found
    spec = obj.get("spec") or {}
    image = spec.get("image") or {}
    want_image = f"{image.get('repository', 'kirana-api')}:{image.get('tag') or spec.get('version')}"
    for part in ("api", "workers"):
        dep_name = f"{name}-{part}"
        found.append(checks.deployment_check(ctx.cluster.deployment(dep_name), dep_name, want_image))
    job, job_name = migration_job(ctx, name, obj)
    found.append(checks.migration_check(job, job_name, obj))
    replicas = int((spec.get("api") or {}).get("replicas", 2))
    found.append(checks.endpoints_check(ctx.cluster.endpoint_slices(f"{name}-api"), f"{name}-api", replicas))
    base: str | None = ctx.smoke_url.rstrip("/") if ctx.smoke_url else None
    why = ""
    if base is None:
        base, why = checks.ingress_base_url(ctx.cluster.ingress(name))
    found.append(checks.smoke_check(base, why, ctx.smoke, fetch))
    return found


# -- the verbs ---------------------------------------------------------------------------------------


def preflight(ctx: Context) -> None:
    ctx.say(f"cluster {ctx.cluster.reachable()}; namespace {ctx.namespace}; helm release {ctx.release}")
    if not ctx.cluster.crd_installed():
        raise DeployError("the ShopRelease CRD is not installed: install charts/kirana-operator first")
    secret = f"{ctx.release}-env"
    for path in ctx.values:
        doc = yaml.safe_load(path.read_text()) or {}
        secret = ((doc.get("config") or {}).get("secretName")) or secret
    if not ctx.cluster.secret_exists(secret):
        raise DeployError(f"Secret {secret} (KIRANA_DATABASE_URL, ...) does not exist in {ctx.namespace}")
    ctx.say(f"config Secret {secret} exists")


def check_and_report(ctx: Context, name: str, version: str | None) -> bool:
    ctx.results = health(ctx, name, version)
    bad = [c.name for c in ctx.results if c.result == checks.FAIL]
    ctx.say("health-check: " + ("every checkpoint passed" if not bad else "failed: " + ", ".join(bad)))
    return not bad


def roll_back(ctx: Context, revision: int, version: str | None) -> tuple[bool, str]:
    """helm rollback to `revision`, then the operator's release of it; (healthy, sentence)."""
    ctx.say(f"helm rollback {ctx.release} {revision} (version {version})")
    ctx.helm.run("rollback", ctx.release, str(revision))
    name = shoprelease_name(ctx, revision)
    code, sentence = wait_release(ctx, name, ctx.timeout)
    if code != EXIT_READY:
        ctx.results = health(ctx, name, version)
        return False, sentence
    return check_and_report(ctx, name, version), sentence


def _last_revision(history: list[dict[str, Any]]) -> int:
    return max((int(r["revision"]) for r in history), default=0)


def do_deploy(ctx: Context, version: str) -> int:
    """Upgrade to `version`; on any failure once helm has been asked, put the previous revision
    back. 0: live and healthy; 1: failed, and nothing changed or the previous revision runs
    healthy again; 3: the rollback failed or could not be confirmed (look now)."""
    preflight(ctx)
    history = ctx.helm.history(ctx.release)
    last_before = _last_revision(history)
    previous = deployed_revision(history)
    prev_version = ctx.helm.values(ctx.release, previous).get("version") if previous else None
    ctx.say(f"previous: revision {previous}, version {prev_version}" if previous else "first install")
    argv = ["upgrade", "--install", ctx.release, str(CHART), "--create-namespace"]
    for path in ctx.values:
        argv += ["-f", str(path)]
    argv += ["--set-string", f"version={version}", "--set-string", f"image.tag={version}"]
    ctx.say(f"helm {' '.join(argv)}")
    failure, helm_failed = "", False
    try:
        ctx.helm.run(*argv)
    except DeployError as exc:
        failure, helm_failed = str(exc), True
    try:
        if not failure:
            name = shoprelease_name(ctx)
            ctx.say(f"waiting for shoprelease/{name} (at most {int(ctx.timeout)}s)")
            code, sentence = wait_release(ctx, name, ctx.timeout)
            if code is None:
                token = uuid.uuid4().hex[:8]
                ctx.say(f"{sentence}; asking the operator to abort ({ABORT_ANNOTATION}={token})")
                ctx.cluster.annotate_release(name, ABORT_ANNOTATION, token)
                code, _ = wait_release(ctx, name, min(ctx.timeout, 300))
            if code == EXIT_READY and check_and_report(ctx, name, version):
                ctx.verdict(True, version, f"{version} is live and healthy in {ctx.namespace}")
                return EXIT_OK
            failure = "health-check failed" if code == EXIT_READY else sentence
    except Exception as exc:  # helm has been asked: whatever broke, the release must be put back
        failure = f"{type(exc).__name__}: {exc}"
    ctx.say(f"deploy of {version} failed: {failure}")
    if previous is None:
        ctx.verdict(False, version, f"{failure}; first install, nothing to roll back to")
        return EXIT_FAILED
    if helm_failed:
        try:
            after = _last_revision(ctx.helm.history(ctx.release))
        except Exception:  # noqa: BLE001 - unknown: roll back to be sure
            after = last_before + 1
        if after == last_before:  # helm recorded no revision: it changed nothing
            runs = f"revision {previous} ({prev_version}) runs"
            ctx.verdict(False, version, f"{failure}; nothing changed, {runs}")
            return EXIT_FAILED
    try:
        healthy, why = roll_back(ctx, previous, prev_version)
    except Exception as exc:  # noqa: BLE001 - reported as a failed rollback, never as a success
        healthy, why = False, f"{type(exc).__name__}: {exc}"
    if healthy:
        ctx.verdict(
            False, version, f"{failure}; rolled back to {prev_version} (revision {previous}), healthy"
        )
        return EXIT_FAILED
    ctx.verdict(False, version, f"{failure}; rollback to {prev_version} did not become healthy ({why})")
    return EXIT_ROLLBACK_FAILED


def rolled_back_to(history: list[dict[str, Any]], revision: int) -> int:
    """The revision whose values `revision` runs, following `helm rollback`'s "Rollback to N"."""
    by_revision = {int(r["revision"]): r for r in history}
    seen = set()
    while revision in by_revision and revision not in seen:
        seen.add(revision)
        m = re.match(r"Rollback to (\d+)", str(by_revision[revision].get("description", "")))
        if not m:
            break
        revision = int(m.group(1))
    return revision


# helm statuses of revisions that really ran (a `failed` or `pending-*` one never became live).
RAN = frozenset({"deployed", "superseded"})


def rollback_target(ctx: Context, to: str | None) -> tuple[int, str | None]:
    history = ctx.helm.history(ctx.release)
    current = deployed_revision(history)
    if current is None:
        raise DeployError(f"helm release {ctx.release} has no deployed revision in {ctx.namespace}")
    revisions = [int(r["revision"]) for r in history]
    if to is None:
        # A revision made by `helm rollback` ("Rollback to N") runs N's values: what ran before it is
        # what ran before N (a failed deploy that was rolled back is never "the previous").
        effective = rolled_back_to(history, current)
        running = ctx.helm.values(ctx.release, current).get("version")
        ran = {int(r["revision"]) for r in history if str(r.get("status")) in RAN}
        older = [
            r
            for r in revisions
            if r < effective and r in ran and ctx.helm.values(ctx.release, r).get("version") != running
        ]
        if not older:
            raise DeployError(f"revision {current} ({running}) has no earlier version to roll back to")
        target = max(older)
    elif to.isdigit():
        target = int(to)
        if target not in revisions:
            raise DeployError(f"revision {target} is not in the history ({revisions[0]}..{revisions[-1]})")
    else:
        named = [r for r in revisions if ctx.helm.values(ctx.release, r).get("version") == to]
        if not named:
            raise DeployError(f"no revision of {ctx.release} ran version {to}")
        target = max(named)
    return target, ctx.helm.values(ctx.release, target).get("version")


def do_rollback(ctx: Context, to: str | None) -> int:
    preflight(ctx)
    target, version = rollback_target(ctx, to)
    ctx.say(f"rolling back to revision {target} (version {version})")
    healthy, why = roll_back(ctx, target, version)
    if healthy:
        ctx.verdict(True, version, f"rolled back to {version} (revision {target}), healthy")
        return EXIT_OK
    ctx.verdict(False, version, f"rollback to {version} (revision {target}) is not healthy: {why}")
    return EXIT_FAILED


def do_health(ctx: Context, version: str | None) -> int:
    ctx.say(f"cluster {ctx.cluster.reachable()}; namespace {ctx.namespace}")
    name = shoprelease_name(ctx)
    ok = check_and_report(ctx, name, version)
    obj = ctx.cluster.release(name) or {}
    running = (obj.get("status") or {}).get("currentVersion") or version
    ctx.verdict(
        ok,
        running,
        "healthy"
        if ok
        else "unhealthy: " + ", ".join(c.name for c in ctx.results if c.result == checks.FAIL),
    )
    return EXIT_OK if ok else EXIT_FAILED


# -- entry point -------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m deploy", description="Deploy, roll back and check a Kirana shop."
    )
    sub = p.add_subparsers(dest="verb", required=True)
    verbs = {
        "deploy": "install or upgrade to --version, wait, health-check; roll back on failure",
        "rollback": "helm rollback to the previous (or --to) revision, wait, health-check",
        "health-check": "the release checkpoints: Ready, generation, rollout, migration, endpoints, smoke",
    }
    for verb, text in verbs.items():
        s = sub.add_parser(verb, help=text, description=text)
        s.add_argument("env", choices=sorted(ENVIRONMENTS), help="environment")
        s.add_argument("--kubeconfig", required=True, type=Path, help="kubeconfig of the cluster")
        s.add_argument("--version", required=verb == "deploy", help="shop version (and image tag)")
        s.add_argument("--namespace", help="namespace (default: the environment's)")
        s.add_argument("--release", default="shop", help="helm release name (default: shop)")
        s.add_argument(
            "--values", action="append", type=Path, default=[], help="more values files, last wins"
        )
        s.add_argument("--timeout", type=parse_duration, default=parse_duration("15m"), help="per wait (15m)")
        s.add_argument(
            "--smoke", choices=["auto", "required", "off"], help="smoke policy (default: the env's)"
        )
        s.add_argument(
            "--smoke-url", help="base URL of the shop for the smoke request (default: the Ingress)"
        )
        s.add_argument("--helm", help="helm binary (default: .local/bin/helm, else PATH)")
        if verb == "rollback":
            s.add_argument(
                "--to", help="helm revision number or version to return to (default: the previous)"
            )
    return p


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    args = parser().parse_args(argv)
    env = ENVIRONMENTS[args.env]
    namespace = args.namespace or env.namespace
    for path in args.values:
        if not path.is_file():
            print(f"error: values file {path} does not exist", file=sys.stderr)
            return EXIT_USAGE
    try:
        helm = Helm(find_helm(args.helm), args.kubeconfig, namespace)
        cluster = Cluster(args.kubeconfig, namespace)
    except DeployError as exc:
        print(f"VERDICT FAIL {args.verb} {env.name} {args.version or '-'}: {exc}", file=out)
        return EXIT_USAGE
    ctx = Context(
        verb=args.verb,
        env=env,
        namespace=namespace,
        release=args.release,
        values=[env.values, *args.values],
        timeout=args.timeout,
        smoke=args.smoke or env.smoke,
        smoke_url=args.smoke_url,
        helm=helm,
        cluster=cluster,
        out=out,
    )
    try:
        if args.verb == "deploy":
            return do_deploy(ctx, args.version)
        if args.verb == "rollback":
            return do_rollback(ctx, args.to)
        return do_health(ctx, args.version)
    except DeployError as exc:
        ctx.verdict(False, args.version, str(exc))
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - an unexpected error mid-way: the state is unknown
        ctx.verdict(False, args.version, f"unexpected {type(exc).__name__}: {exc}; check the release now")
        return EXIT_FAILED if args.verb == "health-check" else EXIT_ROLLBACK_FAILED
    finally:
        cluster.close()
