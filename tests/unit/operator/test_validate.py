"""What the operator refuses before a release's first step: cron schedules Kubernetes would not take
(the CronJob would be refused on every reconcile) and references to objects that do not exist."""

from __future__ import annotations

from typing import Any

import pytest

from kirana.operator.plan.validate import cron_problem, problems, references
from kirana.operator.spec import parse_spec


def spec(**over: Any) -> Any:
    return parse_spec({"version": "1.0.0", "config": {"secretName": "shop-config"}, **over})


@pytest.mark.parametrize(
    "schedule",
    ["0 3 * * *", "*/15 * * * *", "0 0 1,15 * 1-5", "30 2 * jan-mar mon", "@daily", "@hourly", " 0 3 * * * "],
)
def test_schedules_kubernetes_takes(schedule: str) -> None:
    assert cron_problem(schedule) == ""


@pytest.mark.parametrize(
    ("schedule", "why"),
    [
        ("61 25 * * *", "out of range"),
        ("0 3 * * 8", "out of range"),
        ("0 0 3 * * *", "five fields"),  # seconds: croniter takes it, Kubernetes does not
        ("0 3 * *", "five fields"),
        ("", "five fields"),
        ("every day", "five fields"),
        ("TZ=Asia/Kolkata 0 3 * * *", "time zone"),
        ("@fortnightly", "five fields"),
        ("a b c d e", "out of range or malformed"),
    ],
)
def test_schedules_refused_with_a_reason(schedule: str, why: str) -> None:
    assert why in cron_problem(schedule)


def test_references_name_every_object_the_pods_need() -> None:
    s = spec(
        config={"secretName": "shop-config", "configMapName": "shop-env"},
        image={"pullSecrets": ["regcred", "shop-config"]},
        backup={"storage": {"pvc": {"claimName": "backups"}}},
    )
    assert references(s) == (
        ("Secret", "shop-config"),
        ("ConfigMap", "shop-env"),
        ("PersistentVolumeClaim", "backups"),
        ("Secret", "regcred"),
    )
    assert references(spec()) == (("Secret", "shop-config"),)


def test_problems_name_the_field_and_the_object() -> None:
    s = spec(
        config={"secretName": "shop-config", "configMapName": "shop-env"},
        image={"pullSecrets": ["regcred"]},
        backup={"schedule": "61 25 * * *", "storage": {"pvc": {"claimName": "backups"}}},
    )
    missing = (("Secret", "shop-config"), ("PersistentVolumeClaim", "backups"), ("Secret", "regcred"))
    assert problems(s, missing) == (
        "spec.backup.schedule '61 25 * * *' is not a valid cron expression: "
        "a field is out of range or malformed",
        "Secret shop-config (spec.config.secretName) does not exist",
        "PersistentVolumeClaim backups (spec.backup.storage.pvc.claimName) does not exist",
        "Secret regcred (spec.image.pullSecrets) does not exist",
    )
    assert problems(spec(backup={"schedule": "0 3 * * *"}), ()) == ()


def test_an_s3_store_needs_its_credentials_secret_and_no_volume() -> None:
    s3 = {"bucket": "shop-backups", "credentialsSecret": "shop-s3"}
    s = spec(backup={"storage": {"s3": s3}})
    assert references(s) == (("Secret", "shop-config"), ("Secret", "shop-s3"))
    assert problems(s, (("Secret", "shop-s3"),)) == (
        "Secret shop-s3 (spec.backup.storage.s3.credentialsSecret) does not exist",
    )
