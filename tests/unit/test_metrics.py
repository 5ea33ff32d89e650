"""The metrics' names and labels: every upstream API by api and code, the forms ingress by
route and code, the build info, and the process and platform collectors; the series the
alert rules need (dead letters, upstream up, the day's budget and its reset) and the label
values exported at zero from the start, so a rule's increase() counts the first event."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, get_args

import httpx
import pytest
from aiokafka import ConsumerRecord
from aiokafka.structs import TopicPartition
from faststream.kafka import KafkaBroker
from opentelemetry.trace import NoOpTracer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app import __version__
from app.clients.limiter import AMSTERDAM, seconds_until_midnight_in_amsterdam
from app.clients.observed import ObservedTransport
from app.events import ResultData, ResultError, ResultEvent
from app.kafka.flow import FlowControl, PauseReason
from app.kafka.offsets import OffsetTracker
from app.kafka.publisher import OutcomePublisher
from app.metrics import Metrics, dead_letter_reasons
from app.service import Outcome
from app.settings import FormsSettings, RetrySettings, TopicSettings
from app.web.forms import forms_routes
from app.web.metered import RouteMetrics
from tests.unit.test_consumer_handover import P, Q, started
from tests.unit.test_consumer_handover import message as handover_message
from tests.unit.test_consumer_handover import settings as handover_settings
from tests.unit.test_forms_http import IDS, DictPrefill, RecordingPublisher


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def upstream_client(
    metrics: Metrics, api: str, answer: Callable[[httpx.Request], httpx.Response]
) -> httpx.AsyncClient:
    transport = ObservedTransport(httpx.MockTransport(answer), api, metrics, NoOpTracer())
    return httpx.AsyncClient(transport=transport, base_url="https://upstream.example")


def test_build_info_names_the_running_version() -> None:
    metrics = Metrics()

    assert sample(metrics, "elements_sync_build_info", version=__version__) == 1.0


def test_the_process_and_platform_collectors_are_on_the_runtimes_own_registry() -> None:
    metrics = Metrics()

    resident = sample(metrics, "process_resident_memory_bytes")
    assert resident is not None and resident > 0
    assert sample(metrics, "process_cpu_seconds_total") is not None
    assert b"python_info{" in metrics.render()


async def test_upstream_requests_are_counted_by_api_and_status_code_and_timed_by_api() -> None:
    metrics = Metrics()
    statuses = iter([200, 200, 503])
    async with upstream_client(
        metrics, "Elements", lambda request: httpx.Response(next(statuses))
    ) as elements:
        for _ in range(3):
            await elements.get("/api/data/klantdossiers")
    async with upstream_client(metrics, "ANVA", lambda request: httpx.Response(404)) as anva:
        await anva.get("/account/mine")

    requests = "elements_sync_upstream_requests_total"
    assert sample(metrics, requests, api="elements", code="200") == 2.0
    assert sample(metrics, requests, api="elements", code="503") == 1.0
    assert sample(metrics, requests, api="anva", code="404") == 1.0
    assert sample(metrics, "elements_sync_upstream_request_seconds_count", api="elements") == 3.0
    assert sample(metrics, "elements_sync_upstream_request_seconds_count", api="anva") == 1.0


async def test_an_upstream_request_without_an_answer_is_counted_with_code_error() -> None:
    metrics = Metrics()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with upstream_client(metrics, "portal", refuse) as portal:
        with pytest.raises(httpx.ConnectError):
            await portal.get("/customers")

    assert sample(metrics, "elements_sync_upstream_requests_total", api="portal", code="error") == 1
    assert sample(metrics, "elements_sync_upstream_request_seconds_count", api="portal") == 1


def forms_app(metrics: Metrics, *extra: Route) -> Starlette:
    forms = forms_routes(
        RecordingPublisher(),
        DictPrefill({}),
        FormsSettings(shared_secret=None, allow_anonymous=True),
    )
    return Starlette(
        routes=[*forms, *extra],
        middleware=[
            Middleware(
                RouteMetrics,
                routes=[route.path for route in forms if isinstance(route, Route)],
                observe=metrics.observe_forms,
            )
        ],
    )


async def test_forms_requests_are_counted_by_route_and_status_code_and_timed_by_route() -> None:
    metrics = Metrics()
    transport = httpx.ASGITransport(app=forms_app(metrics))

    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        await http.post("/forms/submissions", headers=IDS, json={"email": "a@example.nl"})
        await http.post("/forms/submissions", headers={}, json={})
        await http.delete("/forms/submissions", headers=IDS)
        await http.get("/forms/prefill", headers=IDS)

    requests = "elements_sync_forms_requests_total"
    assert sample(metrics, requests, route="/forms/submissions", code="202") == 1.0
    assert sample(metrics, requests, route="/forms/submissions", code="400") == 1.0
    assert sample(metrics, requests, route="/forms/submissions", code="405") == 1.0
    assert sample(metrics, requests, route="/forms/prefill", code="200") == 1.0
    seconds = "elements_sync_forms_request_seconds_count"
    assert sample(metrics, seconds, route="/forms/submissions") == 3.0
    assert sample(metrics, seconds, route="/forms/prefill") == 1.0


async def test_paths_outside_the_forms_routes_get_no_label_of_their_own() -> None:
    metrics = Metrics()
    transport = httpx.ASGITransport(app=forms_app(metrics))

    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/forms/anything-an-attacker-invents", headers=IDS)

    assert answer.status_code == 404
    assert b"anything-an-attacker-invents" not in metrics.render()
    assert (
        sample(metrics, "elements_sync_forms_request_seconds_count", route="/forms/prefill") is None
    )


async def test_a_forms_request_whose_handler_raised_is_counted_as_500() -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("bug")

    metrics = Metrics()
    app = Starlette(
        routes=[Route("/forms/broken", broken)],
        middleware=[
            Middleware(RouteMetrics, routes=["/forms/broken"], observe=metrics.observe_forms)
        ],
    )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/forms/broken")

    assert answer.status_code == 500
    assert (
        sample(metrics, "elements_sync_forms_requests_total", route="/forms/broken", code="500")
        == 1
    )


def test_every_dead_letter_reason_is_exported_at_zero_from_the_start() -> None:
    metrics = Metrics()
    reasons = dead_letter_reasons()

    assert {"customer_not_found", "internal_error", "upstream_unavailable", "not_json"} <= set(
        reasons
    )
    assert [sample(metrics, "elements_sync_dead_letters_total", reason=r) for r in reasons] == [
        0.0
    ] * len(reasons)


def outcome(status: str, code: str | None) -> Outcome:
    error = ResultError(code=code, message="why", retryable=False) if code else None
    data = ResultData(eventId="e1", eventType="customer.changed", status=status, error=error)  # type: ignore[arg-type]
    return Outcome(ResultEvent(data=data), dead_letter_reason=code, dead_letter_message=code)


async def test_a_dead_letter_is_counted_by_reason_once_kafka_took_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = Metrics()
    publisher = OutcomePublisher(
        KafkaBroker("127.0.0.1:1"), TopicSettings(), metrics, retry=RetrySettings()
    )
    sent: list[str] = []

    def taken_by(topic: str) -> Callable[..., Any]:
        async def publish(body: bytes, **options: Any) -> None:
            sent.append(topic)

        return publish

    monkeypatch.setattr(publisher._dead_letters, "publish", taken_by("dead letter"))
    monkeypatch.setattr(publisher._results, "publish", taken_by("result"))
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        "customer-events", 0, 7, 0, 0, b"100000", b"{}", None, 6, 2, ()
    )

    await publisher.deliver(record, outcome("failed", "customer_not_found"))
    await publisher.deliver(record, outcome("rejected", "not_json"))
    await publisher.deliver(record, outcome("succeeded", None))

    assert sent == ["dead letter", "result", "dead letter", "result", "result"]
    dead_letters = "elements_sync_dead_letters_total"
    assert sample(metrics, dead_letters, reason="customer_not_found") == 1.0
    assert sample(metrics, dead_letters, reason="not_json") == 1.0
    assert sample(metrics, dead_letters, reason="invalid_form_field") == 0.0


def test_an_upstream_api_is_up_until_it_is_down_and_its_429s_start_at_zero() -> None:
    metrics = Metrics()
    down: list[str] = []
    metrics.track_upstream(("ANVA", "portal", "Elements"), lambda: down)

    assert [
        sample(metrics, "elements_sync_upstream_up", api=a) for a in ("anva", "portal", "elements")
    ] == [1.0, 1.0, 1.0]
    down.append("Elements")
    assert sample(metrics, "elements_sync_upstream_up", api="elements") == 0.0
    assert sample(metrics, "elements_sync_upstream_up", api="anva") == 1.0
    assert [
        sample(metrics, "elements_sync_upstream_requests_total", api=a, code="429")
        for a in ("anva", "portal", "elements")
    ] == [0.0, 0.0, 0.0]


def test_the_days_budget_is_exported_with_its_limit_the_rate_limit_and_its_reset() -> None:
    metrics = Metrics()
    metrics.track_budget(lambda: 99_000, daily_limit=100_000, rate_per_s=5)

    assert sample(metrics, "elements_sync_daily_budget_remaining") == 99_000
    assert sample(metrics, "elements_sync_daily_budget_limit") == 100_000
    assert sample(metrics, "elements_sync_limiter_rate_per_second") == 5
    reset = sample(metrics, "elements_sync_daily_budget_reset_seconds")
    assert reset is not None and 0 < reset <= 25 * 3600


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        (datetime(2026, 11, 23, 23, 30, tzinfo=AMSTERDAM), 30 * 60),
        (datetime(2026, 11, 23, 22, 59, 59, tzinfo=UTC), 1),
        (datetime(2026, 7, 1, 21, 59, 59, tzinfo=UTC), 1),
        (datetime(2026, 7, 1, 22, 0, tzinfo=UTC), 24 * 3600),
        (datetime(2026, 3, 29, 0, 0, tzinfo=AMSTERDAM), 23 * 3600),
        (datetime(2026, 10, 25, 0, 0, tzinfo=AMSTERDAM), 25 * 3600),
        (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 22 * 3600),
    ],
    ids=[
        "winter",
        "winter-utc",
        "summer-utc",
        "summer-midnight",
        "23h-day",
        "25h-day",
        "after-fall-back",
    ],
)
def test_the_budget_resets_at_midnight_in_amsterdam_across_summer_time(
    now: datetime, seconds: int
) -> None:
    assert seconds_until_midnight_in_amsterdam(now) == seconds


class FakeConsumer:
    """What flow control asks of the consumer to observe lag."""

    def __init__(self, partitions: set[TopicPartition]) -> None:
        self.partitions = partitions

    def assignment(self) -> set[TopicPartition]:
        return set(self.partitions)

    def highwater(self, partition: TopicPartition) -> int:
        return 10

    async def position(self, partition: TopicPartition) -> int:
        return 4

    def pause(self, *partitions: TopicPartition) -> None:
        pass

    def resume(self, *partitions: TopicPartition) -> None:
        pass


def flow_control(metrics: Metrics, consumer: FakeConsumer) -> FlowControl:
    return FlowControl(
        metrics,
        OffsetTracker(),
        consumer=lambda: consumer,  # type: ignore[arg-type,return-value]
        backlog_full=lambda: False,
        external_reason=lambda: None,
        backfill_topic="customer-backfill",
        backfill_held=lambda: False,
    )


def test_every_pause_reason_is_exported_at_zero_before_any_pause() -> None:
    metrics = Metrics()
    flow_control(metrics, FakeConsumer(set()))

    assert "state_unavailable" in get_args(PauseReason)
    assert {
        reason: sample(metrics, "elements_sync_intake_paused", reason=reason)
        for reason in get_args(PauseReason)
    } == dict.fromkeys(get_args(PauseReason), 0.0)


async def test_lag_of_a_partition_another_replica_took_is_no_longer_exported() -> None:
    live, backfill = TopicPartition("customer-events", 0), TopicPartition("customer-backfill", 0)
    metrics = Metrics()
    consumer = FakeConsumer({live, backfill})
    control = flow_control(metrics, consumer)

    await control._observe_lag()
    assert (
        sample(metrics, "elements_sync_consumer_lag", topic="customer-events", partition="0") == 6
    )
    assert sample(metrics, "elements_sync_backfill_lag") == 6

    consumer.partitions = {live}
    await control._observe_lag()

    assert (
        sample(metrics, "elements_sync_consumer_lag", topic="customer-events", partition="0") == 6
    )
    assert (
        sample(metrics, "elements_sync_consumer_lag", topic="customer-backfill", partition="0")
        is None
    )
    assert sample(metrics, "elements_sync_backfill_lag") == 0


def test_every_finish_step_is_exported_at_zero_once_the_publisher_is_built() -> None:
    metrics = Metrics()
    OutcomePublisher(KafkaBroker("127.0.0.1:1"), TopicSettings(), metrics, retry=RetrySettings())

    assert [
        sample(metrics, "elements_sync_finish_failures_total", step=step)
        for step in ("result", "dead_letter", "commit")
    ] == [0.0, 0.0, 0.0]


async def test_assigned_partitions_per_topic_and_live_committed_offsets_follow_the_group() -> None:
    running = await started(handover_settings())
    metrics = running.consumer._metrics
    backfill = TopicPartition(TopicSettings().backfill, 0)

    def assigned(topic: str) -> float | None:
        return sample(metrics, "elements_sync_assigned_partitions", topic=topic)

    def committed(partition: TopicPartition) -> float | None:
        return sample(
            metrics,
            "elements_sync_committed_offset",
            topic=partition.topic,
            partition=str(partition.partition),
        )

    at_assignment = (assigned(P.topic), committed(P), committed(Q))
    await running.take(handover_message(P, 0), handover_message(P, 1))
    await running.until_delivered(2)
    after_commits = (committed(P), committed(Q))
    await running.consumer.partitions_assigned({backfill})
    with_backfill = (assigned(backfill.topic), committed(backfill))
    await running.consumer.partitions_revoked({P})
    after_revoke = (assigned(P.topic), committed(P), committed(Q))
    await running.consumer.drain()

    assert at_assignment == (2.0, -1.0, -1.0)
    assert after_commits == (2.0, -1.0)
    assert with_backfill == (1.0, None), "the backfill waits by design: no offset to watch"
    assert after_revoke == (1.0, None, -1.0)
    assert assigned(P.topic) == assigned(backfill.topic) == 0.0, "none held after the drain"
    assert assigned(TopicSettings().contract_events) == 0.0
