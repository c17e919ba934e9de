"""Grafana dashboards as code (grafanalib): overview, business, PostgreSQL and Redis, operator.

`python monitoring/dashboards/build.py` writes one JSON file per dashboard beside this script
(the files the chart ships as ConfigMaps for Grafana's sidecar); `--check` fails when a committed
file differs from what this script builds, so the JSON is never edited by hand.
Queries use only metrics the shop, the operator and the standard exporters export; the
monitoring tests parse each with promtool and check every `kirana_` name is exported.
"""

# ruff: noqa: E501  (the panel tables below keep one panel, with its queries, per line)
from __future__ import annotations

import json
import sys
from pathlib import Path

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard, GridPos, Target, Templating, TimeSeries

HERE = Path(__file__).resolve().parent
NS = 'namespace=~"$namespace"'
Panel = tuple[str, dict[str, str], str]


def _panel(title: str, queries: dict[str, str], unit: str, x: int, y: int) -> TimeSeries:
    targets = [
        Target(expr=q, legendFormat=legend, refId=chr(65 + i))
        for i, (legend, q) in enumerate(queries.items())
    ]
    return TimeSeries(
        title=title,
        dataSource="$datasource",
        unit=unit,
        gridPos=GridPos(h=8, w=12, x=x, y=y),
        targets=targets,
    )


def _dashboard(uid: str, title: str, panels: list[Panel]) -> Dashboard:
    variables = [
        {"name": "datasource", "type": "datasource", "query": "prometheus"},
        {
            "name": "namespace",
            "type": "query",
            "datasource": "$datasource",
            "query": "label_values(kirana_http_requests_total, namespace)",
            "includeAll": True,
            "multi": True,
        },
    ]
    return Dashboard(
        uid=uid,
        title=title,
        tags=["kirana"],
        timezone="browser",
        templating=Templating(list=variables),
        panels=[_panel(t, q, u, 12 * (i % 2), 8 * (i // 2)) for i, (t, q, u) in enumerate(panels)],
    ).auto_panel_ids()


OVERVIEW: list[Panel] = [
    ("Requests per route", {"{{route}} {{method}}": f"sum by (route, method) (rate(kirana_http_requests_total{{{NS}}}[5m]))"}, "reqps"),
    ("Errors (5xx) per route", {"{{route}} {{status}}": f'sum by (route, status) (rate(kirana_http_requests_total{{{NS}, status=~"5.."}}[5m]))'}, "reqps"),
    ("p95 duration per route", {"{{route}}": f"histogram_quantile(0.95, sum by (route, le) (rate(kirana_http_request_duration_seconds_bucket{{{NS}}}[5m])))"}, "s"),
    ("Error and slow ratios (SLO)", {"errors": f"kirana:http_errors:ratio_rate5m{{{NS}}}", "slower than 500 ms": f"kirana:http_slow:ratio_rate5m{{{NS}}}"}, "percentunit"),
    ("In flight and DB pool", {"in flight": f"sum(kirana_http_requests_in_flight{{{NS}}})", "pool in use": f"sum(kirana_db_pool_connections_in_use{{{NS}}})", "pool max": f"sum(kirana_db_pool_connections_max{{{NS}}})"}, "short"),
    ("Dependencies up (workers' probe)", {"{{dependency}}": f"min by (dependency) (kirana_dependency_up{{{NS}}})"}, "short"),
]  # fmt: skip
BUSINESS: list[Panel] = [
    ("Orders placed per minute (vs last week)", {"now": f"60 * kirana:orders_placed:rate10m{{{NS}}}", "a week ago": f"60 * kirana:orders_placed:rate10m{{{NS}}} offset 1w"}, "short"),
    ("Payments captured and failed", {"captured {{method}}": f"sum by (method) (rate(kirana_payment_captured_total{{{NS}}}[5m]))", "failed {{reason}}": f"sum by (reason) (rate(kirana_payment_failed_total{{{NS}}}[5m]))"}, "ops"),
    ("Paise captured per hour", {"captured": f"sum(increase(kirana_payment_captured_paise_total{{{NS}}}[1h]))"}, "short"),
    ("Refunds by the shop", {"{{reason}}": f"sum by (reason) (increase(kirana_payment_auto_refunds_total{{{NS}}}[1h]))"}, "short"),
    ("Orders waiting for payment", {"waiting": f"max(kirana_orders_pending_payment{{{NS}}})", "oldest (s)": f"max(kirana_orders_pending_payment_oldest_age_seconds{{{NS}}})"}, "short"),
    ("Webhooks received and applied", {"received {{outcome}}": f"sum by (outcome) (rate(kirana_webhook_received_total{{{NS}}}[5m]))", "applied {{outcome}}": f"sum by (outcome) (rate(kirana_webhook_processed_total{{{NS}}}[5m]))"}, "ops"),
    ("Catalog and search traffic", {"{{route}} {{status}}": f'sum by (route, status) (rate(kirana_http_requests_total{{{NS}, route=~"/v1/catalog/products.*|/v1/search.*"}}[5m]))'}, "reqps"),
    ("Real-time sockets", {"open": f"sum(kirana_ws_connections{{{NS}}})", "accepted /s": f"sum(rate(kirana_ws_connections_accepted_total{{{NS}}}[5m]))", "refused {{reason}} /s": f"sum by (reason) (rate(kirana_ws_connections_refused_total{{{NS}}}[5m]))", "slow consumers /s": f"sum(rate(kirana_ws_slow_consumers_total{{{NS}}}[5m]))", "resyncs /s": f"sum(rate(kirana_ws_resyncs_total{{{NS}}}[5m]))"}, "short"),
]  # fmt: skip
DATA: list[Panel] = [
    ("PostgreSQL connections", {"{{state}}": f"sum by (state) (pg_stat_activity_count{{{NS}}})", "max": f"max(pg_settings_max_connections{{{NS}}})"}, "short"),
    ("Longest transaction", {"{{datname}}": f"max by (datname) (pg_stat_activity_max_tx_duration{{{NS}}})"}, "s"),
    ("Deadlocks", {"{{datname}}": f"sum by (datname) (increase(pg_stat_database_deadlocks{{{NS}}}[10m]))"}, "short"),
    ("Redis memory", {"used": f"sum(redis_memory_used_bytes{{{NS}}})", "max": f"sum(redis_memory_max_bytes{{{NS}}})"}, "bytes"),
    ("Redis evictions and rejected connections", {"evicted": f"sum(rate(redis_evicted_keys_total{{{NS}}}[5m]))", "rejected": f"sum(rate(redis_rejected_connections_total{{{NS}}}[5m]))"}, "ops"),
    ("Outbox relayed", {"relayed": f"sum(rate(kirana_outbox_events_relayed_total{{{NS}}}[5m]))"}, "ops"),
]  # fmt: skip
OPERATOR: list[Panel] = [
    ("ShopReleases by phase", {"{{phase}}": "sum by (phase) (kirana_operator_releases)"}, "short"),
    ("Reconcile p95", {"p95": "histogram_quantile(0.95, sum by (le) (rate(kirana_operator_reconcile_duration_seconds_bucket[5m])))"}, "s"),
    ("Reconcile failures", {"{{reason}}": "sum by (reason) (rate(kirana_operator_reconcile_failures_total[5m]))"}, "ops"),
    ("Backup and restore Jobs failed", {"{{job_name}}": f'max by (job_name) (kube_job_status_failed{{{NS}, job_name=~".+-(backup|pre-upgrade|restore)-.+|shopbackup-.+"}})'}, "short"),
    ("Age of the last scheduled backup", {"{{cronjob}}": f'time() - max by (cronjob) (kube_cronjob_status_last_successful_time{{{NS}, cronjob=~".+-backup"}})'}, "s"),
    ("Worker job runs", {"{{outcome}}": f"sum by (outcome) (rate(kirana_worker_job_runs_total{{{NS}}}[5m]))"}, "ops"),
]  # fmt: skip

DASHBOARDS = {
    "kirana-overview": _dashboard("kirana-overview", "Kirana / Overview", OVERVIEW),
    "kirana-business": _dashboard("kirana-business", "Kirana / Business", BUSINESS),
    "kirana-data": _dashboard("kirana-data", "Kirana / PostgreSQL and Redis", DATA),
    "kirana-operator": _dashboard("kirana-operator", "Kirana / Operator and releases", OPERATOR),
}


def render(dashboard: Dashboard) -> str:
    return json.dumps(dashboard.to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for name, dashboard in DASHBOARDS.items():
        path, text = HERE / f"{name}.json", render(dashboard)
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        sys.stderr.write(f"out of date (run python monitoring/dashboards/build.py): {', '.join(stale)}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
