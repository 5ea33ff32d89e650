"""The steps of a plan, the checks every value gets before its first write, and applying them.

A plan is a list of `Step`s (pure data, built by `customer_plan` and `contract_plan`);
`check_lengths` refuses, before any write, a value Elements would refuse for its length,
naming the field and where it came from; `apply_plan` carries the steps out against
Elements, in order, and says which writes it made.

Writes made before a failure stand in Elements whatever happens next, so they must
reach the result even though no `Applied` is returned then: they leave on the error
(`SyncError.writes`, filled by `writes_kept`), and the outcome ladder adds them up
over every attempt of the event (`app.service`). A plain return value on success, an
attribute of the one exception on failure: nothing is handed down to be appended to.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from app.clients.elements import ElementsClient, KlantKind
from app.domain.model import DossierState, Payload
from app.errors import InternalError, InvalidCustomerData, SyncError, UpstreamRejected
from app.events import Operation


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


@dataclass(frozen=True)
class CreateDossier:
    payload: Payload


@dataclass(frozen=True)
class CreateKlant:
    kind: KlantKind
    payload: Payload


@dataclass(frozen=True)
class AddAdres:
    payload: Payload


@dataclass(frozen=True)
class SetCorrespondentieadres:
    """Point the dossier at an address; None means the one `AddAdres` just created."""

    adres_id: int | None


@dataclass(frozen=True)
class AddEmail:
    payload: Payload


@dataclass(frozen=True)
class AddPhone:
    payload: Payload


@dataclass(frozen=True)
class CreateMedewerker:
    """A medewerker of the organisation klant `organisatie_id`, to apply for its contracts."""

    organisatie_id: int
    payload: Payload


@dataclass(frozen=True)
class CreateContract:
    """A contract; `aanvragers` join `payload` when it is written, since its eerste aanvrager
    may be the medewerker `CreateMedewerker` creates just before (`eerste_id` None)."""

    payload: Payload
    aanvragers: Aanvragers


@dataclass(frozen=True)
class AddContractRegistratie:
    """A registratie on a contract; `product_id` None means the one `CreateContract` just created."""

    product_id: int | None
    payload: Payload


Step = (
    CreateDossier
    | CreateKlant
    | AddAdres
    | SetCorrespondentieadres
    | AddEmail
    | AddPhone
    | CreateMedewerker
    | CreateContract
    | AddContractRegistratie
)


Origins = Mapping[str, str]
"""Where the value of an Elements field came from: "adres.nummer" → "the portal's address"."""

MAX_LENGTHS: dict[str, dict[str, int]] = {
    "klantdossier": {"omschrijving": 255, "relatienummer": 255},
    "klant": {"voornaam": 255, "tussenvoegsel": 255, "achternaam": 255, "naam": 255},
    "adres": {"straat": 255, "nummer": 25, "toevoeging": 255, "postcode": 255, "plaatsnaam": 255},
    "emailadres": {"naam": 255},
    "telefoonnummer": {"naam": 255},
}
"""The spec's JSON Schema limits of the fields we send (a unit test holds them to the schemas)."""


def written(step: Step) -> tuple[str, Payload] | None:
    """The customer resource a step writes and its payload; None for a step without one.

    A contract plan's values are not checked here: its omschrijving is cut to fit, and
    its medewerker's name is sent as ANVA gives it.
    """
    match step:
        case CreateDossier(payload):
            return "klantdossier", payload
        case CreateKlant(_, payload):
            return "klant", payload
        case AddAdres(payload):
            return "adres", payload
        case AddEmail(payload):
            return "emailadres", payload
        case AddPhone(payload):
            return "telefoonnummer", payload
    return None


def check_lengths(steps: list[Step], origins: Origins) -> None:
    """Raise `InvalidCustomerData` for the first value of the plan Elements would refuse."""
    for step in steps:
        sent = written(step)
        if sent is None:
            continue
        resource, payload = sent
        for name, limit in MAX_LENGTHS[resource].items():
            value = payload.get(name)
            if isinstance(value, str) and len(value) > limit:
                field = f"{resource}.{name}"
                origin = origins.get(field, "upstream")
                raise InvalidCustomerData(
                    f"{field} from {origin} is {len(value)} characters; Elements allows {limit}"
                )


EERSTE_PERSOON = "eerste-persoon"


@contextmanager
def writes_kept(writes: Sequence[Operation]) -> Iterator[None]:
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
    """A read in this sync confirmed which dossier it is, or this sync made it
    (docs/reference/events.md, "Identity is checked, never assumed")."""
    created_dossier: bool = False
    writes: tuple[Operation, ...] = ()

    @classmethod
    def on(cls, current: DossierState | None, *, confirmed: bool) -> Applied:
        """A plan's starting point: the dossier as known, or nothing yet."""
        if current is None:
            return cls(dossier_id=None, confirmed=confirmed)
        klant = current.klant
        return cls(
            dossier_id=current.dossier_id,
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
    made: list[Operation] = []
    try:
        with writes_kept(made):
            for step in steps:
                made.append(await _apply(elements, step, target))
            target.dossier()
    except SyncError as failed:
        # What came before the failed step is in Elements; the step itself is too, or not,
        # unless Elements refused it (a 4xx writes nothing). The caller records the first
        # as done and the second as unknown.
        target.writes = tuple(made)
        failed.applied = target
        failing = steps[len(made)] if len(made) < len(steps) else None
        failed.unsure = None if isinstance(failed, UpstreamRejected) else failing
        raise
    target.writes = tuple(made)
    return target


async def _apply(elements: ElementsClient, step: Step, target: Applied) -> Operation:
    """One step's write; the ids it creates are noted in `target` for the steps after it."""
    match step:
        case CreateDossier(payload):
            done = await elements.create_dossier(payload)
            target.dossier_id = done.resourceId
            target.created_dossier = True
        case CreateKlant(kind, payload):
            rol = EERSTE_PERSOON if kind == "particulier" else None
            done = await elements.create_klant(target.dossier(), kind, payload, rol=rol)
            target.klant = (kind, done.resourceId)
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
            target.email_added = True
        case AddPhone(payload):
            done = await elements.add_to_klant(*target.klant_ref(), "telefoonnummers", payload)
            target.phone_added = True
        case CreateMedewerker(organisatie_id, payload):
            done = await elements.create_medewerker(target.dossier(), organisatie_id, payload)
            target.medewerker_id = done.resourceId
        case CreateContract(payload, aanvragers):
            body = {**payload, **aanvragers.payload(target.medewerker_id)}
            done = await elements.create_contract(target.dossier(), body)
            target.contract_id = done.resourceId
        case AddContractRegistratie(product_id, payload):
            product = target.contract(product_id)
            done = await elements.add_contract_registratie(target.dossier(), product, payload)
    return done
