"""The alert rules and the Grafana dashboard watch metrics the gateway really exports.

``promtool`` checks the scrape config and rule file and runs the rules' unit tests
(deploy/prometheus/alerts*_test.yml). Without ``promtool`` (Debian's ``prometheus`` package) those
two tests are skipped outside CI and fail in CI (``CI=true``); ``.ci/run`` installs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

import app.observability.metrics  # noqa: F401  (registers every gateway metric)
from app.ingest.router import router as ingest_router

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "erp-gateway.json"
TEST_FILES = ("alerts_test.yml", "alerts_calendar_test.yml")  # promtool unit tests of the rules
PROMTOOL = shutil.which("promtool")
IN_CI = os.environ.get("CI") == "true"
# series Prometheus makes itself for every target
SYNTHETIC = {"up"}


def promtool(*args: str) -> str:
    if PROMTOOL is None:
        reason = (
            "promtool is not installed: the alert rules are NOT being tested. Install it "
            "(apt-get install prometheus); under CI this is a failure."
        )
        if IN_CI:
            pytest.fail(reason)
        warnings.warn(reason, stacklevel=1)  # in the summary even without -rs
        pytest.skip(reason)
    proc = subprocess.run(
        [PROMTOOL, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_the_scrape_config_and_the_rules_are_valid() -> None:
    out = promtool("check", "config", "prometheus.yml")
    assert "SUCCESS" in out and "1 rule files found" in out


def test_the_rules_unit_tests_pass() -> None:
    promtool("test", "rules", *TEST_FILES)


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_every_alert_has_a_test_where_it_fires() -> None:
    docs = [yaml.safe_load((PROMETHEUS / f).read_text(encoding="utf-8")) for f in TEST_FILES]
    fired = {
        case["alertname"]
        for doc in docs
        for test in doc["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    untested = [rule["alert"] for rule in alert_rules() if rule["alert"] not in fired]
    assert not untested, f"add a case to alerts_test.yml where these fire: {untested}"


def exported_metric_names() -> set[str]:
    """Every series name the gateway can expose (a counter as _total, a histogram as
    _bucket, _count and _sum), plus what Prometheus adds itself."""
    names = set(SYNTHETIC)
    for family in REGISTRY.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type in ("histogram", "summary"):
            names |= {f"{family.name}{suffix}" for suffix in ("_bucket", "_count", "_sum")}
        else:
            names.add(family.name)
    return names


_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions,
    keywords, label names (in braces or in by/on/... lists) or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        rest = text[match.end() :].lstrip()
        if match.group() not in _KEYWORDS and not rest.startswith("("):
            names.add(match.group())
    return names


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(gateway_a_bucket{route="/x/{id}"}[5m])))'
        " > 2 and on () (hour() >= 8) or max without (job) (gateway_b offset 15m) / up"
    )
    assert metric_names(expr) == {"gateway_a_bucket", "gateway_b", "up"}


def dashboard_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from dashboard_panels(panel.get("panels", []))


def test_every_metric_an_alert_watches_is_exported() -> None:
    exported = exported_metric_names()
    for rule in alert_rules():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= exported, f"{rule['alert']}: not exported: {used - exported}"


def test_every_dashboard_panel_queries_exported_metrics() -> None:
    exported = exported_metric_names()
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queried = 0
    for panel in dashboard_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            used = metric_names(target["expr"])
            assert any(n.startswith("gateway_") for n in used), panel["title"]
            assert used <= exported, f"{panel['title']!r}: not exported: {used - exported}"
            queried += 1
    assert queried >= 8


def test_the_webhook_route_the_rules_watch_is_the_ingest_route() -> None:
    routes = {getattr(route, "path", None) for route in ingest_router.routes}
    text = (PROMETHEUS / "alerts.yml").read_text(encoding="utf-8")
    text += DASHBOARD.read_text(encoding="utf-8")
    for route in set(re.findall(r'route=\\?"(/webhooks[^"\\]*)\\?"', text)):
        assert route in routes, route
    assert "/webhooks/{connection_id}" in routes
