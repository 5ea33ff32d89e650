"""The one place where HTTP and transport failures become the service's errors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from app.errors import AuthenticationFailed, RateLimited, UpstreamRejected, UpstreamUnavailable


async def send(client: httpx.AsyncClient, request: httpx.Request, *, api: str) -> httpx.Response:
    """Send one request; the error text never carries the URL, which may hold a token."""
    try:
        return await client.send(request)
    except httpx.TimeoutException as error:
        raise UpstreamUnavailable(f"{api}: request timed out") from error
    except httpx.TransportError as error:
        raise UpstreamUnavailable(f"{api}: {type(error).__name__}") from error


def retry_after_s(
    response: httpx.Response, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """The seconds a 429 or 503 asks us to wait: `Retry-After` is delay-seconds or an
    HTTP-date (RFC 9110, 10.2.3), and a date already past means now. None: not said."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 850 and asctime dates name no zone: they are GMT
        when = when.replace(tzinfo=UTC)
    return max((when - now()).total_seconds(), 0.0)


def body_text(response: httpx.Response, limit: int = 300) -> str:
    return response.text[:limit].strip()


def raise_for_status(response: httpx.Response, *, api: str) -> None:
    """Translate a non-2xx answer; 5xx and 429 are worth retrying, other 4xx are not."""
    status = response.status_code
    if response.is_success:
        return
    if status >= 500:
        raise UpstreamUnavailable(f"{api} answered {status}", retry_after_s=retry_after_s(response))
    if status == 429:
        raise RateLimited(f"{api} answered 429", retry_after_s=retry_after_s(response))
    if status in (401, 403):
        raise AuthenticationFailed(f"{api} refused our credentials ({status})")
    raise UpstreamRejected(f"{api} answered {status}: {body_text(response)}", status=status)


def _decoded(response: httpx.Response) -> Any:
    """orjson first: decoding ANVA's 2 MB account listing was most of a worker's CPU. What
    it refuses but JSON allows (NaN, integers beyond 64 bits, a non-UTF-8 charset) is
    decoded by the standard library as before."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def json_object(response: httpx.Response, *, api: str) -> dict[str, Any]:
    """The body as a JSON object; anything else from a 2xx is a broken upstream."""
    try:
        document = _decoded(response)
    except ValueError as error:
        raise UpstreamUnavailable(f"{api} answered {response.status_code} without JSON") from error
    if not isinstance(document, dict):
        raise UpstreamUnavailable(f"{api} answered JSON that is not an object")
    return document
