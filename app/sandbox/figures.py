"""Figures about the Elements traffic a run caused, read from the simulator's request log."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.events import ResultEvent
from app.sandbox.simulators.elements import ElementsSimulator


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


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Rows under a header, as a Markdown table: pasted into docs/benchmarks.md as printed."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def duplicate_entities(dossiers: list[dict[str, Any]]) -> list[str]:
    """Every entity Elements holds more than once: dossiers per relatienummer, klanten per
    dossier, and per klant addresses, e-mail addresses and phone numbers with equal values,
    contracts per contractnummer, and per contract registraties with equal subjects (the
    worker's subject carries the fingerprint of the change it records)."""
    found: list[str] = []

    def report(kind: str, counts: Counter[Any]) -> None:
        found.extend(f"{kind} {key!r} x{n}" for key, n in counts.items() if n > 1)

    report("dossier", Counter(d["relatienummer"] for d in dossiers))
    contracts: Counter[Any] = Counter()
    for dossier in dossiers:
        klanten = dossier["klanten"]["particulier"] + dossier["klanten"]["zakelijk"]
        report(f"klanten of dossier {dossier['id']}", Counter(["klant"] * len(klanten)))
        for klant in klanten:
            where = f"klant {klant['id']}"
            report(
                f"adres of {where}",
                Counter(
                    (a["straat"], a["nummer"], a["toevoeging"], a["postcode"], a["plaatsnaam"])
                    for a in klant["adressen"]
                ),
            )
            report(
                f"email of {where}", Counter(e["naam"].casefold() for e in klant["emailadressen"])
            )
            report(f"phone of {where}", Counter(p["naam"] for p in klant["telefoonnummers"]))
        contracts.update(c["contractnummer"] for c in dossier["contracten"])
        for contract in dossier["contracten"]:
            report(
                f"registratie of contract {contract['id']}",
                Counter(r["onderwerp"] for r in contract["registraties"]),
            )
    report("contract", contracts)
    return found


def report_backlog(
    title: str,
    *,
    results: list[ResultEvent],
    figures: TrafficFigures,
    rate: int,
    rows: list[tuple[str, str]],
    figures_json: dict[str, Any],
) -> int:
    """Print a backlog benchmark's table and JSON line; exit 0 when every customer synced
    with no 429 and never more than `rate` requests in a rolling second."""
    customers = len(results)
    succeeded = sum(r.data.status == "succeeded" for r in results)
    print(title)
    print(
        table(
            [
                ("customers synced", f"{succeeded}/{customers}"),
                ("Elements requests", str(figures.requests)),
                ("requests per customer", f"{figures.requests / customers:.2f}"),
                ("429 answers", str(figures.too_many_requests)),
                ("most requests in any rolling second", str(figures.max_in_rolling_second)),
                ("busy period", f"{figures.busy_s:.1f} s"),
                ("utilisation", f"{figures.utilisation:.3f}"),
                *rows,
            ]
        )
    )
    summary = {
        "customers": customers,
        "succeeded": succeeded,
        "requests": figures.requests,
        "requests_per_customer": round(figures.requests / customers, 3),
        "http_429": figures.too_many_requests,
        "max_in_rolling_second": figures.max_in_rolling_second,
        "utilisation": round(figures.utilisation, 3),
    }
    print(json.dumps({**summary, **figures_json}))
    ok = (
        succeeded == customers
        and figures.too_many_requests == 0
        and figures.max_in_rolling_second <= rate
    )
    return 0 if ok else 1
