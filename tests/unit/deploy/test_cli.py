"""`python -m deploy`: the environments' values files fit the chart, and usage errors end in a
verdict line with exit code 2 before anything is touched."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy import cli

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "kirana"


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = merged(base[key], value) if both else value
    return out


@pytest.mark.parametrize("env", sorted(cli.ENVIRONMENTS))
def test_each_environment_values_file_is_valid_for_the_chart(env: str) -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    environment = cli.ENVIRONMENTS[env]
    doc = merged(defaults, yaml.safe_load(environment.values.read_text()))
    doc |= {"version": "1.2.3", "image": {**doc["image"], "tag": "1.2.3"}}  # what a deploy sets
    jsonschema.Draft7Validator(schema).validate(doc)
    assert doc["config"]["env"]["KIRANA_ENVIRONMENT"] == env
    assert environment.namespace == f"kirana-{env}"


def test_production_requires_the_smoke_request_and_staging_does_not() -> None:
    assert cli.ENVIRONMENTS["production"].smoke == "required"
    assert cli.ENVIRONMENTS["staging"].smoke == "auto"


def test_a_missing_kubeconfig_is_a_usage_error_with_a_verdict(tmp_path: Path) -> None:
    out = io.StringIO()
    argv = [
        "deploy",
        "staging",
        "--kubeconfig",
        str(tmp_path / "nope"),
        "--version",
        "1.0.0",
        "--helm",
        "helm",
    ]
    assert cli.main(argv, out=out) == cli.EXIT_USAGE
    assert out.getvalue().splitlines()[-1].startswith("VERDICT FAIL deploy staging 1.0.0: kubeconfig")


def test_deploy_needs_a_version_and_a_known_environment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as no_version:
        cli.main(["deploy", "staging", "--kubeconfig", "k"])
    with pytest.raises(SystemExit) as unknown:
        cli.main(["health-check", "qa", "--kubeconfig", "k"])
    assert no_version.value.code == unknown.value.code == 2
    assert "--version" in capsys.readouterr().err


def test_a_rollback_revision_runs_the_values_of_the_one_it_names() -> None:
    history = [
        {"revision": 1, "description": "Install complete"},
        {"revision": 2, "description": "Upgrade complete"},
        {"revision": 3, "description": "Upgrade complete"},  # a failed deploy...
        {"revision": 4, "description": "Rollback to 2"},  # ...rolled back
        {"revision": 5, "description": "Rollback to 4"},
    ]
    assert cli.rolled_back_to(history, 4) == 2
    assert cli.rolled_back_to(history, 5) == 2
    assert cli.rolled_back_to(history, 3) == 3
