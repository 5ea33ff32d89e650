"""ElementsClient against the Elements simulator through httpx.ASGITransport (no sockets)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from app.clients.elements import ElementsClient, renewal_delay_s
from app.clients.limiter import ElementsLimiter
from app.domain.model import Adres
from app.errors import (
    AuthenticationFailed,
    DailyBudgetExhausted,
    ElementsValidationError,
    UpstreamUnavailable,
)
from app.pipeline.reads import read_adressen, read_dossier_core
from app.sandbox.simulators.elements import ElementsSimulator

SECRET = "s3cret"


@dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    sim: ElementsSimulator
    client: ElementsClient
    clock: FakeClock
    grants: list[str]

    def token_grants(self) -> list[str]:
        return self.grants


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    clock = FakeClock()
    sim = ElementsSimulator(
        client_id="elements-sync",
        client_secret=SECRET,
        organisation="4242",
        rate_limit=10_000,
        token_ttl_s=3600,
        clock=clock,
    )
    grants: list[str] = []

    async def record_grant(request: httpx.Request) -> None:
        if request.url.path == "/oauth/access_token":
            grants.append(parse_qs(request.content.decode())["grant_type"][0])

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app),
        base_url="http://elements",
        event_hooks={"request": [record_grant]},
    ) as http:
        client = ElementsClient(
            http,
            ElementsLimiter(rate_per_s=10_000, daily_limit=1_000_000, margin_s=0),
            client_id="elements-sync",
            client_secret=SecretStr(SECRET),
            organisation="4242",
            webservice="data",
            scope="klantdossier.read klantdossier.write",
            refresh_margin_s=60,
            clock=clock,
        )
        yield Setup(sim, client, clock, grants)


DOSSIER = {
    "omschrijving": "Test",
    "relatienummer": "100234",
    "dossierstatus": {"id": 1},
    "kantoor": {"id": 1},
}


async def test_token_is_reused_until_shortly_before_it_expires(setup: Setup) -> None:
    await setup.client.find_dossiers(relatienummer="1")
    setup.clock.now += 3600 - 61
    await setup.client.find_dossiers(relatienummer="1")

    assert setup.token_grants() == ["organisation"]


async def test_token_is_renewed_with_the_refresh_grant_near_expiry(setup: Setup) -> None:
    await setup.client.find_dossiers(relatienummer="1")
    setup.clock.now += 3600 - 59
    await setup.client.find_dossiers(relatienummer="1")

    assert setup.token_grants() == ["organisation", "refresh_token"]


async def test_a_401_re_authenticates_once_and_repeats_the_request(setup: Setup) -> None:
    await setup.client.find_dossiers(relatienummer="1")
    setup.clock.now += 3600  # the server expires it; our margin thinks it is still young
    setup.client._tokens.token.renew_at = setup.clock.now + 100  # type: ignore[union-attr]

    assert await setup.client.find_dossiers(relatienummer="1") == []
    statuses = [r.status for r in setup.sim.requests if r.path.startswith("/api")]
    assert statuses == [200, 401, 200]


async def test_wrong_client_secret_is_a_permanent_authentication_error(setup: Setup) -> None:
    setup.client._credentials = ("elements-sync", SecretStr("wrong"))

    with pytest.raises(AuthenticationFailed):
        await setup.client.find_dossiers(relatienummer="1")


async def test_created_resource_id_comes_from_the_location_header(setup: Setup) -> None:
    operation = await setup.client.create_dossier(DOSSIER)

    (found,) = await setup.client.find_dossiers(relatienummer="100234")
    assert operation.resourceId == found.id
    assert (operation.method, operation.path, operation.status) == (
        "POST",
        "/api/data/klantdossiers",
        201,
    )


async def test_validation_400_becomes_a_typed_error_with_its_items(setup: Setup) -> None:
    with pytest.raises(ElementsValidationError) as raised:
        await setup.client.create_dossier({"omschrijving": "no kantoor"})

    assert raised.value.items
    assert any("kantoor" in item.message for item in raised.value.items)
    assert raised.value.retryable is False


async def test_hal_collections_are_parsed_into_models(setup: Setup) -> None:
    dossier_id = (await setup.client.create_dossier(DOSSIER)).resourceId
    assert dossier_id is not None
    klant = await setup.client.create_klant(
        dossier_id, "particulier", {"achternaam": "Vries"}, rol="eerste-persoon"
    )
    await setup.client.add_to_klant(
        dossier_id,
        "particulier",
        klant.resourceId,
        "emailadressen",
        {"naam": "a@b.nl", "type": "Algemeen"},
    )

    (klant_read,) = await setup.client.klanten(dossier_id, "particulier")
    emails = await setup.client.contacts(dossier_id, "particulier", klant_read.id, "emailadressen")
    assert klant_read.id == klant.resourceId
    assert [e.naam for e in emails] == ["a@b.nl"]


async def test_a_postbus_categorie_is_read_from_the_address_list_not_the_dossier(
    setup: Setup,
) -> None:
    """The dossier's embedded standaard address has no categorie; the klant's list has it."""
    dossier_id = (await setup.client.create_dossier(DOSSIER)).resourceId
    klant_id = (
        await setup.client.create_klant(
            dossier_id, "particulier", {"achternaam": "Vries"}, rol="eerste-persoon"
        )
    ).resourceId
    postbus = {
        "straat": "Postbus",
        "nummer": "1234",
        "plaatsnaam": "Amsterdam",
        "categorie": "Postbus",
        "type": "Correspondentieadres",
    }
    adres = await setup.client.add_to_klant(
        dossier_id, "particulier", klant_id, "adressen", postbus
    )
    await setup.client.set_correspondentieadres(dossier_id, adres.resourceId)

    state = await read_dossier_core(setup.client, DOSSIER["relatienummer"], "particulier")
    assert state is not None
    assert state.standaard_adres is not None
    assert state.standaard_adres.adres.categorie is None
    state = await read_adressen(setup.client, state)
    assert state.standaard_adres is not None
    assert state.standaard_adres.adres == Adres(
        "Postbus", "1234", "", "", "Amsterdam", categorie="Postbus"
    )


async def test_daily_limit_429_closes_the_budget_for_the_day() -> None:
    limited = ElementsSimulator(
        client_id="elements-sync", client_secret=SECRET, organisation="4242", daily_limit=1
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=limited.app), base_url="http://elements"
    ) as http:
        limiter = ElementsLimiter(rate_per_s=10_000, daily_limit=100, margin_s=0)
        client = ElementsClient(
            http,
            limiter,
            client_id="elements-sync",
            client_secret=SecretStr(SECRET),
            organisation="4242",
            webservice="data",
            scope="klantdossier.read klantdossier.write",
        )
        with pytest.raises(DailyBudgetExhausted):
            await client.find_dossiers(relatienummer="1")
    assert limiter.remaining_today == 0


async def test_no_url_with_the_access_token_reaches_an_error_message(setup: Setup) -> None:
    setup.sim.faults.fail_next(1, status=503)
    with pytest.raises(UpstreamUnavailable) as raised:
        await setup.client.find_dossiers(relatienummer="1")
    assert "access_token" not in str(raised.value)
    assert raised.value.retryable is True


def elements_client(
    http: httpx.AsyncClient, *, limiter: ElementsLimiter | None = None, **options: Any
) -> ElementsClient:
    return ElementsClient(
        http,
        limiter or ElementsLimiter(rate_per_s=10_000, daily_limit=1_000_000, margin_s=0),
        client_id="elements-sync",
        client_secret=SecretStr(SECRET),
        organisation="4242",
        webservice="data",
        scope="klantdossier.read klantdossier.write",
        **options,
    )


@asynccontextmanager
async def elements_answering(document: Any, *, status: int = 200) -> AsyncIterator[ElementsClient]:
    """An Elements that grants tokens and answers every data request with `document`."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/access_token":
            return httpx.Response(200, json={"access_token": "a", "expires_in": 3600})
        return httpx.Response(status, json=document)

    transport = httpx.MockTransport(answer)
    async with httpx.AsyncClient(transport=transport, base_url="http://elements") as http:
        yield elements_client(http)


@pytest.mark.parametrize(
    "document",
    [
        {"_links": {}, "_embedded": []},
        {"_links": {}},
        {"_links": {}, "_embedded": None},
        {"_links": {}, "_embedded": {"klantdossiers": None}},
        {"_links": {}, "_embedded": {"klantdossiers": []}},
    ],
    ids=["embedded-php-empty-map", "embedded-missing", "embedded-null", "key-null", "key-empty"],
)
async def test_an_empty_collection_in_any_of_its_shapes_is_an_empty_list(
    document: dict[str, Any],
) -> None:
    async with elements_answering(document) as client:
        assert await client.find_dossiers(relatienummer="100234") == []


async def test_a_dossier_without_embedded_resources_and_a_numeric_relatienummer_is_read() -> None:
    dossier = {"id": 5526, "relatienummer": 100234, "omschrijving": "Test", "_embedded": []}
    document = {"_embedded": {"klantdossiers": [dossier]}}

    async with elements_answering(document) as client:
        (found,) = await client.find_dossiers(relatienummer="100234")

    assert (found.id, found.relatienummer, found.standaardcorrespondentieadres) == (
        5526,
        "100234",
        None,
    )


async def test_items_sent_as_an_object_with_gaps_are_all_read() -> None:
    """PHP writes an array whose keys are not 0..n-1 (after a filter) as a JSON object."""
    emails = {"0": {"id": 1, "naam": "a@example.nl"}, "2": {"id": 3, "naam": "b@example.nl"}}

    async with elements_answering({"_embedded": {"emailadressen": emails}}) as client:
        found = await client.contacts(1, "particulier", 2, "emailadressen")

    assert [(c.id, c.naam) for c in found] == [(1, "a@example.nl"), (3, "b@example.nl")]


async def test_an_unreadable_item_is_skipped_with_a_warning_and_the_rest_is_read() -> None:
    phones = [{"id": 1, "naam": "0612345678"}, {"id": 2, "naam": None}, "0698765432"]

    with capture_logs() as logs:
        async with elements_answering({"_embedded": {"telefoonnummers": phones}}) as client:
            found = await client.contacts(1, "particulier", 2, "telefoonnummers")

    assert [(c.id, c.naam) for c in found] == [(1, "0612345678")]
    assert [(log["api"], log["kind"], log["item_id"], log["problems"]) for log in logs] == [
        ("Elements", "ElementsContact", "2", ["naam: string_type"]),
        ("Elements", "ElementsContact", None, [".: model_type"]),
    ]


async def test_a_collection_key_holding_neither_list_nor_object_is_a_broken_upstream() -> None:
    async with elements_answering({"_embedded": {"klantdossiers": "none"}}) as client:
        with pytest.raises(UpstreamUnavailable, match=r"without _embedded\.klantdossiers"):
            await client.find_dossiers(relatienummer="100234")


async def test_a_validation_400_with_an_empty_embedded_is_still_a_validation_error() -> None:
    document = {"message": "Validatie fouten", "_embedded": []}

    async with elements_answering(document, status=400) as client:
        with pytest.raises(ElementsValidationError) as raised:
            await client.create_dossier(DOSSIER)

    assert raised.value.items == []


@pytest.mark.parametrize(
    ("expires_in_s", "delay_s"),
    [(3600, 3540), (300, 270), (2, 1.8), (0, 0)],
    ids=["hour-capped-by-setting", "five-minutes", "two-seconds", "already-expired"],
)
def test_a_token_is_renewed_when_a_tenth_of_its_life_is_left_at_most_the_margin(
    expires_in_s: float, delay_s: float
) -> None:
    assert renewal_delay_s(expires_in_s, max_margin_s=60) == pytest.approx(delay_s)


async def test_short_lived_tokens_are_renewed_once_per_nine_tenths_of_their_life() -> None:
    """Before: a 60 s margin on a 2 s token renewed it before every request."""
    clock = FakeClock()
    sim = ElementsSimulator(
        client_id="elements-sync",
        client_secret=SECRET,
        rate_limit=10_000,
        token_ttl_s=2,
        clock=clock,
    )
    granted_at: list[float] = []

    async def note_grant(request: httpx.Request) -> None:
        if request.url.path == "/oauth/access_token":
            granted_at.append(clock.now - 1000.0)

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim.app),
        base_url="http://elements",
        event_hooks={"request": [note_grant]},
    ) as http:
        client = elements_client(http, refresh_margin_s=60, clock=clock)
        for step in range(80):
            clock.now = 1000.0 + step * 0.125
            await client.find_dossiers(relatienummer="1")

    assert granted_at == [0.0, 1.875, 3.75, 5.625, 7.5, 9.375]
    data_statuses = {r.status for r in sim.requests if r.path.startswith("/api")}
    assert data_statuses == {200}


async def test_the_probe_is_one_search_that_counts_against_the_budget() -> None:
    limiter = ElementsLimiter(rate_per_s=10_000, daily_limit=100, margin_s=0)
    seen: list[tuple[str, str, dict[str, str]]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        params = {k: v for k, v in request.url.params.items() if k != "access_token"}
        seen.append((request.method, request.url.path, params))
        if request.url.path == "/oauth/access_token":
            return httpx.Response(200, json={"access_token": "a", "expires_in": 3600})
        return httpx.Response(200, json={"_embedded": {"klantdossiers": []}})

    transport = httpx.MockTransport(answer)
    async with httpx.AsyncClient(transport=transport, base_url="http://elements") as http:
        client = elements_client(http, limiter=limiter)
        await client.probe()
        await client.probe()

    search = ("GET", "/api/data/klantdossiers", {"relatienummer": "0"})
    assert seen == [("POST", "/oauth/access_token", {}), search, search]
    assert limiter.remaining_today == 100 - 3
