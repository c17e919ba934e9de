"""The I/O of a deploy: `helm` as a subprocess and the few Kubernetes reads and writes, all bound
to one explicit kubeconfig (never $KUBECONFIG or ~/.kube/config implicitly).

Used by `deploy.cli`; the decisions live there and in `deploy.checks`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL = "kirana.dev", "v1alpha1", "shopreleases"
REPO = Path(__file__).resolve().parents[1]
CHART = REPO / "charts" / "kirana"


class DeployError(Exception):
    """A step failed in a way the SRE must read (one sentence)."""


def find_helm(explicit: str | None) -> str:
    """The helm binary: --helm, else the repository's pinned one (make tools), else PATH."""
    if explicit:
        return explicit
    pinned = REPO / ".local" / "bin" / "helm"
    if pinned.is_file():
        return str(pinned)
    found = shutil.which("helm")
    if not found:
        raise DeployError("helm not found: run `make tools` or put helm on PATH")
    return found


@dataclass
class Helm:
    binary: str
    kubeconfig: Path
    namespace: str

    def run(self, *args: str, timeout: float = 600) -> str:
        argv = [self.binary, "--kubeconfig", str(self.kubeconfig), "--namespace", self.namespace, *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise DeployError(f"helm {args[0]} failed: {' / '.join(tail)}")
        return proc.stdout

    def history(self, release: str) -> list[dict[str, Any]]:
        """Revisions oldest first (`helm history -o json`); [] when the release does not exist."""
        try:
            out = self.run("history", release, "--max", "256", "-o", "json")
        except DeployError as exc:
            if "not found" in str(exc):
                return []
            raise
        return sorted(json.loads(out or "[]"), key=lambda r: int(r["revision"]))

    def values(self, release: str, revision: int) -> dict[str, Any]:
        out = self.run("get", "values", release, "--all", "--revision", str(revision), "-o", "json")
        return dict(json.loads(out or "{}"))


def deployed_revision(history: list[dict[str, Any]]) -> int | None:
    """The revision helm says is deployed now."""
    live = [int(r["revision"]) for r in history if str(r.get("status", "")).lower() == "deployed"]
    return max(live) if live else None


class Cluster:
    """Reads of one namespace, and the one write a deploy makes itself (the abort annotation)."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        if not kubeconfig.is_file():
            raise DeployError(f"kubeconfig {kubeconfig} does not exist")
        self.api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)
        self.core = client.CoreV1Api(self.api)
        self.discovery = client.DiscoveryV1Api(self.api)
        self.networking = client.NetworkingV1Api(self.api)

    def close(self) -> None:
        self.api.close()

    def _plain(self, obj: Any) -> dict[str, Any]:
        return dict(self.api.sanitize_for_serialization(obj))

    def _maybe(self, read: Any, *args: Any) -> dict[str, Any] | None:
        try:
            return self._plain(read(*args))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def reachable(self) -> str:
        try:
            info = client.VersionApi(self.api).get_code(_request_timeout=10)
        except Exception as exc:  # any failure: the cluster cannot be used
            raise DeployError(f"the API server does not answer: {exc}") from None
        return str(info.git_version)

    def crd_installed(self) -> bool:
        ext = client.ApiextensionsV1Api(self.api)
        try:
            ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def secret_exists(self, name: str) -> bool:
        try:
            self.core.read_namespaced_secret_with_http_info(name, self.namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def release(self, name: str) -> dict[str, Any] | None:
        try:
            obj: Any = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(obj)

    def annotate_release(self, name: str, key: str, value: str) -> None:
        body = {"metadata": {"annotations": {key: value}}}
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name, body)

    def deployment(self, name: str) -> dict[str, Any] | None:
        return self._maybe(self.apps.read_namespaced_deployment, name, self.namespace)

    def job(self, name: str) -> dict[str, Any] | None:
        return self._maybe(self.batch.read_namespaced_job, name, self.namespace)

    def jobs(self, selector: str) -> list[dict[str, Any]]:
        """Jobs matching a label selector, oldest first."""
        items = [
            self._plain(j)
            for j in self.batch.list_namespaced_job(self.namespace, label_selector=selector).items
        ]
        return sorted(items, key=lambda j: str(j["metadata"].get("creationTimestamp", "")))

    def ingress(self, name: str) -> dict[str, Any] | None:
        return self._maybe(self.networking.read_namespaced_ingress, name, self.namespace)

    def endpoint_slices(self, service: str) -> list[dict[str, Any]]:
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={service}"
        )
        return [self._plain(s) for s in slices.items]


def fetch(url: str, timeout: float = 10.0) -> tuple[int, str]:
    """GET url: (status, first bytes of the body); HTTP errors are answers, not exceptions."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read(512).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(512).decode(errors="replace")
