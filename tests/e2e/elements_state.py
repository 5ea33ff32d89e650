"""Counting what Elements holds twice: the duplicate check of the fault tests and the soak."""

from __future__ import annotations

from collections import Counter
from typing import Any


def duplicate_entities(dossiers: list[dict[str, Any]]) -> list[str]:
    """Every entity Elements holds more than once: dossiers per relatienummer, klanten per
    dossier, and per klant addresses, e-mail addresses and phone numbers with equal values,
    contracts per contractnummer."""
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
    report("contract", contracts)
    return found
