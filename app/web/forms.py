"""The MijnKlantportaal Forms ingress: the portal's "sending data" and "retrieving data" calls.

A submission is answered 2xx only once its `form.submitted` event is durably in Kafka: the
portal tells the customer the form was sent, so a 2xx is our promise that the worker will see
it, and anything less must be an error the customer can see and act on. Prefill
answers 200 whenever it can, because any other status shows the customer an error; only an
upstream outage (worth trying again) is a 503.

Every error is a JSON `{"error", "message"}` body; field values and secrets are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hmac
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, Protocol

import structlog
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.errors import CustomerNotFound, RetryableError
from app.events import input_event_bytes
from app.settings import FormsSettings

log = structlog.get_logger(__name__)

PREFILL_FIELDS = (
    "email",
    "phone",
    "street",
    "houseNumber",
    "houseNumberAddition",
    "postcode",
    "city",
)
CUSTOMER_HEADER = "X-Customer-Id"
FORM_HEADER = "X-Form-Id"
KAFKA_RETRY_AFTER_S = 5

_ID_PREFIXES = {CUSTOMER_HEADER: "cst_", FORM_HEADER: "frm_"}
_ID_PATTERNS = {
    name: re.compile(re.escape(prefix) + "[A-Za-z0-9]{1,64}")
    for name, prefix in _ID_PREFIXES.items()
}
_JSON_RANGES = frozenset({"application/json", "application/*", "*/*"})
SECRET_HEADER = "X-Forms-Secret"
_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="elements-sync"'}

Handler = Callable[[Request], Awaitable[Response]]


class FormPublisher(Protocol):
    async def publish_form(self, customer_id: str, event: bytes) -> None:
        """Durably publish a form.submitted CloudEvent keyed by customer id; raises when Kafka cannot take it."""


class PrefillSource(Protocol):
    async def prefill(self, customer_id: str) -> dict[str, str]:
        """Known values of the prefill fields for this portal customer; raises CustomerNotFound when unknown."""


class _Refusal(Exception):
    """A request answered with a JSON error; raised by the checks so handlers stay linear."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def _error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


@dataclass(frozen=True)
class _Admitted:
    """A request that passed authentication, the id headers and the size limit."""

    customer_id: str
    form_id: str
    body: bytes


def _authenticate(request: Request, settings: FormsSettings) -> None:
    """The shared secret, as the HTTP Basic password (any user name) or in `X-Forms-Secret`.

    Closed by default: without a secret the routes answer 503, since anyone who can reach
    them (the portal must, so they face the internet) could otherwise change any customer's
    e-mail address, phone and address by naming a `cst_…` id. `FORMS_ALLOW_ANONYMOUS=true`
    opens them, for local demos only. Header values arrive latin-1 decoded, so they are
    re-encoded to their raw bytes and compared in constant time with the secret's UTF-8
    bytes: non-ASCII secrets work, and `compare_digest` never meets a non-ASCII `str`.
    """
    secret = settings.shared_secret.get_secret_value() if settings.shared_secret else ""
    if not secret:
        if settings.allow_anonymous:
            return
        raise _Refusal(503, "not_configured", "the forms ingress has no shared secret configured")
    expected = secret.encode()
    in_header = request.headers.get(SECRET_HEADER, "").encode("latin-1")
    _, password = _basic_credentials(request.headers.get("Authorization", ""))
    header_ok = hmac.compare_digest(in_header, expected)
    password_ok = hmac.compare_digest(password, expected)
    if not (header_ok or password_ok):
        raise _Refusal(
            401,
            "unauthorized",
            f"the shared secret is missing or wrong (HTTP Basic password or {SECRET_HEADER})",
            _BASIC_CHALLENGE,
        )


def _basic_credentials(authorization: str) -> tuple[bytes, bytes]:
    """(user, password) of an `Authorization: Basic` header; empty values when there is none."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic":
        return b"", b""
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except binascii.Error:
        return b"", b""
    user, _, password = decoded.partition(b":")
    return user, password


def _id_header(request: Request, name: str) -> str:
    value = request.headers.get(name)
    if value is None:
        raise _Refusal(400, "missing_header", f"header {name} is required")
    if not _ID_PATTERNS[name].fullmatch(value):
        prefix = _ID_PREFIXES[name]
        raise _Refusal(
            400,
            "invalid_header",
            f"header {name} must be {prefix} followed by 1-64 letters or digits",
        )
    return value


def _too_large(limit: int) -> _Refusal:
    return _Refusal(413, "body_too_large", f"the body exceeds {limit} bytes")


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused by its declared length first, then while streaming so no more than
    one chunk past the limit is ever held in memory."""
    declared = request.headers.get("Content-Length")
    if declared is not None:
        if not declared.isdigit():
            raise _Refusal(400, "invalid_header", "header Content-Length is not a number")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise _Refusal(
            400, "incomplete_body", "the client went away before the body ended"
        ) from None
    return b"".join(chunks)


async def _admit(request: Request, settings: FormsSettings) -> _Admitted:
    """The checks both routes share, in the order the contract gives: auth, headers, size."""
    _authenticate(request, settings)
    customer_id = _id_header(request, CUSTOMER_HEADER)
    form_id = _id_header(request, FORM_HEADER)
    body = await _read_body(request, settings.max_body_bytes)
    return _Admitted(customer_id, form_id, body)


def _guarded(handler: Handler) -> Handler:
    """Turn refusals into their JSON answers and anything unexpected into a bare 500.

    Without this, Starlette would answer plain text (or, in debug mode, a traceback).
    Only the route is logged: headers may carry the secret and bodies the customer's data.
    """

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except _Refusal as refusal:
            return _error(refusal.status, refusal.code, refusal.message, refusal.headers)
        except Exception:
            log.exception("forms_request_failed", method=request.method, path=request.url.path)
            return _error(500, "internal_error", "internal error")

    return endpoint


def _reject_constant(name: str) -> NoReturn:
    """NaN and Infinity are not JSON; letting them through would publish an invalid event."""
    raise ValueError(f"{name} is not valid JSON")


def _body_fields(body: bytes) -> dict[str, Any]:
    if not body:
        raise _Refusal(400, "invalid_body", "the body is empty; expected a JSON object")
    try:
        document = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _Refusal(400, "invalid_body", "the body is not valid JSON") from None
    if not isinstance(document, dict):
        kind = type(document).__name__
        raise _Refusal(400, "invalid_body", f"the body is JSON {kind}, not an object")
    return document


def _accepts_json(accept: str) -> bool:
    """Whether an Accept header admits `application/json`; a range with `q=0` refuses it."""
    if not accept.strip():
        return True
    for item in accept.split(","):
        media_range, *params = (part.strip().lower() for part in item.split(";"))
        if media_range in _JSON_RANGES and _quality(params) > 0:
            return True
    return False


def _quality(params: list[str]) -> float:
    """The `q` of a media range (1 when absent, 0 when unreadable, as RFC 9110 leaves it)."""
    for param in params:
        key, _, value = param.partition("=")
        if key.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def forms_routes(
    publisher: FormPublisher, prefill: PrefillSource, settings: FormsSettings
) -> list[BaseRoute]:
    """Starlette routes: /forms/submissions (POST, PUT, PATCH, GET) and /forms/prefill (GET, POST)."""

    async def submissions(request: Request) -> Response:
        admitted = await _admit(request, settings)
        fields = (
            dict(request.query_params) if request.method == "GET" else _body_fields(admitted.body)
        )
        event_id = str(uuid.uuid4())
        data = {"customerId": admitted.customer_id, "formId": admitted.form_id, "fields": fields}
        event = input_event_bytes("form.submitted", data, event_id=event_id)
        try:
            async with asyncio.timeout(settings.publish_timeout_s):
                await publisher.publish_form(admitted.customer_id, event)
        except Exception as error:
            log.warning(
                "form_publish_failed",
                event_id=event_id,
                form_id=admitted.form_id,
                error=type(error).__name__,
            )
            raise _Refusal(
                503,
                "kafka_unavailable",
                "the submission could not be stored; try again later",
                {"Retry-After": str(KAFKA_RETRY_AFTER_S)},
            ) from None
        return JSONResponse({"status": "accepted", "eventId": event_id}, status_code=202)

    async def prefill_values(request: Request) -> Response:
        admitted = await _admit(request, settings)
        if not _accepts_json(request.headers.get("Accept", "")):
            raise _Refusal(406, "not_acceptable", "this endpoint only answers application/json")
        try:
            known = await prefill.prefill(admitted.customer_id)
        except CustomerNotFound:
            known = {}
        except RetryableError as error:
            log.warning("form_prefill_unavailable", form_id=admitted.form_id, error=error.code)
            raise _Refusal(
                503, "upstream_unavailable", "customer data is unavailable; try again later"
            ) from None
        return JSONResponse({name: known[name] for name in PREFILL_FIELDS if known.get(name)})

    return [
        _route("/forms/submissions", submissions, ["POST", "PUT", "PATCH", "GET"]),
        _route("/forms/prefill", prefill_values, ["GET", "POST"]),
    ]


def _route(path: str, handler: Handler, methods: list[str]) -> Route:
    """A guarded route for exactly `methods`.

    Starlette adds HEAD wherever GET is allowed; a HEAD must not publish a submission and
    the portal never sends one, so it is taken out again and answered 405 like any other.
    """
    route = Route(path, _guarded(handler), methods=methods)
    if route.methods is not None:
        route.methods.discard("HEAD")
    return route
