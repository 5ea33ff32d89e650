"""The ``/api/data`` endpoints of the Elements simulator.

Handlers only do the resource work: limits, auth, faults and recording happen in
the simulator's gate around them. Refusals are raised (``HTTPException`` for 404/405,
``ValidationFailed`` for 400) and rendered by the app's exception handlers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.sandbox.simulators.elements_schemas import ValidationFailed, validate
from app.sandbox.simulators.elements_state import (
    API,
    CONTACTS,
    KINDS,
    ROLLEN,
    Contract,
    Dossier,
    Json,
    Klant,
    Registratie,
    Store,
    hal,
    local_datetime,
    matches,
    midnight,
    render_contact,
    render_contract,
    render_dossier,
    render_klant,
    render_product,
    render_registratie,
)


def _created(location: str) -> Response:
    """201 as Elements sends it: no body, ``text/html``, the new resource in Location."""
    return Response(status_code=201, headers={"Location": location, "Content-Type": "text/html"})


def _empty_ok() -> Response:
    return Response(status_code=200, headers={"Content-Type": "text/html"})


async def _json_body(request: Request) -> object:
    try:
        return json.loads(await request.body())
    except ValueError:
        raise ValidationFailed.at("", "Request body is geen geldige JSON") from None


def _int(request: Request, name: str) -> int:
    value = request.path_params[name]
    assert isinstance(value, int)
    return value


class ElementsApi:
    """Klantdossiers with their klanten, contact details, contracten and registraties."""

    def __init__(self, store: Store, today: Callable[[], date]) -> None:
        self._store = store
        self._today = today

    def routes(self) -> list[Route]:
        dossier = API + "/{did:int}"
        klanten = dossier + "/klanten/{kind}"
        contacts = klanten + "/{kid:int}/{collection}"
        contract = dossier + "/contracten/{pid:int}"
        table: list[tuple[str, str, Callable[[Request], Any]]] = [
            ("GET", API, self.list_dossiers),
            ("POST", API, self.create_dossier),
            ("POST", API + "/", self.create_dossier),
            ("GET", dossier, self.get_dossier),
            ("PATCH", dossier, self.patch_dossier),
            ("GET", dossier + "/registraties", self.list_registraties),
            ("POST", dossier + "/registraties", self.create_registratie),
            ("GET", klanten, self.list_klanten),
            ("POST", klanten, self.create_klant),
            ("POST", dossier + "/klanten/zakelijk/{kid:int}/medewerkers", self.create_medewerker),
            ("GET", klanten + "/{kid:int}", self.get_klant),
            ("PATCH", klanten + "/{kid:int}", self.patch_klant),
            ("GET", contacts, self.list_contacts),
            ("POST", contacts, self.create_contact),
            ("GET", contacts + "/{cid:int}", self.get_contact),
            ("GET", dossier + "/producten", self.list_producten),
            ("POST", dossier + "/contracten", self.create_contract),
            ("GET", contract, self.get_contract),
            ("GET", contract + "/registraties", self.list_registraties),
            ("POST", contract + "/registraties", self.create_registratie),
        ]
        return [Route(path, endpoint, methods=[method]) for method, path, endpoint in table]

    # --- lookups: 404 for anything unknown ------------------------------------------------

    def _dossier(self, request: Request) -> Dossier:
        found = self._store.dossiers.get(_int(request, "did"))
        if found is None:
            raise HTTPException(404)
        return found

    def _kind(self, request: Request) -> str:
        kind = str(request.path_params["kind"])
        if kind not in KINDS:
            raise HTTPException(404)
        return kind

    def _klant(self, request: Request) -> tuple[Dossier, Klant]:
        dossier, kind = self._dossier(request), self._kind(request)
        klant = dossier.klanten.get(_int(request, "kid"))
        if klant is None or klant.kind != kind:
            raise HTTPException(404)
        return dossier, klant

    def _collection(self, request: Request) -> str:
        collection = str(request.path_params["collection"])
        if collection not in CONTACTS:
            raise HTTPException(404)
        return collection

    def _contract(self, request: Request) -> tuple[Dossier, Contract]:
        dossier = self._dossier(request)
        contract = dossier.contracten.get(_int(request, "pid"))
        if contract is None:
            raise HTTPException(404)
        return dossier, contract

    # --- klantdossiers -----------------------------------------------------------------------

    async def list_dossiers(self, request: Request) -> Response:
        items = [
            render_dossier(d, full=False)
            for d in self._store.dossiers.values()
            if matches(d, request.query_params)
        ]
        return JSONResponse(hal(API, "klantdossiers", items))

    async def create_dossier(self, request: Request) -> Response:
        body = validate("klantdossiers", await _json_body(request))
        if "standaardCorrespondentieadres" in body:
            # A new dossier has no addresses yet, so no id can belong to it.
            raise ValidationFailed.at(
                "standaardCorrespondentieadres",
                f"Adres {body['standaardCorrespondentieadres']} hoort niet bij dit klantdossier",
            )
        default = midnight(self._today())
        dossier = Dossier(
            self._store.new_id(), body, local_datetime(body.get("aanmaakdatum"), default)
        )
        self._store.dossiers[dossier.id] = dossier
        return _created(dossier.href)

    async def get_dossier(self, request: Request) -> Response:
        return JSONResponse(render_dossier(self._dossier(request), full=True))

    async def patch_dossier(self, request: Request) -> Response:
        dossier = self._dossier(request)
        body = validate("klantdossier_patch", await _json_body(request))
        adres_id = body["standaardCorrespondentieadres"]["id"]
        if not any(adres_id in k.links["adressen"] for k in dossier.klanten.values()):
            raise ValidationFailed.at(
                "standaardCorrespondentieadres.id",
                f"Adres {adres_id} is geen adres van een klant in dit klantdossier",
            )
        dossier.standaard_correspondentieadres = adres_id
        return _empty_ok()

    # --- klanten ------------------------------------------------------------------------------

    async def list_klanten(self, request: Request) -> Response:
        dossier, kind = self._dossier(request), self._kind(request)
        items = [render_klant(dossier, k, full=False) for k in dossier.klanten_of(kind)]
        return JSONResponse(hal(f"{dossier.href}/klanten/{kind}", kind, items))

    async def create_klant(self, request: Request) -> Response:
        dossier, kind = self._dossier(request), self._kind(request)
        rol = request.query_params.get("rol") if kind == "particulier" else None
        if kind == "particulier":
            if rol not in ROLLEN:
                raise ValidationFailed.at("rol", f"Rol moet een van {', '.join(ROLLEN)} zijn")
            if rol == "eerste-persoon" and any(k.rol == rol for k in dossier.klanten.values()):
                raise ValidationFailed.at("rol", "Klantdossier heeft al een eerste persoon")
        body = validate(kind, await _json_body(request))
        klant = Klant(self._store.new_id(), kind, body, rol)
        dossier.klanten[klant.id] = klant
        return _created(dossier.klant_href(klant))

    async def get_klant(self, request: Request) -> Response:
        dossier, klant = self._klant(request)
        return JSONResponse(render_klant(dossier, klant, full=True))

    async def patch_klant(self, request: Request) -> Response:
        """Only a particulier klant can be patched (its standaard correspondentieadres)."""
        _, klant = self._klant(request)
        if klant.kind != "particulier":
            raise HTTPException(405, headers={"Allow": "GET"})
        # The spec gives no schema for this PATCH; its body and errors match the dossier's.
        body = validate("klantdossier_patch", await _json_body(request))
        adres_id = body["standaardCorrespondentieadres"]["id"]
        if adres_id not in klant.links["adressen"]:
            raise ValidationFailed.at(
                "standaardCorrespondentieadres.id", f"Adres {adres_id} is geen adres van deze klant"
            )
        klant.standaard_correspondentieadres = adres_id
        return _empty_ok()

    async def create_medewerker(self, request: Request) -> Response:
        """A new persoon, or a persoon of this dossier by ``id``, as a medewerker of an organisation.

        The spec documents no way to read medewerkers back, so none is served.
        """
        dossier = self._dossier(request)
        organisatie = dossier.klanten.get(_int(request, "kid"))
        if organisatie is None or organisatie.kind != "zakelijk":
            raise HTTPException(404)
        body = validate("zakelijk_medewerkers", await _json_body(request))
        if "id" in body:
            persoon = dossier.persoon(body["id"])
            if persoon is None:
                raise ValidationFailed.at(
                    "id", f"Persoon {body['id']} hoort niet bij dit klantdossier"
                )
            medewerker = Klant(
                persoon.id, "particulier", {**persoon.data, "functie": body["functie"]}
            )
        else:
            medewerker = Klant(self._store.new_id(), "particulier", body)
        organisatie.medewerkers[medewerker.id] = medewerker
        return _created(dossier.medewerker_href(organisatie, medewerker))

    # --- adressen, emailadressen, telefoonnummers of either kind of klant ----------------------

    async def list_contacts(self, request: Request) -> Response:
        (dossier, klant), collection = self._klant(request), self._collection(request)
        items = [render_contact(dossier, klant, collection, cid) for cid in klant.links[collection]]
        return JSONResponse(hal(f"{dossier.klant_href(klant)}/{collection}", collection, items))

    async def get_contact(self, request: Request) -> Response:
        (dossier, klant), collection = self._klant(request), self._collection(request)
        contact_id = _int(request, "cid")
        if contact_id not in klant.links[collection]:
            raise HTTPException(404)
        return JSONResponse(render_contact(dossier, klant, collection, contact_id))

    async def create_contact(self, request: Request) -> Response:
        """Add a new address/e-mail/phone, or link one of the dossier's by ``id``."""
        (dossier, klant), collection = self._klant(request), self._collection(request)
        body = validate(f"{klant.kind}_{collection}", await _json_body(request))
        existing = dossier.contacts[collection]
        contact_id = body.get("id")
        if contact_id is None:
            contact_id = self._store.new_id()
            existing[contact_id] = {k: v for k, v in body.items() if k != "type"}
        elif contact_id not in existing:
            raise ValidationFailed.at("id", f"{contact_id} bestaat niet in dit klantdossier")
        types = klant.links[collection].setdefault(contact_id, [])
        if body["type"] not in types:
            types.append(body["type"])
        return _created(f"{dossier.klant_href(klant)}/{collection}/{contact_id}")

    # --- contracten and producten ---------------------------------------------------------------

    async def create_contract(self, request: Request) -> Response:
        dossier = self._dossier(request)
        body = validate("contracten", await _json_body(request))
        _check_contract_references(dossier, body)
        contract = Contract(self._store.new_id(), dossier.id, body, midnight(self._today()))
        dossier.contracten[contract.id] = contract
        return _created(contract.href)

    async def get_contract(self, request: Request) -> Response:
        dossier, contract = self._contract(request)
        return JSONResponse(render_contract(dossier, contract))

    async def list_producten(self, request: Request) -> Response:
        dossier = self._dossier(request)
        items = [render_product(c) for c in dossier.contracten.values()]
        return JSONResponse(hal(f"{dossier.href}/producten", "producten", items))

    # --- registraties of a dossier or of one of its contracten ----------------------------------

    def _registraties_owner(
        self, request: Request
    ) -> tuple[Dossier, str, dict[int, Registratie], bool]:
        if "pid" in request.path_params:
            dossier, contract = self._contract(request)
            return dossier, contract.href, contract.registraties, True
        dossier = self._dossier(request)
        return dossier, dossier.href, dossier.registraties, False

    async def list_registraties(self, request: Request) -> Response:
        dossier, href, registraties, product = self._registraties_owner(request)
        items = [
            render_registratie(dossier, href, r, product=product) for r in registraties.values()
        ]
        return JSONResponse(hal(f"{href}/registraties", "registraties", items))

    async def create_registratie(self, request: Request) -> Response:
        dossier, href, registraties, _ = self._registraties_owner(request)
        # Contract registraties take the dossier registratie body ("Zie Klantdossier").
        body = validate("registraties", await _json_body(request))
        persoon = body.get("persoon", {}).get("id")
        if persoon is not None and persoon not in {k.id for k in dossier.klanten_of("particulier")}:
            raise ValidationFailed.at(
                "persoon.id", f"Persoon {persoon} is geen klant in dit dossier"
            )
        default = midnight(self._today())
        when = body.get("boekdatum") or body.get("registratiedatum")
        registratie = Registratie(self._store.new_id(), body, local_datetime(when, default))
        registraties[registratie.id] = registratie
        return _created(f"{href}/registraties/{registratie.id}")


def _check_contract_references(dossier: Dossier, body: Json) -> None:
    """Aanvragers must be klanten and the correspondentieadres an address of this dossier.

    The eerste aanvrager is one of the particulier aanvragers, or (release 1.9.3) a
    medewerker of the organisation in ``aanvragerZakelijk``.
    """
    particulier = {k.id for k in dossier.klanten_of("particulier")}
    zakelijk = {k.id for k in dossier.klanten_of("zakelijk")}
    checks: list[tuple[str, int, set[int]]] = [
        (
            "correspondentieadres.id",
            body["correspondentieadres"]["id"],
            set(dossier.contacts["adressen"]),
        ),
    ]
    checks += [
        (f"aanvragersParticulier.{i}.id", aanvrager["id"], particulier)
        for i, aanvrager in enumerate(body.get("aanvragersParticulier", []))
    ]
    if "aanvragerZakelijk" in body:
        checks.append(("aanvragerZakelijk.id", body["aanvragerZakelijk"]["id"], zakelijk))
    errors = [
        (path, f"{ref} hoort niet bij dit klantdossier")
        for path, ref, known in checks
        if ref not in known
    ]
    eerste = body["eersteAanvrager"]["id"]
    if eerste not in _eerste_aanvrager_ids(dossier, body):
        errors.append(
            (
                "eersteAanvrager.id",
                f"{eerste} is geen aanvrager particulier en geen medewerker van de aanvrager zakelijk",
            )
        )
    if errors:
        raise ValidationFailed(errors)


def _eerste_aanvrager_ids(dossier: Dossier, body: Json) -> set[int]:
    allowed = {a["id"] for a in body.get("aanvragersParticulier", [])}
    organisatie = dossier.klanten.get(body.get("aanvragerZakelijk", {}).get("id", 0))
    if organisatie is not None and organisatie.kind == "zakelijk":
        allowed |= set(organisatie.medewerkers)
    return allowed
