"""contract.changed's pure half: the Elements contract and registraties an ANVA contract
maps to, the marker and fingerprint that find them again, and the steps that create a
contract or record its change. No I/O."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.clients.anva import AnvaContract
from app.clients.elements import KlantKind
from app.clients.limiter import AMSTERDAM
from app.domain.model import DesiredCustomer, KnownContract, Payload, Persoon
from app.errors import ContractAanvragerUnknown
from app.pipeline.apply import (
    Aanvragers,
    AddContractRegistratie,
    CreateContract,
    CreateMedewerker,
    Step,
)
from app.pipeline.customer_plan import klant_payload
from app.settings import ContractSettings

MARKER = "elements-sync"
OMSCHRIJVING_MAX_LENGTH = 255  # the Contract schema's maxLength
_FINGERPRINT = re.compile(rf"{MARKER} \S+ fp:([0-9a-f]{{12}})")
# ANVA's contract metadata is free-form: the keys its dates and description may come under.
_START_DATE_KEYS = ("startdatum", "startDatum", "startDate", "ingangsdatum", "effectiveDate")
_CONTRACT_DATE_KEYS = ("contractDatum", "contractdatum", "contractDate", "afsluitdatum")
_DESCRIPTION_KEYS = ("omschrijving", "description", "productName", "product", "name")


def contract_summary(contract: AnvaContract) -> dict[str, str]:
    """The ANVA fields a change is described by, as flat text."""
    summary = {"status": contract.status or "", "format": contract.format or ""}
    for key, value in sorted(contract.metadata.items()):
        summary[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return summary


def fingerprint(contract: AnvaContract) -> str:
    canonical = json.dumps(contract_summary(contract), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def onderwerp(contract: AnvaContract) -> str:
    return f"{MARKER} {contract.id} fp:{fingerprint(contract)}"


def fingerprint_in(text: str | None) -> str | None:
    match = _FINGERPRINT.search(text or "")
    return match.group(1) if match else None


def contract_marker(contract_id: str) -> str:
    return f"[ANVA {contract_id}]"


def carries_marker(omschrijving: str | None, contract_id: str) -> bool:
    """Whether the marker of exactly this contract id stands in `omschrijving` as a word.

    Whitespace or the text's ends must surround it, so "123" does not match "[ANVA 1234]"
    nor "[ANVA 123]]".
    """
    pattern = rf"(?<!\S){re.escape(contract_marker(contract_id))}(?!\S)"
    return re.search(pattern, omschrijving or "") is not None


def contract_omschrijving(contract: AnvaContract) -> str:
    """The description, trimmed to leave room for the marker; the marker is never cut."""
    marker = contract_marker(contract.id)
    room = max(OMSCHRIJVING_MAX_LENGTH - len(marker) - 1, 0)
    description = _description(contract)[:room].rstrip()
    return f"{description} {marker}" if description else marker


def _anva_date(value: object) -> date | None:
    """An ISO 8601 date or timestamp (a timestamp's day in Amsterdam), or DD-MM-YYYY."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, "%d-%m-%Y")):
        try:
            moment = parse(text)
        except ValueError:
            continue
        return moment.astimezone(AMSTERDAM).date() if moment.tzinfo else moment.date()
    return None


def _dated(field: str, metadata: Mapping[str, Any], keys: tuple[str, ...], today: date) -> Payload:
    """A date ANVA gives is final; without one, the required field gets today, not final."""
    given = next((d for d in (_anva_date(metadata.get(k)) for k in keys) if d), None)
    return {field: (given or today).isoformat(), f"{field}Definitief": given is not None}


def contract_dates(contract: AnvaContract, today: date) -> Payload:
    """`contractDatum` and `startdatum` with their `…Definitief` flags."""
    return {
        **_dated("contractDatum", contract.metadata, _CONTRACT_DATE_KEYS, today),
        **_dated("startdatum", contract.metadata, _START_DATE_KEYS, today),
    }


def _description(contract: AnvaContract) -> str:
    for key in _DESCRIPTION_KEYS:
        value = contract.metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return f"{contract.format or 'Contract'} {contract.id}"


def contract_payload(
    contract: AnvaContract, *, adres_id: int, settings: ContractSettings, today: date
) -> Payload:
    """The spec's Contract schema but the aanvragers (`Aanvragers.payload` adds them);
    `omschrijving` carries the marker that finds it again."""
    return {
        "omschrijving": contract_omschrijving(contract),
        "status": {"id": settings.status_id(contract.status)},
        "bestaandePropositie": {"id": settings.propositie_id},
        "accountmanager": {"id": settings.accountmanager_id},
        "accountBeheerderWorkflowgroep": {"id": settings.accountbeheerder_workflowgroep_id},
        "bronvermelding": {"id": settings.bronvermelding_id},
        "correspondentieadres": {"id": adres_id},
        "contractnummer": contract.id,
        **contract_dates(contract, today),
        "leverancier": {"id": settings.leverancier_id},
        "inkoopVia": {"id": settings.inkoop_via_id},
        "toelichting": f"Overgenomen uit ANVA ({contract.format or 'contract'} {contract.id}).",
        "gearchiveerd": False,
        "toonindigimap": False,
    }


def medewerker_payload(klant: Payload, settings: ContractSettings) -> Payload:
    """A new medewerker from a particulier klant payload (the schema requires a `functie`)."""
    return {**klant, "functie": [{"id": settings.medewerker_functie_id}]}


def _changes(before: dict[str, str] | None, after: dict[str, str]) -> str:
    if before is None:
        return "; ".join(f"{k}: {v}" for k, v in after.items() if v)
    keys = list(dict.fromkeys([*before, *after]))
    changed = [
        f"{k}: {before.get(k, '-')} → {after.get(k, '-')}"
        for k in keys
        if before.get(k) != after.get(k)
    ]
    return "; ".join(changed)


def registratie_payload(
    contract: AnvaContract,
    *,
    before: dict[str, str] | None,
    created: bool,
    settings: ContractSettings,
) -> Payload:
    """A registratie on the contract: its ANVA state at creation, or what changed since."""
    verb = "overgenomen uit ANVA" if created else "gewijzigd in ANVA"
    text = _changes(None if created else before, contract_summary(contract))
    return {
        "omschrijving": f"Contract {contract.id} {verb}: {text}"
        if text
        else f"Contract {contract.id} {verb}",
        "onderwerp": onderwerp(contract),
        "activiteit": {"id": settings.registratie_activiteit_id},
        "registratietype": {"id": settings.registratie_type_id},
        "systeemregistratie": True,
    }


def synced_from(known: KnownContract, contract: AnvaContract) -> KnownContract:
    """Where `known` lives, synced from this state of the ANVA contract."""
    return KnownContract(
        known.dossier_id, known.product_id, fingerprint(contract), contract_summary(contract)
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
