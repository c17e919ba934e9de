"""The whole alerting path on real servers: Prometheus scrapes a real `kirana run` with the
rules of monitoring/rules loaded; stopping Redis fires KiranaRedisDown; Alertmanager, fed by that
Prometheus and routed by monitoring/alertmanager, pages the on-call webhook; a warning of the
same alert is inhibited (shown with inhibitedBy, never delivered); two alerts of one group arrive
in one notification; sign-ins failing while Redis is stopped fire the API's error-budget alert,
which pages; Redis down also suppresses pods failing readiness, PostgreSQL down the firing API
alert (the cause still pages); a business warning is email; resuming Redis resolves the alert.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.monitoring.conftest import Shop
from tests.monitoring.servers import Servers, Webhooks, wait_for


@pytest.fixture
def alerting(shop: Shop, tmp_path: Path) -> Iterator[tuple[Servers, Webhooks]]:
    hooks = Webhooks()
    servers = Servers(
        tmp_path,
        hooks.url,
        {
            "kirana-api": f"127.0.0.1:{shop.api_metrics_port}",
            "kirana-workers": f"127.0.0.1:{shop.worker_port}",
        },
    )
    try:
        yield servers, hooks
    finally:
        servers.close()
        hooks.close()


def _post(servers: Servers, alertname: str, **labels: str) -> None:
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": alertname, "namespace": "shop", **labels},
        "annotations": {"summary": alertname},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(minutes=5)).isoformat(),
    }
    httpx.post(servers.am + "/api/v2/alerts", json=[alert]).raise_for_status()


def _fail_sign_ins(shop: Shop, *, until: Callable[[], bool], timeout: float) -> None:
    """Sign-in attempts, 8 at a time, until `until()` holds; fails after `timeout` seconds."""
    stop = threading.Event()
    answers: list[int] = []

    def attempt() -> None:
        with httpx.Client(base_url=shop.api, timeout=30) as client:
            while not stop.is_set():
                body = {"identifier": "nobody@example.com", "password": "wrong-password"}
                answers.append(client.post("/v1/auth/login", json=body).status_code)

    threads = [threading.Thread(target=attempt, daemon=True) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        wait_for(until, timeout, f"the API alert firing (answers so far: {sorted(set(answers))})")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert answers and all(code >= 500 for code in answers), sorted(set(answers))


@pytest.mark.xdist_group("run")
def test_redis_stopped_pages_on_call_with_inhibition_and_grouping_then_resolves(
    shop: Shop, alerting: tuple[Servers, Webhooks]
) -> None:
    servers, hooks = alerting
    wait_for(lambda: "KiranaWatchdog" in servers.firing(), 60, "rules evaluated")
    assert "KiranaRedisDown" not in servers.firing()
    redis_pid = shop.redis_pid()
    os.kill(redis_pid, signal.SIGSTOP)  # Redis stops answering; its clients time out
    try:
        wait_for(lambda: "KiranaRedisDown" in servers.firing(), 120, "KiranaRedisDown firing")
        wait_for(lambda: hooks.to("pagerduty-critical"), 60, "the page")
        page = hooks.to("pagerduty-critical")[0]
        assert page["status"] == "firing"
        assert [a["labels"]["alertname"] for a in page["alerts"]] == ["KiranaRedisDown"]
        assert page["alerts"][0]["labels"]["namespace"] == "shop"
        assert page["alerts"][0]["annotations"]["runbook_url"].endswith("/KiranaRedisDown.md")
        assert hooks.to("null") == []  # the Watchdog reaches nobody

        # A warning of the same alert and namespace is suppressed by the critical one.
        _post(servers, "KiranaRedisDown", severity="warning", category="cache", team="platform")
        # Two crash-looping pods of one namespace: one group, one notification.
        for pod in ("shop-api-a", "shop-api-b"):
            _post(
                servers,
                "KiranaPodCrashLooping",
                severity="warning",
                category="infrastructure",
                team="platform",
                pod=pod,
            )

        def paged(alertname: str) -> bool:
            pages = hooks.to("pagerduty-critical")
            return any(a["labels"]["alertname"] == alertname for b in pages for a in b["alerts"])

        def warning_inhibited() -> bool:
            for a in servers.am_alerts():
                if a["labels"]["alertname"] == "KiranaRedisDown" and a["labels"]["severity"] == "warning":
                    return bool(a["status"]["inhibitedBy"]) and a["status"]["state"] == "suppressed"
            return False

        wait_for(warning_inhibited, 30, "the warning inhibited")
        wait_for(lambda: hooks.to("slack-platform"), 30, "the grouped notification")
        grouped = hooks.to("slack-platform")[0]
        assert sorted(a["labels"]["pod"] for a in grouped["alerts"]) == ["shop-api-a", "shop-api-b"]
        assert grouped["groupLabels"] == {"alertname": "KiranaPodCrashLooping", "namespace": "shop"}
        delivered = [
            a["labels"]
            for body in hooks.to("pagerduty-critical") + hooks.to("slack-oncall")
            for a in body["alerts"]
        ]
        assert not any(
            lbl["alertname"] == "KiranaRedisDown" and lbl["severity"] == "warning" for lbl in delivered
        ), "the inhibited warning reached a receiver"

        # The real KiranaRedisDown explains pods failing readiness: that warning is suppressed.
        _post(servers, "KiranaPodNotReady", severity="warning", category="infrastructure", team="platform")
        # The API made to fail: sign-ins need Redis (their rate limits), so with Redis stopped
        # each answers 500 after the client's 5 s timeout. The real error-budget alert fires.
        _fail_sign_ins(shop, until=lambda: "KiranaApiErrorBudgetBurnFast" in servers.firing(), timeout=120)
        wait_for(lambda: paged("KiranaApiErrorBudgetBurnFast"), 60, "the API page")
        # PostgreSQL down explains the API's alerts: the firing API alert is now suppressed.
        _post(servers, "KiranaDatabaseDown", severity="critical", category="database", team="platform")
        # A business warning is email to the shop's owners (shop hours left out here).
        business = {"severity": "warning", "category": "business", "team": "business"}
        _post(servers, "KiranaOrdersPlacedToPaidLow", **business)

        def inhibited(alertname: str) -> list[str]:
            for a in servers.am_alerts():
                if a["labels"]["alertname"] == alertname and a["status"]["state"] == "suppressed":
                    return list(a["status"]["inhibitedBy"])
            return []

        wait_for(lambda: inhibited("KiranaPodNotReady"), 30, "KiranaPodNotReady inhibited")
        wait_for(lambda: inhibited("KiranaApiErrorBudgetBurnFast"), 30, "the API alert inhibited")
        wait_for(lambda: hooks.to("email-business"), 30, "the business email")
        email = hooks.to("email-business")[0]
        assert [a["labels"]["alertname"] for a in email["alerts"]] == ["KiranaOrdersPlacedToPaidLow"]
        assert email["groupLabels"] == {"category": "business", "namespace": "shop"}

        wait_for(lambda: paged("KiranaDatabaseDown"), 30, "the database page")
        every = [a["labels"]["alertname"] for _, body in hooks.received for a in body["alerts"]]
        assert "KiranaPodNotReady" not in every  # inhibited from the start: never delivered
    finally:
        os.kill(redis_pid, signal.SIGCONT)

    def resolved() -> bool:
        return any(body["status"] == "resolved" for body in hooks.to("pagerduty-critical"))

    wait_for(resolved, 120, "KiranaRedisDown resolved at the webhook")
    assert "KiranaRedisDown" not in servers.firing()
