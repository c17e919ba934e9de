"""The deploy targets rehearsed on the testbed, as the release workflow and an SRE run them:
`make deploy-staging` of 1.0.0, then 2.0.0 (a migration), `make health-check`, a deploy of 3.0.0
whose migration Job fails (rolled back automatically: exit 1, the operator restores the database,
helm returns to 2.0.0), and `make deploy-rollback` to the version before. The operator is the real
process (standalone for the namespace), the Jobs' real `kirana db` commands run on this machine
(tests/e2e/jobrunner.py), helm is the pinned one (`make tools`).

On the testbed no pod really runs and no ingress controller admits the Ingress, so the smoke
request is SKIPped with that reason; every other checkpoint is made as in a real cluster.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .jobrunner import EXTERNAL, REPO, Shop

NAME = "shop"


def values_for_testbed(path: Path) -> Path:
    """What the testbed needs on top of deploy/values/staging.yaml: Jobs run by the job runner, the
    test's backup claim, a short bake, no health gate or prometheus-operator objects."""
    doc: dict[str, Any] = {
        "jobs": {"podLabels": dict(EXTERNAL)},
        "backup": {
            "schedule": "",
            "onDelete": False,
            "pvc": {"claimName": f"{NAME}-backups", "create": False},
        },
        "rollout": {"bakeSeconds": 2, "progressDeadlineSeconds": 60},
        "healthGate": {"enabled": False},
        "monitoring": {
            key: {"enabled": False}
            for key in ("podMonitors", "operator", "rules", "alertmanagerConfig", "dashboards")
        },
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def make(target: str, kubeconfig: Path, namespace: str, values: Path, **variables: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIRANA_", "MAKE", "MFLAGS"))}
    args = {"KUBECONFIG": str(kubeconfig), "NAMESPACE": namespace, "VALUES": str(values), "TIMEOUT": "4m"}
    argv = ["make", "--no-print-directory", "-C", str(REPO), target]
    argv += [f"{k}={v}" for k, v in (args | variables).items()]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    print(f"$ make {target} {variables}\n{proc.stdout}{proc.stderr}")  # shown when the test fails
    return proc.returncode, proc.stdout + proc.stderr


def verdict(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("VERDICT ")]
    assert len(lines) == 1, output
    return lines[0]


def rows(output: str) -> dict[str, tuple[str, str]]:
    """The checkpoint table: name -> (result, detail)."""
    out = {}
    for line in output.splitlines():
        for result in ("PASS", "FAIL", "SKIP"):
            marker = f"  {result}  "
            if marker in line and not line.startswith(("[", "VERDICT")):
                name, _, detail = line.partition(marker)
                out[name.strip()] = (result, detail.strip())
    return out


@pytest.mark.timeout(1200)  # five deploys, each a release of the real operator with its Jobs
def test_deploy_upgrade_check_failed_deploy_rolled_back_then_explicit_rollback(
    shop: Shop, kubeconfig: Path, tmp_path: Path
) -> None:
    ns = shop.namespace
    values = values_for_testbed(tmp_path / "testbed-values.yaml")

    code, out = make("deploy-staging", kubeconfig, ns, values, VERSION="1.0.0")
    assert code == 0, out
    assert verdict(out) == f"VERDICT PASS deploy staging 1.0.0: 1.0.0 is live and healthy in {ns}"
    assert "first install" in out and "waiting for shoprelease/shop" in out
    assert shop.get(NAME)["status"]["currentVersion"] == "1.0.0"
    assert shop.runner.commands() == ["db migrate"]
    v1_revision = shop.schema_revision()

    code, out = make("deploy-staging", kubeconfig, ns, values, VERSION="2.0.0")
    assert code == 0, out
    assert verdict(out).startswith("VERDICT PASS deploy staging 2.0.0")
    assert "previous: revision 1, version 1.0.0" in out
    assert shop.runner.commands() == ["db migrate", "db backup", "db migrate"]
    assert shop.table_exists("e2e_release_marker")
    assert shop.deployment_images(NAME) == {"api": "kirana-api:2.0.0", "workers": "kirana-api:2.0.0"}
    v2_revision = shop.schema_revision()
    assert v2_revision != v1_revision

    code, out = make("health-check", kubeconfig, ns, values, VERSION="2.0.0")
    assert code == 0, out
    assert verdict(out) == "VERDICT PASS health-check staging 2.0.0: healthy"
    table = rows(out)
    assert {name for name, (result, _) in table.items() if result == "PASS"} == {
        "observedGeneration",
        "shoprelease Ready",
        "version",
        "not Degraded",
        "deployment shop-api",
        "deployment shop-workers",
        "migration Job",
        "service shop-api endpoints",
    }
    assert table["smoke through ingress"][0] == "SKIP"
    assert "no load-balancer address" in table["smoke through ingress"][1]
    assert table["deployment shop-api"][1] == "2/2 ready on kirana-api:2.0.0"

    code, out = make("health-check", kubeconfig, ns, values, VERSION="1.0.0")  # expecting the wrong one
    assert code == 2 and "health-check] Error 1" in out, out  # make says 2; the script said 1
    assert verdict(out) == "VERDICT FAIL health-check staging 2.0.0: unhealthy: version"

    # 3.0.0's migration fails: the operator restores the pre-upgrade backup, the deploy rolls helm back.
    code, out = make("deploy-staging", kubeconfig, ns, values, VERSION="3.0.0")
    assert code == 2 and "deploy-staging] Error 1" in out, out  # 1: failed, rolled back, healthy
    line = verdict(out)
    assert line.startswith("VERDICT FAIL deploy staging 3.0.0: release of 3.0.0 failed: MigrationFailed"), (
        line
    )
    assert line.endswith("rolled back to 2.0.0 (revision 2), healthy"), line
    assert "helm rollback shop 2 (version 2.0.0)" in out
    assert shop.runner.commands()[3:] == ["db backup", "db migrate", "db restore"]
    status = shop.get(NAME)
    assert status["spec"]["version"] == status["status"]["currentVersion"] == "2.0.0"
    assert status["status"]["phase"] == "Ready"
    assert shop.schema_revision() == v2_revision
    assert shop.deployment_images(NAME) == {"api": "kirana-api:2.0.0", "workers": "kirana-api:2.0.0"}
    assert rows(out)["migration Job"][0] == "PASS"  # 2.0.0's Job, not the failed one

    # The previous version is 1.0.0: revision 4 ("Rollback to 2") runs 2's values, and 3 failed.
    code, out = make("deploy-rollback", kubeconfig, ns, values, ENV="staging")
    assert code == 0, out
    assert verdict(out) == "VERDICT PASS rollback staging 1.0.0: rolled back to 1.0.0 (revision 1), healthy"
    status = shop.get(NAME)["status"]
    assert status["currentVersion"] == "1.0.0"
    assert [h["version"] for h in status["history"]][:2] == ["1.0.0", "3.0.0"]
    assert shop.deployment_images(NAME) == {"api": "kirana-api:1.0.0", "workers": "kirana-api:1.0.0"}
