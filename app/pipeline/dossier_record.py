"""The record a sync leaves of a dossier (pure): what Elements holds once a plan was applied,
what of it is unknown after a step of unknown outcome, and what may be called synced.
"""

from __future__ import annotations

from dataclasses import replace

from app.domain.model import DesiredCustomer, DossierState, KlantState, StoredAdres
from app.pipeline.apply import AddAdres, AddEmail, AddPhone, Applied, Step
from app.state.record import DossierRecord, PortalLocator


def _klant_after(
    before: KlantState | None, target: DesiredCustomer, applied: Applied
) -> KlantState | None:
    if applied.klant is None:
        return None
    kind, klant_id = applied.klant
    if before is not None and (before.kind, before.id) == applied.klant:
        klant = before
    else:  # created by this plan: it holds only what the plan added
        klant = KlantState(kind=kind, id=klant_id, adressen=(), emails=(), phones=())
    added: dict[str, object] = {}
    if applied.new_adres_id is not None and target.adres is not None and klant.adressen is not None:
        added["adressen"] = (*klant.adressen, StoredAdres(applied.new_adres_id, target.adres))
    if applied.email_added and target.email and klant.emails is not None:
        added["emails"] = (*klant.emails, target.email)
    if applied.phone_added and target.phone and klant.phones is not None:
        added["phones"] = (*klant.phones, target.phone)
    return klant.model_copy(update=added)


def state_after(
    before: DossierState | None, target: DesiredCustomer, applied: Applied
) -> DossierState:
    """What Elements holds once a plan for `target`, started on `before`, was applied."""
    standaard = before.standaard_adres if before else None
    if applied.standaard_adres_id is not None and (
        standaard is None or standaard.id != applied.standaard_adres_id
    ):
        if target.adres is None:
            raise RuntimeError("a plan pointed the dossier at an address it did not want")
        standaard = StoredAdres(applied.standaard_adres_id, target.adres)
    return DossierState(
        dossier_number=target.dossier_number,
        dossier_id=applied.dossier(),
        standaard_adres=standaard,
        klant=_klant_after(before.klant if before else None, target, applied),
    )


_LIST_ADDED_TO: dict[type[Step], str] = {
    AddAdres: "adressen",
    AddEmail: "emails",
    AddPhone: "phones",
}


def without_unsure(state: DossierState, unsure: Step | None) -> tuple[DossierState, bool]:
    """`state` with the list a step of unknown outcome may have added to as unread, and
    whether the rest still says what Elements holds. A step that may have made the dossier
    or the klant, or moved the correspondentieadres, leaves the dossier to be read again."""
    if unsure is None:
        return state, True
    added_to = _LIST_ADDED_TO.get(type(unsure))
    if added_to is None or state.klant is None:
        return state, False
    unread = state.klant.model_copy(update={added_to: None})
    return state.model_copy(update={"klant": unread}), True


def synced_desired(
    desired: DesiredCustomer,
    *,
    last: DesiredCustomer | None,
    before: DossierState | None,
    after: DossierState,
) -> DesiredCustomer:
    """What of `desired` the record may call synced (its `upstream`): only what Elements holds
    because this worker wrote it or read it there.

    Upstream's address counts as synced when Elements holds it now. Otherwise (a form's own
    address, an address step that failed) the address stays the one of the last sync; with
    no last sync, the one Elements held before this sync, as read, else the one it holds
    now. So a portal move that no sync wrote is still a change for the next one
    (`customer_plan.target_customer`), and a form's address stands only while upstream's is the same.
    """
    held = after.standaard_adres.adres if after.standaard_adres else None
    if desired.adres is None or (held is not None and held.key() == desired.adres.key()):
        return desired
    if last is not None:
        return replace(desired, adres=last.adres)
    read = before.standaard_adres.adres if before and before.standaard_adres else held
    return replace(desired, adres=read)


def record_of(
    state: DossierState,
    *,
    desired: DesiredCustomer | None,
    read_at: float,
    replacing: DossierRecord | None,
    medewerker_id: int | None = None,
    portal: PortalLocator | None = None,
    created: bool = False,
) -> DossierRecord:
    """The record of `state`, with `desired` as its `upstream`; contracts and medewerker carry
    over from the record it is `replacing` when that describes the same dossier, the portal locator when no new one is given. Only a dossier
    this sync `created` is known to hold no contract besides those the record names."""
    same = replacing if replacing is not None and replacing.dossier_id == state.dossier_id else None
    return DossierRecord(
        dossier_number=state.dossier_number,
        dossier_id=state.dossier_id,
        standaard_adres=state.standaard_adres,
        klant=state.klant,
        medewerker_id=medewerker_id
        if medewerker_id is not None or same is None
        else same.medewerker_id,
        contracts=dict(same.contracts) if same else {},
        contracts_complete=created or (same is not None and same.contracts_complete),
        upstream=desired,
        portal=portal or (replacing.portal if replacing else None),
        read_at=read_at,
    )
