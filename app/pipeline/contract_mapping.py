"""ANVA contract → Elements contract payload and registraties (pure).

Elements has no contract PATCH, so a contract is created once; a later change in ANVA
is recorded as a registratie on it that says what changed. Both carry a fingerprint of
the ANVA state in the registratie's `onderwerp`, so after a restart the last synced
state is read back from Elements instead of being guessed.

The spec shows no `contractnummer` when a contract is read, so the contract's
`omschrijving` ends in a marker of the ANVA contract id (`… [ANVA 123]`): it reads back
on the dossier's producten and on the contract itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from app.clients.anva import AnvaContract
from app.clients.limiter import AMSTERDAM
from app.pipeline.model import Payload
from app.settings import ContractSettings

MARKER = "elements-sync"
OMSCHRIJVING_MAX_LENGTH = 255  # the Contract schema's maxLength
_FINGERPRINT = re.compile(rf"{MARKER} \S+ fp:([0-9a-f]{{12}})")
# ANVA's contract metadata is free-form: the keys its dates and description may come under.
_START_DATE_KEYS = ("startdatum", "startDatum", "startDate", "ingangsdatum", "effectiveDate")
_CONTRACT_DATE_KEYS = ("contractDatum", "contractdatum", "contractDate", "afsluitdatum")
_DESCRIPTION_KEYS = ("omschrijving", "description", "productName", "product", "name")


@dataclass(frozen=True)
class Aanvragers:
    """Who applies for a contract: a particulier klant, or a medewerker of an organisation.

    Release 1.9.3: the eerste aanvrager of a zakelijk contract is a medewerker of the
    organisation in `aanvragerZakelijk`, never the organisation itself. `eerste_id` is
    None in a plan that creates that medewerker first: its id is known once it exists,
    and `payload` is then given it.
    """

    eerste_id: int | None
    organisatie_id: int | None = None

    def payload(self, created_medewerker_id: int | None = None) -> Payload:
        eerste_id = self.eerste_id if self.eerste_id is not None else created_medewerker_id
        if eerste_id is None:
            raise RuntimeError("a contract's eerste aanvrager is a medewerker nobody created")
        eerste = {"eersteAanvrager": {"id": eerste_id}}
        if self.organisatie_id is None:
            return {"aanvragersParticulier": [{"id": eerste_id}], **eerste}
        return {"aanvragerZakelijk": {"id": self.organisatie_id}, **eerste}


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
