"""`make security-scan`'s gate, with the pinned trivy (`make tools` installs it in .local/bin):
every waiver says why, a finding that no waiver names fails the scan, and the shop's own
Dockerfiles pass it with the waivers as committed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TRIVY = REPO / ".local" / "bin" / "trivy"
IGNOREFILE = REPO / ".trivyignore.yaml"


def _trivy(target: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    if not TRIVY.is_file():
        pytest.fail(f"{TRIVY} is missing: run `make tools`")
    cmd = [
        str(TRIVY), "config", "--skip-check-update", "--skip-version-check", "--exit-code", "1",
        "--ignorefile", str(IGNOREFILE), "--cache-dir", str(cache), "--quiet",
        "--misconfig-scanners", "dockerfile", str(target),
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_every_waiver_names_one_check_and_says_why() -> None:
    waivers = yaml.safe_load(IGNOREFILE.read_text())["misconfigurations"]
    assert waivers, "no waivers at all: then the file should go"
    ids = [w["id"] for w in waivers]
    assert len(ids) == len(set(ids)), "a check waived twice"
    for w in waivers:
        assert set(w) <= {"id", "statement", "paths"}, w
        assert w["id"].startswith(("KSV-", "DS-", "AVD-")), w["id"]
        assert len(w.get("statement", "").split()) >= 10, f"{w['id']}: say why it does not apply"


def test_an_unwaived_finding_fails_the_scan(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    # Runs as root (DS-0002) from a floating tag (DS-0001): no waiver names either.
    (bad / "Dockerfile").write_text('FROM python:latest\nRUN pip install kirana\nCMD ["kirana"]\n')
    r = _trivy(bad, tmp_path / "cache")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "DS-0002" in r.stdout and "DS-0001" in r.stdout, r.stdout


def test_the_shops_dockerfiles_pass(tmp_path: Path) -> None:
    r = _trivy(REPO / "docker", tmp_path / "cache")
    assert r.returncode == 0, r.stdout + r.stderr
