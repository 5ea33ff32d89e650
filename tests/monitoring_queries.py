"""The PromQL of k8s/monitoring/: every alert rule's expression and every dashboard query, parsed
into what they ask of the worker's /metrics — metric names, label matchers, and the labels that
`by`, `without`, `on`, `ignoring` and `group_left/right` name.

Parsed with `promql-parser` (the Rust crate that GreptimeDB uses, as Python bindings), so a query
that Prometheus would refuse fails here too. Grafana's variables are replaced by values of their
kind first (`$__rate_interval` by a duration, `$namespace` stays a label value).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import yaml

MONITORING = Path(__file__).parents[1] / "k8s" / "monitoring"

TARGET_LABELS = frozenset({"namespace", "pod", "container", "endpoint", "job", "instance"})
"""Labels Prometheus adds to every scraped series (the PodMonitor's target labels)."""
PROMETHEUS_SERIES = frozenset({"up"})
"""Series Prometheus writes itself for each target, not the worker."""
OTHER_EXPORTERS_SERIES = frozenset(
    {"kube_pod_container_resource_limits", "container_spec_memory_limit_bytes"}
)
"""Series of kube-state-metrics and the kubelet's cAdvisor (the containers' memory limits)."""
GRAFANA_DURATIONS = {"$__rate_interval": "2m", "$__range": "6h", "$__interval": "1m"}


def load_yaml(name: str) -> Any:
    return yaml.safe_load((MONITORING / name).read_text())


def prometheus_rule() -> dict[str, Any]:
    document: dict[str, Any] = load_yaml("prometheusrule.yaml")
    return document


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in prometheus_rule()["spec"]["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((MONITORING / "dashboard.json").read_text())
    return document


def dashboard_targets() -> list[tuple[str, str]]:
    """(panel title, expression) of every query of the dashboard."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel["targets"]
    ]


def grafana_to_promql(expr: str) -> str:
    for variable, duration in GRAFANA_DURATIONS.items():
        expr = expr.replace(variable, duration)
    return expr


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every alert expression and dashboard query."""
    rules = [(f"alert {rule['alert']}", rule["expr"]) for rule in alert_rules()]
    targets = [(f"panel {title!r}", grafana_to_promql(expr)) for title, expr in dashboard_targets()]
    return rules + targets


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    """"=", "!=", "=~" or "!~"."""
    value: str


@dataclass(frozen=True)
class Selector:
    metric: str
    matchers: tuple[Matcher, ...]


@dataclass(frozen=True)
class LabelUse:
    """A label a `by`/`without`/`on`/`ignoring`/`group_*` names, and the metrics it applies to."""

    label: str
    metrics: frozenset[str]


OPS = {"Equal": "=", "NotEqual": "!=", "Re": "=~", "NotRe": "!~"}


def _nodes(expr: promql_parser.Expr) -> list[promql_parser.Expr]:
    found: list[promql_parser.Expr] = []
    promql_parser.walk(expr, pre_visit=lambda node: found.append(node) or True)
    return found


def _selector(node: promql_parser.VectorSelector) -> Selector:
    assert node.name, f"a selector without a metric name: {node}"
    matchers = tuple(
        Matcher(m.name, OPS[str(m.op).split(".")[-1]], m.value)
        for m in node.matchers.matchers
        if m.name != "__name__"
    )
    return Selector(node.name, matchers)


def selectors(expr: str) -> list[Selector]:
    return [
        _selector(node)
        for node in _nodes(promql_parser.parse(expr))
        if isinstance(node, promql_parser.VectorSelector)
    ]


def _metrics(node: promql_parser.Expr) -> frozenset[str]:
    return frozenset(
        n.name for n in _nodes(node) if isinstance(n, promql_parser.VectorSelector) and n.name
    )


def label_uses(expr: str) -> Iterator[LabelUse]:
    for node in _nodes(promql_parser.parse(expr)):
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            for label in node.modifier.labels:
                yield LabelUse(label, _metrics(node.expr))
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            modifier = node.modifier
            labels = [*(modifier.matching.labels if modifier.matching else ())]
            labels += modifier.group_labels or []
            for label in labels:
                yield LabelUse(label, _metrics(node.lhs) | _metrics(node.rhs))


def variable_metrics() -> list[tuple[str, str]]:
    """(metric, label) of each `label_values(metric, label)` variable of the dashboard."""
    found = []
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        if match := re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", text):
            found.append((match.group(1), match.group(2)))
    return found


def aggregation_labels(expr: str) -> list[tuple[str, ...]]:
    """The labels each aggregation (`sum by (…)`, `max by (…)`, …) of `expr` keeps; () for one
    that keeps none."""
    return [
        tuple(node.modifier.labels) if node.modifier is not None else ()
        for node in _nodes(promql_parser.parse(expr))
        if isinstance(node, promql_parser.AggregateExpr)
    ]
