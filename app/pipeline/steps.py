"""The writes a plan is made of: one step per Elements write, applied in order by `apply` (pure).

A step that needs an id only an earlier step of the same plan creates (the new dossier,
klant, address, medewerker or contract) refers to it implicitly, so a plan is made
before any write and tested without I/O. Customer plans come from `plan`, contract
plans from `contract_plan`.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.clients.elements import KlantKind
from app.pipeline.contract_mapping import Aanvragers
from app.pipeline.model import Payload


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
