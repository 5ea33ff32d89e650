"""A customer plan as the Elements requests it would make: the dry run's view of a plan (pure).

`apply` carries out the same steps; here they are only described. An id that only an
earlier step of the plan would create is shown as a readable placeholder (`NEW_DOSSIER`,
`NEW_KLANT`, `NEW_ADRES`), in paths and bodies alike. Paths carry the query string the
request would have (`?rol=eerste-persoon`), never an access token: the client sends the
token in the `Authorization` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from app.clients.elements import DOSSIERS, ElementsClient, KlantKind
from app.pipeline.apply import (
    EERSTE_PERSOON,
    AddAdres,
    AddEmail,
    AddPhone,
    CreateDossier,
    CreateKlant,
    SetCorrespondentieadres,
    Step,
)
from app.pipeline.model import DossierState, Payload

NEW_DOSSIER = "{new klantdossier}"
NEW_KLANT = "{new klant}"
NEW_ADRES = "{new adres}"

Ref = int | str
"""An Elements id, or the placeholder of one a step before would create."""


@dataclass(frozen=True)
class Operation:
    method: Literal["POST", "PATCH"]
    path: str
    body: Payload

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "body": self.body}


@dataclass
class _Known:
    dossier: Ref | None
    klant: tuple[KlantKind, Ref] | None

    def klanten_path(self, kind: KlantKind) -> str:
        if self.dossier is None:
            raise RuntimeError("plan writes into a dossier before creating it")
        return ElementsClient.klanten_path(self.dossier, kind)

    def klant_path(self) -> str:
        if self.klant is None:
            raise RuntimeError("plan writes to a klant before creating it")
        kind, klant_id = self.klant
        return f"{self.klanten_path(kind)}/{klant_id}"

    def dossier_path(self) -> str:
        if self.dossier is None:
            raise RuntimeError("plan writes into a dossier before creating it")
        return f"{DOSSIERS}/{self.dossier}"


def planned_operations(steps: list[Step], current: DossierState | None) -> list[Operation]:
    """The requests `apply_plan` would send for a customer plan starting on `current`."""
    klant = current.klant if current is not None else None
    known = _Known(
        dossier=current.id if current is not None else None,
        klant=(klant.kind, klant.id) if klant is not None else None,
    )
    return [_operation(step, known) for step in steps]


def _operation(step: Step, known: _Known) -> Operation:
    match step:
        case CreateDossier(payload):
            known.dossier = NEW_DOSSIER
            return Operation("POST", DOSSIERS, payload)
        case CreateKlant(kind, payload):
            known.klant = (kind, NEW_KLANT)
            rol = f"?rol={EERSTE_PERSOON}" if kind == "particulier" else ""
            return Operation("POST", f"{known.klanten_path(kind)}{rol}", payload)
        case AddAdres(payload):
            return Operation("POST", f"{known.klant_path()}/adressen", payload)
        case SetCorrespondentieadres(adres_id):
            chosen: Ref = adres_id if adres_id is not None else NEW_ADRES
            body = {"standaardCorrespondentieadres": {"id": chosen}}
            return Operation("PATCH", known.dossier_path(), body)
        case AddEmail(payload):
            return Operation("POST", f"{known.klant_path()}/emailadressen", payload)
        case AddPhone(payload):
            return Operation("POST", f"{known.klant_path()}/telefoonnummers", payload)
    raise TypeError(f"not a step of a customer plan: {type(step).__name__}")
