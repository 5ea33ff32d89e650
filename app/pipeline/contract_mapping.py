"""ANVA contract → Elements contract payload and registraties (pure).

Elements has no contract PATCH, so a contract is created once; a later change in ANVA
is recorded as a registratie on it that says what changed. Both carry a fingerprint of
the ANVA state in the registratie's `onderwerp`, so after a restart the last synced
state is read back from Elements instead of being guessed.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from typing import Any

from app.clients.anva import AnvaContract
from app.settings import ContractSettings

Payload = dict[str, Any]
MARKER = "elements-sync"
_FINGERPRINT = re.compile(rf"{MARKER} \S+ fp:([0-9a-f]{{12}})")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_DATE_KEYS = ("startdatum", "startDate", "ingangsdatum", "effectiveDate")
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


def _start_date(contract: AnvaContract, today: date) -> str:
    for key in _DATE_KEYS:
        value = contract.metadata.get(key)
        if isinstance(value, str) and _DATE.match(value):
            return value[:10]
    return today.isoformat()


def _description(contract: AnvaContract) -> str:
    for key in _DESCRIPTION_KEYS:
        value = contract.metadata.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:255]
    return f"{contract.format or 'Contract'} {contract.id}"[:255]


def contract_payload(
    contract: AnvaContract,
    *,
    klant_kind: str,
    klant_id: int,
    adres_id: int,
    settings: ContractSettings,
    today: date,
) -> Payload:
    """The spec's Contract schema; the dossier's klant is the eerste aanvrager."""
    start = _start_date(contract, today)
    payload: Payload = {
        "omschrijving": _description(contract),
        "status": {"id": settings.status_id(contract.status)},
        "bestaandePropositie": {"id": settings.propositie_id},
        "accountmanager": {"id": settings.accountmanager_id},
        "accountBeheerderWorkflowgroep": {"id": settings.accountbeheerder_workflowgroep_id},
        "bronvermelding": {"id": settings.bronvermelding_id},
        "eersteAanvrager": {"id": klant_id},
        "correspondentieadres": {"id": adres_id},
        "contractnummer": contract.id,
        "contractDatum": start,
        "contractDatumDefinitief": True,
        "startdatum": start,
        "startdatumDefinitief": True,
        "leverancier": {"id": settings.leverancier_id},
        "inkoopVia": {"id": settings.inkoop_via_id},
        "toelichting": f"Overgenomen uit ANVA ({contract.format or 'contract'} {contract.id}).",
        "gearchiveerd": False,
        "toonindigimap": False,
    }
    if klant_kind == "particulier":
        payload["aanvragersParticulier"] = [{"id": klant_id}]
    else:
        payload["aanvragerZakelijk"] = {"id": klant_id}
    return payload


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
