"""The delivery pipeline's shape, read from .github/workflows: stage order, gates, pinning,
permissions and concurrency. Nothing here runs a workflow; it reads what GitHub would run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")
# What a job may be granted, by job; anything else (write-all, contents: write, ...) fails.
ALLOWED_WRITES = {"packages", "id-token"}


def load(name: str) -> dict[str, Any]:
    text = (WORKFLOWS / name).read_text()
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
    data = yaml.safe_load(text)
    if True in data:
        data["on"] = data.pop(True)
    return dict(data)


def all_workflows() -> list[str]:
    return sorted(p.name for p in WORKFLOWS.glob("*.yml"))


def needs(job: dict[str, Any]) -> set[str]:
    value = job.get("needs", [])
    return {value} if isinstance(value, str) else set(value)


def ancestors(jobs: dict[str, Any], name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(needs(jobs[name]))
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(needs(jobs[n]))
    return seen


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job.get("steps", []) if str(s.get("uses", "")).startswith(action + "@")]


def run_lines(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in job.get("steps", []))


@pytest.fixture(scope="module")
def delivery() -> dict[str, Any]:
    return load("delivery.yml")


def test_the_workflows_this_task_relies_on_exist() -> None:
    assert {"ci.yml", "delivery.yml", "rollback.yml"} <= set(all_workflows())


def test_stages_run_in_order_build_scan_push_staging_production(delivery: dict[str, Any]) -> None:
    jobs = delivery["jobs"]
    order = ["build", "scan", "push", "staging", "production"]
    for earlier, later in zip(order, order[1:], strict=False):
        assert earlier in needs(jobs[later]), f"{later} must need {earlier}"
    for i, stage in enumerate(order):
        assert set(order[:i]) <= ancestors(jobs, stage), f"{stage} must come after {order[:i]}"
        assert not set(order[i:]) & ancestors(jobs, stage), f"{stage} must not wait for a later stage"


def test_scan_fails_the_job_on_fixable_high_and_critical(delivery: dict[str, Any]) -> None:
    scan = delivery["jobs"]["scan"]
    [trivy] = steps_using(scan, "aquasecurity/trivy-action")
    opts = trivy["with"]
    assert str(opts["exit-code"]) == "1"
    assert opts["ignore-unfixed"] is True
    assert set(opts["severity"].split(",")) == {"HIGH", "CRITICAL"}
    assert "continue-on-error" not in trivy and "continue-on-error" not in scan
    # Every image the pipeline pushes is the one it scanned.
    assert scan["strategy"]["matrix"] == delivery["jobs"]["push"]["strategy"]["matrix"]


def test_images_are_built_with_cache_and_pushed_with_attestations(delivery: dict[str, Any]) -> None:
    jobs = delivery["jobs"]
    images = {i["image"] for i in jobs["build"]["strategy"]["matrix"]["include"]}
    assert images == {"kirana-api", "kirana-operator"}
    [build] = steps_using(jobs["build"], "docker/build-push-action")
    assert build["with"]["push"] is False
    assert "type=gha" in build["with"]["cache-to"]
    [push] = steps_using(jobs["push"], "docker/build-push-action")
    assert push["with"]["push"] is True
    assert push["with"]["sbom"] is True
    assert push["with"]["provenance"].startswith("mode=")
    assert "type=gha" in push["with"]["cache-from"]
    assert steps_using(jobs["push"], "docker/setup-buildx-action")
    [meta] = steps_using(jobs["push"], "docker/metadata-action")
    tags = meta["with"]["tags"]
    assert "needs.version.outputs.version" in tags and "type=sha" in tags


def test_staging_deploys_then_smoke_tests_and_production_is_gated(delivery: dict[str, Any]) -> None:
    jobs = delivery["jobs"]
    staging, production = jobs["staging"], jobs["production"]
    assert staging["environment"] == "staging"
    assert production["environment"] == "production"
    staging_run = run_lines(staging)
    assert re.search(r"make deploy-staging KUBECONFIG=\S+ VERSION=\S+", staging_run)
    assert staging_run.index("make deploy-staging") < staging_run.index("make health-check ENV=staging")
    production_run = run_lines(production)
    assert re.search(r"make deploy-prod KUBECONFIG=\S+ VERSION=\S+", production_run)
    assert production_run.index("make deploy-prod") < production_run.index("make health-check ENV=production")
    assert "required reviewers" in (WORKFLOWS / "delivery.yml").read_text()


def test_rollback_is_dispatched_with_environment_and_revision() -> None:
    rollback = load("rollback.yml")
    inputs = rollback["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs["environment"]["options"]) == {"staging", "production"}
    assert inputs["revision"]["type"] == "string"
    [job] = rollback["jobs"].values()
    assert job["environment"] == "${{ inputs.environment }}"
    assert job["env"]["REVISION"] == "${{ inputs.revision }}"
    lines = run_lines(job)
    assert re.search(r'make deploy-rollback ENV="\$ENVIRONMENT" .*TO="\$REVISION"', lines)
    assert lines.index("make deploy-rollback") < lines.index("make health-check")


@pytest.mark.parametrize("name", all_workflows())
def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version(name: str) -> None:
    text = (WORKFLOWS / name).read_text()
    uses = re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", text, flags=re.M)
    assert uses, f"{name} uses no action"
    for ref, rest in uses:
        if ref.startswith("./"):
            continue  # an action of this repository, pinned by the commit itself
        assert SHA_PIN.match(ref), f"{name}: {ref} is not pinned to a 40-hex commit SHA"
        assert re.match(r"\s+#\s*v?\d+\.\d+\.\d+", rest), f"{name}: {ref} has no '# vX.Y.Z' comment"


@pytest.mark.parametrize("name", all_workflows())
def test_permissions_are_least_privilege_per_job(name: str) -> None:
    wf = load(name)
    top = wf.get("permissions")
    assert top in ({}, {"contents": "read"}), f"{name}: top-level permissions must be {{}} or contents: read"
    for job_name, job in wf["jobs"].items():
        perms = job.get("permissions", top)
        assert isinstance(perms, dict), f"{name}/{job_name}: permissions must be a mapping"
        for scope, level in perms.items():
            assert level in ("read", "write", "none"), f"{name}/{job_name}: {scope}: {level}"
            if level == "write":
                assert scope in ALLOWED_WRITES, f"{name}/{job_name} must not write {scope}"
        uses_oidc = any(steps_using(job, a) for a in ("aws-actions/configure-aws-credentials", "azure/login"))
        assert (perms.get("id-token") == "write") == uses_oidc, (
            f"{name}/{job_name}: id-token: write exactly where OIDC credentials are requested"
        )
        pushes = any(
            s.get("with", {}).get("push") is True for s in steps_using(job, "docker/build-push-action")
        )
        assert (perms.get("packages") == "write") == pushes, (
            f"{name}/{job_name}: packages: write only to push"
        )


def test_cloud_credentials_come_from_oidc_not_stored_keys() -> None:
    for name in all_workflows():
        text = (WORKFLOWS / name).read_text()
        assert not re.search(
            r"aws-access-key-id|aws-secret-access-key|KUBECONFIG_DATA|client-secret", text
        ), name
        for job in load(name)["jobs"].values():
            for step in steps_using(job, "aws-actions/configure-aws-credentials"):
                assert "role-to-assume" in step["with"]


def test_deploys_are_serialised_per_environment() -> None:
    groups: dict[str, set[str]] = {}
    for name in ("delivery.yml", "rollback.yml"):
        for job_name, job in load(name)["jobs"].items():
            env = job.get("environment")
            if env is None:
                continue
            conc = job.get("concurrency")
            assert isinstance(conc, dict), f"{name}/{job_name} deploys without a concurrency group"
            assert conc["cancel-in-progress"] is False, (
                f"{name}/{job_name}: a deploy is never cancelled midway"
            )
            groups.setdefault(name, set()).add(conc["group"])
            if env.startswith("${{"):
                assert conc["group"] == "deploy-${{ inputs.environment }}"
            else:
                assert conc["group"] == f"deploy-{env}"
    assert groups["delivery.yml"] == {"deploy-staging", "deploy-production"}
    assert groups["rollback.yml"] == {"deploy-${{ inputs.environment }}"}
