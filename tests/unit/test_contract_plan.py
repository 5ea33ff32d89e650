"""The contract plan (pure): which contract writes an ANVA contract needs, without I/O."""

from __future__ import annotations

from datetime import date

import pytest

from app.clients.anva import AnvaContract
from app.domain.model import DesiredCustomer, KnownContract, Organisatie, Persoon
from app.errors import ContractAanvragerUnknown
from app.pipeline.apply import (
    Aanvragers,
    AddContractRegistratie,
    CreateContract,
    CreateMedewerker,
)
from app.pipeline.contract_plan import (
    ContractDossier,
    contract_payload,
    fingerprint,
    plan_contract_change,
    plan_new_contract,
    registratie_payload,
    synced_from,
)
from app.sandbox.tenant import sandbox_contracts

TODAY = date(2026, 3, 2)
SETTINGS = sandbox_contracts(medewerker_functie_id=4)
GROEN = Persoon(voornaam="Piet", tussenvoegsel="de", achternaam="Groen")


def anva_contract(status: str = "Lopend") -> AnvaContract:
    return AnvaContract(
        id="123",
        dossierNumber="100234",
        format="ZPP",
        metadata={"omschrijving": "AVP"},
        status=status,
    )


def desired(klant: Persoon | Organisatie) -> DesiredCustomer:
    return DesiredCustomer("100234", klant, adres=None, email=None, phone=None)


def created(contract: AnvaContract, aanvragers: Aanvragers) -> list[object]:
    """The contract and its "overgenomen" registratie, as a plan for a new contract ends."""
    return [
        CreateContract(
            contract_payload(contract, adres_id=9, settings=SETTINGS, today=TODAY), aanvragers
        ),
        AddContractRegistratie(
            None, registratie_payload(contract, before=None, created=True, settings=SETTINGS)
        ),
    ]


def test_a_particulier_klant_applies_for_its_new_contract_itself() -> None:
    contract = anva_contract()
    dossier = ContractDossier(klant=("particulier", 7), adres_id=9, medewerker_id=None)

    steps = plan_new_contract(contract, desired(GROEN), dossier, settings=SETTINGS, today=TODAY)

    assert steps == created(contract, Aanvragers(7))


def test_a_zakelijk_klant_without_a_medewerker_gets_one_before_its_contract() -> None:
    contract = anva_contract()
    dossier = ContractDossier(klant=("zakelijk", 5), adres_id=9, medewerker_id=None)

    steps = plan_new_contract(contract, desired(GROEN), dossier, settings=SETTINGS, today=TODAY)

    medewerker = {"voornaam": "Piet", "tussenvoegsel": "de", "achternaam": "Groen"}
    assert steps == [
        CreateMedewerker(5, {**medewerker, "functie": [{"id": 4}]}),
        *created(contract, Aanvragers(None, organisatie_id=5)),
    ]


def test_a_zakelijk_klant_whose_medewerker_is_known_applies_through_it() -> None:
    contract = anva_contract()
    dossier = ContractDossier(klant=("zakelijk", 5), adres_id=9, medewerker_id=31)

    steps = plan_new_contract(contract, desired(GROEN), dossier, settings=SETTINGS, today=TODAY)

    assert steps == created(contract, Aanvragers(31, organisatie_id=5))


def test_a_zakelijk_klant_without_a_person_in_anva_cannot_apply() -> None:
    dossier = ContractDossier(klant=("zakelijk", 5), adres_id=9, medewerker_id=None)

    with pytest.raises(ContractAanvragerUnknown, match="no lastName on the account"):
        plan_new_contract(
            anva_contract(),
            desired(Organisatie("Acme BV")),
            dossier,
            settings=SETTINGS,
            today=TODAY,
        )


def test_a_contract_synced_from_the_same_anva_state_needs_no_write() -> None:
    contract = anva_contract()
    known = KnownContract(1, 2, fingerprint(contract))

    assert plan_contract_change(contract, known, settings=SETTINGS) == []


def test_a_changed_contract_gets_a_registratie_saying_what_changed() -> None:
    known = synced_from(KnownContract(1, 2, None), anva_contract("Lopend"))
    ended = anva_contract("Beeindigd")

    (step,) = plan_contract_change(ended, known, settings=SETTINGS)

    assert isinstance(step, AddContractRegistratie)
    assert step.product_id == 2
    assert (
        step.payload["omschrijving"] == "Contract 123 gewijzigd in ANVA: status: Lopend → Beeindigd"
    )
    assert step.payload["onderwerp"] == f"elements-sync 123 fp:{fingerprint(ended)}"


def test_a_contract_found_without_a_registratie_of_ours_gets_the_overgenomen_one() -> None:
    contract = anva_contract()

    (step,) = plan_contract_change(contract, KnownContract(1, 2, None), settings=SETTINGS)

    assert step == AddContractRegistratie(
        2, registratie_payload(contract, before=None, created=True, settings=SETTINGS)
    )
