"""Prometheus metrics of one runtime, in a registry of its own so runtimes can coexist in tests.

The process and platform collectors that prometheus_client puts in its global registry are
registered on this one, since the global registry is not served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from app import __version__
from app.clients.limiter import seconds_until_midnight_in_amsterdam
from app.errors import SyncError
from app.events import RejectReason

UPSTREAM_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30)
FORMS_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RATE_LIMITED = "429"
FORMS_WATCHED_CODES = ("401", "500", "503")


def _codes(error: type[SyncError]) -> Iterator[str]:
    yield error.code
    for subclass in error.__subclasses__():
        yield from _codes(subclass)


def dead_letter_reasons() -> list[str]:
    """Every reason a dead letter can carry: an error's code, or why the input was rejected."""
    return sorted({*_codes(SyncError), *get_args(RejectReason)})


def _up(api: str, down: Callable[[], Iterable[str]]) -> Callable[[], float]:
    return lambda: 0.0 if api in down() else 1.0


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.build = Info("elements_sync_build", "The running version.", registry=self.registry)
        self.build.info({"version": __version__})
        self.events = Counter(
            "elements_sync_events",
            "Input messages by type and outcome.",
            ["type", "status"],
            registry=self.registry,
        )
        self.processing = Histogram(
            "elements_sync_processing_seconds",
            "Time from taking an event to having its outcome, retries included.",
            ["type"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.upstream_requests = Counter(
            "elements_sync_upstream_requests",
            "Requests to ANVA, the portal and Elements by API and HTTP status "
            '("error" when no answer came: timeout, connection refused or reset).',
            ["api", "code"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "elements_sync_upstream_request_seconds",
            "Time from sending a request to an upstream API to its answer's headers.",
            ["api"],
            buckets=UPSTREAM_BUCKETS_S,
            registry=self.registry,
        )
        self.forms_requests = Counter(
            "elements_sync_forms_requests",
            "Requests to the forms ingress by route and HTTP status.",
            ["route", "code"],
            registry=self.registry,
        )
        self.forms_seconds = Histogram(
            "elements_sync_forms_request_seconds",
            "Time the forms ingress took to answer, by route.",
            ["route"],
            buckets=FORMS_BUCKETS_S,
            registry=self.registry,
        )
        self.portal_page_reads = Counter(
            "elements_sync_portal_page_reads",
            "Portal listing pages read, by purpose: lookup (for an event or the prefill) or "
            "refresh (the background index build).",
            ["purpose"],
            registry=self.registry,
        )
        self.limiter_wait = Histogram(
            "elements_sync_limiter_wait_seconds",
            "Time a request waited for the shared Elements limiter.",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.limiter_redis_errors = Counter(
            "elements_sync_limiter_redis_errors",
            "Calls to the limiter's Redis that got no answer, by operation; no Elements "
            "request is granted until Redis answers again.",
            ["operation"],
            registry=self.registry,
        )
        self.budget_remaining = Gauge(
            "elements_sync_daily_budget_remaining",
            "Elements requests left today (Europe/Amsterdam).",
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "elements_sync_consumer_lag",
            "Messages not yet consumed, by topic and partition.",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.backfill_lag = Gauge(
            "elements_sync_backfill_lag",
            "Backfill events not yet finished: behind the end of TOPIC_BACKFILL, fetched or not.",
            registry=self.registry,
        )
        self.finish_failures = Counter(
            "elements_sync_finish_failures",
            "Failed tries to publish a message's result or dead letter or commit its offset "
            "(each is retried; the message still gets its one result).",
            ["step"],
            registry=self.registry,
        )
        self.state_save_failures = Counter(
            "elements_sync_state_save_failures",
            "State records Kafka did not take after Elements acknowledged their writes "
            "(a restarted worker then reads Elements for those dossiers).",
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "elements_sync_dead_letters",
            "Inputs copied to the dead-letter topic (Kafka took them), by reason: the error "
            "code of their result. Each waits for a person and `python -m app redrive`.",
            ["reason"],
            registry=self.registry,
        )
        for reason in dead_letter_reasons():
            # At zero from the start: a rule's increase() then counts a reason's first one.
            self.dead_letters.labels(reason)
        self.dead_letters_outstanding = Gauge(
            "elements_sync_dead_letters_outstanding",
            "Dead letters on the dead-letter topic not yet handled (no redrive mark on the "
            "state topic, nor below their reason's older redrive group, which a dismissal "
            "moves), by reason; the whole topic's figure, the same on every pod, refreshed "
            "every DEAD_LETTERS_REFRESH_S. Absent until the worker first counted them.",
            ["reason"],
            registry=self.registry,
        )
        self.upstream_up = Gauge(
            "elements_sync_upstream_up",
            "0 while an upstream API is down (five unreachable answers in a row, until one "
            "that is not), else 1.",
            ["api"],
            registry=self.registry,
        )
        self.budget_limit = Gauge(
            "elements_sync_daily_budget_limit",
            "Elements requests allowed per day for the whole deployment (ELEMENTS_DAILY_LIMIT).",
            registry=self.registry,
        )
        self.budget_reset = Gauge(
            "elements_sync_daily_budget_reset_seconds",
            "Seconds until midnight in Europe/Amsterdam, when the day's budget starts again.",
            registry=self.registry,
        )
        self.budget_reset.set_function(
            lambda: seconds_until_midnight_in_amsterdam(datetime.now(UTC))
        )
        self.rate_limit = Gauge(
            "elements_sync_limiter_rate_per_second",
            "Elements requests per second allowed for the whole deployment (ELEMENTS_RATE_LIMIT).",
            registry=self.registry,
        )
        self.backfill_finished = Counter(
            "elements_sync_backfill_finished",
            "Backfill events finished (each with its result).",
            registry=self.registry,
        )
        self.intake_paused = Gauge(
            "elements_sync_intake_paused",
            "1 while the worker takes no new messages, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.handover_seconds = Histogram(
            "elements_sync_handover_seconds",
            "Time from partitions being taken away (reason: rebalance or shutdown) to letting them "
            "go: the events' requests in flight ended, what finished committed.",
            ["reason"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60),
            registry=self.registry,
        )
        self.handed_over = Counter(
            "elements_sync_events_handed_over",
            "Events stopped at a step boundary when their partition was taken away; the "
            "partition's next owner processes them.",
            registry=self.registry,
        )
        self.assigned_partitions = Gauge(
            "elements_sync_assigned_partitions",
            "Partitions of each input topic (the backfill topic's too) that the consumer group "
            "gave this pod; 0 for every one from the start, and while the pod is not in the group.",
            ["topic"],
            registry=self.registry,
        )
        self.committed_offset = Gauge(
            "elements_sync_committed_offset",
            "The offset this pod last committed for a live input partition it holds (every "
            "message below it has its result); -1 from the partition's assignment until its "
            "first commit here. The backfill topic's partitions are left out: they wait behind "
            "live events and for the day's reserve by design.",
            ["topic", "partition"],
            registry=self.registry,
        )
        self.memory_records = Gauge(
            "elements_sync_memory_records",
            "Dossier records the worker holds in memory (read from the state topic and kept "
            "since): what its memory grows with.",
            registry=self.registry,
        )
        self._outstanding_reasons: set[str] = set()
        self.oldest_in_flight = Gauge(
            "elements_sync_oldest_event_in_flight_seconds",
            "Seconds since the oldest event being processed was taken from Kafka (0 when none "
            "is); one that makes no progress is logged with what it waits for.",
            registry=self.registry,
        )

    def observe_upstream(self, api: str, code: str, seconds: float) -> None:
        self.upstream_requests.labels(api, code).inc()
        self.upstream_seconds.labels(api).observe(seconds)

    def observe_forms(self, route: str, code: str, seconds: float) -> None:
        self.forms_requests.labels(route, code).inc()
        self.forms_seconds.labels(route).observe(seconds)

    def track_forms(self, routes: Iterable[str]) -> None:
        """The answers the forms alerts watch, at 0 from the start per route, so a rule's
        increase() counts the first: 401 (a secret that does not match), 500 and 503."""
        for route in routes:
            for code in FORMS_WATCHED_CODES:
                self.forms_requests.labels(route, code)

    def track_budget(
        self, remaining: Callable[[], int], *, daily_limit: int, rate_per_s: float
    ) -> None:
        self.budget_remaining.set_function(lambda: float(remaining()))
        self.budget_limit.set(daily_limit)
        self.rate_limit.set(rate_per_s)

    def track_in_flight(self, oldest_age_s: Callable[[], float]) -> None:
        """The oldest event's age, read from `oldest_age_s` when scraped."""
        self.oldest_in_flight.set_function(oldest_age_s)

    def report_dead_letters(self, outstanding: Mapping[str, int]) -> None:
        """Each reason's count; every known reason, and every one seen before, at 0 when none."""
        self._outstanding_reasons |= {*dead_letter_reasons(), *outstanding}
        for reason in sorted(self._outstanding_reasons):
            self.dead_letters_outstanding.labels(reason).set(outstanding.get(reason, 0))

    def track_memory(self, records: Callable[[], int]) -> None:
        """The dossier records held, read from `records` when scraped."""
        self.memory_records.set_function(lambda: float(records()))

    def track_inputs(self, topics: Iterable[str]) -> None:
        """Every input topic's assigned partitions, at 0 until the group gives this pod some."""
        for topic in topics:
            self.assigned_partitions.labels(topic).set(0)

    def track_upstream(self, apis: Iterable[str], down: Callable[[], Iterable[str]]) -> None:
        """Each API's up gauge, read from `down` (the API names as the clients give them)
        when scraped; its 429 counter starts at zero, so a rule's increase() sees the first."""
        for api in apis:
            self.upstream_up.labels(api.lower()).set_function(_up(api, down))
            self.upstream_requests.labels(api.lower(), RATE_LIMITED)

    def render(self) -> bytes:
        return generate_latest(self.registry)
