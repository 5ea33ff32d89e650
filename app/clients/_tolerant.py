"""Reading upstream records so that one odd record never breaks every event.

The three APIs are PHP applications, and PHP's JSON has habits a strict reader trips
over: an empty map is written as `[]`, an array whose keys are not 0..n-1 as an object,
an absent list as `null`. The helpers here read those shapes as what they mean, and
an item that still cannot be read is skipped with a warning (API, kind and id, never
the record itself, which holds personal data) instead of failing the whole listing.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import structlog
from pydantic import BaseModel, BeforeValidator, ValidationError

from app.errors import UnreadableRecord

log = structlog.get_logger(__name__)

M = TypeVar("M", bound=BaseModel)


def php_map(value: Any) -> dict[str, Any]:
    """A JSON object as it is; a list (PHP's empty map is `[]`) keyed by position; else empty."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    return {}


def php_list(value: Any) -> list[Any] | None:
    """A JSON array as it is; an object's values (PHP's array with gaps); None for anything else."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return None


def _empty_if_null(value: Any) -> Any:
    return [] if value is None else value


PhpMap = Annotated[dict[str, Any], BeforeValidator(php_map)]
"""A map field that reads `[]` and `null` as an empty map."""

StrList = Annotated[list[str], BeforeValidator(_empty_if_null)]
"""A list field that reads `null` as an empty list."""


def _item_id(raw: Any) -> str | None:
    item_id = raw.get("id") if isinstance(raw, dict) else None
    return str(item_id) if isinstance(item_id, str | int) else None


def problems(error: ValidationError) -> list[str]:
    """Where and what kind of problem, without the offending values."""
    return [f"{'.'.join(str(p) for p in e['loc']) or '.'}: {e['type']}" for e in error.errors()]


def parse_item(model: type[M], raw: Any, *, api: str) -> M | None:
    """The item as `model`, or None (with a warning) when it cannot be read as one."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        log.warning(
            "skipped an unreadable item",
            api=api,
            kind=model.__name__,
            item_id=_item_id(raw),
            problems=problems(error),
        )
        return None


def parse_items(model: type[M], items: list[Any], *, api: str) -> list[M]:
    """Every item that can be read as `model`; see `parse_item`."""
    parsed = (parse_item(model, raw, api=api) for raw in items)
    return [item for item in parsed if item is not None]


def read_record(model: type[M], raw: Any, *, api: str, what: str) -> M:
    """The one record an event is about: unreadable, it fails that event and names the field."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        detail = "; ".join(problems(error))
        raise UnreadableRecord(f"{api} {what} cannot be read ({detail})") from None
