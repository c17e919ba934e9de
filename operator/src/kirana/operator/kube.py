"""The operator's Kubernetes client: JSON over the `kubernetes` package's transport, and the
operator's own API errors.

Used by `kirana.operator.apply` (every read and write) and built once by
`kirana.operator.handlers` at start-up. Nothing of the client library leaks past this module:
a failed request raises `KubeError` (`NotFound` for 404, `Conflict` for 409, `Unreachable` when
no answer came), with the library's exception chained as its cause.
"""

from __future__ import annotations

import json
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kirana.operator.spec import BACKUP_KIND, BACKUP_PLURAL, GROUP, KIND, PLURAL, VERSION

FIELD_MANAGER = "kirana-operator"
TIMEOUT = (5, 30)  # (connect, read) seconds for every request: nothing may hang a reconcile

# Collection path of each kind the operator reads or writes, within a namespace.
PATHS = {
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "Service": "/api/v1/namespaces/{ns}/services",
    "PodDisruptionBudget": "/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets",
    "CronJob": "/apis/batch/v1/namespaces/{ns}/cronjobs",
    "Job": "/apis/batch/v1/namespaces/{ns}/jobs",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "Event": "/api/v1/namespaces/{ns}/events",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
    KIND: f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/{PLURAL}",
    BACKUP_KIND: f"/apis/{GROUP}/{VERSION}/namespaces/{{ns}}/{BACKUP_PLURAL}",
}


def path_of(kind: str, namespace: str, name: str | None = None) -> str:
    base = PATHS[kind].format(ns=namespace)
    return f"{base}/{name}" if name else base


class KubeError(Exception):
    """A Kubernetes API request failed. `status` is the HTTP status (0: no answer came)."""

    def __init__(self, status: int, reason: str, body: str = "") -> None:
        super().__init__(f"{status} {reason}" + (f": {body[:500]}" if body else ""))
        self.status = status
        self.reason = reason
        self.body = body


class NotFound(KubeError):
    """404: the object (or its namespace) does not exist."""


class Conflict(KubeError):
    """409: the object exists already, or changed since it was read (stale resourceVersion)."""


class Unreachable(KubeError):
    """No answer from the API server (connection refused or reset, timed out)."""


def error_of(status: int, reason: str, body: str = "") -> KubeError:
    cls = {404: NotFound, 409: Conflict}.get(status, KubeError)
    return cls(status, reason, body)


class Kube:
    """A thin JSON client over the `kubernetes` package's transport (auth, TLS, kubeconfig).

    The typed API classes of `kubernetes` cost ~90 MiB of validators once instantiated; plain
    dicts on the paths we use keep the operator small (tests/bench/bench_operator.py).
    """

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    @classmethod
    def connect(cls) -> Kube:
        """In a pod: its service account; elsewhere: $KUBECONFIG (how tests run the operator)."""
        try:
            config.load_incluster_config()  # type: ignore[no-untyped-call]
        except config.ConfigException:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        return cls(client.ApiClient())

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> Any:
        """One request; the decoded JSON answer (text when `accept` is not JSON). Raises `KubeError`."""
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        serialized = self.api.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            resp = self.api.call_api(*serialized, _request_timeout=TIMEOUT)
            data = resp.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            body_text = (
                exc.body.decode(errors="replace") if isinstance(exc.body, bytes) else str(exc.body or "")
            )
            err: KubeError = (
                Unreachable(0, str(exc.reason))
                if not exc.status
                else error_of(exc.status, str(exc.reason), body_text)
            )
            raise err from exc
        except urllib3.exceptions.HTTPError as exc:
            raise Unreachable(0, f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= resp.status < 300:
            raise error_of(resp.status, str(resp.reason), data.decode(errors="replace") if data else "")
        if accept != "application/json":
            return data.decode(errors="replace") if data else ""
        return json.loads(data) if data else None

    def get(self, path: str, **query: str) -> Any | None:
        """The object at `path`, or None when it does not exist."""
        try:
            return self.request("GET", path, query=query)
        except NotFound:
            return None

    def apply(self, path: str, obj: dict[str, Any]) -> None:
        """Server-side apply `obj` as the operator's field manager (taking over conflicting fields)."""
        self.request(
            "PATCH",
            path,
            query={"fieldManager": FIELD_MANAGER, "force": "true"},
            body=obj,
            content_type="application/apply-patch+yaml",
        )
