"""The backfill's share of the consumer: its events in flight, bounded, and those finished.

At most `BACKFILL_MAX_IN_FLIGHT` backfill events are taken at once, and none while the
limiter keeps the day's reserve for live events (`ElementsLimiter.backfill_paused`): flow
control holds the backfill partitions meanwhile (`app.kafka.flow`), so live events never
queue behind them. Every finished one is counted, and every `BACKFILL_PROGRESS_EVERY`th logged.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from app.metrics import Metrics
from app.settings import BackfillSettings

log = structlog.get_logger(__name__)


class BackfillIntake:
    """Backfill events in flight and finished; `held` says whether to take more."""

    def __init__(
        self, settings: BackfillSettings, metrics: Metrics, *, paused: Callable[[], bool]
    ) -> None:
        """`paused` is the limiter's word that the backfill waits (its reserve reached)."""
        self._max_in_flight = settings.max_in_flight
        self._progress_every = settings.progress_every
        self._metrics = metrics
        self._paused = paused
        self._in_flight = 0
        self._finished = 0

    @property
    def held(self) -> bool:
        """Take no more backfill events for now."""
        return self._in_flight >= self._max_in_flight or self._paused()

    def started(self) -> None:
        self._in_flight += 1

    def ended(self, *, finished: bool) -> None:
        """Once per backfill event, whether it finished, stopped or never ran."""
        self._in_flight -= 1
        if finished:
            self._finished += 1
            self._metrics.backfill_finished.inc()
            if self._finished % self._progress_every == 0:
                log.info("backfill progress", finished=self._finished)
