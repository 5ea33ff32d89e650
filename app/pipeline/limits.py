"""Values Elements would refuse for their length, found before a plan's first write (pure).

Elements answers 400 to a string beyond its schema's `maxLength`. Sending one only to
draw that answer costs a request and leaves the event half applied (the plan's earlier
writes stand), so the whole plan is checked before anything is written. Only what
carries no meaning is trimmed, by the mapping and the form: surrounding whitespace,
runs of spaces, a house number's leading zeros. A value still too long fails the event
with a message that names the Elements field and where the value came from — not the
value: results are read more widely than the customer's file.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.errors import InvalidCustomerData
from app.pipeline.model import Payload
from app.pipeline.steps import (
    AddAdres,
    AddEmail,
    AddPhone,
    CreateDossier,
    CreateKlant,
    Step,
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
