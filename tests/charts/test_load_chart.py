"""charts/kirana-load rendered by the pinned helm and checked against what it runs: the master and
the workers start tests/load's locustfile with the settings it reads, the master's Service is what
the workers dial, the thresholds ConfigMap parses as tests/load/thresholds.py reads limits, and
the image's entry point is the locustfile the chart names. A missing host is refused.

`make lint` adds `helm lint --strict`, kubeconform and trivy for every ci/*-values.yaml;
tests/integration/test_load_smoke.py runs the same journeys against a real shop.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.charts import helm_template
from tests.load import thresholds

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kirana-load"


def template(*args: str) -> subprocess.CompletedProcess[str]:
    return helm_template("kirana-load", "run1", "load", *args)


def render(*args: str) -> dict[str, dict[str, Any]]:
    proc = template(*args)
    assert proc.returncode == 0, proc.stderr
    return {d["kind"]: d for d in yaml.safe_load_all(proc.stdout) if d}


def test_master_and_workers_run_the_journeys_with_the_settings_the_locustfile_reads(tmp_path: Path) -> None:
    docs = render("-f", str(CHART / "ci" / "stress-values.yaml"))
    master = docs["Job"]["spec"]["template"]["spec"]
    workers = docs["Deployment"]["spec"]
    assert workers["replicas"] == 4
    m, w = master["containers"][0], workers["template"]["spec"]["containers"][0]
    assert "--master" in m["args"] and "--headless" in m["args"] and "--expect-workers=4" in m["args"]
    assert "--host=https://staging.example.in" in m["args"]
    service = docs["Service"]
    assert f"--master-host={service['metadata']['name']}" in w["args"]
    assert service["spec"]["selector"] == docs["Job"]["spec"]["template"]["metadata"]["labels"]
    kit = "".join(p.read_text() for p in (REPO / "tests" / "load").glob("*.py"))
    read = set(re.findall(r'os\.environ\.get\("(KIRANA_LOAD_\w+)"', kit))
    for container in (m, w):
        env = {e["name"]: e.get("value") or e["valueFrom"]["secretKeyRef"] for e in container["env"]}
        assert env["KIRANA_LOAD_SHAPE"] == "stress" and env["KIRANA_LOAD_USERS"] == "400"
        assert env["KIRANA_LOAD_OWNER"] == {"name": "shop-owner", "key": "identifier"}
        assert set(env) <= read, set(env) - read  # every variable the chart sets, the kit reads
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert docs["Job"]["spec"]["backoffLimit"] == 0  # a breach fails the Job once: the verdict

    # The limits file the pods mount is one the load kit reads.
    toml = tmp_path / "thresholds.toml"
    toml.write_text(docs["ConfigMap"]["data"]["thresholds.toml"])
    config = thresholds.load(toml)
    assert config.total.max_error_ratio == 0.001 and config.default.p95_ms == 400


def test_the_run_without_a_host_name_in_a_url_is_refused() -> None:
    proc = template("--set", "host=http://shop api")
    assert proc.returncode != 0 and "/host" in proc.stderr


def test_the_image_runs_the_locustfile_the_chart_expects() -> None:
    dockerfile = (REPO / "docker" / "load.Dockerfile").read_text()
    assert 'ENTRYPOINT ["locust", "-f", "/app/tests/load/locustfile.py"]' in dockerfile
    assert "COPY tests/load /app/tests/load" in dockerfile
    assert "--only-group load" in dockerfile


def test_a_run_without_a_host_is_refused() -> None:
    proc = template()
    assert proc.returncode != 0
    assert "host" in proc.stderr
