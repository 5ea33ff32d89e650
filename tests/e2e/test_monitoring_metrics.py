"""Every metric and label that the alert rules and the dashboard (k8s/monitoring/) use is one that
a running worker exports on /metrics: read from `python -m app worker` as its own process,
after it synced a customer, failed one, rejected a message, finished a backfill event and
a form submission, and answered the forms routes. A renamed metric, label or label value breaks this test rather than
leaving an alert that can never fire or a panel that stays empty. The series of other exporters
(kube-state-metrics' and cAdvisor's memory limits) and Prometheus' own `up` are left out.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.events import input_event_bytes
from app.sandbox.simulators.seed import seed_customer
from app.sandbox.worker_process import WorkerProcess, worker_environment
from app.sandbox.world import CLOUDEVENTS_PRODUCER_HEADERS, Sandbox
from tests.conftest import SandboxFactory
from tests.e2e.helpers import sync
from tests.monitoring_queries import (
    OTHER_EXPORTERS_SERIES,
    PROMETHEUS_SERIES,
    TARGET_LABELS,
    label_uses,
    queries,
    selectors,
    variable_metrics,
)

pytestmark = pytest.mark.e2e

SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "info": ("_info",),
}


@dataclass
class Exported:
    """What /metrics shows: each series name its family declares, and the label values seen."""

    names: set[str] = field(default_factory=set)
    labels: dict[str, dict[str, set[str]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(set))
    )

    @classmethod
    def read(cls, text: str) -> Exported:
        exported = cls()
        for family in text_string_to_metric_families(text):
            suffixes = SAMPLE_SUFFIXES.get(family.type, ("",))
            exported.names |= {family.name + suffix for suffix in suffixes}
            for sample in family.samples:
                exported.names.add(sample.name)
                for label, value in sample.labels.items():
                    exported.labels[sample.name][label].add(value)
        return exported


def sample(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


def finished(text: str) -> float:
    """Inputs with an outcome, as the worker counts them."""
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "elements_sync_events_total"
    )


async def metrics_once(
    http: httpx.AsyncClient, condition: Callable[[str], bool], *, timeout_s: float
) -> str:
    """The worker's /metrics once `condition` holds for them."""
    async with asyncio.timeout(timeout_s):
        while True:
            text = (await http.get("/metrics")).text
            if condition(text):
                return text
            await asyncio.sleep(0.2)


def problems(exported: Exported) -> list[str]:
    """What the rules and the dashboard ask of /metrics that the worker does not export."""
    found = []
    for where, expr in queries():
        for selector in selectors(expr):
            if selector.metric in PROMETHEUS_SERIES | OTHER_EXPORTERS_SERIES:
                continue
            if selector.metric not in exported.names:
                found.append(f"{where}: no series {selector.metric}")
                continue
            labels = exported.labels[selector.metric]
            for m in selector.matchers:
                if m.label in TARGET_LABELS:
                    continue
                if m.label not in labels:
                    found.append(f"{where}: {selector.metric} has no label {m.label}")
                elif m.op == "=" and m.value not in labels[m.label]:
                    found.append(f"{where}: {selector.metric} has no {m.label}={m.value!r}")
        for use in label_uses(expr):
            on_some = any(use.label in exported.labels[name] for name in use.metrics)
            if use.label not in TARGET_LABELS and not on_some:
                found.append(f"{where}: label {use.label} on none of {sorted(use.metrics)}")
    for metric, _label in variable_metrics():
        if metric not in exported.names:
            found.append(f"dashboard variable: no series {metric}")
    return found


async def test_every_metric_and_label_of_the_alerts_and_the_dashboard_is_exported(
    make_sandbox: SandboxFactory,
) -> None:
    sandbox: Sandbox = await make_sandbox(rate_limit=20)
    customers = [seed_customer(sandbox.anva, sandbox.portal, i) for i in range(2)]
    env = worker_environment(
        sandbox.settings(), FORMS_ALLOW_ANONYMOUS="true", DEAD_LETTERS_REFRESH_S="0.5"
    )

    async with WorkerProcess(env) as worker, httpx.AsyncClient(base_url=worker.url) as http:
        await sync(sandbox, customers[0].dossier_number)
        await sync(sandbox, "999999")
        await sandbox.publish_raw(
            sandbox.topics.customer_events, "bad", b"not json", headers=CLOUDEVENTS_PRODUCER_HEADERS
        )
        backfill = input_event_bytes(
            "customer.changed", {"dossierNumber": customers[1].dossier_number}
        )
        await sandbox.publish_raw(
            sandbox.topics.backfill,
            customers[1].dossier_number,
            backfill,
            headers=CLOUDEVENTS_PRODUCER_HEADERS,
        )
        form = {"X-Customer-Id": customers[0].portal_id, "X-Form-Id": "frm_contact"}
        await http.get("/forms/prefill", headers={**form, "Accept": "application/json"})
        await http.post("/forms/submissions", headers=form, json={"phone": "+31 6 12345678"})
        text = await metrics_once(
            http,
            lambda text: (
                finished(text) == 5
                and sample(text, "elements_sync_backfill_finished_total") == 1
                and sample(text, "elements_sync_dead_letters_outstanding", reason="not_json") == 1
                and sample(
                    text, "elements_sync_dead_letters_outstanding", reason="customer_not_found"
                )
                == 1
            ),
            timeout_s=60,
        )

    assert problems(Exported.read(text)) == []
    assert sample(text, "elements_sync_dead_letters_total", reason="customer_not_found") == 1.0
    assert sample(text, "elements_sync_dead_letters_total", reason="not_json") == 1.0
    assert sample(text, "elements_sync_upstream_up", api="elements") == 1.0
    assert sample(text, "elements_sync_intake_paused", reason="state_unavailable") == 0.0
    topics = sandbox.topics
    assigned = {
        topic: sample(text, "elements_sync_assigned_partitions", topic=topic)
        for topic in (*topics.inputs, topics.backfill)
    }
    assert assigned == dict.fromkeys(assigned, float(sandbox.options.topic_partitions))
    committed = {
        (s.labels["topic"], s.labels["partition"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "elements_sync_committed_offset"
    }
    assert {topic for topic, _ in committed} == set(topics.inputs), "live partitions only"
    assert max(committed.values()) >= 1, "a partition committed past its first message"
    assert sample(text, "elements_sync_memory_records") == 2.0, "the synced customers' records"
    assert (
        sample(text, "elements_sync_forms_requests_total", route="/forms/submissions", code="401")
        == 0.0
    )
