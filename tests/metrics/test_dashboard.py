"""The Grafana dashboard and the documented alert rules query only metrics the code exports."""

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from caseroute.metrics import define_metrics

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "docs" / "grafana" / "caseroute.json"
OPERATIONS = REPO / "docs" / "operations.md"
NAME = re.compile(r"\bcaseroute_[a-z_]+\b")
SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gauge": ("",),
}


def _families() -> dict[str, str]:
    """Metric family name -> type, as define_metrics registers them."""
    registry = CollectorRegistry()
    define_metrics(registry)
    return {family.name: family.type for family in registry.collect()}


def _exported() -> set[str]:
    """Every sample name a scrape can show (counters end in _total, histograms in _bucket...)."""
    return {name + suffix for name, kind in _families().items() for suffix in SUFFIXES[kind]}


def _family_of(sample: str) -> str:
    return re.sub(r"_(total|bucket|count|sum)$", "", sample)


def _dashboard_names() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return {name for expr in exprs for name in NAME.findall(expr)}


def test_the_dashboard_queries_only_exported_metrics_and_shows_each_family() -> None:
    """Every name in a panel or variable query is exported; every metric family has a panel."""
    names = _dashboard_names()
    assert names - _exported() == set()
    assert {_family_of(n) for n in names} == set(_families())


def test_the_example_alert_rules_query_only_exported_metrics() -> None:
    """The alert rules in docs/operations.md name no metric the code does not export."""
    text = OPERATIONS.read_text()
    rules = text[text.index("### Example alert rules") :]
    names = set(NAME.findall(rules))
    assert "caseroute_time_to_triage_seconds_bucket" in names
    assert names - _exported() == set()


def test_the_metrics_table_documents_exactly_the_exported_metrics() -> None:
    """docs/operations.md lists each metric once with its type, and no metric that is not."""
    text = OPERATIONS.read_text()
    rows = re.findall(
        r"^\| `(caseroute_[a-z_]+)` \| (counter|histogram|gauge) \|", text, re.MULTILINE
    )
    documented = {_family_of(name): kind for name, kind in rows}
    assert len(rows) == len(documented)
    assert documented == _families()
