"""Values Elements would refuse for their length fail the event before any write."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from app.domain.model import Adres, DesiredCustomer, Organisatie, Persoon
from app.errors import InvalidCustomerData
from app.pipeline.apply import MAX_LENGTHS, AddAdres, check_lengths, written
from app.pipeline.customer_plan import CUSTOMER_ORIGINS, DossierDefaults, plan_customer
from app.sandbox.simulators.elements_schemas import SCHEMA_DIR

SCHEMAS = {
    "klantdossier": ("klantdossiers",),
    "klant": ("particulier", "zakelijk"),
    "adres": ("particulier_adressen", "zakelijk_adressen"),
    "emailadres": ("particulier_emailadressen", "zakelijk_emailadressen"),
    "telefoonnummer": ("particulier_telefoonnummers", "zakelijk_telefoonnummers"),
}
DEFAULTS = DossierDefaults(kantoor_id=3, dossierstatus_id=1)
ADRES = Adres("Hoofdstraat", "12", "A", "1234AB", "Amsterdam")


def properties(schema_name: str) -> dict[str, Any]:
    schema = json.loads((SCHEMA_DIR / f"{schema_name}.json").read_text())
    for definition in schema.get("definitions", {}).values():
        return definition["properties"]  # type: ignore[no-any-return]
    return schema["properties"]  # type: ignore[no-any-return]


def schema_limit(prop: dict[str, Any]) -> int | None:
    """A string's maxLength, or the upper bound of a pattern like `^[0-9 ()+-]{1,255}$`."""
    if "maxLength" in prop:
        return int(prop["maxLength"])
    bound = re.search(r"\{1,(\d+)\}\$$", prop.get("pattern", ""))
    return int(bound.group(1)) if bound else None


@pytest.mark.parametrize("resource", sorted(MAX_LENGTHS))
def test_the_limits_table_is_the_one_the_elements_schemas_state(resource: str) -> None:
    for field, limit in MAX_LENGTHS[resource].items():
        stated = {
            schema_limit(props[field])
            for props in map(properties, SCHEMAS[resource])
            if field in props
        }
        assert stated == {limit}, f"{resource}.{field}"


@pytest.mark.parametrize(
    "klant",
    [Persoon("Piet", "van", "Jansen"), Organisatie("Acme BV")],
    ids=["particulier", "zakelijk"],
)
def test_every_free_string_a_plan_sends_has_its_limit_in_the_table(
    klant: Persoon | Organisatie,
) -> None:
    want = DesiredCustomer("100234", klant, ADRES, "piet@example.nl", "06-12345678")
    enums = {"land", "categorie", "type"}
    sent = [written(step) for step in plan_customer(want, None, DEFAULTS)]
    for resource, payload in filter(None, sent):
        strings = {name for name, value in payload.items() if isinstance(value, str)}
        assert strings - enums <= set(MAX_LENGTHS[resource]), resource


def adres_step(**parts: str) -> list[AddAdres]:
    fields = {"straat": "Hoofdstraat", "nummer": "12", "plaatsnaam": "Amsterdam", **parts}
    return [AddAdres({**fields, "type": "Correspondentieadres"})]


def test_a_nummer_longer_than_25_fails_naming_the_field_and_its_source() -> None:
    nummer = "1" * 26
    with pytest.raises(InvalidCustomerData) as raised:
        check_lengths(adres_step(nummer=nummer), CUSTOMER_ORIGINS)
    assert str(raised.value) == (
        "adres.nummer from the portal's address is 26 characters; Elements allows 25"
    )
    assert raised.value.code == "invalid_customer_data"


def test_a_nummer_of_exactly_25_passes() -> None:
    check_lengths(adres_step(nummer="1" * 25), CUSTOMER_ORIGINS)


def test_a_string_longer_than_255_fails_naming_the_field_and_its_source() -> None:
    want = DesiredCustomer("100234", Persoon(None, None, "J" * 256), None, None, None)
    with pytest.raises(
        InvalidCustomerData, match=r"^klant\.achternaam from ANVA's lastName is 256 characters"
    ):
        check_lengths(plan_customer(want, None, DEFAULTS), CUSTOMER_ORIGINS)


def test_a_string_of_exactly_255_passes() -> None:
    check_lengths(adres_step(plaatsnaam="A" * 255), CUSTOMER_ORIGINS)


def test_the_whole_plan_is_checked_not_only_its_first_write() -> None:
    """The long value sits in the last step: nothing before it may be written either."""
    want = DesiredCustomer(
        "100234", Persoon(None, None, "Jansen"), Adres("S", "1", "t" * 256, None, "X"), None, None
    )
    steps = plan_customer(want, None, DEFAULTS)
    with pytest.raises(InvalidCustomerData, match=r"^adres\.toevoeging "):
        check_lengths(steps, CUSTOMER_ORIGINS)
