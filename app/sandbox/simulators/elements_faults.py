"""Fault injection for the Elements simulator.

Faults let tests prove the client survives a flaky Elements: refused requests,
writes whose response is lost after they were applied, and slow answers.
Counted faults (``*_next``) are deterministic and win over the seeded random ones.
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass, field

INJECTED_FAULT_BODY = {"error": "Injected fault"}


@dataclass
class _Counted:
    """A fault that fires for the next ``remaining`` eligible requests."""

    remaining: int = 0
    value: float = 0.0

    def take(self) -> float | None:
        if self.remaining <= 0:
            return None
        self.remaining -= 1
        return self.value


@dataclass
class Faults:
    """Mutable fault plan, consulted once per ``/api/data`` request."""

    _fail: _Counted = field(default_factory=_Counted)
    _apply_then_fail: _Counted = field(default_factory=_Counted)
    _delay: _Counted = field(default_factory=_Counted)
    _refuse: _Counted = field(default_factory=_Counted)
    _refusal: tuple[str, str] = ("", "")
    _refused_collection: str | None = None
    _error_rate: float = 0.0
    _apply_then_502_rate: float = 0.0
    _slow_rate: float = 0.0
    _slow_s: float = 0.0
    _rng: _random.Random = field(default_factory=lambda: _random.Random(0))

    def fail_next(self, n: int, status: int = 503) -> None:
        """The next ``n`` data requests answer ``status`` without being applied."""
        self._fail = _Counted(n, status)

    def apply_then_fail_next(self, n: int, status: int = 502) -> None:
        """The next ``n`` writes are applied, then answered ``status`` (a lost response)."""
        self._apply_then_fail = _Counted(n, status)

    def refuse_next(
        self, n: int, *, path: str, message: str, collection: str | None = None
    ) -> None:
        """The next ``n`` writes (to URLs ending in ``collection``, when given) answer the
        spec's 400 "Validatie fouten" with this item.

        Stands for a rule of the tenant's own Elements that no schema shows (a required
        kenmerk, a closed kantoor), which the worker can only learn from the answer.
        """
        self._refuse = _Counted(n)
        self._refusal = (path, message)
        self._refused_collection = collection

    def take_refusal(self, url_path: str) -> tuple[str, str] | None:
        """The validation error to refuse the current write with, if one is due."""
        collection = self._refused_collection
        if collection is not None and not url_path.rstrip("/").endswith(collection):
            return None
        return self._refusal if self._refuse.take() is not None else None

    def delay_next(self, n: int, seconds: float) -> None:
        """The next ``n`` data requests wait ``seconds`` before being handled."""
        self._delay = _Counted(n, seconds)

    def random(
        self,
        error_rate: float = 0.0,
        apply_then_502_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_s: float = 0.0,
        seed: int = 0,
    ) -> None:
        """Probabilistic faults from a seeded generator, so runs are reproducible."""
        self._error_rate = error_rate
        self._apply_then_502_rate = apply_then_502_rate
        self._slow_rate = slow_rate
        self._slow_s = slow_s
        self._rng = _random.Random(seed)

    def clear(self) -> None:
        """Back to a healthy Elements."""
        self.fail_next(0)
        self.apply_then_fail_next(0)
        self.delay_next(0, 0.0)
        self.refuse_next(0, path="", message="")
        self.random()

    def take_delay(self) -> float:
        """Seconds to stall the current data request (0.0 for none)."""
        counted = self._delay.take()
        if counted is not None:
            return counted
        if self._slow_rate and self._rng.random() < self._slow_rate:
            return self._slow_s
        return 0.0

    def take_failure(self) -> int | None:
        """Status to refuse the current data request with, if it must fail unapplied."""
        counted = self._fail.take()
        if counted is not None:
            return int(counted)
        if self._error_rate and self._rng.random() < self._error_rate:
            return 503
        return None

    def take_lost_response(self) -> int | None:
        """Status replacing the response of the current (already applied) write."""
        counted = self._apply_then_fail.take()
        if counted is not None:
            return int(counted)
        if self._apply_then_502_rate and self._rng.random() < self._apply_then_502_rate:
            return 502
        return None
