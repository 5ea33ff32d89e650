"""An ANVA contract against where it lives in Elements → the writes to make (pure).

A contract Elements lacks is created in a dossier already synced, with a first
registratie "overgenomen uit ANVA"; the eerste aanvrager of a zakelijk klant's
contract is a medewerker, created first when this process knows none. A contract
Elements has gets a registratie only when its ANVA state changed since the last one:
Elements has no contract PATCH.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from app.clients.anva import AnvaContract
from app.clients.elements import KlantKind
from app.errors import ContractAanvragerUnknown
from app.pipeline.contract_mapping import (
    Aanvragers,
    contract_payload,
    contract_summary,
    fingerprint,
    medewerker_payload,
    registratie_payload,
)
from app.pipeline.model import DesiredCustomer, Persoon
from app.pipeline.plan import klant_payload
from app.pipeline.steps import AddContractRegistratie, CreateContract, CreateMedewerker, Step
from app.settings import ContractSettings


@dataclass(frozen=True)
class KnownContract:
    """Where an ANVA contract lives in Elements and which ANVA state it was last synced from.

    `fingerprint` is None while the contract has no registratie of ours: it was just
    created, or its creation's answer was lost before the "overgenomen" registratie.
    """

    dossier_id: int
    product_id: int
    fingerprint: str | None
    summary: dict[str, str] | None = None

    def synced_from(self, contract: AnvaContract) -> KnownContract:
        return KnownContract(
            self.dossier_id, self.product_id, fingerprint(contract), contract_summary(contract)
        )


@dataclass(frozen=True)
class ContractDossier:
    """What a new contract needs of its synced dossier: the klant and its address."""

    klant: tuple[KlantKind, int]
    adres_id: int
    medewerker_id: int | None
    """The medewerker this process made to apply for a zakelijk klant's contracts, if any."""


def _aanvragers(desired: DesiredCustomer, dossier: ContractDossier) -> Aanvragers:
    """The dossier's particulier klant, or a medewerker of its zakelijk klant.

    A person is known when the ANVA account of the dossier has a last name (`desired`
    then names a `Persoon`); the dossier keeps a zakelijk klant made before ANVA knew one.
    """
    kind, klant_id = dossier.klant
    if kind == "particulier":
        return Aanvragers(klant_id)
    if not isinstance(desired.klant, Persoon):
        raise ContractAanvragerUnknown(
            f"dossier {desired.dossier_number}: its klant is an organisation and ANVA names no "
            "person (no lastName on the account) to be the contract's eersteAanvrager"
        )
    return Aanvragers(dossier.medewerker_id, organisatie_id=klant_id)


def plan_new_contract(
    contract: AnvaContract,
    desired: DesiredCustomer,
    dossier: ContractDossier,
    *,
    settings: ContractSettings,
    today: date,
) -> list[Step]:
    """The contract and its "overgenomen" registratie, after a medewerker when one is needed.

    Raises `ContractAanvragerUnknown` before any contract write when nobody can apply.
    """
    aanvragers = _aanvragers(desired, dossier)
    steps: list[Step] = []
    kind, klant_id = dossier.klant
    if kind == "zakelijk" and dossier.medewerker_id is None:
        payload = medewerker_payload(klant_payload(desired), settings)
        steps.append(CreateMedewerker(klant_id, payload))
    created = contract_payload(contract, adres_id=dossier.adres_id, settings=settings, today=today)
    steps.append(CreateContract(created, aanvragers))
    registratie = registratie_payload(contract, before=None, created=True, settings=settings)
    steps.append(AddContractRegistratie(None, registratie))
    return steps


def plan_contract_change(
    contract: AnvaContract, known: KnownContract, *, settings: ContractSettings
) -> list[Step]:
    """Nothing when the contract was last synced from this ANVA state; else a registratie:
    "overgenomen" on a contract without one of ours, otherwise what changed."""
    if known.fingerprint == fingerprint(contract):
        return []
    payload = registratie_payload(
        contract, before=known.summary, created=known.fingerprint is None, settings=settings
    )
    return [AddContractRegistratie(known.product_id, payload)]
