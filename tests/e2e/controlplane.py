"""The testbed's own processes, for fault tests: stop one (kube-apiserver, etcd, ...) and start it
again exactly as testbed/up.sh did (same command line, environment and log).

A component is found by its pid file under the testbed's state directory (`TESTBED_STATE`, the
same variable testbed/lib.sh reads), so a testbed on other ports or in another state directory
works the same. Used by tests/e2e/test_operator_controlplane.py; only for a testbed this machine
started (not for a cluster named by KIRANA_TEST_KUBECONFIG).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from . import k8s


@dataclass(frozen=True)
class Process:
    pid: int
    argv: list[str]
    env: dict[str, str]
    cwd: str


@dataclass
class ControlPlane:
    state: Path  # the testbed's state directory (pids/, logs/)
    kubeconfig: Path

    @classmethod
    def of(cls, kubeconfig: Path) -> ControlPlane:
        return cls(state=kubeconfig.parent, kubeconfig=kubeconfig)

    def process(self, name: str) -> Process:
        pid = int((self.state / "pids" / f"{name}.pid").read_text().strip())
        proc = Path(f"/proc/{pid}")
        argv = proc.joinpath("cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        env_items = proc.joinpath("environ").read_bytes().rstrip(b"\0").split(b"\0")
        env = dict(item.decode().split("=", 1) for item in env_items if b"=" in item)
        assert str(self.state) in " ".join(a.decode() for a in argv), (
            f"pid {pid} is not this testbed's {name}"
        )
        return Process(pid, [a.decode() for a in argv], env, os.readlink(proc / "cwd"))

    def stop(self, name: str) -> Process:
        """SIGTERM the component and wait for it to exit (SIGKILL after 15 s); what it was."""
        p = self.process(name)
        os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while Path(f"/proc/{p.pid}").exists() and _state(p.pid) != "Z":
            if time.monotonic() > deadline:
                os.kill(p.pid, signal.SIGKILL)
            time.sleep(0.05)
        return p

    def start(self, name: str, p: Process) -> None:
        """Start the component again as it ran before, detached like up.sh's `setsid`."""
        log = (self.state / "logs" / f"{name}.log").open("ab")
        child = subprocess.Popen(
            p.argv,
            env=p.env,
            cwd=p.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        (self.state / "pids" / f"{name}.pid").write_text(f"{child.pid}\n")

    def restart(self, name: str, down_for: float = 2.0) -> float:
        """Stop, stay down `down_for` seconds, start, and wait until the API answers /readyz again;
        how long the API was unusable."""
        began = time.monotonic()
        p = self.stop(name)
        time.sleep(down_for)
        self.start(name, p)
        k8s.wait_for(f"{name} back and the API ready", self.ready, timeout=90, interval=0.2)
        return time.monotonic() - began

    def ready(self) -> bool:
        """The API server answers with etcd behind it (listing namespaces reads from storage)."""
        try:
            with k8s.api_client(self.kubeconfig) as api:
                client.CoreV1Api(api).list_namespace(limit=1, _request_timeout=5)
        except Exception:  # down, or still starting
            return False
        return True


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "X"
