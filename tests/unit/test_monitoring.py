"""k8s/monitoring/ keeps what docs/deploy/monitoring.md promises: alerts with a severity, a
summary, a cause and a runbook link; promtool tests for every alert, firing and silent; a
dashboard on a Prometheus data source variable; a kustomization that renders the PrometheusRule
from the file promtool tests, with the runbook's address in front of each runbook link.

promtool itself runs in .ci/deploy-checks; that every metric and label used here is one a
running worker exports is tests/e2e/test_monitoring_metrics.py; that every alert has its
section in docs/operations/runbook.md, and the dashboard's panels their list in
docs/deploy/monitoring.md, is tests/unit/test_docs.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import promql_parser
import pytest
import yaml

from tests.monitoring_queries import (
    MONITORING,
    OTHER_EXPORTERS_SERIES,
    aggregation_labels,
    alert_rules,
    dashboard,
    dashboard_targets,
    grafana_to_promql,
    load_yaml,
    prometheus_rule,
    queries,
    selectors,
)

RUNBOOK_PATH = "docs/operations/runbook.md"
SEVERITIES = {"warning", "critical"}
SILENT_TESTS = ("a healthy day: no alert", "a normal backlog: no alert")
REQUIRED_ALERTS = {
    "ElementsSyncUpstreamDown",
    "ElementsSyncDailyBudgetSpent",
    "ElementsSyncDailyBudgetRunningOut",
    "ElementsSyncElementsRateLimited",
    "ElementsSyncDeadLetters",
    "ElementsSyncFallingBehind",
    "ElementsSyncNoProgress",
    "ElementsSyncEventStuck",
    "ElementsSyncIntakePaused",
    "ElementsSyncLimiterRedisUnavailable",
    "ElementsSyncStateTopicUnavailable",
    "ElementsSyncAbsent",
    "ElementsSyncNotConsuming",
    "ElementsSyncPodNotConsuming",
    "ElementsSyncPartitionStalled",
    "ElementsSyncFormsUnauthorized",
    "ElementsSyncFormsFailing",
    "ElementsSyncMemoryNearLimit",
}
"""The issues' lists: upstream down, budget spent and projected, 429s, dead letters, falling
behind, no progress, intake paused, Redis, the state topic, the worker absent (issue 18); a
pod that consumes nothing, a partition that makes no progress, the forms' error ratio, memory
near the container's limit (issue 23)."""
JOB = ("job", "=", "elements-sync")
WAITED_OUT = {"ElementsSyncUpstreamDown", "ElementsSyncDailyBudgetSpent"}
"""What a person can only wait out (a supplier's outage, the day's budget): never critical."""


def kustomization() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml("kustomization.yaml")
    return document


def test_kustomization_lists_the_monitoring_files_and_nothing_else() -> None:
    generated = [
        f.split("=")[-1] for gen in kustomization()["configMapGenerator"] for f in gen["files"]
    ]
    listed = {*kustomization()["resources"], *generated}

    assert listed == {p.name for p in MONITORING.iterdir()} - {
        "kustomization.yaml",
        "alerts.test.yaml",
    }


def test_the_dashboard_configmap_is_labelled_for_the_grafana_sidecar_under_a_fixed_name() -> None:
    [generator] = kustomization()["configMapGenerator"]

    assert generator["options"]["labels"] == {"grafana_dashboard": "1"}
    assert generator["options"]["disableNameSuffixHash"] is True
    assert generator["files"] == ["elements-sync.json=dashboard.json"]


def test_every_rule_is_an_alert_with_severity_summary_cause_and_runbook() -> None:
    rule = prometheus_rule()
    rules = alert_rules()
    names = [r["alert"] for r in rules]

    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    for r in rules:
        assert r["labels"]["severity"] in SEVERITIES, r["alert"]
        assert set(r["annotations"]) == {"summary", "description", "runbook_url"}, r["alert"]
        assert "Likely cause" in r["annotations"]["description"], r["alert"]
        assert r["annotations"]["runbook_url"] == f"{RUNBOOK_PATH}#{r['alert'].lower()}"
        promql_parser.parse(r["expr"])


def test_every_rule_selects_the_workers_job_and_aggregates_by_namespace() -> None:
    """A second job scraping the same pods is not counted; each alert names its namespace."""
    unselected: list[tuple[str, str]] = []
    unscoped: list[tuple[str, tuple[str, ...]]] = []
    for rule in alert_rules():
        for selector in selectors(rule["expr"]):
            matchers = {(m.label, m.op, m.value) for m in selector.matchers}
            if selector.metric not in OTHER_EXPORTERS_SERIES and JOB not in matchers:
                unselected.append((rule["alert"], selector.metric))
        unscoped += [
            (rule["alert"], labels)
            for labels in aggregation_labels(rule["expr"])
            if "namespace" not in labels
        ]

    assert unselected == []
    assert unscoped == []


def test_what_a_person_can_only_wait_out_is_a_warning_and_every_alert_waits_a_while() -> None:
    severities = {r["alert"]: r["labels"]["severity"] for r in alert_rules()}

    assert {name: severities[name] for name in WAITED_OUT} == dict.fromkeys(WAITED_OUT, "warning")
    assert [r["alert"] for r in alert_rules() if "for" not in r] == []


def promtool_tests() -> list[dict[str, Any]]:
    document = load_yaml("alerts.test.yaml")
    assert document["rule_files"] == ["elements-sync.rules.yaml"]
    tests: list[dict[str, Any]] = document["tests"]
    return tests


def test_promtool_tests_make_every_alert_fire() -> None:
    fired = {
        check["alertname"]
        for test in promtool_tests()
        for check in test["alert_rule_test"]
        if check["exp_alerts"]
    }

    assert fired == {r["alert"] for r in alert_rules()}


@pytest.mark.parametrize("name", SILENT_TESTS)
def test_promtool_tests_check_every_alert_stays_silent_all_along(name: str) -> None:
    [test] = [t for t in promtool_tests() if t["name"] == name]
    checks = test["alert_rule_test"]
    times = {check["eval_time"] for check in checks}

    assert len(times) >= 8
    assert {(c["eval_time"], c["alertname"]) for c in checks} == {
        (t, r["alert"]) for t in times for r in alert_rules()
    }
    assert [c for c in checks if c["exp_alerts"]] == []


def test_the_dashboard_asks_a_prometheus_data_source_variable_in_every_query() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    panels = board["panels"]
    source = {"type": "prometheus", "uid": "${datasource}"}

    assert board["schemaVersion"] >= 39
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == (
        "datasource",
        "prometheus",
    )
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["datasource"] == source, panel["title"]
        assert panel["targets"], panel["title"]
        assert [t["datasource"] for t in panel["targets"]] == [source] * len(panel["targets"])


def test_every_dashboard_query_parses_and_keeps_to_the_chosen_namespace_and_the_job() -> None:
    """The job too: a cluster that scrapes the pods twice (a PodMonitor and an annotation
    scrape) would otherwise double every sum."""
    for title, expr in dashboard_targets():
        for selector in selectors(grafana_to_promql(expr)):
            labels = {(m.label, m.op, m.value) for m in selector.matchers}
            assert ("job", "=", "elements-sync") in labels, (title, selector.metric)
            if selector.metric != "up":
                assert ("namespace", "=~", "$namespace") in labels, (title, selector.metric)


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    metrics: dict[str, set[str]] = {}
    for title, expr in dashboard_targets():
        metrics.setdefault(title, set()).update(
            s.metric for s in selectors(grafana_to_promql(expr))
        )
    wanted = {
        "Events per second by type and status": "elements_sync_events_total",
        "Results by error code": "elements_sync_dead_letters_total",
        "Elements requests per second against the limit": "elements_sync_limiter_rate_per_second",
        "The day's Elements budget: used and projected": "elements_sync_daily_budget_reset_seconds",
        "Limiter wait (p50, p95)": "elements_sync_limiter_wait_seconds_bucket",
        "Consumer lag per topic": "elements_sync_consumer_lag",
        "Intake paused by reason": "elements_sync_intake_paused",
        "Upstream latency per API (p50, p95)": "elements_sync_upstream_request_seconds_bucket",
        "Upstream errors per API": "elements_sync_upstream_requests_total",
        "Backfill progress": "elements_sync_backfill_finished_total",
        "Forms requests per second": "elements_sync_forms_requests_total",
        "Forms latency (p50, p95)": "elements_sync_forms_request_seconds_bucket",
    }

    assert {title: metric in metrics.get(title, set()) for title, metric in wanted.items()} == (
        dict.fromkeys(wanted, True)
    )


def test_every_query_is_valid_promql() -> None:
    for where, expr in queries():
        try:
            promql_parser.parse(expr)
        except ValueError as error:
            pytest.fail(f"{where}: {error}")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="renders with kubectl's kustomize")
def test_the_rendered_rule_is_the_file_promtool_tests_with_the_runbooks_address_in_front() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(MONITORING)], capture_output=True, text=True, check=True
    ).stdout
    docs = {doc["kind"]: doc for doc in yaml.safe_load_all(rendered) if doc}
    address = load_yaml("settings.yaml")["data"]["runbookUrl"]
    source = prometheus_rule()["spec"]["groups"]
    for group in source:
        for rule in group["rules"]:
            rule["annotations"]["runbook_url"] = rule["annotations"]["runbook_url"].replace(
                RUNBOOK_PATH, address
            )

    assert set(docs) == {"ConfigMap", "PodMonitor", "PrometheusRule"}
    assert docs["PrometheusRule"]["spec"]["groups"] == source
    assert docs["ConfigMap"]["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(docs["ConfigMap"]["data"]["elements-sync.json"]) == dashboard()
