"""Mistakes the CRD schema cannot catch, refused by the operator before a release's first step: a
backup schedule Kubernetes would not take, and objects the release names that do not exist. The
release says so at once (phase and condition InvalidSpec, naming the object), runs nothing, and
starts by itself once the mistake is fixed."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from . import k8s
from .jobrunner import Shop, make_secret, shoprelease

NAME = "shop"


def invalid(shop: Shop, needle: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        cond = next(
            (
                c
                for c in (shop.get(NAME).get("status") or {}).get("conditions", [])
                if c["type"] == "InvalidSpec"
            ),
            None,
        )
        return cond if cond and cond["status"] == "True" and needle in cond["message"] else None

    return k8s.wait_for(f"InvalidSpec naming {needle}", probe, timeout=60)


def test_a_bad_backup_schedule_is_refused_at_once_and_the_fix_goes_through(shop: Shop) -> None:
    shop.apply(shoprelease(NAME, "1.0.0", backup={"schedule": "61 25 * * *"}))
    cond = invalid(shop, "spec.backup.schedule '61 25 * * *' is not a valid cron expression")
    status = shop.get(NAME)["status"]
    assert status["phase"] == "InvalidSpec"
    assert cond["reason"] == "InvalidSpec"
    assert shop.condition(NAME, "Ready")["reason"] == "InvalidSpec"
    assert shop.runner.commands() == []  # nothing ran
    assert "InvalidSpec" in shop.event_reasons(NAME)

    shop.apply(shoprelease(NAME, "1.0.0", backup={"schedule": "0 3 * * *"}))
    shop.wait_phase(NAME, "Ready", timeout=120)
    assert shop.condition(NAME, "InvalidSpec")["status"] == "False"
    cron = client.BatchV1Api(shop.api).read_namespaced_cron_job(f"{NAME}-backup", shop.namespace)
    assert cron.spec.schedule == "0 3 * * *"


def test_a_missing_secret_holds_the_release_until_it_appears(shop: Shop) -> None:
    shop.apply(shoprelease(NAME, "1.0.0", config={"secretName": "late-env"}))
    invalid(shop, "Secret late-env (spec.config.secretName) does not exist")
    assert shop.get(NAME)["status"]["phase"] == "InvalidSpec"
    assert shop.runner.commands() == []
    jobs = client.BatchV1Api(shop.api).list_namespaced_job(shop.namespace).items
    assert jobs == []

    make_secret(shop.api, shop.namespace, "late-env", shop.database_url)
    shop.wait_phase(NAME, "Ready", timeout=120)  # no edit of the ShopRelease: the operator looked again
    assert shop.runner.commands() == ["db migrate"]
    assert shop.condition(NAME, "InvalidSpec")["status"] == "False"


def test_every_missing_reference_is_named(shop: Shop) -> None:
    spec = shoprelease(
        NAME,
        "1.0.0",
        config={"secretName": "shop-env", "configMapName": "shop-settings"},
        image={"pullSecrets": ["regcred"]},
        backup={"storage": {"pvc": {"claimName": "no-such-claim"}}},
    )
    shop.apply(spec)
    cond = invalid(shop, "ConfigMap shop-settings")
    assert cond["message"] == (
        "ConfigMap shop-settings (spec.config.configMapName) does not exist; "
        "PersistentVolumeClaim no-such-claim (spec.backup.storage.pvc.claimName) does not exist; "
        "Secret regcred (spec.image.pullSecrets) does not exist"
    )
    assert shop.runner.commands() == []
