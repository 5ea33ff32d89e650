"""`python -m app dead-letters`: the letters waiting for a person, through the real broker."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from app.commands.dead_letters import HEADER, mark_key, mark_value
from app.sandbox.simulators.seed import sample_customer, seed_customer
from app.sandbox.worker_process import worker_environment
from app.sandbox.world import Sandbox
from tests.e2e.helpers import Ran, run_app, sync

pytestmark = pytest.mark.e2e


async def two_letters(sandbox: Sandbox) -> str:
    """A customer_not_found letter (its key returned) and a not_json one keyed `garbage`."""
    unknown = sample_customer(0).dossier_number
    await sandbox.start_worker()
    await sync(sandbox, unknown)
    await sandbox.publish_raw(sandbox.topics.customer_events, "garbage", b"not json")
    await sandbox.read(sandbox.topics.dead_letter, 2)
    return unknown


async def app(sandbox: Sandbox, *args: str) -> Ran:
    ran = await run_app(worker_environment(sandbox.settings()), *args)
    assert (ran.code, ran.err) == (0, ""), ran.err
    return ran


async def test_dead_letters_lists_each_letter_with_its_type_key_and_reason_until_redriven(
    sandbox: Sandbox,
) -> None:
    unknown = await two_letters(sandbox)

    header, *letters, count = (await app(sandbox, "dead-letters")).out.splitlines()

    assert header == HEADER
    assert sorted(line.split()[2:] for line in letters) == sorted(
        [["customer.changed", unknown, "customer_not_found"], ["-", "garbage", "not_json"]]
    )
    assert count == "dead letters: 2"

    seed_customer(sandbox.anva, sandbox.portal, 0)
    await app(sandbox, "redrive", "--reason", "customer_not_found")

    _, *letters, count = (await app(sandbox, "dead-letters")).out.splitlines()
    assert [line.split()[2:] for line in letters] == [["-", "garbage", "not_json"]]
    assert count == "dead letters: 1"


async def test_dead_letters_json_gives_one_object_per_line_and_reason_filters(
    sandbox: Sandbox,
) -> None:
    unknown = await two_letters(sandbox)

    ran = await app(sandbox, "dead-letters", "--json", "--reason", "customer_not_found")

    letter, count = [json.loads(line) for line in ran.out.splitlines()]
    assert count == {"count": 1}
    assert letter["time"].endswith("Z")
    assert letter["at"].startswith(f"{sandbox.topics.dead_letter}/")
    assert {k: v for k, v in letter.items() if k not in {"time", "eventId", "at"}} == {
        "key": unknown,
        "eventType": "customer.changed",
        "reason": "customer_not_found",
        "message": letter["message"],
        "originalTopic": sandbox.topics.customer_events,
        "redrivable": True,
    }
    assert letter["eventId"] and letter["message"]


async def test_a_mark_left_from_another_letter_at_the_same_offset_hides_nothing(
    sandbox: Sandbox,
) -> None:
    """A dead-letter topic deleted and made again starts its offsets over: a mark written for
    the old topic's letter at an offset must not hide the new letter there."""
    unknown = sample_customer(0).dossier_number
    await sandbox.start_worker()
    await sync(sandbox, unknown)
    (letter,) = await sandbox.read(sandbox.topics.dead_letter, 1)
    key = mark_key(letter.topic, letter.partition, letter.offset)

    async def mark_for(stamp: int) -> str:
        """Mark the offset redriven for a letter of timestamp `stamp`; how many are listed."""
        value = mark_value(stamp, redriven_at=datetime.now(UTC), to="elsewhere/0/0")
        await sandbox.publish_raw(sandbox.topics.state, key, value)
        return (await app(sandbox, "dead-letters")).out.splitlines()[-1]

    assert await mark_for(letter.timestamp - 60_000) == "dead letters: 1"
    assert await mark_for(letter.timestamp) == "dead letters: 0"
