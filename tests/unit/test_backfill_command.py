"""`python -m app backfill` as an operator meets it: its help and its report."""

from __future__ import annotations

import pytest

from app.__main__ import main
from app.commands.backfill import BackfillCount


def test_backfill_help_says_where_the_customers_come_from_and_where_they_go(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["backfill", "--help"])

    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "ANVA (/account/mine) and the portal (customers whose integration is anva)" in text
    assert "to TOPIC_BACKFILL, which the worker serves after the live topics" in text


def test_backfill_without_configuration_names_the_missing_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["backfill"]) == 2
    assert "ANVA_BASE_URL: Field required" in capsys.readouterr().err


def test_backfill_report_counts_each_source_and_the_overlap() -> None:
    count = BackfillCount(anva=1200, portal=1150, published=1290, topic="customer-backfill")

    assert count.lines() == [
        "published 1290 customer.changed events to customer-backfill",
        "  from ANVA    1200",
        "  from portal  1150 (1060 also in ANVA)",
    ]
