"""`make help` is the command catalogue: every target listed under its area, every listed target
real (`make -n` plans it without error), every mk/*.mk file included, and names with digits and
dashes (test-e2e, db-migrate) shown."""

from __future__ import annotations

import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Values the targets that need them are given, so `make -n` plans them as a user would run them.
ARGS = ["KUBECONFIG=/dev/null", "VERSION=1.0.0", "BACKUP=/nonexistent/archive.dump", "m=message"]
GROUPS = {
    "Help": {"help"},
    "Setup and the local shop": {"setup", "install", "run", "dev", "dev-stop", "clean"},
    "Code quality": {
        "lint",
        "fmt",
        "chart-lint",
        "security-scan",
        "devloop-lint",
        "compose-config",
        "skaffold-check",
    },
    "Tests": {
        "test",
        "test-unit",
        "test-integration",
        "test-monitoring",
        "test-e2e",
        "test-load",
        "test-performance",
        "coverage",
        "bench",
        "load",
    },
    "Database": {"db-migrate", "db-rollback", "db-backup", "db-verify", "db-restore", "db-check", "revision"},
    "Docs": {"docs", "docs-errors"},
    "Kubernetes testbed and tools": {"testbed-build", "testbed-up", "testbed-down", "tools", "demo-release"},
    "Deploy (a real cluster, or the testbed)": {
        "build",
        "deploy-staging",
        "deploy-prod",
        "deploy-rollback",
        "health-check",
    },
}


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), *args], capture_output=True, text=True, timeout=60
    )


@cache
def catalogue() -> dict[str, list[str]]:
    proc = make("help")
    assert proc.returncode == 0, proc.stderr
    groups: dict[str, list[str]] = {}
    current = None
    for line in ANSI.sub("", proc.stdout).splitlines():
        if line and not line.startswith(" "):
            assert line.endswith(":"), line
            current = line[:-1]
            groups[current] = []
        elif line.strip():
            assert current is not None, line
            name, _, text = line.strip().partition(" ")
            assert text.strip(), f"{name} has no description"
            groups[current].append(name)
    return groups


def test_help_groups_every_target_by_area() -> None:
    found = {group: set(names) for group, names in catalogue().items()}
    assert found == GROUPS
    listed = [name for names in catalogue().values() for name in names]
    assert len(listed) == len(set(listed)), "a target is listed twice"


def test_every_documented_target_in_the_makefiles_is_listed() -> None:
    documented = set()
    for path in [REPO / "Makefile", *sorted((REPO / "mk").glob("*.mk"))]:
        documented |= set(re.findall(r"^([a-zA-Z0-9_.-]+):(?!=)[^\n]*## ", path.read_text(), re.M))
    assert documented == {name for names in GROUPS.values() for name in names}


def test_every_mk_file_is_included() -> None:
    text = (REPO / "Makefile").read_text().replace("\\\n", " ")  # continued lines joined
    include = next(line for line in text.splitlines() if line.startswith("include "))
    assert set(include.split()[1:]) == {f"mk/{p.name}" for p in (REPO / "mk").glob("*.mk")}


@pytest.mark.parametrize("target", sorted({name for names in GROUPS.values() for name in names}))
def test_each_listed_target_is_real(target: str) -> None:
    proc = make("-n", target, *ARGS)
    assert proc.returncode == 0, f"make -n {target}: {proc.stderr}"
    if target != "install":  # an up-to-date virtualenv has nothing to do
        assert "Nothing to be done" not in proc.stdout, f"{target} is a stub"
        assert proc.stdout.strip(), f"{target} plans no command"


def test_build_plans_every_image_the_charts_run() -> None:
    plan = make("-n", "build", "VERSION=1.2.3")
    assert plan.returncode == 0, plan.stderr
    for image, dockerfile in [
        ("kirana-api", "docker/app.Dockerfile"),
        ("kirana-operator", "docker/operator.Dockerfile"),
        ("kirana-load", "docker/load.Dockerfile"),
    ]:
        assert f"{image}={dockerfile}" in plan.stdout
        assert (REPO / dockerfile).is_file()
    assert '--tag "$image:1.2.3"' in plan.stdout


def test_build_without_an_engine_says_so_in_one_line(tmp_path: Path) -> None:
    # A docker command that cannot reach an engine, as on a machine with the CLI but no daemon.
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = os.environ | {"PATH": f"{tmp_path}:{os.environ['PATH']}"}
    r = subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO), "build"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert r.returncode == 2
    message = [line for line in r.stderr.splitlines() if line.startswith("make build:")]
    assert message == [
        "make build: docker cannot reach an engine (docker info failed); start one or build in CI"
    ]
