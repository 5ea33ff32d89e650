"""The event contract in code: CloudEvents in, one `elements.sync.result` out.

Parsing never raises: unusable input becomes a `Rejection` that names the reason,
so the consumer can answer every message with exactly one result.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

EventType = Literal["customer.changed", "contract.changed", "form.submitted"]
EVENT_TYPES: tuple[EventType, ...] = ("customer.changed", "contract.changed", "form.submitted")
Status = Literal["succeeded", "failed", "rejected"]
RejectReason = Literal[
    "too_large", "not_json", "not_object", "missing_attribute", "unknown_type", "invalid_data"
]

CLOUDEVENTS_JSON = "application/cloudevents+json"
"""The content type of every event we write: structured-mode CloudEvents."""
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
"""An event of ours is a few hundred bytes; a megabyte is already far beyond any real one."""

NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class CustomerChanged(_Data):
    dossierNumber: NonEmpty
    portalCustomerId: NonEmpty | None = None


class ContractChanged(_Data):
    contractId: NonEmpty
    dossierNumber: NonEmpty


class FormSubmitted(_Data):
    customerId: NonEmpty
    formId: NonEmpty
    fields: dict[str, Any]


EventData = CustomerChanged | ContractChanged | FormSubmitted
_DATA_MODELS: dict[str, type[EventData]] = {
    "customer.changed": CustomerChanged,
    "contract.changed": ContractChanged,
    "form.submitted": FormSubmitted,
}


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    id: NonEmpty
    type: NonEmpty
    time: datetime
    data: dict[str, Any]
    specversion: str | None = None
    source: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class InputEvent:
    """A usable input event with its typed data."""

    id: str
    type: EventType
    time: datetime
    data: EventData


@dataclass(frozen=True)
class Rejection:
    """Why an input message is unusable; `event_id`/`event_type` when they could be read."""

    reason: RejectReason
    message: str
    event_id: str | None = None
    event_type: str | None = None


def _first_error(error: ValidationError) -> tuple[bool, str]:
    """(missing?, text) of the first problem, with the attribute named."""
    item = error.errors()[0]
    where = ".".join(str(p) for p in item["loc"]) or "event"
    return item["type"] == "missing", f"{where}: {item['msg']}"


def parse_event(
    raw: bytes | None, *, max_bytes: int = DEFAULT_MAX_EVENT_BYTES
) -> InputEvent | Rejection:
    """Turn the bytes of a Kafka message into an event or a reasoned rejection.

    Anything a producer can put in a message ends here: a null value, bytes that are
    not UTF-8, JSON nested deeper than the parser's recursion limit (`RecursionError`),
    a number too long for `int` (`ValueError`), or megabytes no event of ours needs.
    """
    if raw is None:
        return Rejection("not_json", "message has no value (a null record)")
    if len(raw) > max_bytes:
        return Rejection(
            "too_large", f"message is {len(raw)} bytes; events are at most {max_bytes}"
        )
    try:
        document = json.loads(raw)
    except RecursionError:
        return Rejection("not_json", "message is JSON nested too deeply to read")
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        return Rejection("not_json", f"message is not JSON: {str(error)[:200]}")
    if not isinstance(document, dict):
        return Rejection("not_object", f"message is JSON {type(document).__name__}, not an object")
    raw_id = document.get("id")
    event_id = str(raw_id) if isinstance(raw_id, str | int) and str(raw_id).strip() else None
    raw_type = document.get("type")
    event_type = raw_type if isinstance(raw_type, str) else None
    try:
        envelope = _Envelope.model_validate(document)
    except ValidationError as error:
        missing, text = _first_error(error)
        reason: RejectReason = "missing_attribute" if missing else "invalid_data"
        return Rejection(reason, text, event_id, event_type)
    if envelope.type not in _DATA_MODELS:
        known = ", ".join(EVENT_TYPES)
        return Rejection(
            "unknown_type", f"unknown type {envelope.type!r} (known: {known})", event_id, event_type
        )
    kind: EventType = envelope.type  # type: ignore[assignment]
    try:
        data = _DATA_MODELS[kind].model_validate(envelope.data)
    except ValidationError as error:
        missing, text = _first_error(error)
        reason = "missing_attribute" if missing else "invalid_data"
        return Rejection(reason, f"data.{text}", event_id, kind)
    return InputEvent(id=envelope.id, type=kind, time=envelope.time, data=data)


class Operation(BaseModel):
    """One write Elements accepted: what the Elements client returns, the pipeline adds up
    over an event's attempts, and the result reports as it is — one record from the wire
    to the result. `resourceId` is what a POST created (from its `Location`) or what a
    PATCH pointed at; `path` has no query string, so the access token is never in it."""

    model_config = ConfigDict(frozen=True)

    method: Literal["POST", "PATCH", "PUT"]
    path: str
    status: int
    resourceId: int


class ResultError(BaseModel):
    code: str
    message: str
    retryable: bool


class ResultData(BaseModel):
    eventId: str | None
    eventType: str | None
    status: Status
    dossierId: int | None = None
    operations: list[Operation] = Field(default_factory=list)
    error: ResultError | None = None
    attempts: int = 1
    durationMs: int = 0
    ignoredFields: list[str] | None = None
    servedBy: str | None = None
    """The input id of the event whose sync also answered this one (coalesced), if any."""


class ResultEvent(BaseModel):
    """The CloudEvents envelope of a result; keyed like its input on the topic."""

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    source: str = "elements-sync"
    type: Literal["elements.sync.result"] = "elements.sync.result"
    time: datetime = Field(default_factory=lambda: datetime.now(UTC))
    subject: str | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: ResultData

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()


def input_event_bytes(
    event_type: EventType, data: dict[str, Any], *, event_id: str | None = None
) -> bytes:
    """A structured CloudEvent as upstream publishers send it (used by ingress, demo, tests)."""
    document = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": "elements-sync",
        "type": event_type,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
    }
    return json.dumps(document).encode()
