"""The Prometheus rules and the Grafana dashboard in deploy/: valid, unit-tested, and naming only real metrics.

``promtool`` (Debian package ``prometheus``) checks the rule file and the scrape configuration and runs the rule
unit tests of ``deploy/prometheus/alerts_test.yml``. Every PromQL expression (rules and dashboard panels) may only
name metrics that the recorder, the live runner or the API actually export — taken from their metric classes,
not from a list kept here — so a renamed metric breaks this test instead of silently breaking an alert.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from kalshi_analytics.api.health import ApiMetrics
from kalshi_analytics.live.metrics import LiveMetrics
from kalshi_analytics.recorder.metrics import RecorderMetrics
from kalshi_analytics.web.cache import ResponseCache
from kalshi_analytics.web.limits import StreamCounts

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "kalshi-analytics.json"
#: Set by .ci/run: a missing promtool fails there instead of skipping.
REQUIRE_PROMTOOL = "KA_REQUIRE_PROMTOOL"
#: Series Prometheus itself writes for every scrape target (not exported by any process of ours).
PROMETHEUS_OWN = {"up"}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool not installed (Debian: apt-get install prometheus)"
        if os.environ.get(REQUIRE_PROMTOOL, "") not in ("", "0"):
            pytest.fail(f"{message}; {REQUIRE_PROMTOOL} is set, so this is an error", pytrace=False)
        pytest.skip(message)
    return path


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def exported_metrics() -> set[str]:
    """Every sample name the code's metric registries expose (labelled metrics included before first use)."""
    registries: list[CollectorRegistry] = [
        RecorderMetrics().registry,
        LiveMetrics().registry,
        ApiMetrics(
            cache=ResponseCache(max_bytes=1024, fresh_seconds=1, max_seconds=1),
            streams=StreamCounts(per_client=1, total=1),
        ).registry,
    ]
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
            names.update(s.name for s in family.samples)
    return names


_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "inf", "nan",
}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (strings, label matchers, ranges and label lists removed)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    e = re.sub(r"\{[^}]*\}", "", e)  # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)  # range selectors / subqueries
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", e)  # label lists
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", e):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def test_metric_name_extraction() -> None:
    expr = (
        'sum by (job, instance) (rate(a_total{type!="other", x=~"b.*"}[5m])) / on(job) group_left(x) '
        "histogram_quantile(0.99, sum by (le) (rate(c_bucket[$__rate_interval]))) > 0.5 and bool d or vector(0)"
    )
    assert metric_names(expr) == {"a_total", "c_bucket", "d"}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_code_exports_what_the_alerts_are_about() -> None:
    exported = exported_metrics()
    # The names the rules rely on come from the code (a sanity check of the helper, not a list of truth).
    assert {"kalshi_recorder_ws_connected", "process_start_time_seconds", "kalshi_api_requests_total"} <= exported
    assert "kalshi_recorder_commit_lag_seconds_bucket" in exported
    assert "kalshi_live_lag_seconds_bucket" in exported


def test_rules_name_only_exported_metrics() -> None:
    known = exported_metrics() | PROMETHEUS_OWN
    for rule in _rules():
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule['alert']}: not exported by the code: {sorted(unknown)}"


def test_promtool_check_rules_and_config() -> None:
    rules = _run("check", "rules", "alerts.yml", cwd=PROMETHEUS)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in rules.stdout
    config = _run("check", "config", "prometheus.yml", cwd=PROMETHEUS)
    assert config.returncode == 0, config.stdout + config.stderr


def test_promtool_rule_unit_tests() -> None:
    result = _run("test", "rules", "alerts_test.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    doc = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())
    fired: set[str] = set()
    silent: set[str] = set()
    for test in doc["tests"]:
        for case in test["alert_rule_test"]:
            (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    alerts = {rule["alert"] for rule in _rules()}
    assert alerts - fired == set(), "alerts never shown firing"
    assert alerts - silent == set(), "alerts never shown silent"
    assert fired | silent <= alerts, "tests of alerts that do not exist"


def test_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """The rule tests are sharp: loosening the seed's gap threshold from 1 % to 3 % makes them fail."""
    text = (PROMETHEUS / "alerts.yml").read_text()
    assert "> 0.01" in text
    (tmp_path / "alerts.yml").write_text(text.replace("> 0.01", "> 0.03"))
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path / "alerts_test.yml")
    result = _run("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "FeedGapRateHigh" in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------- the dashboard
def test_dashboard_is_a_grafana_dashboard() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert isinstance(dash["title"], str)
    assert dash["title"]
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", dash["uid"])
    assert isinstance(dash["schemaVersion"], int)
    assert dash["schemaVersion"] >= 30
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dash["panels"]:
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"}, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["type"] in {"row", "timeseries", "stat", "gauge", "table"}, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert panel["targets"], panel["title"]
        assert len(refs) == len(set(refs)), panel["title"]
    # Panels do not overlap.
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        g = panel["gridPos"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_dashboard_names_only_exported_metrics() -> None:
    dash = json.loads(DASHBOARD.read_text())
    known = exported_metrics() | PROMETHEUS_OWN
    exprs = _dashboard_exprs(dash)
    assert len(exprs) >= 20
    used: set[str] = set()
    for expr in exprs:
        names = metric_names(expr)
        assert names, expr
        assert names <= known, f"{expr}: not exported by the code: {sorted(names - known)}"
        used |= names
    # The dashboard covers all three processes.
    assert any(n.startswith("kalshi_recorder_") for n in used)
    assert any(n.startswith("kalshi_api_") for n in used)
    assert any(n.startswith("kalshi_live_") for n in used)


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each panel query, with Grafana's interval variable replaced, parses as PromQL (promtool checks it)."""
    exprs = _dashboard_exprs(json.loads(DASHBOARD.read_text()))
    rules = [
        {"record": f"dashboard:query_{i}", "expr": e.replace("$__rate_interval", "5m")} for i, e in enumerate(exprs)
    ]
    (tmp_path / "dashboard_rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = _run("check", "rules", "dashboard_rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
