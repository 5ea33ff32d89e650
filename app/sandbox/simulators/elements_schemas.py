"""Request validation for the Elements simulator, with the spec's own JSON Schemas.

The schemas in ``schemas/elements`` are copied verbatim from the Elements API 1.9.6
documentation. Elements validates with a draft-4 validator plus three custom
formats, and answers failures with a HAL "Validatie fouten" document; this module
reproduces both so a client meets the same refusals here as in production.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator, FormatChecker, ValidationError

SCHEMA_DIR = Path(__file__).parent / "schemas" / "elements"

# Schemas the spec wraps in ``{"definitions": {name: ...}}``: validating against the
# wrapper itself would accept any body, so these validate against the definition.
_WRAPPED = {"klantdossiers": "dossier", "particulier": "persoon"}

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT = re.compile(r"^-?\d+$")


def _is_datatype_int(value: object) -> bool:
    if isinstance(value, str):
        return bool(_INT.match(value))
    return not isinstance(value, bool)


def _is_datatype_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return parse_date(value) is not None


def _is_datatype_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    return parse_datetime(value) is not None


# Elements' own formats; unregistered formats would silently pass any value.
FORMATS = FormatChecker(formats=())
FORMATS.checks("datatype-int")(_is_datatype_int)
FORMATS.checks("datatype-date")(_is_datatype_date)
FORMATS.checks("datatype-datetime")(_is_datatype_datetime)


def parse_date(value: str) -> date | None:
    """``YYYY-MM-DD`` only: Elements refuses timestamps where it wants a date."""
    if not _DATE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def parse_datetime(value: str) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` (the spec's examples) or a full ISO 8601 timestamp."""
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        pass
    if "T" not in value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class ValidationFailed(Exception):
    """A request the spec refuses with 400 "Validatie fouten"."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__(errors)
        self.errors = errors

    @classmethod
    def at(cls, path: str, message: str) -> ValidationFailed:
        return cls([(path, message)])

    def body(self) -> dict[str, Any]:
        return {
            "total": len(self.errors),
            "message": "Validatie fouten",
            "_links": {
                "help": {"href": "http://api.fasterforward.nl/", "title": "Validatie informatie"}
            },
            "_embedded": {
                "errors": [{"path": path, "message": message} for path, message in self.errors]
            },
        }


@cache
def _validator(name: str) -> Draft4Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8"))
    definition = _WRAPPED.get(name)
    if definition is not None:
        schema = {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}
    Draft4Validator.check_schema(schema)
    return Draft4Validator(schema, format_checker=FORMATS)


def validate(name: str, body: object) -> dict[str, Any]:
    """Return ``body`` as a JSON object valid for schema ``name`` or raise ValidationFailed."""
    if not isinstance(body, dict):
        raise ValidationFailed.at("", "Request body moet een JSON object zijn")
    errors: list[tuple[str, str]] = []
    for error in sorted(_validator(name).iter_errors(body), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(part) for part in error.absolute_path)
        errors.append((path, _message(error)))
    if errors:
        raise ValidationFailed(errors)
    return body


def _message(error: ValidationError) -> str:
    """Phrase the common failures like Elements' PHP validator; jsonschema's text otherwise."""
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
        missing = [name for name in required if name not in instance]
        return f"Required properties missing: {json.dumps(missing)}"
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        known = schema.get("properties", {})
        extra = ", ".join(name for name in instance if name not in known)
        return f"The property {extra} is not defined and the definition does not allow additional properties"
    return str(error.message)
