"""State of the Elements simulator and its rendering as Elements' HAL documents.

Plain dataclasses hold what clients wrote (their validated payloads, verbatim);
the ``render_*`` functions shape them like the examples in the API 1.9.6 spec,
so a client parses exactly the fields it would get from production.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from app.clients.limiter import AMSTERDAM
from app.sandbox.simulators.elements_schemas import parse_date, parse_datetime

API = "/api/data/klantdossiers"
KINDS = ("particulier", "zakelijk")
CONTACTS = ("adressen", "emailadressen", "telefoonnummers")
ROLLEN = {"eerste-persoon": "Eerste persoon", "partner": "Partner", "kind": "Kind"}
DOSSIER_STATUS = {1: "Nieuw", 2: "Lopend"}
CONTRACT_STATUS = {1: "Aanvraag nieuw"}
# Type ids as the spec's examples show them (bezoekadres 1, correspondentieadres 7, ...).
TYPE_IDS: dict[str, dict[str, int]] = {
    "adressen": {
        "Bezoekadres": 1,
        "Afleveradres": 2,
        "Algemeen": 3,
        "Factuuradres": 4,
        "Pand": 5,
        "Priveadres": 6,
        "Correspondentieadres": 7,
    },
    "emailadressen": {"Zakelijk": 1, "Prive": 2, "Algemeen": 3},
    "telefoonnummers": {
        "Algemeen": 1,
        "Mobiel": 2,
        "Fax": 3,
        "Zakelijk": 4,
        "Storingsnummer": 5,
        "Skype": 6,
    },
}
# Dossier links the spec lists for a klantdossier item (most are not served here).
_DOSSIER_LINKS = (
    "registraties",
    "adviseurs",
    "kantoor",
    "klanten",
    "panden",
    "bezittingen",
    "producten",
    "facturen",
    "documenten",
    "stukken",
    "emails",
    "taken",
    "klanten/particulier",
    "klanten/zakelijk",
)

Json = dict[str, Any]


@dataclass
class Klant:
    """A particulier (persoon) or zakelijk (organisatie) klant of one dossier."""

    id: int
    kind: str
    data: Json
    rol: str | None = None
    # collection -> contact id -> the types this klant links it with
    links: dict[str, dict[int, list[str]]] = field(
        default_factory=lambda: {c: {} for c in CONTACTS}
    )
    standaard_correspondentieadres: int | None = None
    # a zakelijk klant's medewerkers: personen, rendered like a particulier klant
    medewerkers: dict[int, Klant] = field(default_factory=dict)


@dataclass
class Registratie:
    id: int
    data: Json
    boekdatum: datetime


@dataclass
class Contract:
    id: int
    dossier_id: int
    data: Json
    invoer: datetime
    registraties: dict[int, Registratie] = field(default_factory=dict)

    @property
    def href(self) -> str:
        return f"{API}/{self.dossier_id}/contracten/{self.id}"


@dataclass
class Dossier:
    """A klantdossier; addresses, e-mails and phones live here, klanten link to them."""

    id: int
    data: Json
    aanmaakdatum: datetime
    klanten: dict[int, Klant] = field(default_factory=dict)
    contacts: dict[str, dict[int, Json]] = field(default_factory=lambda: {c: {} for c in CONTACTS})
    contracten: dict[int, Contract] = field(default_factory=dict)
    registraties: dict[int, Registratie] = field(default_factory=dict)
    standaard_correspondentieadres: int | None = None
    deleted: str | None = None
    """When a person deleted it in the Elements UI; the API still lists and serves it."""

    @property
    def href(self) -> str:
        return f"{API}/{self.id}"

    def klanten_of(self, kind: str) -> list[Klant]:
        return [k for k in self.klanten.values() if k.kind == kind]

    def klant_href(self, klant: Klant) -> str:
        return f"{self.href}/klanten/{klant.kind}/{klant.id}"

    def medewerker_href(self, organisatie: Klant, medewerker: Klant) -> str:
        return f"{self.klant_href(organisatie)}/medewerkers/{medewerker.id}"

    def persoon(self, persoon_id: int) -> Klant | None:
        """A person of this dossier: a particulier klant or a medewerker of an organisation."""
        personen = [*self.klanten_of("particulier")]
        personen += [m for o in self.klanten_of("zakelijk") for m in o.medewerkers.values()]
        return next((p for p in personen if p.id == persoon_id), None)


@dataclass
class Store:
    dossiers: dict[int, Dossier] = field(default_factory=dict)
    last_id: int = 5525

    def new_id(self) -> int:
        """One counter for every resource, like the spec's ids that never collide."""
        self.last_id += 1
        return self.last_id


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=AMSTERDAM)


def local_datetime(value: str | None, default: datetime) -> datetime:
    """A ``datatype-datetime`` as an Amsterdam timestamp (``default`` when absent)."""
    parsed = parse_datetime(value) if value else None
    if parsed is None:
        return default
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=AMSTERDAM)


def stamp(moment: datetime) -> str:
    """Dossier and registratie timestamps: ``2016-07-11T00:00:00+0200``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S%z")


def _iso_date(value: str | None) -> str | None:
    """Dates on klanten and contracten: ``1960-01-01T00:00:00+01:00``."""
    parsed = parse_date(value) if value else None
    return midnight(parsed).isoformat() if parsed else None


def _ja_nee(value: object) -> str:
    return "ja" if value else "nee"


def _status(names: Mapping[int, str], ref: object) -> str | None:
    if not isinstance(ref, dict):
        return None
    return names.get(ref["id"], f"Status {ref['id']}")


def hal(href: str, name: str, items: list[Json]) -> Json:
    return {"_links": {"self": {"href": href}}, "_embedded": {name: items}}


# --- dossiers -------------------------------------------------------------------------------


def render_dossier(dossier: Dossier, *, full: bool) -> Json:
    """A klantdossier; ``full`` adds the item endpoint's link list."""
    links: Json = {"self": {"href": dossier.href}}
    if full:
        for name in _DOSSIER_LINKS:
            links[name] = {"href": f"{dossier.href}/{name}"}
        links["klanten"]["deprecation"] = "http://api.fasterforward.nl"
    embedded: Json = {}
    adres_id = dossier.standaard_correspondentieadres
    if adres_id is not None:
        adres = dossier.contacts["adressen"][adres_id]
        embedded["standaardcorrespondentieadres"] = {
            "id": adres_id,
            "straat": adres.get("straat", ""),
            "nummer": adres.get("nummer", ""),
            "toevoeging": adres.get("toevoeging", ""),
            "postcode": adres.get("postcode", ""),
            "plaatsnaam": adres.get("plaatsnaam", ""),
            "land": adres.get("land"),
        }
    return {
        "omschrijving": dossier.data["omschrijving"],
        "aanmaakdatum": stamp(dossier.aanmaakdatum),
        "deleted": dossier.deleted,
        "relatienummer": dossier.data.get("relatienummer"),
        "id": dossier.id,
        "dossiertype": "klantdossier",
        "status": _status(DOSSIER_STATUS, dossier.data["dossierstatus"]),
        "_links": links,
        "_embedded": embedded,
    }


def _values(items: Iterable[object]) -> set[str]:
    return {str(item) for item in items if item is not None}


_FILTERS: dict[str, Callable[[Dossier], Iterable[object]]] = {
    "relatienummer": lambda d: [d.data.get("relatienummer")],
    "omschrijving": lambda d: [d.data["omschrijving"]],
    "dossierstatus": lambda d: [d.data["dossierstatus"]["id"]],
    "kantoor": lambda d: [(d.data.get("kantoor") or {}).get("id")],
    "contractnummer": lambda d: [c.data.get("contractnummer") for c in d.contracten.values()],
    "achternaam": lambda d: [k.data.get("achternaam") for k in d.klanten_of("particulier")],
    "organisatie": lambda d: [k.data.get("naam") for k in d.klanten_of("zakelijk")],
    "kvknummer": lambda d: [k.data.get("kvknummer") for k in d.klanten_of("zakelijk")],
    "postcode": lambda d: [a.get("postcode") for a in d.contacts["adressen"].values()],
    "emailadres": lambda d: [e.get("naam") for e in d.contacts["emailadressen"].values()],
    "telefoonnummer": lambda d: [t.get("naam") for t in d.contacts["telefoonnummers"].values()],
}


def matches(dossier: Dossier, query: Mapping[str, str]) -> bool:
    """The collection's search filters, exact match; filters it does not know are ignored."""
    return all(
        value in _values(_FILTERS[name](dossier))
        for name, value in query.items()
        if name in _FILTERS
    )


# --- klanten and their contact details -----------------------------------------------------


def render_klant(dossier: Dossier, klant: Klant, *, full: bool) -> Json:
    """A klant as the collection (``full=False``) or item endpoint renders it."""
    href = dossier.klant_href(klant)
    body = _persoon(klant) if klant.kind == "particulier" else _organisatie(klant)
    links: Json = {"self": {"href": href}}
    if full:
        links.update({c: {"href": f"{href}/{c}"} for c in CONTACTS})
    return {**body, "_links": links}


def _persoon(klant: Klant) -> Json:
    data = klant.data
    naam = data["achternaam"]
    if data.get("voornaam"):
        naam += f", {data['voornaam']}"
    if data.get("initialen"):
        naam += f" ({data['initialen']})"
    return {
        "id": klant.id,
        "geslacht": data.get("geslacht", "").lower(),
        "initialen": data.get("initialen", ""),
        "titel": data.get("titel", ""),
        "voornaam": data.get("voornaam", ""),
        "tussenvoegsel": data.get("tussenvoegsel", ""),
        "achternaam": data["achternaam"],
        "bsn": data.get("bsn", ""),
        "nationaliteitId": None,
        "nationaliteit": data.get("nationaliteit"),
        "burgerlijkestaatId": None,
        "burgerlijkestaat": data.get("burgerlijkestaat"),
        "weergavenaam": naam,
        "geboortedatum": _iso_date(data.get("geboortedatum")),
        "pensioendatum": None,
        "overleden": _ja_nee(data.get("overleden")),
        "datumOverlijden": _iso_date(data.get("datumOverleden")),
        "dossierrol": ROLLEN[klant.rol] if klant.rol else None,
    }


def _organisatie(klant: Klant) -> Json:
    data = klant.data
    fields = ("type", "naam", "kvknummer", "btwnummer", "statutairenaam", "handelsnaam")
    return {"id": klant.id, **{name: data.get(name, "") for name in fields}}


def render_medewerker(dossier: Dossier, organisatie: Klant, medewerker: Klant) -> Json:
    return {
        **_persoon(medewerker),
        "_links": {"self": {"href": dossier.medewerker_href(organisatie, medewerker)}},
    }


def render_contact(dossier: Dossier, klant: Klant, collection: str, contact_id: int) -> Json:
    """An adres, emailadres or telefoonnummer as linked to ``klant``."""
    data = dossier.contacts[collection][contact_id]
    types = klant.links[collection][contact_id]
    if collection == "adressen":
        body = _adres(contact_id, data)
    elif collection == "emailadressen":
        body = {"id": contact_id, "naam": data["naam"], "omschrijving": None}
    else:
        body = {
            "id": contact_id,
            "naam": data["naam"],
            "omschrijving": " ",
            "weergavenaam": data["naam"],
        }
    # The spec shows e-mail types capitalised, address and phone types in lower case.
    return {
        **body,
        "_links": {"self": {"href": f"{dossier.klant_href(klant)}/{collection}/{contact_id}"}},
        "_embedded": {
            "types": [
                {
                    "id": TYPE_IDS[collection][t],
                    "naam": t if collection == "emailadressen" else t.lower(),
                }
                for t in types
            ]
        },
    }


def _adres(adres_id: int, data: Json) -> Json:
    postcode = data.get("postcode", "")
    categorie = data.get("categorie", "Standaard")
    return {
        "id": adres_id,
        "straat": data.get("straat", ""),
        "nummer": data.get("nummer", ""),
        "toevoeging": data.get("toevoeging", ""),
        "postcode": postcode,
        "plaatsnaam": data["plaatsnaam"],
        "postcodegebied": postcode[:4],
        "longitude": None,
        "latitude": None,
        "categorie": "default" if categorie == "Standaard" else categorie.lower(),
    }


# --- contracten, producten, registraties ---------------------------------------------------


def render_contract(dossier: Dossier, contract: Contract) -> Json:
    adres_id = contract.data["correspondentieadres"]["id"]
    adres = _adres(adres_id, dossier.contacts["adressen"][adres_id])
    return {
        **_product_fields(contract),
        "adviseur": None,
        "acceptant": None,
        "acceptantWorkflowgroep": None,
        "behandelaar": None,
        "_links": {"self": {"href": contract.href}},
        "_embedded": {
            "correspondentieadres": adres,
            "aanvragers": _aanvragers(dossier, contract.data),
            "productdelen": [],
        },
    }


def _aanvragers(dossier: Dossier, data: Json) -> list[Json]:
    """The eerste aanvrager first, then the other particulier aanvragers and the organisation."""
    organisatie = (
        dossier.klanten[data["aanvragerZakelijk"]["id"]] if "aanvragerZakelijk" in data else None
    )
    ids = [data["eersteAanvrager"]["id"], *(a["id"] for a in data.get("aanvragersParticulier", []))]
    rendered = []
    for persoon_id in dict.fromkeys(ids):
        if organisatie is not None and persoon_id in organisatie.medewerkers:
            rendered.append(
                render_medewerker(dossier, organisatie, organisatie.medewerkers[persoon_id])
            )
        else:
            rendered.append(render_klant(dossier, dossier.klanten[persoon_id], full=True))
    if organisatie is not None:
        rendered.append(render_klant(dossier, organisatie, full=True))
    return rendered


def render_product(contract: Contract) -> Json:
    """A contract as an item of the dossier's producten collection."""
    fields = _product_fields(contract)
    return {
        **fields,
        "soort": "contracten",
        # The spec's product items carry this key with a trailing space; kept verbatim.
        "gearchiveerd ": _ja_nee(contract.data["gearchiveerd"]),
        "publiek": _ja_nee(contract.data["toonindigimap"]),
        "_links": {"self": {"href": contract.href}},
    }


def _product_fields(contract: Contract) -> Json:
    """What a producten item and the contract GET share; the spec shows no contractnummer on either."""
    data = contract.data
    return {
        "id": contract.id,
        "type": 9,
        "offertenummer": "",
        "omschrijving": data.get("omschrijving", ""),
        "status": _status(CONTRACT_STATUS, data["status"]),
        "invoerAanvraag": contract.invoer.isoformat(),
        "maatschappij": None,
        "startdatum": _iso_date(data["startdatum"]),
        "startdatumDefinitief": _ja_nee(data["startdatumDefinitief"]),
    }


def render_registratie(
    dossier: Dossier, owner_href: str, registratie: Registratie, *, product: bool
) -> Json:
    data = registratie.data
    links: Json = {"self": {"href": f"{owner_href}/registraties/{registratie.id}"}}
    if product:
        links["product"] = {"href": owner_href}
    body: Json = {
        "omschrijving": data["omschrijving"],
        "onderwerp": data.get("onderwerp"),
        "publiek": False,
        "factureerbaar": None,
        "boekdatum": stamp(registratie.boekdatum),
        "gearchiveerd": False,
        "verbruik": None,
        "id": registratie.id,
        "registratietype": f"Registratietype {data['registratietype']['id']}",
        "_links": links,
    }
    if "persoon" in data:
        body["_embedded"] = {"persoon": [_persoon(dossier.klanten[data["persoon"]["id"]])]}
    return body


# --- inspection for tests --------------------------------------------------------------------


def inspect_dossier(dossier: Dossier) -> Json:
    """A dossier with everything written into it, for tests to assert on."""

    def klant(k: Klant) -> Json:
        contacts = {c: [render_contact(dossier, k, c, cid) for cid in k.links[c]] for c in CONTACTS}
        extra: Json = {"standaardCorrespondentieadres": k.standaard_correspondentieadres}
        if k.kind == "zakelijk":
            extra["medewerkers"] = [
                {**render_medewerker(dossier, k, m), "functie": m.data.get("functie")}
                for m in k.medewerkers.values()
            ]
        return {**render_klant(dossier, k, full=True), **contacts, **extra}

    def raw(r: Registratie) -> Json:
        return {**r.data, "id": r.id}

    return {
        **render_dossier(dossier, full=True),
        "klanten": {kind: [klant(k) for k in dossier.klanten_of(kind)] for kind in KINDS},
        "contracten": [
            {**c.data, "id": c.id, "registraties": [raw(r) for r in c.registraties.values()]}
            for c in dossier.contracten.values()
        ],
        "registraties": [raw(r) for r in dossier.registraties.values()],
    }
