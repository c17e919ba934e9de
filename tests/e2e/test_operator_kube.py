"""The operator's Kubernetes client against the real API server: a missing object, a name taken,
a stale resourceVersion and an API server that does not answer each raise the operator's own
error, and nothing of the client library leaks out (its exception is at most the cause)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kirana.operator.kube import Conflict, Kube, KubeError, NotFound, Unreachable, path_of


@pytest.fixture
def kube(kubeconfig: Path) -> Iterator[Kube]:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)  # type: ignore[no-untyped-call]
    with client.ApiClient(cfg) as api:
        yield Kube(api)


def _not_the_library(exc: BaseException) -> None:
    assert isinstance(exc, KubeError)
    assert not isinstance(exc, ApiException | urllib3.exceptions.HTTPError)


def test_a_missing_object_is_not_found(kube: Kube, namespace: str) -> None:
    with pytest.raises(NotFound) as exc:
        kube.request("GET", path_of("ConfigMap", namespace, "nope"))
    _not_the_library(exc.value)
    assert exc.value.status == 404 and "nope" in exc.value.body
    assert kube.get(path_of("ConfigMap", namespace, "nope")) is None


def test_a_taken_name_and_a_stale_write_are_conflicts(kube: Kube, namespace: str) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": namespace}}
    created = kube.request("POST", path_of("ConfigMap", namespace), body=cm)
    with pytest.raises(Conflict) as taken:
        kube.request("POST", path_of("ConfigMap", namespace), body=cm)
    _not_the_library(taken.value)
    assert "already exists" in taken.value.body
    kube.request("PUT", path_of("ConfigMap", namespace, "c"), body={**created, "data": {"a": "1"}})
    with pytest.raises(Conflict) as stale:  # the resourceVersion read before the update above
        kube.request("PUT", path_of("ConfigMap", namespace, "c"), body={**created, "data": {"a": "2"}})
    _not_the_library(stale.value)


def test_other_refusals_are_the_operators_error_with_their_status(kube: Kube, namespace: str) -> None:
    with pytest.raises(KubeError) as exc:
        kube.request("POST", path_of("ConfigMap", namespace), body={"kind": "ConfigMap", "metadata": {}})
    _not_the_library(exc.value)
    assert not isinstance(exc.value, NotFound | Conflict)
    assert exc.value.status in (400, 422)


def test_an_api_server_that_does_not_answer_is_unreachable() -> None:
    cfg = client.Configuration()
    cfg.host = "https://127.0.0.1:9"  # discard port: nothing listens on loopback
    cfg.verify_ssl = False
    cfg.retries = False
    with client.ApiClient(cfg) as api, pytest.raises(Unreachable) as exc:
        Kube(api).request("GET", "/version")
    _not_the_library(exc.value)
    assert isinstance(exc.value.__cause__, urllib3.exceptions.HTTPError)
