"""What the benchmarks and the soak count as written twice (pure)."""

from __future__ import annotations

from typing import Any

from app.sandbox.figures import duplicate_entities


def dossier(*registraties: str) -> dict[str, Any]:
    return {
        "id": 1,
        "relatienummer": "100000",
        "klanten": {"particulier": [], "zakelijk": []},
        "contracten": [
            {
                "id": 7,
                "contractnummer": "K1",
                "registraties": [{"onderwerp": subject} for subject in registraties],
            }
        ],
    }


def test_a_registratie_recorded_twice_for_one_change_is_a_duplicate() -> None:
    twice = dossier("elements-sync K1 fp:aaa", "elements-sync K1 fp:aaa")

    assert duplicate_entities([twice]) == ["registratie of contract 7 'elements-sync K1 fp:aaa' x2"]


def test_registraties_of_two_changes_are_no_duplicate() -> None:
    assert duplicate_entities([dossier("elements-sync K1 fp:aaa", "elements-sync K1 fp:bbb")]) == []
