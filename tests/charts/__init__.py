"""Charts rendered by the pinned helm (`make tools` installs it in .local/bin)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HELM = REPO / ".local" / "bin" / "helm"


def helm_template(chart: str, release: str, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`helm template` of charts/<chart>; fails the test when helm is not installed."""
    if not HELM.is_file():
        pytest.fail(f"{HELM} is missing: run `make tools`")
    return subprocess.run(
        [str(HELM), "template", release, str(REPO / "charts" / chart), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
