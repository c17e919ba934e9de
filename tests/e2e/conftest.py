"""Fixtures that give e2e tests a real Kubernetes API server.

Which cluster the tests use, in order:

1. `KIRANA_TEST_KUBECONFIG` names a kubeconfig: that cluster, and nothing is
   started or stopped. This is the only way to aim the tests at anything but
   the testbed; $KUBECONFIG and ~/.kube/config are never read.
2. A testbed is already running (`make testbed-up`): it is used and left
   running.
3. Otherwise the fixture builds (cached) and starts the testbed, and stops it
   when the session ends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from . import k8s
from .jobrunner import crd_installed, images, pg_server, shop, shop_world
from .s3server import s3_server

# The operator tests' fixtures (a real PostgreSQL, the CRDs, the images, a shop with its operator),
# registered for every test here. Not `pytest_plugins`: pytest refuses it outside the rootdir's
# conftest once collection runs over more than this folder (`pytest tests`).
__all__ = ["crd_installed", "images", "pg_server", "s3_server", "shop", "shop_world"]


@pytest.fixture(scope="session")
def kubeconfig() -> Iterator[Path]:
    """Path of the kubeconfig of a ready cluster for this test session."""
    explicit = os.environ.get("KIRANA_TEST_KUBECONFIG")
    if explicit:
        path = Path(explicit)
        if not k8s.is_ready(path):
            pytest.fail(f"KIRANA_TEST_KUBECONFIG={explicit} does not reach a working API server")
        yield path
        return
    if k8s.is_ready(k8s.TESTBED_KUBECONFIG):
        yield k8s.TESTBED_KUBECONFIG
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Several workers would race to start (and stop) one testbed.
        pytest.fail("no testbed is running: run `make testbed-up` first, or run tests/e2e without -n")
    k8s.run_script("build.sh")
    try:
        k8s.run_script("up.sh")
        yield k8s.TESTBED_KUBECONFIG
    finally:
        k8s.run_script("down.sh")


@pytest.fixture(scope="session")
def api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """An API client bound to the session's cluster."""
    with k8s.api_client(kubeconfig) as api_client:
        yield api_client


@pytest.fixture
def namespace(api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards.

    Waits for its `default` ServiceAccount: pods are rejected until the
    controller-manager has made it.
    """
    core = client.CoreV1Api(api)
    base = request.node.name.lower().replace("_", "-")[:40].strip("-")
    name = f"{base}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"kirana.dev/e2e": "true"}))
    )

    def default_sa() -> bool:
        return bool(core.list_namespaced_service_account(name, field_selector="metadata.name=default").items)

    k8s.wait_for(f"the default service account in {name}", default_sa, timeout=30)
    try:
        yield name
    finally:
        k8s.ignore_not_found(lambda: core.delete_namespace(name))
