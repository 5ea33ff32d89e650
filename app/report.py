"""Figures about the Elements traffic a run caused, read from the simulator's request log."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from app.events import ResultEvent
from app.simulators.elements import ElementsSimulator


@dataclass(frozen=True)
class TrafficFigures:
    requests: int
    too_many_requests: int
    max_in_rolling_second: int
    busy_s: float
    rate_limit: int

    @property
    def utilisation(self) -> float:
        """Requests per second over the busy period, as a share of the limit."""
        if self.requests < 2 or self.busy_s <= 0:
            return 0.0
        return (self.requests - 1) / self.busy_s / self.rate_limit


def traffic_figures(sim: ElementsSimulator, rate_limit: int) -> TrafficFigures:
    times = [r.at for r in sim.requests]
    return TrafficFigures(
        requests=len(times),
        too_many_requests=sim.count_status(429),
        max_in_rolling_second=sim.max_in_rolling_window(1.0),
        busy_s=(max(times) - min(times)) if times else 0.0,
        rate_limit=rate_limit,
    )


def outcome_counts(results: list[ResultEvent]) -> Counter[tuple[str, str]]:
    return Counter((r.data.eventType or "unknown", r.data.status) for r in results)


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {value}" for label, value in rows)
