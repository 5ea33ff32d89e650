"""Which dead letters count as not yet handled: the redrive bookkeeping's rule (a letter below
the unfiltered redrive group's offset or its reason's group's is handled), and how the counts
become the gauge the alert ElementsSyncDeadLetters reads."""

from __future__ import annotations

from collections import Counter

from app.kafka.dead_letters import Letter, outstanding
from app.metrics import Metrics, dead_letter_reasons


def test_a_letter_is_outstanding_until_the_unfiltered_group_or_its_reasons_group_passed_it() -> (
    None
):
    letters = [
        Letter(0, 3, "customer_not_found"),  # below the unfiltered group's 5: redriven
        Letter(0, 5, "customer_not_found"),  # below its reason's group's 7: redriven
        Letter(0, 7, "customer_not_found"),
        Letter(0, 6, "not_json"),  # customer_not_found's group passing it says nothing of it
        Letter(1, 0, "not_json"),  # partition 1: no group has committed there
    ]

    counts = outstanding(letters, {0: 5}, {"customer_not_found": {0: 7}})

    assert counts == Counter({"customer_not_found": 1, "not_json": 2})


def test_nothing_is_outstanding_once_a_dismissal_moved_the_reasons_group_to_the_end() -> None:
    letters = [Letter(0, offset, "not_json") for offset in range(4)]

    assert outstanding(letters, {}, {"not_json": {0: 4}}) == Counter()


def test_the_gauge_reports_every_known_reason_and_drops_a_handled_one_to_zero() -> None:
    metrics = Metrics()

    def gauge(reason: str) -> float | None:
        return metrics.registry.get_sample_value(
            "elements_sync_dead_letters_outstanding", {"reason": reason}
        )

    before = gauge("not_json")
    metrics.report_dead_letters(Counter({"not_json": 2, "someone_elses": 1}))
    reported = (gauge("not_json"), gauge("someone_elses"), gauge("customer_not_found"))
    metrics.report_dead_letters(Counter())

    assert before is None, "absent until the worker first counted them"
    assert reported == (2.0, 1.0, 0.0)
    assert {r: gauge(r) for r in [*dead_letter_reasons(), "someone_elses"]} == dict.fromkeys(
        [*dead_letter_reasons(), "someone_elses"], 0.0
    )
