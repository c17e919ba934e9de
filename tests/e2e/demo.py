"""`make demo-release`: the operator's job on a laptop, on the testbed.

Runs the real operator locally against the testbed with the e2e job runner (tests/e2e/jobrunner.py:
the Job pods' real `kirana db ...` commands run here against an embedded PostgreSQL), applies a
ShopRelease at 1.0.0, upgrades it to 2.0.0 (backup, migrate, roll out, bake), then asks for 3.0.0,
whose migration fails: the app stays on 2.0.0 and the database is rolled back. Prints where to
watch while it runs, then keeps the world up until Ctrl-C (`--once`: stop at the end).

Called by `mk/operator.mk` (`python -m tests.e2e.demo`) once `make testbed-up` has run.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psycopg
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kirana.api.devstack import EmbeddedPostgres

from . import k8s
from .jobrunner import (
    BROKEN_REVISION,
    GROUP,
    PLURAL,
    REPO,
    V2_REVISION,
    VERSION,
    Images,
    JobRunner,
    OperatorProcess,
    Shop,
    _delete_releases,
    _heads,
    install_crd,
    make_pvc,
    make_secret,
    migrations_with,
    shoprelease,
)

NAMESPACE = "kirana-demo"
NAME = "shop"
STATE = REPO / ".local" / "demo-release"


def broken_on(base: Path, target: Path) -> Path:
    """`base`'s migrations plus one on top that fails (3.0.0 is an upgrade of 2.0.0)."""
    shutil.copytree(base, target)
    (head,) = _heads(target / "versions")
    source = (
        '"""demo: a migration that fails"""\nfrom alembic import op\nimport sqlalchemy as sa\n\n'
        f'revision = "demo0broken"\ndown_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n'
        + textwrap.dedent(BROKEN_REVISION)
    )
    (target / "versions" / "2099_01_02_demo0broken_broken.py").write_text(source)
    return target


def say(text: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {text}", flush=True)


def follow(shop: Shop, until: set[str], timeout: float = 300) -> dict[str, object]:
    """Print each phase the release passes through until one of `until` (for the spec in force)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        obj = shop.get(NAME)
        status = obj.get("status") or {}
        seen = status.get("observedGeneration", 0) >= obj["metadata"]["generation"]
        phase = str(status.get("phase", "Pending"))
        if phase != last:
            rel = status.get("release") or {}
            running = status.get("currentVersion") or "-"
            say(f"  phase {phase:<18} running {running}, step {rel.get('step', '-')}")
            last = phase
        if seen and phase in until:
            return status
        time.sleep(0.5)
    raise SystemExit(f"the release did not reach {sorted(until)} within {int(timeout)} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo-release")
    parser.add_argument("--once", action="store_true", help="stop everything at the end")
    args = parser.parse_args(argv)
    kubeconfig = k8s.TESTBED_KUBECONFIG
    if not k8s.is_ready(kubeconfig):
        raise SystemExit("the testbed is not running: `make testbed-up` first")
    shutil.rmtree(STATE, ignore_errors=True)
    (STATE / "logs").mkdir(parents=True)
    with k8s.api_client(kubeconfig) as api:
        core = client.CoreV1Api(api)
        custom = client.CustomObjectsApi(api)
        with contextlib.suppress(ApiException):  # a demo stopped hard may have left its finalizer
            for obj in custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]:
                patch = {"metadata": {"finalizers": None}}
                custom.patch_namespaced_custom_object(
                    GROUP, VERSION, NAMESPACE, PLURAL, obj["metadata"]["name"], patch
                )
        with contextlib.suppress(ApiException):
            core.delete_namespace(NAMESPACE)
        k8s.wait_for(
            f"an old {NAMESPACE} namespace to go",
            lambda: not [n for n in core.list_namespace().items if n.metadata.name == NAMESPACE],
            timeout=120,
        )
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        k8s.wait_for(
            "the default service account",
            lambda: bool(core.list_namespaced_service_account(NAMESPACE).items),
            timeout=30,
        )
        install_crd(api)
        pg = EmbeddedPostgres(STATE / "pg", durable=False)
        pg.start()
        pv = ""
        shop: Shop | None = None
        operator = OperatorProcess(kubeconfig, NAMESPACE, STATE / "logs")
        try:
            db = f"demo_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(pg.admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{db}"')
            url = pg.admin_url.rsplit("/", 1)[0] + f"/{db}"
            make_secret(api, NAMESPACE, f"{NAME}-env", url)
            pv = make_pvc(api, NAMESPACE, f"{NAME}-backups")
            root = STATE / "images"
            images = Images(
                env={
                    "kirana-api:1.0.0": {"KIRANA_MIGRATIONS_DIR": str(migrations_with(root, "v1", None))},
                    "kirana-api:2.0.0": {
                        "KIRANA_MIGRATIONS_DIR": str(migrations_with(root, "v2", V2_REVISION))
                    },
                    "kirana-api:3.0.0": {
                        "KIRANA_MIGRATIONS_DIR": str(broken_on(root / "v2", root / "broken"))
                    },
                }
            )
            with JobRunner(api, NAMESPACE, images=images, storage=STATE / "storage") as runner:
                shop = Shop(api, NAMESPACE, url, STATE / "storage", images, operator, runner)
                operator.start()
                cfg = f"KUBECONFIG={kubeconfig}"
                say("operator running locally; its log: " + str(STATE / "logs" / "operator-1.log"))
                say("watch from another terminal:")
                say(f"  {cfg} .local/bin/kubectl -n {NAMESPACE} get srel -w")
                plugin = f"PATH=.venv/bin:$PATH .local/bin/kubectl kirana -n {NAMESPACE}"
                say(f"  {cfg} {plugin} status {NAME} --watch")
                slow = {"rollout": {"bakeSeconds": 10, "progressDeadlineSeconds": 120}}
                say("install 1.0.0")
                shop.apply(shoprelease(NAME, "1.0.0", **slow))
                follow(shop, {"Ready"})
                say("upgrade to 2.0.0: backup, migrate (a new table), roll out, bake")
                shop.apply(shoprelease(NAME, "2.0.0", **slow))
                follow(shop, {"Ready"})
                say("ask for 3.0.0, whose migration fails")
                shop.apply(shoprelease(NAME, "3.0.0", failurePolicy={"database": "Downgrade"}, **slow))
                status = follow(shop, {"Degraded"})
                conditions: list[dict[str, str]] = status.get("conditions", [])  # type: ignore[assignment]
                degraded = next(c for c in conditions if c["type"] == "Degraded")
                still = status.get("currentVersion")
                say(f"failed migration rolled back: {still} still running; {degraded['message']}")
                say("job commands run, in order: " + ", ".join(runner.commands()))
                if not args.once:
                    say("the demo stays up: Ctrl-C stops it")
                    while True:
                        time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            if shop is not None:  # while the operator runs: it holds a finalizer on the ShopRelease
                with contextlib.suppress(Exception):
                    _delete_releases(shop)
            operator.stop()
            with contextlib.suppress(Exception):
                core.delete_namespace(NAMESPACE)
            if pv:
                with contextlib.suppress(Exception):
                    core.delete_persistent_volume(pv)
            pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
