"""Which Elements reads each kind of work needs (issue "fewest requests"): the planning
decisions, on the core without Kafka. `python -m app bench-costs` prints the same counts."""

from __future__ import annotations

from app.pipeline.contract import sync_contract
from app.pipeline.customer import sync_customer
from app.sandbox.core import Core, running_core
from app.sandbox.costs_bench import WallClock, changed, contract_changed
from app.sandbox.simulators.elements import RecordedRequest
from app.state.memory import DossierMemory


def shapes(requests: list[RecordedRequest]) -> list[tuple[str, str]]:
    """(method, last path segment, with ids as "{id}") of each request."""
    return [
        (r.method, "{id}" if (last := r.path.rstrip("/").rsplit("/", 1)[-1]).isdigit() else last)
        for r in requests
    ]


def contract_searches(requests: list[RecordedRequest]) -> list[RecordedRequest]:
    return [r for r in requests if r.method == "GET" and "contractnummer=" in r.query]


async def test_a_stale_record_reads_the_dossier_and_its_klants_lists_but_lists_no_klanten() -> None:
    clock = WallClock()
    async with running_core(memory=DossierMemory(max_age_s=3600, clock=clock)) as core:
        customer = core.seed(0)
        await sync_customer(core.context, changed(customer.dossier_number))
        clock.now += 3601
        seen = len(core.data_requests())

        synced = await sync_customer(core.context, changed(customer.dossier_number))

        assert synced.writes == ()
        assert shapes(core.data_requests()[seen:]) == [
            ("GET", "klantdossiers"),
            ("GET", "emailadressen"),
            ("GET", "telefoonnummers"),
        ]


async def test_a_stale_records_klant_removed_by_hand_is_found_by_listing_klanten() -> None:
    clock = WallClock()
    async with running_core(memory=DossierMemory(max_age_s=3600, clock=clock)) as core:
        customer = core.seed(0)
        await sync_customer(core.context, changed(customer.dossier_number))
        dossier = core.dossier(customer.dossier_number)
        (klant,) = dossier["klanten"]["particulier"]
        core.elements.remove_klant(dossier["id"], klant["id"])
        clock.now += 3601

        outcome = await core.handle("customer.changed", {"dossierNumber": customer.dossier_number})

        assert outcome.result.data.status == "succeeded"
        (recreated,) = core.dossier(customer.dossier_number)["klanten"]["particulier"]
        assert recreated["id"] != klant["id"]


async def test_a_new_contract_of_a_customer_with_a_trusted_record_needs_no_contract_search(
    core: Core,
) -> None:
    customer = core.seed(0)
    await sync_customer(core.context, changed(customer.dossier_number))
    seen = len(core.data_requests())

    synced = await sync_contract(core.context, contract_changed(core, customer.dossier_number))

    assert contract_searches(core.data_requests()[seen:]) == []
    assert shapes(core.data_requests()[seen:]) == [
        ("GET", "{id}"),
        ("POST", "contracten"),
        ("POST", "registraties"),
    ]
    assert len(synced.writes) == 2


async def test_a_contract_before_its_customer_searches_no_contract_in_the_dossier_it_creates(
    core: Core,
) -> None:
    customer = core.seed(0)

    synced = await sync_contract(core.context, contract_changed(core, customer.dossier_number))

    assert contract_searches(core.data_requests()) == []
    assert len(core.data_requests()) == 9
    assert [w.path.rsplit("/", 1)[-1] for w in synced.writes][-2:] == ["contracten", "registraties"]


async def test_without_a_trusted_record_a_found_dossier_is_searched_for_the_contract(
    core: Core,
) -> None:
    customer = core.seed(0)
    first = contract_changed(core, customer.dossier_number)
    await sync_contract(core.context, first)
    core.context.memory = DossierMemory(max_age_s=86_400)  # a worker without the record
    seen = len(core.data_requests())

    again = await sync_contract(core.context, first)

    assert again.writes == ()
    assert len(contract_searches(core.data_requests()[seen:])) == 1
    assert len(core.dossier(customer.dossier_number)["contracten"]) == 1
