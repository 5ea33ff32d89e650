"""What the worker remembers never outranks Elements (docs/reference/events.md, "Identity is
checked, never assumed", TOPIC_STATE): end to end through the embedded broker and the simulators."""

from __future__ import annotations

import pytest

from app.kafka.state import dossier_key
from app.sandbox.world import Sandbox
from tests.e2e.helpers import (
    eventually,
    only_dossier,
    standaard_adres,
    sync,
    synced_customer,
)

pytestmark = pytest.mark.e2e


async def test_a_tombstone_on_the_state_topic_makes_the_running_worker_read_elements(
    sandbox: Sandbox,
) -> None:
    customer = await synced_customer(sandbox)
    dossier = only_dossier(sandbox, customer.dossier_number)
    sandbox.elements.unset_correspondentieadres(dossier["id"])  # a hand edit to heal

    await sandbox.publish_raw(sandbox.topics.state, dossier_key(customer.dossier_number), None)
    assert sandbox.runtime is not None
    memory = sandbox.runtime.pipeline.memory
    await eventually(lambda: memory.get(customer.dossier_number) is None)
    await sync(sandbox, customer.dossier_number)
    _, result = await sandbox.results(2)

    assert result.data.status == "succeeded"
    assert [op.method for op in result.data.operations] == ["PATCH"]
    assert standaard_adres(sandbox, customer.dossier_number) == ("Hoofdstraat", "12", "Amsterdam")


async def test_an_unreadable_record_at_start_counts_as_none(sandbox: Sandbox) -> None:
    customer = await synced_customer(sandbox)
    await sandbox.stop_worker()
    await sandbox.publish_raw(
        sandbox.topics.state, dossier_key(customer.dossier_number), b'{"dossier_number": ["x"'
    )
    dossier = only_dossier(sandbox, customer.dossier_number)
    sandbox.elements.unset_correspondentieadres(dossier["id"])

    await sandbox.start_worker()
    await sync(sandbox, customer.dossier_number)
    _, result = await sandbox.results(2)

    assert result.data.status == "succeeded"
    assert [op.method for op in result.data.operations] == ["PATCH"]
    assert len(sandbox.elements.dossiers()) == 1
