"""Carry out a plan against Elements, in order, and say which writes it made.

Writes made before a failure stand in Elements whatever happens next, so they must
reach the result even though no `Applied` is returned then: they leave on the error
(`SyncError.writes`, filled by `writes_kept`), and the outcome ladder adds them up
over every attempt of the event (`app.service`). A plain return value on success, an
attribute of the one exception on failure: nothing is handed down to be appended to.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from app.clients.elements import ElementsClient, KlantKind, Write
from app.errors import InternalError, SyncError, UpstreamRejected
from app.pipeline.model import DossierState
from app.pipeline.steps import (
    AddAdres,
    AddContractRegistratie,
    AddEmail,
    AddPhone,
    CreateContract,
    CreateDossier,
    CreateKlant,
    CreateMedewerker,
    SetCorrespondentieadres,
    Step,
)

EERSTE_PERSOON = "eerste-persoon"


@contextmanager
def writes_kept(writes: Sequence[Write]) -> Iterator[None]:
    """An error leaving this block carries `writes` (made before it) ahead of its own.

    An exception outside the `SyncError` hierarchy (a bug of ours) leaves as the
    `InternalError` the outcome ladder would make of it, chained to it, to carry them too.
    """
    try:
        yield
    except SyncError as error:
        error.writes = (*writes, *error.writes)
        raise
    except Exception as error:
        internal = InternalError.caused_by(error)
        internal.writes = tuple(writes)
        raise internal from error


@dataclass
class Applied:
    """Ids known after a plan (from the state it started on, or created by its steps),
    and the writes it made."""

    dossier_id: int | None
    klant: tuple[KlantKind, int] | None = None
    standaard_adres_id: int | None = None
    new_adres_id: int | None = None
    medewerker_id: int | None = None
    contract_id: int | None = None
    email_added: bool = False
    phone_added: bool = False
    confirmed: bool = False
    """A read in this sync confirmed which dossier it is (CONTRACT.md), or this sync made it."""
    created_dossier: bool = False
    writes: tuple[Write, ...] = ()

    @classmethod
    def on(cls, current: DossierState | None, *, confirmed: bool) -> Applied:
        """A plan's starting point: the dossier as known, or nothing yet."""
        if current is None:
            return cls(dossier_id=None, confirmed=confirmed)
        klant = current.klant
        return cls(
            dossier_id=current.id,
            klant=(klant.kind, klant.id) if klant else None,
            standaard_adres_id=current.standaard_adres.id if current.standaard_adres else None,
            confirmed=confirmed,
        )

    def dossier(self) -> int:
        if self.dossier_id is None:
            raise RuntimeError("plan writes into a dossier before creating it")
        return self.dossier_id

    def klant_ref(self) -> tuple[int, KlantKind, int]:
        if self.klant is None:
            raise RuntimeError("plan writes to a klant before creating it")
        return (self.dossier(), *self.klant)

    def contract(self, product_id: int | None) -> int:
        chosen = product_id if product_id is not None else self.contract_id
        if chosen is None:
            raise RuntimeError("plan writes to a contract before creating it")
        return chosen


async def apply_plan(
    elements: ElementsClient,
    steps: list[Step],
    start: Applied,
) -> Applied:
    """Apply `steps` from `start`; the result names the writes these steps made."""
    target = replace(start, writes=())
    made: list[Write] = []
    try:
        with writes_kept(made):
            for step in steps:
                made.append(await _apply(elements, step, target))
            target.dossier()
    except UpstreamRejected as refused:
        # Elements refused this step, so it wrote nothing: what came before is exactly
        # what the dossier holds now, and the caller may record it as such.
        target.writes = tuple(made)
        refused.applied = target
        raise
    target.writes = tuple(made)
    return target


async def _apply(elements: ElementsClient, step: Step, target: Applied) -> Write:
    """One step's write; the ids it creates are noted in `target` for the steps after it."""
    match step:
        case CreateDossier(payload):
            done = await elements.create_dossier(payload)
            target.dossier_id = done.resource_id
            target.created_dossier = True
        case CreateKlant(kind, payload):
            rol = EERSTE_PERSOON if kind == "particulier" else None
            done = await elements.create_klant(target.dossier(), kind, payload, rol=rol)
            target.klant = (kind, done.resource_id)
        case AddAdres(payload):
            done = await elements.add_to_klant(*target.klant_ref(), "adressen", payload)
            target.new_adres_id = done.resource_id
        case SetCorrespondentieadres(adres_id):
            chosen = adres_id if adres_id is not None else target.new_adres_id
            if chosen is None:
                raise RuntimeError("plan points the dossier at an address it did not add")
            done = await elements.set_correspondentieadres(target.dossier(), chosen)
            target.standaard_adres_id = chosen
        case AddEmail(payload):
            done = await elements.add_to_klant(*target.klant_ref(), "emailadressen", payload)
            target.email_added = True
        case AddPhone(payload):
            done = await elements.add_to_klant(*target.klant_ref(), "telefoonnummers", payload)
            target.phone_added = True
        case CreateMedewerker(organisatie_id, payload):
            done = await elements.create_medewerker(target.dossier(), organisatie_id, payload)
            target.medewerker_id = done.resource_id
        case CreateContract(payload, aanvragers):
            body = {**payload, **aanvragers.payload(target.medewerker_id)}
            done = await elements.create_contract(target.dossier(), body)
            target.contract_id = done.resource_id
        case AddContractRegistratie(product_id, payload):
            product = target.contract(product_id)
            done = await elements.add_contract_registratie(target.dossier(), product, payload)
    return done
