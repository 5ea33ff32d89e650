"""Which dead letters count as not yet handled: the bookkeeping of `dead-letters` and `redrive`
(a mark on the state topic for the letter, with its timestamp; or an offset below its reason's
redrive group of before the marks), and how the counts become the gauge the alert
ElementsSyncDeadLetters reads."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from app.commands.dead_letters import mark_key, mark_value
from app.kafka.dead_letters import Letter, RedriveMarks, outstanding
from app.metrics import Metrics, dead_letter_reasons

TOPIC = "sync-dead-letter"
REDRIVEN_AT = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def marked(*letters: Letter) -> RedriveMarks:
    marks = RedriveMarks(TOPIC)
    for letter in letters:
        marks.read(
            mark_key(TOPIC, letter.partition, letter.offset),
            mark_value(letter.timestamp, redriven_at=REDRIVEN_AT, to="customer-events"),
        )
    return marks


def test_a_letter_is_outstanding_until_marked_or_below_its_reasons_older_group() -> None:
    redriven = Letter(0, 3, 1_003, "customer_not_found")
    letters = [
        redriven,
        Letter(0, 5, 1_005, "customer_not_found"),  # below its reason's older group's 6
        Letter(0, 7, 1_007, "customer_not_found"),
        Letter(0, 4, 1_004, "not_json"),  # customer_not_found's group passing it says nothing
        Letter(1, 0, 2_000, "not_json"),
    ]

    counts = outstanding(letters, marked(redriven).marks, {"customer_not_found": {0: 6}})

    assert counts == Counter({"customer_not_found": 1, "not_json": 2})


def test_a_mark_counts_only_for_its_own_letter_and_a_tombstone_takes_it_away() -> None:
    old = Letter(0, 0, 1_000, "not_json")
    again = Letter(0, 0, 9_000, "not_json")  # the topic made again: its offsets start over
    marks = marked(old)
    before = outstanding([old], marks.marks, {})
    marks.read(mark_key(TOPIC, 0, 0), None)
    marks.read("dossier/100234", b"{}")  # not a mark: passed over

    assert before == Counter()
    assert outstanding([again], marked(old).marks, {}) == Counter({"not_json": 1})
    assert outstanding([old], marks.marks, {}) == Counter({"not_json": 1})


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
