"""The Grafana dashboards in monitoring/dashboards, checked offline: the committed JSON is what
build.py makes, each is a dashboard Grafana can load (uid, title, panels with targets), and every
panel query parses with promtool. (test_metrics_exist checks the `kirana_` names they use.)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.monitoring.conftest import MONITORING, REPO, run, tool

FILES = sorted((MONITORING / "dashboards").glob("*.json"))


def test_committed_json_is_what_the_builder_makes() -> None:
    out = run(sys.executable, str(MONITORING / "dashboards" / "build.py"), "--check", cwd=REPO)
    assert out.returncode == 0, out.stderr


def test_the_four_dashboards_exist() -> None:
    assert {p.stem for p in FILES} == {"kirana-overview", "kirana-business", "kirana-data", "kirana-operator"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_dashboard_is_valid_and_every_query_parses(path: Path) -> None:
    board = json.loads(path.read_text())
    assert board["uid"] == path.stem and board["title"].startswith("Kirana / ")
    assert board["panels"], "no panels"
    for panel in board["panels"]:
        assert panel["type"] == "timeseries" and panel["title"] and panel["targets"]
        for target in panel["targets"]:
            query = target["expr"].replace("$namespace", ".*")
            out = run(tool("promtool"), "--experimental", "promql", "format", query)
            assert out.returncode == 0, f"{panel['title']}: {query}: {out.stderr}"


def test_a_broken_query_is_refused() -> None:
    """The parse check can fail."""
    assert run(tool("promtool"), "--experimental", "promql", "format", "sum(rate(x[5m])").returncode != 0


def _api_routes() -> set[str]:
    """The route templates `kirana_http_requests_total` labels requests with."""
    from kirana.api.app import create_app
    from kirana.api.settings import Settings

    settings = Settings(
        environment="test", database_url="postgresql://x@127.0.0.1:1/x", redis_url="redis://127.0.0.1:1/0"
    )
    return set(create_app(settings, handle_signals=False).openapi()["paths"])


def test_route_matchers_match_routes_the_api_has() -> None:
    """A `route` matcher in a panel or a rule names routes that exist (a renamed route would
    leave its panel or alert silently empty)."""
    routes = _api_routes()
    sources = [p.read_text() for p in FILES] + [p.read_text() for p in (MONITORING / "rules").glob("*.yaml")]
    matchers = {m for text in sources for m in re.findall(r'route=~?\\?"((?:[^"\\]|\\.)*?)\\?"', text)}
    assert matchers, "no route matcher found: the pattern is wrong"
    for matcher in matchers:
        for alternative in matcher.split("|"):
            assert any(re.fullmatch(alternative, r) for r in routes), f"{alternative!r} matches no route"
