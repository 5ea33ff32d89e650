"""Carry out a plan against Elements, in order, recording every write made."""

from __future__ import annotations

from dataclasses import dataclass

from app.clients.elements import ElementsClient
from app.events import Operation
from app.pipeline.model import DossierState, KlantKind
from app.pipeline.plan import (
    EERSTE_PERSOON,
    AddAdres,
    AddEmail,
    AddPhone,
    CreateDossier,
    CreateKlant,
    SetCorrespondentieadres,
    Step,
)


@dataclass
class Applied:
    """Ids known after a plan: from the current state, or created by its steps."""

    dossier_id: int | None
    klant: tuple[KlantKind, int] | None
    standaard_adres_id: int | None
    new_adres_id: int | None = None

    def dossier(self) -> int:
        if self.dossier_id is None:
            raise RuntimeError("plan writes into a dossier before creating it")
        return self.dossier_id

    def klant_ref(self) -> tuple[int, KlantKind, int]:
        if self.klant is None:
            raise RuntimeError("plan writes to a klant before creating it")
        return (self.dossier(), *self.klant)


async def apply_plan(
    elements: ElementsClient,
    steps: list[Step],
    current: DossierState | None,
    operations: list[Operation],
) -> Applied:
    """Apply `steps`; every write is appended to `operations` as it succeeds.

    `operations` is the caller's, so writes made before a failure are still reported.
    """
    klant = (current.klant.kind, current.klant.id) if current and current.klant else None
    standaard = current.standaard_adres.id if current and current.standaard_adres else None
    target = Applied(
        dossier_id=current.id if current else None, klant=klant, standaard_adres_id=standaard
    )
    for step in steps:
        match step:
            case CreateDossier(payload):
                done = await elements.create_dossier(payload)
                target.dossier_id = done.resourceId
            case CreateKlant(kind, payload):
                rol = EERSTE_PERSOON if kind == "particulier" else None
                done = await elements.create_klant(target.dossier(), kind, payload, rol=rol)
                target.klant = (kind, done.resourceId or 0)
            case AddAdres(payload):
                done = await elements.add_to_klant(*target.klant_ref(), "adressen", payload)
                target.new_adres_id = done.resourceId
            case SetCorrespondentieadres(adres_id):
                chosen = adres_id if adres_id is not None else target.new_adres_id
                if chosen is None:
                    raise RuntimeError("plan points the dossier at an address it did not add")
                done = await elements.set_correspondentieadres(target.dossier(), chosen)
                target.standaard_adres_id = chosen
            case AddEmail(payload):
                done = await elements.add_to_klant(*target.klant_ref(), "emailadressen", payload)
            case AddPhone(payload):
                done = await elements.add_to_klant(*target.klant_ref(), "telefoonnummers", payload)
        operations.append(done)
    target.dossier()
    return target
