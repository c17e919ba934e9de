"""Real Prometheus and Alertmanager servers on loopback for the monitoring tests, and a webhook
receiver standing in for Slack, PagerDuty and email.

The rules and the Alertmanager tree are the ones in `monitoring/`, transformed only in time:
rule groups evaluate every 2 s and `for:` durations shrink to seconds; Alertmanager receivers keep
their names but deliver to the local webhook (one path per receiver), and groups wait seconds.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from kirana.api.devstack import free_port
from tests.monitoring.conftest import MONITORING, tool

FOR = "4s"


def fast_rules(out: Path) -> list[Path]:
    """Every rule file with 2 s evaluation and short `for:`; the expressions are untouched."""
    paths = []
    for src in sorted(MONITORING.glob("rules/*.yaml")):
        doc = yaml.safe_load(src.read_text())
        for group in doc["groups"]:
            group["interval"] = "2s"
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = FOR
        dst = out / src.name
        dst.write_text(yaml.safe_dump(doc))
        paths.append(dst)
    return paths


def local_alertmanager_config(webhook: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((MONITORING / "alertmanager" / "alertmanager.yaml").read_text())
    doc["global"] = {"resolve_timeout": "5m"}
    doc.pop("time_intervals", None)  # business hours would make the email route depend on the clock
    for route in [doc["route"], *doc["route"]["routes"]]:
        route.pop("active_time_intervals", None)
        for key, value in (("group_wait", "1s"), ("group_interval", "2s"), ("repeat_interval", "1h")):
            if key in route or route is doc["route"]:
                route[key] = value
    doc["receivers"] = [
        {"name": r["name"]}
        if r["name"] == "null"
        else {
            "name": r["name"],
            "webhook_configs": [{"url": f"{webhook}/{r['name']}", "send_resolved": True}],
        }
        for r in doc["receivers"]
    ]
    return doc


class Webhooks:
    """Records every notification POSTed to /<receiver>."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hooks.lock:
                    hooks.received.append((self.path.strip("/"), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, receiver: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for name, body in self.received if name == receiver]

    def close(self) -> None:
        self.server.shutdown()


class Servers:
    """Alertmanager, then Prometheus sending to it, both on free loopback ports."""

    def __init__(self, work: Path, webhook: str, targets: dict[str, str], namespace: str = "shop") -> None:
        self.am_port, self.prom_port = free_port(), free_port()
        (work / "am").mkdir()
        (work / "alertmanager.yaml").write_text(yaml.safe_dump(local_alertmanager_config(webhook)))
        (work / "rules").mkdir()
        rules = fast_rules(work / "rules")
        scrape = [
            {
                "job_name": job,
                "scrape_interval": "1s",
                "static_configs": [{"targets": [target], "labels": {"namespace": namespace}}],
            }
            for job, target in targets.items()
        ]
        prometheus = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "2s"},
            "rule_files": [str(p) for p in rules],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{self.am_port}"]}]}]},
            "scrape_configs": scrape,
        }
        (work / "prometheus.yaml").write_text(yaml.safe_dump(prometheus))
        self.procs = [
            subprocess.Popen(
                [
                    tool("alertmanager"),
                    f"--config.file={work / 'alertmanager.yaml'}",
                    f"--storage.path={work / 'am'}",
                    f"--web.listen-address=127.0.0.1:{self.am_port}",
                    "--cluster.listen-address=",
                ],
                stdout=subprocess.DEVNULL,
                stderr=(work / "alertmanager.log").open("w"),
            ),
            subprocess.Popen(
                [
                    tool("prometheus"),
                    f"--config.file={work / 'prometheus.yaml'}",
                    f"--storage.tsdb.path={work / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.prom_port}",
                    "--rules.alert.resend-delay=1s",
                ],
                stdout=subprocess.DEVNULL,
                stderr=(work / "prometheus.log").open("w"),
            ),
        ]
        self.am = f"http://127.0.0.1:{self.am_port}"
        self.prom = f"http://127.0.0.1:{self.prom_port}"
        for url in (self.am + "/-/ready", self.prom + "/-/ready"):
            wait_for(lambda u=url: httpx.get(u, timeout=1).status_code == 200, 60, url)

    def firing(self) -> dict[str, dict[str, Any]]:
        alerts = httpx.get(self.prom + "/api/v1/alerts").json()["data"]["alerts"]
        return {a["labels"]["alertname"]: a for a in alerts if a["state"] == "firing"}

    def am_alerts(self) -> list[dict[str, Any]]:
        return httpx.get(self.am + "/api/v2/alerts").json()  # type: ignore[no-any-return]

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            proc.wait(timeout=30)


def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, KeyError) as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} ({last})")
