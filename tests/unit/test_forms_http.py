"""The forms ingress speaks the MijnKlantportaal Forms protocol and answers 2xx only when it may."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from structlog.testing import capture_logs

from app.errors import CustomerNotFound, UpstreamUnavailable
from app.events import FormSubmitted, InputEvent, parse_event
from app.settings import FormsSettings
from app.web.forms import forms_routes

CUSTOMER = "cst_abc12345def678"
FORM = "frm_123abc456def"
IDS = {"X-Customer-Id": CUSTOMER, "X-Form-Id": FORM}
SECRET = "s3cret-value"


class RecordingPublisher:
    """Records what was published; can fail, or hold each call until `release` is set."""

    def __init__(self, *, fail: bool = False, hold: bool = False) -> None:
        self.published: list[tuple[str, bytes]] = []
        self.fail = fail
        self.hold = hold
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def publish_form(self, customer_id: str, event: bytes) -> None:
        self.called.set()
        if self.fail:
            raise ConnectionError("broker unreachable")
        if self.hold:
            await self.release.wait()
        self.published.append((customer_id, event))


class DictPrefill:
    """Prefill values by customer id; unknown ids raise CustomerNotFound, or `error` if set."""

    def __init__(self, values: dict[str, dict[str, str]], error: Exception | None = None) -> None:
        self.values = values
        self.error = error

    async def prefill(self, customer_id: str) -> dict[str, str]:
        if self.error is not None:
            raise self.error
        if customer_id not in self.values:
            raise CustomerNotFound(f"unknown customer {customer_id}")
        return self.values[customer_id]


ClientFactory = Callable[..., Any]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    """Build a client on a fresh app: `make_client(publisher=..., prefill=..., **settings)`."""
    clients: list[httpx.AsyncClient] = []

    def make(
        publisher: RecordingPublisher | None = None,
        prefill: DictPrefill | None = None,
        **settings: Any,
    ) -> httpx.AsyncClient:
        forms_settings = FormsSettings(
            **{"shared_secret": None, "allow_anonymous": True, **settings}
        )
        app = Starlette(
            routes=forms_routes(
                publisher or RecordingPublisher(), prefill or DictPrefill({}), forms_settings
            )
        )
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def only_event(publisher: RecordingPublisher) -> tuple[str, dict[str, Any]]:
    """The single published (key, CloudEvent document), checked to parse as form.submitted."""
    assert len(publisher.published) == 1
    key, raw = publisher.published[0]
    event = parse_event(raw)
    assert isinstance(event, InputEvent)
    assert event.type == "form.submitted"
    assert isinstance(event.data, FormSubmitted)
    document: dict[str, Any] = json.loads(raw)
    return key, document


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


# --- submissions: the happy paths -------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_json_body_submission_publishes_one_form_submitted_event_keyed_by_customer(
    make_client: ClientFactory, method: str
) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher)
    fields = {"name": "John Doe", "age": 20, "email": "john@example.nl"}

    response = await client.request(method, "/forms/submissions", headers=IDS, json=fields)

    assert response.status_code == 202
    key, document = only_event(publisher)
    assert key == CUSTOMER
    assert document["specversion"] == "1.0"
    assert document["type"] == "form.submitted"
    assert document["data"] == {"customerId": CUSTOMER, "formId": FORM, "fields": fields}
    assert response.json() == {"status": "accepted", "eventId": document["id"]}


async def test_get_submission_publishes_query_parameters_as_fields_last_repeat_winning(
    make_client: ClientFactory,
) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher)

    response = await client.get(
        "/forms/submissions",
        headers=IDS,
        params=[("name", "John Doe"), ("city", "Utrecht"), ("city", "Amsterdam")],
    )

    assert response.status_code == 202
    key, document = only_event(publisher)
    assert key == CUSTOMER
    assert document["data"] == {
        "customerId": CUSTOMER,
        "formId": FORM,
        "fields": {"name": "John Doe", "city": "Amsterdam"},
    }
    assert response.json()["eventId"] == document["id"]


async def test_submission_is_answered_only_after_the_publisher_returned(
    make_client: ClientFactory,
) -> None:
    publisher = RecordingPublisher(hold=True)
    client = make_client(publisher)

    request = asyncio.create_task(
        client.post("/forms/submissions", headers=IDS, json={"email": "a@b.nl"})
    )
    await asyncio.wait_for(publisher.called.wait(), 2)
    await asyncio.sleep(0.05)
    assert not request.done()
    assert publisher.published == []

    publisher.release.set()
    response = await asyncio.wait_for(request, 2)

    assert response.status_code == 202
    assert len(publisher.published) == 1


async def test_each_submission_gets_its_own_event_id(make_client: ClientFactory) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher)

    first = await client.post("/forms/submissions", headers=IDS, json={"a": "1"})
    second = await client.post("/forms/submissions", headers=IDS, json={"a": "1"})

    assert first.json()["eventId"] != second.json()["eventId"]


# --- submissions: refused requests ------------------------------------------------------


@pytest.mark.parametrize("missing", ["X-Customer-Id", "X-Form-Id"])
async def test_missing_id_header_is_400_naming_it_and_publishes_nothing(
    make_client: ClientFactory, missing: str
) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher)
    headers = {name: value for name, value in IDS.items() if name != missing}

    response = await client.post("/forms/submissions", headers=headers, json={"a": "1"})

    body = assert_error(response, 400, "missing_header")
    assert missing in body["message"]
    assert publisher.published == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Customer-Id", "123abc"),
        ("X-Customer-Id", "cst_"),
        ("X-Customer-Id", "cst_abc-def"),
        ("X-Customer-Id", "frm_abc123"),
        ("X-Customer-Id", "cst_" + "a" * 65),
        ("X-Form-Id", "cst_abc123"),
        ("X-Form-Id", "frm_abc 123"),
    ],
)
async def test_malformed_id_header_is_400_and_publishes_nothing(
    make_client: ClientFactory, name: str, value: str
) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher)

    response = await client.post(
        "/forms/submissions", headers={**IDS, name: value}, json={"a": "1"}
    )

    body = assert_error(response, 400, "invalid_header")
    assert name in body["message"]
    assert publisher.published == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"42",
        b"null",
        b'{"a": NaN}',
        b"\xff\xfe{",
        b"[" * 5000,
    ],
)
async def test_body_that_is_not_a_json_object_is_400_and_publishes_nothing(
    make_client: ClientFactory, body: bytes
) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher)

    response = await client.post("/forms/submissions", headers=IDS, content=body)

    assert_error(response, 400, "invalid_body")
    assert publisher.published == []


async def test_body_over_the_declared_limit_is_413(make_client: ClientFactory) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher, max_body_bytes=100)

    response = await client.post("/forms/submissions", headers=IDS, json={"comment": "x" * 200})

    assert_error(response, 413, "body_too_large")
    assert publisher.published == []


async def test_body_at_the_limit_is_accepted(make_client: ClientFactory) -> None:
    body = json.dumps({"comment": "x" * 80}).encode()
    client = make_client(max_body_bytes=len(body))

    response = await client.post("/forms/submissions", headers=IDS, content=body)

    assert response.status_code == 202


async def test_streamed_body_without_length_is_cut_off_once_over_the_limit(
    make_client: ClientFactory,
) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher, max_body_bytes=100)
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"comment": "'
        for index in range(50):
            sent.append(index)
            yield b"x" * 40
        yield b'"}'

    response = await client.post("/forms/submissions", headers=IDS, content=chunks())

    assert_error(response, 413, "body_too_large")
    assert len(sent) < 5, "the body must not be read to its end"
    assert publisher.published == []


async def test_publisher_failure_is_503_kafka_unavailable_with_retry_after(
    make_client: ClientFactory,
) -> None:
    client = make_client(RecordingPublisher(fail=True))

    response = await client.post("/forms/submissions", headers=IDS, json={"a": "1"})

    assert_error(response, 503, "kafka_unavailable")
    assert response.headers["Retry-After"] == "5"


async def test_publisher_hanging_past_the_timeout_is_503(make_client: ClientFactory) -> None:
    publisher = RecordingPublisher(hold=True)
    client = make_client(publisher, publish_timeout_s=0.05)

    response = await asyncio.wait_for(
        client.post("/forms/submissions", headers=IDS, json={"a": "1"}), 2
    )

    assert_error(response, 503, "kafka_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert publisher.published == []


async def test_publish_failure_log_names_no_field_value(make_client: ClientFactory) -> None:
    client = make_client(RecordingPublisher(fail=True))

    with capture_logs() as logs:
        await client.post("/forms/submissions", headers=IDS, json={"email": "private@example.nl"})

    assert logs, "the failure is logged"
    assert "private@example.nl" not in repr(logs)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/forms/submissions"),
        ("HEAD", "/forms/submissions"),
        ("PUT", "/forms/prefill"),
        ("DELETE", "/forms/prefill"),
    ],
)
async def test_unlisted_method_is_405_and_publishes_nothing(
    make_client: ClientFactory, method: str, path: str
) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher)

    response = await client.request(method, path, headers=IDS)

    assert response.status_code == 405
    assert publisher.published == []


# --- authentication ---------------------------------------------------------------------


async def test_header_secret_right_is_accepted(make_client: ClientFactory) -> None:
    client = make_client(shared_secret=SecretStr(SECRET))

    response = await client.post(
        "/forms/submissions", headers={**IDS, "X-Forms-Secret": SECRET}, json={"a": "1"}
    )

    assert response.status_code == 202


@pytest.mark.parametrize("given", [None, "", "wrong", SECRET + "x", "sécret".encode()])
async def test_header_secret_wrong_or_missing_is_401_before_any_other_check(
    make_client: ClientFactory, given: str | bytes | None
) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher, shared_secret=SecretStr(SECRET))
    headers = {} if given is None else {"X-Forms-Secret": given}  # no id headers either

    response = await client.post("/forms/submissions", headers=headers, json={"a": "1"})

    assert_error(response, 401, "unauthorized")
    assert publisher.published == []


async def test_header_secret_with_non_ascii_characters_matches_its_utf8_bytes(
    make_client: ClientFactory,
) -> None:
    client = make_client(shared_secret=SecretStr("sécret"))

    response = await client.get(
        "/forms/prefill", headers={**IDS, "X-Forms-Secret": "sécret".encode()}
    )

    assert response.status_code == 200


async def test_without_a_secret_the_forms_routes_are_closed_with_503(
    make_client: ClientFactory,
) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher, allow_anonymous=False)

    submitted = await client.post("/forms/submissions", headers=IDS, json={"a": "1"})
    prefilled = await client.get("/forms/prefill", headers=IDS)

    assert_error(submitted, 503, "not_configured")
    assert_error(prefilled, 503, "not_configured")
    assert publisher.published == []


@pytest.mark.parametrize("user", ["portal", "mijnklantportaal", ""])
async def test_the_secret_as_basic_password_is_accepted_with_any_user_name(
    make_client: ClientFactory, user: str
) -> None:
    client = make_client(shared_secret=SecretStr(SECRET), allow_anonymous=False)

    response = await client.get("/forms/prefill", headers=IDS, auth=httpx.BasicAuth(user, SECRET))

    assert response.status_code == 200


async def test_basic_credentials_right_are_accepted_on_both_routes(
    make_client: ClientFactory,
) -> None:
    client = make_client(shared_secret=SecretStr(SECRET))
    auth = httpx.BasicAuth("portal", SECRET)

    submitted = await client.post("/forms/submissions", headers=IDS, json={"a": "1"}, auth=auth)
    prefilled = await client.get("/forms/prefill", headers=IDS, auth=auth)

    assert submitted.status_code == 202
    assert prefilled.status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        httpx.BasicAuth("portal", "wrong"),
        "Bearer " + SECRET,
        "Basic not*base64",
    ],
)
async def test_basic_credentials_wrong_or_missing_are_401_with_a_challenge(
    make_client: ClientFactory, authorization: httpx.BasicAuth | str | None
) -> None:
    publisher = RecordingPublisher()
    client = make_client(publisher, shared_secret=SecretStr(SECRET))
    headers = dict(IDS)
    auth = None
    if isinstance(authorization, str):
        headers["Authorization"] = authorization
    else:
        auth = authorization

    for response in (
        await client.post("/forms/submissions", headers=headers, json={"a": "1"}, auth=auth),
        await client.get("/forms/prefill", headers=headers, auth=auth),
    ):
        assert_error(response, 401, "unauthorized")
        assert response.headers["WWW-Authenticate"] == 'Basic realm="elements-sync"'
    assert publisher.published == []


async def test_without_a_secret_no_credentials_are_needed(make_client: ClientFactory) -> None:
    client = make_client()

    response = await client.post("/forms/submissions", headers=IDS, json={"a": "1"})

    assert response.status_code == 202


# --- prefill ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_prefill_answers_only_known_non_empty_prefill_fields(
    make_client: ClientFactory, method: str
) -> None:
    values = {
        "email": "john@example.nl",
        "phone": "",
        "street": "Dorpsstraat",
        "houseNumber": "12",
        "postcode": "1234 AB",
        "city": "Utrecht",
        "nationality": "Dutch",
        "name": "John Doe",
    }
    client = make_client(prefill=DictPrefill({CUSTOMER: values}))

    response = await client.request(
        method, "/forms/prefill", headers={**IDS, "Accept": "application/json"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "email": "john@example.nl",
        "street": "Dorpsstraat",
        "houseNumber": "12",
        "postcode": "1234 AB",
        "city": "Utrecht",
    }


async def test_prefill_post_body_is_ignored(make_client: ClientFactory) -> None:
    client = make_client(prefill=DictPrefill({CUSTOMER: {"city": "Utrecht"}}))

    response = await client.post("/forms/prefill", headers=IDS, content=b"not even json")

    assert response.status_code == 200
    assert response.json() == {"city": "Utrecht"}


async def test_prefill_post_body_over_the_limit_is_413(make_client: ClientFactory) -> None:
    client = make_client(prefill=DictPrefill({CUSTOMER: {"city": "Utrecht"}}), max_body_bytes=10)

    response = await client.post("/forms/prefill", headers=IDS, content=b"x" * 11)

    assert_error(response, 413, "body_too_large")


async def test_prefill_for_an_unknown_customer_is_200_empty_object(
    make_client: ClientFactory,
) -> None:
    client = make_client(prefill=DictPrefill({}))

    response = await client.get("/forms/prefill", headers=IDS)

    assert response.status_code == 200
    assert response.json() == {}


async def test_prefill_with_an_upstream_down_is_503(make_client: ClientFactory) -> None:
    client = make_client(prefill=DictPrefill({}, error=UpstreamUnavailable("ANVA answered 502")))

    response = await client.get("/forms/prefill", headers=IDS)

    assert_error(response, 503, "upstream_unavailable")


@pytest.mark.parametrize("missing", ["X-Customer-Id", "X-Form-Id"])
async def test_prefill_without_an_id_header_is_400(
    make_client: ClientFactory, missing: str
) -> None:
    client = make_client(prefill=DictPrefill({CUSTOMER: {"city": "Utrecht"}}))
    headers = {name: value for name, value in IDS.items() if name != missing}

    response = await client.get("/forms/prefill", headers=headers)

    assert_error(response, 400, "missing_header")


async def test_prefill_with_a_malformed_customer_id_is_400(make_client: ClientFactory) -> None:
    client = make_client()

    response = await client.get("/forms/prefill", headers={**IDS, "X-Customer-Id": "1234"})

    assert_error(response, 400, "invalid_header")


@pytest.mark.parametrize(
    "accept", ["text/html", "application/xml, text/html;q=0.9", "application/json;q=0"]
)
async def test_prefill_for_an_accept_without_json_is_406(
    make_client: ClientFactory, accept: str
) -> None:
    client = make_client(prefill=DictPrefill({CUSTOMER: {"city": "Utrecht"}}))

    response = await client.get("/forms/prefill", headers={**IDS, "Accept": accept})

    assert_error(response, 406, "not_acceptable")


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "application/json",
        "*/*",
        "application/*",
        "text/html, application/json; q=0.5",
        "Application/JSON; charset=utf-8",
    ],
)
async def test_prefill_for_an_accept_allowing_json_is_200(
    make_client: ClientFactory, accept: str | None
) -> None:
    client = make_client(prefill=DictPrefill({CUSTOMER: {"city": "Utrecht"}}))
    headers = dict(IDS)
    if accept is not None:
        headers["Accept"] = accept

    response = await client.get("/forms/prefill", headers=headers)

    assert response.status_code == 200
    assert response.json() == {"city": "Utrecht"}


# --- unexpected failures ----------------------------------------------------------------


async def test_unexpected_exception_is_a_logged_500_without_traceback_or_values(
    make_client: ClientFactory,
) -> None:
    client = make_client(prefill=DictPrefill({}, error=RuntimeError("bug near " + SECRET)))

    with capture_logs() as logs:
        response = await client.get("/forms/prefill", headers=IDS)

    body = assert_error(response, 500, "internal_error")
    assert body == {"error": "internal_error", "message": "internal error"}
    assert SECRET not in response.text
    assert [entry["event"] for entry in logs] == ["forms_request_failed"]
    assert logs[0]["log_level"] == "error"
