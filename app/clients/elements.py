"""Faster Forward Elements API client (organisation flow), behind the shared limiter.

Every request, token requests included, waits for the limiter first, at the priority of the
event it serves: the client an event's pipeline uses is bound to its ticket (`for_event`),
sharing the connection, the token and the limiter with every other event's. The access
token is read once the slot is granted (`_granted_token`), never before the wait. It
travels as the `access_token` query parameter, as the spec requires, so no URL of this
client is ever logged or put into an error.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app.clients._http import body_text, json_object, raise_for_status, retry_after_s, send
from app.clients._tolerant import PhpMap, parse_item, parse_items, php_list, php_map
from app.clients.limiter import ElementsLimiter
from app.errors import (
    AuthenticationFailed,
    DailyBudgetExhausted,
    ElementsValidationError,
    GrantRefused,
    RateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
    ValidationItem,
)
from app.events import Operation
from app.ticket import Ticket, or_now

API = "Elements"
KlantKind = Literal["particulier", "zakelijk"]
ContactList = Literal["adressen", "emailadressen", "telefoonnummers"]
DOSSIERS = "/api/data/klantdossiers"
PROBE_RELATIENUMMER = "0"
"""A relatienummer no ANVA dossier has: the outage probe's search finds nothing."""
RENEWAL_FRACTION = 0.1
"""Renew a token when this share of its lifetime is left (at most the configured margin)."""


class _Resource(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)


class ElementsAdres(_Resource):
    id: int
    straat: str | None = None
    nummer: str | None = None
    toevoeging: str | None = None
    postcode: str | None = None
    plaatsnaam: str | None = None
    categorie: str | None = None


class ElementsDossier(_Resource):
    id: int
    relatienummer: str | None = None
    omschrijving: str | None = None
    deleted: Any = None
    """Set (to anything but null) once a person deleted the dossier: nothing is written to it."""
    embedded: PhpMap = Field(default_factory=dict, alias="_embedded")

    def carries(self, dossier_number: str) -> bool:
        """This is the dossier of `dossier_number`, and may be written to."""
        return self.relatienummer == dossier_number and self.deleted is None

    @property
    def standaardcorrespondentieadres(self) -> ElementsAdres | None:
        adres = self.embedded.get("standaardcorrespondentieadres")
        return parse_item(ElementsAdres, adres, api=API) if adres is not None else None


class ElementsKlant(_Resource):
    id: int


class ElementsContact(_Resource):
    """An e-mail address or phone number: Elements calls the value `naam`."""

    id: int
    naam: str


@dataclass
class _Token:
    access: SecretStr
    refresh: SecretStr | None
    renew_at: float


@dataclass
class _TokenCache:
    """The token every event's client uses: one grant serves them all."""

    token: _Token | None = None
    renewal: asyncio.Event | None = None
    """The renewal in flight (a request's slot spent on a token request); fires when it ends."""


def _validation_error(response: httpx.Response) -> ElementsValidationError | None:
    """The typed 'Validatie fouten' 400, or None for any other 400."""
    try:
        document = response.json()
    except ValueError:
        return None
    if not isinstance(document, dict) or document.get("message") != "Validatie fouten":
        return None
    errors = php_list(php_map(document.get("_embedded")).get("errors")) or []
    items = [
        ValidationItem(str(e.get("path", "")), str(e.get("message", "")))
        for e in errors
        if isinstance(e, dict)
    ]
    return ElementsValidationError("Elements: Validatie fouten", items)


def _embedded(document: dict[str, Any], key: str) -> list[Any]:
    """`_embedded.<key>` of a HAL document; a missing, `null` or `[]` `_embedded` holds nothing.

    Raises when the key holds something other than a list (or PHP's object of items).
    """
    items = php_map(document.get("_embedded")).get(key)
    found = [] if items is None else php_list(items)
    if found is None:
        raise UpstreamUnavailable(f"{API} answered a collection without _embedded.{key}")
    return found


def renewal_delay_s(expires_in_s: float, *, max_margin_s: float) -> float:
    """How long a new token is used before it is renewed.

    The margin is a tenth of the token's lifetime, capped by `max_margin_s`: a fixed
    margin as long as the lifetime would renew before every request, and every grant
    spends the rate limit.
    """
    margin_s = min(max_margin_s, expires_in_s * RENEWAL_FRACTION)
    return max(expires_in_s - margin_s, 0.0)


def _resource_id(response: httpx.Response) -> int:
    """The id at the end of a 201's `Location`."""
    location = response.headers.get("Location", "")
    tail = location.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    if not tail.isdigit():
        raise UpstreamUnavailable(
            f"{API} answered {response.status_code} without a usable Location"
        )
    return int(tail)


def _basic_auth(client_id: str, secret: SecretStr) -> str:
    """The spec's PHP_AUTH_USER / PHP_AUTH_PW are PHP's names for HTTP Basic credentials."""
    pair = f"{client_id}:{secret.get_secret_value()}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def _grant_refused(response: httpx.Response, grant: str) -> GrantRefused:
    """The token endpoint's refusal, with its OAuth 2 `error` code (never a token)."""
    try:
        document = response.json()
    except ValueError:
        document = None
    error = document.get("error") if isinstance(document, dict) else None
    code = error if isinstance(error, str) else None
    status = response.status_code
    return GrantRefused(
        f"{API} refused the {grant} grant ({status}{f' {code}' if code else ''})",
        status=status,
        oauth_error=code,
    )


def _daily_limit_hit(response: httpx.Response) -> bool:
    return "in one day" in response.text


class ElementsClient:
    """Takes a long-lived `httpx.AsyncClient` whose base URL is `ELEMENTS_BASE_URL`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        limiter: ElementsLimiter,
        *,
        client_id: str,
        client_secret: SecretStr,
        organisation: str,
        webservice: str,
        scope: str,
        refresh_margin_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._limiter = limiter
        self._credentials = (client_id, client_secret)
        self._grant = {
            "grant_type": "organisation",
            "organisation": organisation,
            "webservice": webservice,
            "scope": scope,
        }
        self._refresh_margin_s = refresh_margin_s
        self._clock = clock
        self._tokens = _TokenCache()
        self._ticket: Ticket | None = None
        """The event this client's requests serve; None outside events (probes, prefill)."""

    def for_event(self, ticket: Ticket) -> ElementsClient:
        """This client for one event's requests: the same connection, token and limiter."""
        bound = copy.copy(self)
        bound._ticket = ticket
        return bound

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: tells the limiter when a request really went out. Once its
        headers are written, not when writing starts: a replica whose event loop stalls
        between the two would otherwise let the next request of another replica follow too
        close (the two-replica test saw 429s)."""
        if event.endswith("send_request_headers.complete"):
            await self._limiter.sent()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """On the slot just granted; 429s and validation errors become typed errors here."""
        request.extensions["trace"] = self._trace
        # The path only: the query carries the access token.
        with or_now(self._ticket).waiting(f"{API} to answer {request.method} {request.url.path}"):
            response = await send(self._http, request, api=API)
        if response.status_code == 429:
            if _daily_limit_hit(response):
                self._limiter.exhaust()
                raise DailyBudgetExhausted(f"{API}: {body_text(response)}")
            raise RateLimited(f"{API} answered 429", retry_after_s=retry_after_s(response))
        if response.status_code == 400 and (error := _validation_error(response)):
            raise error
        return response

    async def _request_token(self, form: dict[str, str]) -> _Token:
        """On the slot just granted, like every request."""
        client_id, secret = self._credentials
        request = self._http.build_request(
            "POST",
            "oauth/access_token",
            data=form,
            headers={"Authorization": _basic_auth(client_id, secret)},
        )
        response = await self._send(request)
        if response.status_code in (400, 401):
            raise _grant_refused(response, form["grant_type"])
        raise_for_status(response, api=API)
        document = json_object(response, api=API)
        try:
            access = str(document["access_token"])
            expires_in = float(document.get("expires_in", 3600))
        except (KeyError, TypeError, ValueError) as error:
            raise UpstreamUnavailable(f"{API} answered a token response without a token") from error
        refresh = document.get("refresh_token")
        return _Token(
            access=SecretStr(access),
            refresh=SecretStr(str(refresh)) if refresh else None,
            renew_at=self._clock()
            + renewal_delay_s(expires_in, max_margin_s=self._refresh_margin_s),
        )

    async def _granted_token(self) -> str:
        """Wait for a slot; the access token to send on it, read once it is granted.

        Read before the wait, a token can run out while its request queues (a backfill
        behind live events, replicas sharing the rate): the request then gets 401, and its
        retry queues again and can send a stale token again, which fails the event. So the
        token is looked at only with the slot in hand, and sent on it with no wait between.

        Is the token due for renewal then, this slot is spent on the token request (one
        request per slot, always), and the data request takes the next one. A slot granted
        while another request's slot renews the token is let go, not held while the renewal
        answers: a held slot would let the next grant go out before it, closer than the
        spacing. The request waits for the renewal and queues again.
        """
        tokens = self._tokens
        while True:
            await self._limiter.acquire(or_now(self._ticket))
            token = tokens.token
            if token is not None and self._clock() < token.renew_at:
                return token.access.get_secret_value()
            if (renewal := tokens.renewal) is not None:
                await self._limiter.unused()
                await renewal.wait()
                continue
            tokens.renewal = renewal = asyncio.Event()
            try:
                tokens.token = await self._renewed(token)
            finally:
                tokens.renewal = None
                renewal.set()

    async def _renewed(self, token: _Token | None) -> _Token | None:
        """One token request, on the slot just granted: the refresh grant while there is a
        refresh token, else the organisation grant. None when the refresh is refused: the
        next slot logs in again."""
        if token is not None and token.refresh is not None:
            try:
                return await self._request_token(
                    {
                        "grant_type": "refresh_token",
                        "refresh_token": token.refresh.get_secret_value(),
                    }
                )
            except AuthenticationFailed:
                return None
        return await self._request_token(dict(self._grant))

    def _forget_token(self, access: str) -> None:
        token = self._tokens.token
        if token is not None and token.access.get_secret_value() == access:
            self._tokens.token = None

    async def _owned_for_write(self) -> None:
        """With the slot granted, just before a write: the event still owns its dossier, long
        enough for the write to end inside its lease (`Ticket.before_write`). When not, the
        slot carries no request."""
        try:
            or_now(self._ticket).before_write()
        except BaseException:
            await self._limiter.unused()
            raise

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One API call; a 401 drops the token and tries once more with a fresh one.

        The token was valid by our clock when the slot was granted, so a second 401 means
        Elements refuses a token it has just granted: `AuthenticationFailed`.
        """
        for first_try in (True, False):
            access = await self._granted_token()
            if method != "GET":
                await self._owned_for_write()
            request = self._http.build_request(
                method,
                path.lstrip("/"),
                params={**(params or {}), "access_token": access},
                json=json,
            )
            response = await self._send(request)
            if response.status_code == 401 and first_try:
                self._forget_token(access)
                continue
            raise_for_status(response, api=API)
            return response
        raise AuthenticationFailed(f"{API} refused a fresh token")  # pragma: no cover

    async def _collection(
        self, path: str, key: str, params: dict[str, str] | None = None
    ) -> list[Any]:
        document = json_object(await self._call("GET", path, params=params), api=API)
        return _embedded(document, key)

    async def _create(
        self, path: str, payload: dict[str, Any], params: dict[str, str] | None = None
    ) -> Operation:
        response = await self._call("POST", path, params=params, json=payload)
        return Operation(
            method="POST", path=path, status=response.status_code, resourceId=_resource_id(response)
        )

    async def probe(self) -> None:
        """One search that finds nothing: proof that Elements answers, at one request's cost.

        It goes through the limiter like every request (and needs a token grant first only
        when the token has run out).
        """
        await self._call("GET", DOSSIERS, params={"relatienummer": PROBE_RELATIENUMMER})

    # klantdossiers

    async def find_dossiers(self, **filters: str) -> list[ElementsDossier]:
        items = await self._collection(DOSSIERS, "klantdossiers", params=filters)
        return parse_items(ElementsDossier, items, api=API)

    async def dossier(self, dossier_id: int) -> ElementsDossier | None:
        """The klantdossier with this id; None when Elements no longer has it (404)."""
        try:
            response = await self._call("GET", f"{DOSSIERS}/{dossier_id}")
        except UpstreamRejected as error:
            if error.status == 404:
                return None
            raise
        return parse_item(ElementsDossier, json_object(response, api=API), api=API)

    async def create_dossier(self, payload: dict[str, Any]) -> Operation:
        return await self._create(DOSSIERS, payload)

    async def set_correspondentieadres(self, dossier_id: int, adres_id: int) -> Operation:
        path = f"{DOSSIERS}/{dossier_id}"
        payload = {"standaardCorrespondentieadres": {"id": adres_id}}
        response = await self._call("PATCH", path, json=payload)
        return Operation(
            method="PATCH", path=path, status=response.status_code, resourceId=adres_id
        )

    # contracten

    async def producten(self, dossier_id: int) -> list[ElementsProduct]:
        path = f"{DOSSIERS}/{dossier_id}/producten"
        return parse_items(ElementsProduct, await self._collection(path, "producten"), api=API)

    async def create_contract(self, dossier_id: int, payload: dict[str, Any]) -> Operation:
        return await self._create(f"{DOSSIERS}/{dossier_id}/contracten", payload)

    async def contract_registraties(
        self, dossier_id: int, product_id: int
    ) -> list[ElementsRegistratie]:
        path = f"{DOSSIERS}/{dossier_id}/contracten/{product_id}/registraties"
        return parse_items(
            ElementsRegistratie, await self._collection(path, "registraties"), api=API
        )

    async def add_contract_registratie(
        self, dossier_id: int, product_id: int, payload: dict[str, Any]
    ) -> Operation:
        path = f"{DOSSIERS}/{dossier_id}/contracten/{product_id}/registraties"
        return await self._create(path, payload)

    # klanten and their contact lists

    @staticmethod
    def klanten_path(dossier_id: int, kind: KlantKind) -> str:
        return f"{DOSSIERS}/{dossier_id}/klanten/{kind}"

    async def create_medewerker(
        self, dossier_id: int, organisatie_id: int, payload: dict[str, Any]
    ) -> Operation:
        path = f"{self.klanten_path(dossier_id, 'zakelijk')}/{organisatie_id}/medewerkers"
        return await self._create(path, payload)

    async def klanten(self, dossier_id: int, kind: KlantKind) -> list[ElementsKlant]:
        items = await self._collection(self.klanten_path(dossier_id, kind), kind)
        return parse_items(ElementsKlant, items, api=API)

    async def create_klant(
        self, dossier_id: int, kind: KlantKind, payload: dict[str, Any], *, rol: str | None = None
    ) -> Operation:
        params = {"rol": rol} if rol else None
        return await self._create(self.klanten_path(dossier_id, kind), payload, params)

    async def adressen(
        self, dossier_id: int, kind: KlantKind, klant_id: int
    ) -> list[ElementsAdres]:
        path = f"{self.klanten_path(dossier_id, kind)}/{klant_id}/adressen"
        return parse_items(ElementsAdres, await self._collection(path, "adressen"), api=API)

    async def contacts(
        self, dossier_id: int, kind: KlantKind, klant_id: int, which: ContactList
    ) -> list[ElementsContact]:
        path = f"{self.klanten_path(dossier_id, kind)}/{klant_id}/{which}"
        return parse_items(ElementsContact, await self._collection(path, which), api=API)

    async def add_to_klant(
        self,
        dossier_id: int,
        kind: KlantKind,
        klant_id: int,
        which: ContactList,
        payload: dict[str, Any],
    ) -> Operation:
        path = f"{self.klanten_path(dossier_id, kind)}/{klant_id}/{which}"
        return await self._create(path, payload)


class ElementsProduct(_Resource):
    """An item of a dossier's producten; contracts have `soort` "contracten".

    The spec shows no `contractnummer` on it: a contract is recognised by its `omschrijving`.
    """

    id: int
    soort: str | None = None
    omschrijving: str | None = None


class ElementsRegistratie(_Resource):
    id: int
    omschrijving: str | None = None
    onderwerp: str | None = None
