"""What `do_deploy` and `rollback_target` decide when things go wrong, each exit code meaning
what it says: 1 only when nothing changed or the previous revision runs healthy again, 3 when the
rollback failed or could not be confirmed, and a failed revision never the rollback target.
The cluster side (waiting on the ShopRelease, the checkpoints) is replaced by functions of this
test; tests/e2e/test_deploy_scripts.py runs the same paths against a real control plane."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from deploy import cli
from deploy.cluster import DeployError


@dataclass
class Helm:
    """A helm whose history and values are these lists; `upgrade` says what `helm upgrade` does."""

    history_rows: list[dict[str, Any]]
    versions: dict[int, str]
    upgrade: str = "ok"  # ok | fail-recorded (a failed revision) | fail-unrecorded
    ran: list[tuple[str, ...]] = field(default_factory=list)

    def history(self, release: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.history_rows]

    def values(self, release: str, revision: int | None) -> dict[str, Any]:
        return {"version": self.versions[revision]} if revision else {}

    def run(self, *argv: str) -> str:
        self.ran.append(argv)
        if argv[0] == "upgrade":
            new = max(int(r["revision"]) for r in self.history_rows) + 1
            if self.upgrade == "fail-unrecorded":
                raise DeployError("helm upgrade: cannot reach the cluster")
            status = "failed" if self.upgrade == "fail-recorded" else "deployed"
            for r in self.history_rows:  # a failed upgrade leaves the previous one `deployed`
                if r["status"] == "deployed" and status == "deployed":
                    r["status"] = "superseded"
            self.history_rows.append({"revision": new, "status": status, "description": "Upgrade"})
            self.versions[new] = next(a.split("=")[1] for a in argv if a.startswith("version="))
            if self.upgrade == "fail-recorded":
                raise DeployError("helm upgrade: timed out waiting for the condition")
        return ""


def _ctx(helm: Helm) -> cli.Context:
    return cli.Context(
        verb="deploy",
        env=cli.ENVIRONMENTS["staging"],
        namespace="kirana-staging",
        release="shop",
        values=[],
        timeout=1,
        smoke="off",
        smoke_url=None,
        helm=helm,  # type: ignore[arg-type]
        cluster=None,  # type: ignore[arg-type]
        out=io.StringIO(),
    )


def _two_revisions() -> Helm:
    rows = [
        {"revision": 1, "status": "superseded", "description": "Install complete"},
        {"revision": 2, "status": "deployed", "description": "Upgrade complete"},
    ]
    return Helm(rows, {1: "1.0.0", 2: "2.0.0"})


@pytest.fixture
def cluster_side(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The cluster's answers: how the release ends up, and how the rollback goes."""
    side: dict[str, Any] = {"wait": (cli.EXIT_READY, "Ready"), "healthy": True, "rollback": "ok"}
    side["rolled"] = []
    monkeypatch.setattr(cli, "preflight", lambda _ctx: None)
    monkeypatch.setattr(cli, "shoprelease_name", lambda _ctx, _revision=None: "shop")

    def wait(ctx: cli.Context, name: str, timeout: float) -> tuple[int | None, str]:
        if isinstance(side["wait"], Exception):
            raise side["wait"]
        result: tuple[int | None, str] = side["wait"]
        return result

    def roll_back(ctx: cli.Context, revision: int, version: str | None) -> tuple[bool, str]:
        side["rolled"].append(revision)
        if side["rollback"] == "raises":
            raise DeployError("helm rollback: release has no deployed revision")
        return side["rollback"] == "ok", "Ready" if side["rollback"] == "ok" else "Degraded"

    monkeypatch.setattr(cli, "wait_release", wait)
    monkeypatch.setattr(cli, "check_and_report", lambda _ctx, _name, _version: side["healthy"])
    monkeypatch.setattr(cli, "roll_back", roll_back)
    return side


def test_a_healthy_deploy_is_0(cluster_side: dict[str, Any]) -> None:
    assert cli.do_deploy(_ctx(_two_revisions()), "3.0.0") == cli.EXIT_OK
    assert cluster_side["rolled"] == []


def test_an_error_while_waiting_rolls_back_and_a_healthy_rollback_is_1(cluster_side: dict[str, Any]) -> None:
    cluster_side["wait"] = RuntimeError("the API server answered 500")
    ctx = _ctx(_two_revisions())
    assert cli.do_deploy(ctx, "3.0.0") == cli.EXIT_FAILED
    assert cluster_side["rolled"] == [2]
    assert "RuntimeError" in ctx.out.getvalue() and "rolled back to 2.0.0" in ctx.out.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["raises", "unhealthy"])
def test_a_rollback_that_fails_or_cannot_be_confirmed_is_3(cluster_side: dict[str, Any], how: str) -> None:
    cluster_side["healthy"], cluster_side["rollback"] = False, how
    assert cli.do_deploy(_ctx(_two_revisions()), "3.0.0") == cli.EXIT_ROLLBACK_FAILED
    assert cluster_side["rolled"] == [2]


def test_a_helm_failure_that_recorded_a_revision_is_rolled_back(cluster_side: dict[str, Any]) -> None:
    helm = _two_revisions()
    helm.upgrade = "fail-recorded"  # helm may have applied part of it (the ShopRelease too)
    assert cli.do_deploy(_ctx(helm), "3.0.0") == cli.EXIT_FAILED
    assert cluster_side["rolled"] == [2]


def test_a_helm_failure_that_recorded_nothing_changed_nothing(cluster_side: dict[str, Any]) -> None:
    helm = _two_revisions()
    helm.upgrade = "fail-unrecorded"
    ctx = _ctx(helm)
    assert cli.do_deploy(ctx, "3.0.0") == cli.EXIT_FAILED
    assert cluster_side["rolled"] == [] and "nothing changed" in ctx.out.getvalue()  # type: ignore[attr-defined]


def test_a_failed_revision_is_never_the_rollback_target(tmp_path: Path) -> None:
    rows = [
        {"revision": 1, "status": "superseded", "description": "Install complete"},
        {"revision": 2, "status": "superseded", "description": "Upgrade complete"},
        {"revision": 3, "status": "failed", "description": "Upgrade failed"},
        {"revision": 4, "status": "deployed", "description": "Upgrade complete"},
    ]
    helm = Helm(rows, {1: "1.0.0", 2: "2.0.0", 3: "4.0.0", 4: "3.0.0"})
    assert cli.rollback_target(_ctx(helm), None) == (2, "2.0.0")
