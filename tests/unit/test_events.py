"""Input CloudEvents are parsed into typed events or reasoned rejections; results serialise."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from app.events import (
    ContractChanged,
    CustomerChanged,
    FormSubmitted,
    InputEvent,
    Rejection,
    ResultData,
    ResultError,
    ResultEvent,
    parse_event,
)

DROP = object()
VALID_DATA: dict[str, dict[str, Any]] = {
    "customer.changed": {"dossierNumber": "100234", "portalCustomerId": "c-1"},
    "contract.changed": {"contractId": "k-9", "dossierNumber": "100234"},
    "form.submitted": {"customerId": "c-1", "formId": "f-2", "fields": {"phone": "0612345678"}},
}


def event(event_type: str = "customer.changed", **changes: Any) -> bytes:
    """A structured CloudEvent; a change to DROP leaves that attribute out."""
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "test",
        "type": event_type,
        "time": "2025-03-01T12:00:00+01:00",
        "data": VALID_DATA.get(event_type, {"dossierNumber": "100234"}),
    }
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not DROP}).encode()


def rejection(raw: bytes | None) -> Rejection:
    parsed = parse_event(raw)
    assert isinstance(parsed, Rejection), parsed
    return parsed


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("customer.changed", CustomerChanged(dossierNumber="100234", portalCustomerId="c-1")),
        ("contract.changed", ContractChanged(contractId="k-9", dossierNumber="100234")),
        (
            "form.submitted",
            FormSubmitted(customerId="c-1", formId="f-2", fields={"phone": "0612345678"}),
        ),
    ],
    ids=["customer", "contract", "form"],
)
def test_valid_event_of_each_type_gives_typed_input_event(event_type: str, data: Any) -> None:
    assert parse_event(event(event_type)) == InputEvent(
        id="evt-1",
        type=event_type,  # type: ignore[arg-type]
        time=datetime(2025, 3, 1, 11, 0, tzinfo=UTC),
        data=data,
    )


def test_numeric_dossier_number_and_id_are_read_as_text() -> None:
    parsed = parse_event(event(id=42, data={"dossierNumber": 100234}))
    assert isinstance(parsed, InputEvent)
    assert parsed.id == "42"
    assert parsed.data == CustomerChanged(dossierNumber="100234")


@pytest.mark.parametrize(
    "raw", [b"{", b"\xff", b"", None], ids=["truncated", "not-utf8", "empty", "none"]
)
def test_non_json_is_rejected_as_not_json(raw: bytes | None) -> None:
    assert rejection(raw).reason == "not_json"


@pytest.mark.parametrize("raw", [b"[1]", b"42", b'"text"', b"null"])
def test_json_that_is_not_an_object_is_rejected_as_not_object(raw: bytes) -> None:
    assert rejection(raw).reason == "not_object"


@pytest.mark.parametrize("attribute", ["type", "time", "data"])
def test_missing_envelope_attribute_is_rejected_and_named_keeping_the_id(attribute: str) -> None:
    rejected = rejection(event(**{attribute: DROP}))
    assert rejected.reason == "missing_attribute"
    assert attribute in rejected.message
    assert rejected.event_id == "evt-1"


def test_missing_id_is_rejected_without_event_id() -> None:
    rejected = rejection(event(id=DROP))
    assert (rejected.reason, rejected.event_id) == ("missing_attribute", None)
    assert rejected.event_type == "customer.changed"
    assert "id" in rejected.message


def test_unknown_type_is_rejected_carrying_the_given_type() -> None:
    rejected = rejection(event("customer.deleted"))
    assert rejected.reason == "unknown_type"
    assert (rejected.event_id, rejected.event_type) == ("evt-1", "customer.deleted")


@pytest.mark.parametrize("event_type", ["customer.changed", "contract.changed"])
def test_missing_dossier_number_is_rejected_as_missing_attribute(event_type: str) -> None:
    data = {k: v for k, v in VALID_DATA[event_type].items() if k != "dossierNumber"}
    rejected = rejection(event(event_type, data=data))
    assert rejected.reason == "missing_attribute"
    assert "data.dossierNumber" in rejected.message
    assert (rejected.event_id, rejected.event_type) == ("evt-1", event_type)


@pytest.mark.parametrize(
    "changes",
    [{"time": "yesterday"}, {"data": [1]}, {"data": {"dossierNumber": "  "}}],
    ids=["bad-time", "data-not-object", "blank-dossier-number"],
)
def test_malformed_but_present_attribute_is_rejected_as_invalid_data(
    changes: dict[str, Any],
) -> None:
    assert rejection(event(**changes)).reason == "invalid_data"


def test_rejection_result_serialises_as_cloudevent_with_null_event_id() -> None:
    rejected = rejection(b"[1]")
    result = ResultEvent(
        subject=None,
        data=ResultData(
            eventId=rejected.event_id,
            eventType=rejected.event_type,
            status="rejected",
            error=ResultError(code=rejected.reason, message=rejected.message, retryable=False),
        ),
    )
    document = json.loads(result.to_bytes())
    assert document["type"] == "elements.sync.result"
    assert document["specversion"] == "1.0"
    assert document["datacontenttype"] == "application/json"
    assert {"id", "source", "time"} <= document.keys()
    assert document["data"]["eventId"] is None
    assert document["data"]["status"] == "rejected"
    assert document["data"]["error"]["code"] == "not_object"


@pytest.mark.parametrize(
    ("raw", "reason", "says"),
    [
        (None, "not_json", "null record"),
        (b"[" * 100_000 + b"]" * 100_000, "not_json", "nested too deeply"),
        (b'{"id": ' + b"9" * 5000 + b"}", "not_json", "digits"),
        (b"\xff\xfe{}", "not_json", "not JSON"),
        (b" " * (1024 * 1024 + 1), "too_large", "events are at most"),
    ],
    ids=["null", "nested", "long-number", "not-utf8", "megabyte"],
)
def test_anything_a_producer_can_send_is_rejected_with_a_reason_never_raised(
    raw: bytes | None, reason: str, says: str
) -> None:
    found = rejection(raw)

    assert found.reason == reason
    assert says in found.message


def test_the_size_limit_is_a_parameter() -> None:
    assert parse_event(event(), max_bytes=10) == Rejection(
        "too_large", f"message is {len(event())} bytes; events are at most 10"
    )
