"""contract.changed's entry point on the core without Kafka: what Elements receives and holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from app.clients.limiter import today_in_amsterdam
from app.errors import OwnershipLost, UpstreamRejected, UpstreamUnavailable
from app.events import ContractChanged, CustomerChanged
from app.pipeline.contract import sync_contract
from app.pipeline.customer import sync_customer
from app.sandbox.core import Core
from app.sandbox.simulators.recording import RecordedRequest
from app.service import Outcome
from app.state.memory import DossierMemory, Fence

CONTRACT_ID = "35255618453762"
BUSINESS = 2  # the seed's first business: ANVA knows no person for it


@dataclass
class StateTopic:
    """What the worker keeps on the state topic, to start a memory from as a restarted
    worker, or another replica, does."""

    values: dict[str, bytes] = field(default_factory=dict)

    async def save_record(self, dossier_number: str, value: bytes) -> None:
        self.values[f"dossier/{dossier_number}"] = value

    async def save_medewerker(self, dossier_number: str, value: bytes) -> None:
        self.values[f"medewerker/{dossier_number}"] = value

    def memory(self, fence: Fence | None = None) -> DossierMemory:
        memory = DossierMemory(
            max_age_s=86_400,
            save=self.save_record,
            save_medewerker=self.save_medewerker,
            **({"fence": fence} if fence else {}),
        )
        for key, value in self.values.items():
            kind, number = key.split("/")
            if kind == "dossier":
                memory.load([(number, value)])
            else:
                memory.followed_medewerker(number, value)
        return memory


def lost_once(lost: Callable[[], bool]) -> Fence:
    """A lease that confirms record writes until `lost()` holds, and none from then on."""

    async def fence(dossier_number: str, revision: int) -> int:
        if lost():
            raise OwnershipLost(f"the lease on dossier {dossier_number} was lost")
        return revision

    return fence


def last_parts(paths: list[str]) -> list[str]:
    return [path.rsplit("/", 1)[-1] for path in paths]


async def handle(core: Core, event: ContractChanged) -> Outcome:
    """The contract event through the outcome ladder, as the consumer hands it over."""
    return await core.handle("contract.changed", event.model_dump())


def contract_posts(core: Core) -> list[RecordedRequest]:
    """Every contract POST Elements received, whatever it answered."""
    return [r for r in core.writes() if r.method == "POST" and r.path.endswith("/contracten")]


async def test_a_contract_before_its_customer_creates_the_dossier_then_the_contract_and_registratie(
    core: Core,
) -> None:
    customer = core.seed(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)

    synced = await sync_contract(core.context, event)

    dossier = core.dossier(customer.dossier_number)
    (klant,) = dossier["klanten"]["particulier"]
    (contract,) = dossier["contracten"]
    (registratie,) = contract["registraties"]
    assert synced.dossier_id == dossier["id"]
    assert contract["contractnummer"] == CONTRACT_ID
    assert contract["omschrijving"] == f"Aansprakelijkheid particulier [ANVA {CONTRACT_ID}]"
    assert contract["aanvragersParticulier"] == [{"id": klant["id"]}]
    assert contract["eersteAanvrager"] == {"id": klant["id"]}
    assert (
        contract["correspondentieadres"]["id"]
        == dossier["_embedded"]["standaardcorrespondentieadres"]["id"]
    )
    assert contract["status"]["id"] == 2
    assert registratie["omschrijving"].startswith(f"Contract {CONTRACT_ID} overgenomen uit ANVA")
    assert synced.writes[0].path == "/api/data/klantdossiers"
    assert last_parts([w.path for w in synced.writes]) == [
        "klantdossiers",
        "particulier",
        "adressen",
        str(dossier["id"]),
        "emailadressen",
        "telefoonnummers",
        "contracten",
        "registraties",
    ]
    assert synced.writes[-2].resourceId == contract["id"]


async def test_contract_dates_anva_gives_are_sent_as_final_and_the_others_as_today_not_final(
    core: Core,
) -> None:
    customer = core.seed(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)  # a startDate, no contract date
    before = today_in_amsterdam().isoformat()

    await sync_contract(core.context, event)

    after = today_in_amsterdam().isoformat()
    (contract,) = core.dossier(customer.dossier_number)["contracten"]
    assert contract["contractDatum"] in {before, after}
    assert (
        contract["contractDatumDefinitief"],
        contract["startdatum"],
        contract["startdatumDefinitief"],
    ) == (False, "2026-01-01", True)


async def test_a_changed_contract_synced_again_adds_a_gewijzigd_registratie_and_nothing_else(
    core: Core,
) -> None:
    customer = core.seed(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)
    await sync_contract(core.context, event)
    core.anva.update_contract(CONTRACT_ID, status="Beeindigd")
    seen = len(core.writes())

    synced = await sync_contract(core.context, event)

    (contract,) = core.dossier(customer.dossier_number)["contracten"]
    assert [r["omschrijving"] for r in contract["registraties"]][1:] == [
        f"Contract {CONTRACT_ID} gewijzigd in ANVA: status: Lopend → Beeindigd"
    ]
    assert [(r.method, r.path) for r in core.writes()[seen:]] == [
        (w.method, w.path) for w in synced.writes
    ]
    assert last_parts([w.path for w in synced.writes]) == ["registraties"]


async def test_the_same_contract_event_three_times_leaves_one_contract_and_writes_once(
    core: Core,
) -> None:
    customer = await core.synced_customer(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)

    first = await handle(core, event)
    seen = len(core.data_requests())
    again = [await handle(core, event) for _ in range(2)]

    results = [o.result.data for o in (first, *again)]
    assert [r.status for r in results] == ["succeeded"] * 3
    assert [last_parts([o.path for o in r.operations]) for r in results] == [
        ["contracten", "registraties"],
        [],
        [],
    ]
    assert {r.dossierId for r in results} == {core.dossier(customer.dossier_number)["id"]}
    assert core.data_requests()[seen:] == []
    (contract,) = core.dossier(customer.dossier_number)["contracten"]
    assert len(contract["registraties"]) == 1


async def test_a_contract_post_applied_then_answered_502_leaves_one_contract_and_one_registratie(
    core: Core,
) -> None:
    customer = await core.synced_customer(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)
    core.elements.faults.apply_then_fail_next(1, status=502)

    result = (await handle(core, event)).result.data

    assert (result.status, result.attempts) == ("succeeded", 2)
    assert [r.status for r in contract_posts(core)] == [502]
    (contract,) = core.dossier(customer.dossier_number)["contracten"]
    (registratie,) = contract["registraties"]
    assert registratie["omschrijving"].startswith(f"Contract {CONTRACT_ID} overgenomen uit ANVA")
    assert last_parts([o.path for o in result.operations]) == ["registraties"]


async def test_a_change_registratie_whose_answer_was_lost_is_not_added_twice(core: Core) -> None:
    customer = await core.synced_customer(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)
    await sync_contract(core.context, event)
    core.anva.update_contract(CONTRACT_ID, status="Beeindigd")
    core.elements.faults.apply_then_fail_next(1, status=502)

    result = (await handle(core, event)).result.data

    assert (result.status, result.attempts) == ("succeeded", 2)
    (contract,) = core.dossier(customer.dossier_number)["contracten"]
    assert [r["omschrijving"].split(":")[0] for r in contract["registraties"]] == [
        f"Contract {CONTRACT_ID} overgenomen uit ANVA",
        f"Contract {CONTRACT_ID} gewijzigd in ANVA",
    ]


async def test_a_contract_anva_does_not_know_fails_and_is_dead_lettered(core: Core) -> None:
    customer = core.seed(0)

    outcome = await handle(
        core, ContractChanged(contractId="NOPE", dossierNumber=customer.dossier_number)
    )

    result = outcome.result.data
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == ("contract_not_found", False)
    assert outcome.dead_letter_reason == "contract_not_found"
    assert core.writes() == []


async def test_a_zakelijk_klant_applies_through_a_medewerker_created_once(core: Core) -> None:
    business = await core.synced_customer(BUSINESS)
    core.anva.update_account(BUSINESS + 1, firstName="Piet", middleName="de", lastName="Groen")

    first = await sync_contract(
        core.context, core.new_contract(business.dossier_number, CONTRACT_ID)
    )
    second = await sync_contract(core.context, core.new_contract(business.dossier_number, "K-2"))

    dossier = core.dossier(business.dossier_number)
    (organisatie,) = dossier["klanten"]["zakelijk"]
    assert dossier["klanten"]["particulier"] == []
    (medewerker,) = organisatie["medewerkers"]
    assert (medewerker["voornaam"], medewerker["tussenvoegsel"], medewerker["achternaam"]) == (
        "Piet",
        "de",
        "Groen",
    )
    assert medewerker["functie"] == [{"id": 1}]
    for contract in dossier["contracten"]:
        assert contract["aanvragerZakelijk"] == {"id": organisatie["id"]}
        assert contract["eersteAanvrager"] == {"id": medewerker["id"]}
        assert "aanvragersParticulier" not in contract
    assert last_parts([w.path for w in first.writes]) == [
        "medewerkers",
        "contracten",
        "registraties",
    ]
    assert last_parts([w.path for w in second.writes]) == ["contracten", "registraties"]
    memory = core.context.memory
    assert memory.medewerker(business.dossier_number, organisatie["id"]) == medewerker["id"]


async def test_a_zakelijk_contract_without_a_known_person_fails_before_any_contract_write(
    core: Core,
) -> None:
    business = await core.synced_customer(BUSINESS)

    outcome = await handle(core, core.new_contract(business.dossier_number, CONTRACT_ID))

    result = outcome.result.data
    assert result.status == "failed"
    assert result.error is not None
    assert (result.error.code, result.error.retryable) == ("contract_aanvrager_unknown", False)
    assert result.error.message == (
        f"dossier {business.dossier_number}: its klant is an organisation and ANVA names no "
        "person (no lastName on the account) to be the contract's eersteAanvrager"
    )
    assert (result.attempts, result.operations) == (1, [])
    assert contract_posts(core) == []
    assert not any(r.path.endswith("/medewerkers") for r in core.elements.requests)
    assert outcome.dead_letter_reason == "contract_aanvrager_unknown"


async def test_a_failure_after_the_contract_is_created_carries_every_write_made_before_it(
    core: Core,
) -> None:
    customer = core.seed(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)
    core.fail_write(8, 503)  # six customer writes, the contract, then its registratie

    with pytest.raises(UpstreamUnavailable) as raised:
        await sync_contract(core.context, event)
    again = await sync_contract(core.context, event)

    assert last_parts([w.path for w in raised.value.writes])[-2:] == [
        "telefoonnummers",
        "contracten",
    ]
    assert len(raised.value.writes) == 7
    (contract,) = core.dossier(customer.dossier_number)["contracten"]
    (registratie,) = contract["registraties"]
    assert registratie["omschrijving"].startswith(f"Contract {CONTRACT_ID} overgenomen uit ANVA")
    assert last_parts([w.path for w in again.writes]) == ["registraties"]


async def test_a_medewerker_created_before_its_contract_failed_is_not_created_again(
    core: Core,
) -> None:
    topic = StateTopic()
    core.context.memory = topic.memory()
    business = await core.synced_customer(BUSINESS)
    core.anva.update_account(BUSINESS + 1, firstName="Piet", middleName="de", lastName="Groen")
    core.fail_write(2, 400)  # the medewerker, then the contract

    with pytest.raises(UpstreamRejected):
        await sync_contract(core.context, core.new_contract(business.dossier_number, CONTRACT_ID))
    core.context.memory = topic.memory()  # a restart
    again = await sync_contract(core.context, core.new_contract(business.dossier_number, "K-2"))

    (organisatie,) = core.dossier(business.dossier_number)["klanten"]["zakelijk"]
    (medewerker,) = organisatie["medewerkers"]
    assert last_parts([w.path for w in again.writes]) == ["contracten", "registraties"]
    (contract,) = core.dossier(business.dossier_number)["contracten"]
    assert contract["eersteAanvrager"] == {"id": medewerker["id"]}


async def test_a_contract_elements_holds_is_found_not_created_when_a_customer_sync_made_the_record(
    core: Core,
) -> None:
    """A customer sync of a dossier it found (go-live, or a record a tombstone dropped) reads
    no contracts: its record must not say the dossier holds none."""
    customer = await core.synced_customer(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)
    await sync_contract(core.context, event)
    core.context.memory = DossierMemory(max_age_s=86_400)
    await sync_customer(core.context, CustomerChanged(dossierNumber=customer.dossier_number))

    result = (await handle(core, event)).result.data

    assert result.status == "succeeded"
    assert len(contract_posts(core)) == 1
    assert len(core.dossier(customer.dossier_number)["contracten"]) == 1


async def test_a_contract_whose_post_lost_its_answer_is_found_after_a_customer_sync_in_between(
    core: Core,
) -> None:
    """The soak's twins: the contract's POST was applied and answered 502; before the
    contract's next attempt a customer sync of the dossier (on another topic) saved a
    trusted record, and the attempt took that record's word that the contract was new."""
    customer = await core.synced_customer(0)
    event = core.new_contract(customer.dossier_number, CONTRACT_ID)
    core.elements.faults.apply_then_fail_next(1, status=502)
    with pytest.raises(UpstreamUnavailable):
        await sync_contract(core.context, event)
    await sync_customer(core.context, CustomerChanged(dossierNumber=customer.dossier_number))

    await sync_contract(core.context, event)

    assert [r.status for r in contract_posts(core)] == [502]
    assert len(core.dossier(customer.dossier_number)["contracten"]) == 1


async def test_a_medewerker_created_as_the_lease_is_lost_is_not_created_again_by_the_next_owner(
    core: Core,
) -> None:
    """The medewerker was recorded in the dossier's record, through the lease's fence: a
    lease lost at that moment lost the medewerker, and the next owner made a second one,
    which can never be removed."""
    topic = StateTopic()
    core.context.memory = topic.memory()
    business = await core.synced_customer(BUSINESS)
    core.anva.update_account(BUSINESS + 1, firstName="Piet", middleName="de", lastName="Groen")
    event = core.new_contract(business.dossier_number, CONTRACT_ID)
    core.context.memory = topic.memory(
        fence=lost_once(lambda: any(r.path.endswith("/medewerkers") for r in core.writes()))
    )

    with pytest.raises(OwnershipLost):
        await sync_contract(core.context, event)
    core.context.memory = topic.memory()  # the next owner
    await sync_contract(core.context, event)

    (organisatie,) = core.dossier(business.dossier_number)["klanten"]["zakelijk"]
    (medewerker,) = organisatie["medewerkers"]
    (contract,) = core.dossier(business.dossier_number)["contracten"]
    assert contract["eersteAanvrager"] == {"id": medewerker["id"]}
