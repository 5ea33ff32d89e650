"""Desired state against Elements' current state → the writes to make, valid per the spec."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.clients.elements import KlantKind
from app.domain.model import (
    Adres,
    DesiredCustomer,
    DossierState,
    KlantState,
    Organisatie,
    Persoon,
    StoredAdres,
    address_is_current,
)
from app.pipeline.apply import (
    AddAdres,
    AddEmail,
    AddPhone,
    CreateDossier,
    CreateKlant,
    SetCorrespondentieadres,
    Step,
)
from app.pipeline.customer_plan import DossierDefaults, plan_customer
from app.sandbox.simulators.elements_schemas import ValidationFailed, validate

DEFAULTS = DossierDefaults(kantoor_id=3, dossierstatus_id=1)
HOOFDSTRAAT = Adres("Hoofdstraat", "12", "A", "1234AB", "Amsterdam")
KERKSTRAAT = Adres("Kerkstraat", "5", None, "5678CD", "Utrecht")
JANSEN = Persoon(voornaam="Piet", tussenvoegsel="van", achternaam="Jansen")
ACME = Organisatie(naam="Acme BV")


def desired(
    klant: Persoon | Organisatie = JANSEN,
    adres: Adres | None = HOOFDSTRAAT,
    email: str | None = "piet@example.nl",
    phone: str | None = "06-12345678",
) -> DesiredCustomer:
    return DesiredCustomer("100234", klant, adres, email, phone)


def stored(
    want: DesiredCustomer, *, kind: KlantKind | None = None, others: tuple[StoredAdres, ...] = ()
) -> DossierState:
    """Elements holding exactly `want` (in a klant of `kind`), plus `others` addresses."""
    standaard = StoredAdres(30, want.adres) if want.adres else None
    klant = KlantState(
        kind=kind or want.kind,
        id=20,
        adressen=(*([standaard] if standaard else []), *others),
        emails=(want.email,) if want.email else (),
        phones=(want.phone,) if want.phone else (),
    )
    return DossierState(
        dossier_number=want.dossier_number, dossier_id=10, standaard_adres=standaard, klant=klant
    )


def step_types(steps: list[Step]) -> list[type]:
    return [type(step) for step in steps]


def schema_of(step: Step, kind: KlantKind) -> str | None:
    """The Elements schema the step's payload is posted against (None: no payload)."""
    match step:
        case CreateDossier():
            return "klantdossiers"
        case CreateKlant(kind=klant_kind):
            return klant_kind
        case AddAdres():
            return f"{kind}_adressen"
        case AddEmail():
            return f"{kind}_emailadressen"
        case AddPhone():
            return f"{kind}_telefoonnummers"
    return None


def assert_payloads_valid(steps: list[Step], kind: KlantKind) -> None:
    for step in steps:
        name = schema_of(step, kind)
        if name is not None:
            validate(name, step.payload)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("klant", "kind"),
    [(JANSEN, "particulier"), (ACME, "zakelijk")],
    ids=["particulier", "zakelijk"],
)
def test_new_dossier_creates_everything_in_order(klant: Persoon | Organisatie, kind: str) -> None:
    steps = plan_customer(desired(klant), None, DEFAULTS)
    assert step_types(steps) == [
        CreateDossier,
        CreateKlant,
        AddAdres,
        SetCorrespondentieadres,
        AddEmail,
        AddPhone,
    ]
    assert steps[1] == CreateKlant(kind, steps[1].payload)  # type: ignore[union-attr]
    assert steps[3] == SetCorrespondentieadres(None)


def test_new_dossier_payload_carries_relatienummer_and_defaults() -> None:
    create = plan_customer(desired(), None, DEFAULTS)[0]
    assert create == CreateDossier(
        {
            "omschrijving": "Klantdossier 100234",
            "relatienummer": "100234",
            "dossierstatus": {"id": 1},
            "kantoor": {"id": 3},
        }
    )


def test_new_dossier_without_contact_data_only_creates_dossier_and_klant() -> None:
    steps = plan_customer(desired(adres=None, email=None, phone=None), None, DEFAULTS)
    assert step_types(steps) == [CreateDossier, CreateKlant]


def test_existing_dossier_without_klant_creates_klant_but_not_dossier() -> None:
    want = desired()
    current = stored(want).model_copy(update={"klant": None, "standaard_adres": None})
    steps = plan_customer(want, current, DEFAULTS)
    assert step_types(steps) == [
        CreateKlant,
        AddAdres,
        SetCorrespondentieadres,
        AddEmail,
        AddPhone,
    ]


@pytest.mark.parametrize("klant", [JANSEN, ACME], ids=["particulier", "zakelijk"])
def test_state_already_present_needs_no_write(klant: Persoon | Organisatie) -> None:
    want = desired(klant)
    assert plan_customer(want, stored(want), DEFAULTS) == []


def test_email_differing_only_in_case_needs_no_write() -> None:
    current = stored(desired(email="Piet@Example.NL"))
    assert plan_customer(desired(email="piet@example.nl"), current, DEFAULTS) == []


@pytest.mark.parametrize("held", ["+31 6 12345678", "0031612345678", "06 1234 5678"])
def test_phone_in_another_notation_needs_no_write(held: str) -> None:
    current = stored(desired(phone=held))
    assert plan_customer(desired(phone="06-12345678"), current, DEFAULTS) == []


def test_address_in_another_notation_needs_no_write() -> None:
    current = stored(desired(adres=Adres("HOOFDSTRAAT", "12", "a", "1234 ab", "amsterdam")))
    assert plan_customer(desired(), current, DEFAULTS) == []


def test_house_number_with_leading_zero_is_the_same_address() -> None:
    current = stored(desired(adres=Adres("Hoofdstraat", "012", "A", "1234AB", "Amsterdam")))
    assert plan_customer(desired(), current, DEFAULTS) == []


def test_another_house_number_is_another_address() -> None:
    current = stored(desired(adres=Adres("Hoofdstraat", "120", "A", "1234AB", "Amsterdam")))
    assert step_types(plan_customer(desired(), current, DEFAULTS)) == [
        AddAdres,
        SetCorrespondentieadres,
    ]


POSTBUS = Adres("Postbus", "1234", None, "1000AB", "Amsterdam", categorie="Postbus")


def test_postbus_address_is_sent_with_categorie_postbus() -> None:
    steps = plan_customer(desired(adres=POSTBUS), None, DEFAULTS)
    assert steps[2] == AddAdres(
        {
            "straat": "Postbus",
            "nummer": "1234",
            "postcode": "1000AB",
            "plaatsnaam": "Amsterdam",
            "land": "NL",
            "categorie": "Postbus",
            "type": "Correspondentieadres",
        }
    )


def test_the_same_lines_in_another_categorie_are_another_address() -> None:
    """A box address once stored as Standaard is replaced, not taken for the Postbus."""
    as_standaard = replace(POSTBUS, categorie="Standaard")
    current = stored(desired(adres=as_standaard))
    steps = plan_customer(desired(adres=POSTBUS), current, DEFAULTS)
    assert step_types(steps) == [AddAdres, SetCorrespondentieadres]
    assert steps[0].payload["categorie"] == "Postbus"  # type: ignore[union-attr]


def test_an_address_without_categorie_read_counts_as_standaard() -> None:
    """The dossier's embedded standaard address carries no categorie (the spec's example)."""
    unread = replace(HOOFDSTRAAT, categorie=None)
    want = desired()
    current = stored(want).model_copy(update={"standaard_adres": StoredAdres(30, unread)})
    assert plan_customer(want, current, DEFAULTS) == []
    postbus_unread = replace(POSTBUS, categorie=None)
    assert not address_is_current(
        desired(adres=POSTBUS),
        current.model_copy(update={"standaard_adres": StoredAdres(30, postbus_unread)}),
    )


def test_new_email_and_phone_are_added_to_existing_klant() -> None:
    current = stored(desired())
    steps = plan_customer(desired(email="nieuw@example.nl", phone="020-7654321"), current, DEFAULTS)
    assert steps == [
        AddEmail({"naam": "nieuw@example.nl", "type": "Algemeen"}),
        AddPhone({"naam": "020-7654321", "type": "Algemeen"}),
    ]


def test_changed_address_not_held_by_klant_is_added_and_made_correspondentieadres() -> None:
    current = stored(desired())
    steps = plan_customer(desired(adres=KERKSTRAAT), current, DEFAULTS)
    assert step_types(steps) == [AddAdres, SetCorrespondentieadres]
    assert steps[1] == SetCorrespondentieadres(None)
    assert steps[0].payload["straat"] == "Kerkstraat"  # type: ignore[union-attr]


def test_changed_address_the_klant_already_has_is_only_pointed_at() -> None:
    current = stored(desired(), others=[StoredAdres(31, KERKSTRAAT)])
    assert plan_customer(desired(adres=KERKSTRAAT), current, DEFAULTS) == [
        SetCorrespondentieadres(31)
    ]


def test_address_with_unread_adressen_is_added() -> None:
    held = stored(desired())
    assert held.klant is not None
    current = held.model_copy(update={"klant": held.klant.model_copy(update={"adressen": None})})
    steps = plan_customer(desired(adres=KERKSTRAAT), current, DEFAULTS)
    assert step_types(steps) == [AddAdres, SetCorrespondentieadres]


@pytest.mark.parametrize(
    ("klant", "held_kind"),
    [(JANSEN, "zakelijk"), (ACME, "particulier")],
    ids=["want-particulier-has-zakelijk", "want-zakelijk-has-particulier"],
)
def test_existing_klant_of_other_kind_is_kept(
    klant: Persoon | Organisatie, held_kind: KlantKind
) -> None:
    want = desired(klant)
    assert plan_customer(want, stored(want, kind=held_kind), DEFAULTS) == []
    changed = replace(want, email="nieuw@example.nl")
    steps = plan_customer(changed, stored(want, kind=held_kind), DEFAULTS)
    assert step_types(steps) == [AddEmail]


# --- every payload validates against the Elements JSON Schema of its endpoint -------------

SCHEMA_CASES = [
    pytest.param(desired(), id="particulier-full"),
    pytest.param(desired(ACME), id="zakelijk-full"),
    pytest.param(
        desired(Persoon(voornaam=None, tussenvoegsel=None, achternaam="Jansen")),
        id="particulier-only-achternaam",
    ),
    pytest.param(
        desired(Persoon(voornaam="", tussenvoegsel="", achternaam="Jansen")),
        id="particulier-empty-strings",
    ),
    pytest.param(
        desired(adres=Adres("Kerkstraat", "5", None, "5678CD", "Utrecht")), id="no-toevoeging"
    ),
    pytest.param(desired(adres=Adres("Kerkstraat", None, "", None, "Utrecht")), id="no-nummer"),
    pytest.param(desired(ACME, adres=Adres(None, None, None, None, "Utrecht")), id="only-city"),
    pytest.param(desired(ACME, phone="+31 (0)20 123 4567"), id="zakelijk-intl-phone"),
    pytest.param(desired(adres=POSTBUS), id="postbus"),
    pytest.param(
        desired(ACME, adres=replace(POSTBUS, straat="Antwoordnummer", categorie="Antwoordnummer")),
        id="antwoordnummer",
    ),
]


@pytest.mark.parametrize("want", SCHEMA_CASES)
def test_new_dossier_payloads_validate_against_elements_schemas(want: DesiredCustomer) -> None:
    assert_payloads_valid(plan_customer(want, None, DEFAULTS), want.kind)


@pytest.mark.parametrize("want", SCHEMA_CASES)
def test_update_payloads_validate_against_the_held_klants_schemas(want: DesiredCustomer) -> None:
    """Contact data go to the klant Elements holds, which may be of the other kind."""
    old = desired(adres=KERKSTRAAT, email="oud@example.nl", phone="010-1111111")
    for kind in ("particulier", "zakelijk"):
        steps = plan_customer(want, stored(old, kind=kind), DEFAULTS)
        assert AddEmail in step_types(steps)
        assert_payloads_valid(steps, kind)


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("particulier", {"achternaam": "Jansen", "tussenvoegsel": ""}),
        ("klantdossiers", {"omschrijving": "x", "kantoor": {"id": 3}}),
        ("zakelijk_telefoonnummers", {"naam": "tel. 06", "type": "Algemeen"}),
    ],
    ids=["empty-tussenvoegsel", "no-dossierstatus", "letters-in-phone"],
)
def test_schema_check_rejects_invalid_payloads(name: str, payload: dict[str, object]) -> None:
    """The check above is not vacuous: the wrapped schemas validate their definition."""
    with pytest.raises(ValidationFailed):
        validate(name, payload)


def test_empty_name_and_address_parts_are_left_out_of_payloads() -> None:
    want = desired(
        Persoon(voornaam=None, tussenvoegsel="", achternaam="Jansen"),
        adres=Adres("Kerkstraat", "5", None, "", "Utrecht"),
    )
    steps = plan_customer(want, None, DEFAULTS)
    assert steps[1].payload == {"achternaam": "Jansen"}  # type: ignore[union-attr]
    assert steps[2].payload == {  # type: ignore[union-attr]
        "straat": "Kerkstraat",
        "nummer": "5",
        "plaatsnaam": "Utrecht",
        "land": "NL",
        "categorie": "Standaard",
        "type": "Correspondentieadres",
    }
