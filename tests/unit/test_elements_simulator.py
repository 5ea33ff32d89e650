"""The Elements simulator refuses and answers what the Elements API 1.9.6 spec documents."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

import httpx
import pytest

from app.sandbox.simulators import elements as elements_module
from app.sandbox.simulators.elements import ElementsSimulator

BOTH_SCOPES = "klantdossier.read klantdossier.write"
DOSSIER = {"omschrijving": "Dossier Jansen", "relatienummer": "R-1", "dossierstatus": {"id": 1}}
DOSSIER["kantoor"] = {"id": 14830}
ADRES = {
    "postcode": "4651ME",
    "nummer": "3",
    "toevoeging": "B",
    "straat": "Grimbergen",
    "plaatsnaam": "Steenbergen",
    "land": "NL",
    "categorie": "Standaard",
    "type": "Correspondentieadres",
}
REGISTRATIE = {
    "omschrijving": "Gebeld",
    "onderwerp": "Contact",
    "boekdatum": "2017-01-01 10:00:00",
    "activiteit": {"id": 1},
    "registratietype": {"id": 7},
    "systeemregistratie": True,
}


class FakeClock:
    """A monotonic clock the test moves by hand, so nothing sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.day = date(2026, 3, 2)

    def __call__(self) -> float:
        return self.now

    def today(self) -> date:
        return self.day


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


Factory = Callable[..., ElementsSimulator]


@pytest.fixture
def make_sim(clock: FakeClock) -> Factory:
    def make(**overrides: Any) -> ElementsSimulator:
        settings: dict[str, Any] = {"rate_limit": 1000, "clock": clock, "today": clock.today}
        return ElementsSimulator("elements-sync", "s3cret", "4242", **{**settings, **overrides})

    return make


@pytest.fixture
def sim(make_sim: Factory) -> ElementsSimulator:
    return make_sim()


@pytest.fixture
async def client(sim: ElementsSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with _client(sim) as http:
        yield http


def _client(sim: ElementsSimulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app), base_url="http://elements")


async def _grant(
    client: httpx.AsyncClient, scope: str = BOTH_SCOPES, **form: str
) -> httpx.Response:
    data = {"grant_type": "organisation", "organisation": "4242", "webservice": "data"}
    return await client.post(
        "/oauth/access_token",
        auth=("elements-sync", "s3cret"),
        data={**data, "scope": scope, **form},
    )


async def _token(client: httpx.AsyncClient, scope: str = BOTH_SCOPES) -> dict[str, str]:
    response = await _grant(client, scope)
    assert response.status_code == 200
    return {"access_token": response.json()["access_token"]}


async def _create(client: httpx.AsyncClient, path: str, body: dict[str, Any], **params: str) -> str:
    response = await client.post(path, params={**await _token(client), **params}, json=body)
    assert response.status_code == 201, response.text
    return response.headers["location"]


def _id(location: str) -> int:
    return int(location.rsplit("/", 1)[1])


def _errors(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 400
    body = response.json()
    assert body["message"] == "Validatie fouten"
    assert body["total"] == len(body["_embedded"]["errors"])
    errors: list[dict[str, str]] = body["_embedded"]["errors"]
    return errors


async def _dossier_with_klant(client: httpx.AsyncClient) -> tuple[str, str]:
    dossier = await _create(client, "/api/data/klantdossiers", DOSSIER)
    klant = await _create(
        client,
        f"{dossier}/klanten/particulier",
        {"achternaam": "Jansen", "voornaam": "Aad", "initialen": "A.", "geslacht": "Man"},
        rol="eerste-persoon",
    )
    return dossier, klant


# --- OAuth ------------------------------------------------------------------------------------


async def test_token_request_with_wrong_or_missing_basic_auth_is_401_invalid_client(
    client: httpx.AsyncClient,
) -> None:
    form = {"grant_type": "organisation", "organisation": "4242", "webservice": "data"}
    wrong = await client.post("/oauth/access_token", auth=("elements-sync", "nope"), data=form)
    missing = await client.post("/oauth/access_token", data=form)

    expected = {"error": "invalid_client", "error_description": "Client authentication failed"}
    assert (wrong.status_code, wrong.json()) == (401, expected)
    assert (missing.status_code, missing.json()) == (401, expected)


async def test_organisation_grant_returns_the_documented_token_document(
    client: httpx.AsyncClient,
) -> None:
    response = await _grant(client)

    body = response.json()
    assert response.status_code == 200
    assert set(body) == {"access_token", "expires_in", "token_type", "scope", "refresh_token"}
    assert body["expires_in"] == 3600
    assert body["token_type"] == "Bearer"
    assert body["scope"] == BOTH_SCOPES
    int(body["access_token"], 16)


async def test_organisation_grant_refuses_bad_organisation_webservice_scope_and_grant_type(
    client: httpx.AsyncClient,
) -> None:
    wrong_org = await _grant(client, organisation="1")
    wrong_service = await _grant(client, webservice="crm")
    wrong_scope = await _grant(client, scope="klantdossier.delete")
    wrong_grant = await _grant(client, grant_type="password")

    assert (wrong_org.status_code, wrong_org.json()["error"]) == (400, "invalid_grant")
    assert (wrong_service.status_code, wrong_service.json()["error"]) == (400, "invalid_request")
    assert (wrong_scope.status_code, wrong_scope.json()["error"]) == (400, "invalid_request")
    assert wrong_grant.json()["error"] == "unsupported_grant_type"


async def test_access_token_is_reusable_until_it_expires(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    token = await _token(client)

    first = await client.get("/api/data/klantdossiers", params=token)
    clock.now += 3599.9
    second = await client.get("/api/data/klantdossiers", params=token)
    clock.now += 0.1
    expired = await client.get("/api/data/klantdossiers", params=token)

    assert (first.status_code, second.status_code) == (200, 200)
    assert expired.status_code == 401
    assert expired.json() == {
        "error": "invalid_token",
        "error_description": "The access token provided has expired",
    }


async def test_data_request_without_a_known_token_is_401_invalid_token(
    client: httpx.AsyncClient,
) -> None:
    missing = await client.get("/api/data/klantdossiers")
    unknown = await client.get("/api/data/klantdossiers", params={"access_token": "abc"})

    for response in (missing, unknown):
        assert response.status_code == 401
        assert response.json() == {
            "error": "invalid_token",
            "error_description": "The access token provided is invalid",
        }


async def test_refresh_token_is_single_use_and_each_grant_issues_a_new_pair(
    client: httpx.AsyncClient,
) -> None:
    first = (await _grant(client)).json()
    auth = ("elements-sync", "s3cret")
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}

    refreshed = await client.post("/oauth/access_token", auth=auth, data=form)
    reused = await client.post("/oauth/access_token", auth=auth, data=form)

    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["scope"] == BOTH_SCOPES
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    token = {"access_token": second["access_token"]}
    assert (await client.get("/api/data/klantdossiers", params=token)).status_code == 200


async def test_scopes_guard_reads_and_writes_with_403(client: httpx.AsyncClient) -> None:
    read_only = await _token(client, "klantdossier.read")
    write_only = await _token(client, "klantdossier.write")

    write = await client.post("/api/data/klantdossiers", params=read_only, json=DOSSIER)
    read = await client.get("/api/data/klantdossiers", params=write_only)

    assert write.status_code == 403
    assert read.status_code == 403
    assert write.json()["error"] == "insufficient_scope"


# --- limits and recording -----------------------------------------------------------------


async def test_sixth_request_within_a_second_is_429_until_the_window_slides(
    make_sim: Factory, clock: FakeClock
) -> None:
    sim = make_sim(rate_limit=5)
    async with _client(sim) as client:
        statuses = []
        for _ in range(5):
            statuses.append((await _grant(client)).status_code)
            clock.now += 0.1
        refused = await _grant(client)  # at +0.5 s, five accepted in the last second
        clock.now += 0.49
        still_refused = await _grant(client)  # at +0.99 s: the first is still in the window
        clock.now += 0.01
        accepted = await _grant(client)  # at +1.0 s: the first fell out of (now-1, now]

    assert statuses == [200] * 5
    assert refused.status_code == 429
    assert refused.json() == {"error": "Limit exceeded of 5 request(s) in 1 second(s)"}
    assert still_refused.status_code == 429
    assert accepted.status_code == 200
    assert sim.count_status(429) == 2
    assert sim.max_in_rolling_window(1.0) == 7
    assert [r.status for r in sim.requests] == [200] * 5 + [429, 429, 200]


async def test_rejected_requests_do_not_use_up_the_per_second_budget(
    make_sim: Factory, clock: FakeClock
) -> None:
    sim = make_sim(rate_limit=2)
    async with _client(sim) as client:
        for _ in range(6):
            await _grant(client)
        clock.now += 1.0
        after = [(await _grant(client)).status_code for _ in range(3)]

    assert after == [200, 200, 429]


async def test_daily_limit_answers_429_with_the_documented_body_until_the_next_day(
    make_sim: Factory, clock: FakeClock
) -> None:
    sim = make_sim(daily_limit=3)
    async with _client(sim) as client:
        for _ in range(3):
            assert (await _grant(client)).status_code == 200
            clock.now += 5
        refused = await _grant(client)
        clock.day = date(2026, 3, 3)
        next_day = await _grant(client)

    assert refused.status_code == 429
    assert refused.json() == {"error": "Limit exceeded of 3 request(s) in one day"}
    assert next_day.status_code == 200


async def test_daily_limit_message_formats_the_limit_with_thousands_separators(
    make_sim: Factory,
) -> None:
    sim = make_sim(daily_limit=1_000, rate_limit=10_000)
    async with _client(sim) as client:
        for _ in range(1_000):
            await client.get("/unknown")
        refused = await client.get("/unknown")

    assert refused.status_code == 429
    assert refused.json() == {"error": "Limit exceeded of 1,000 request(s) in one day"}


async def test_body_over_the_size_limit_is_400_with_the_documented_body(
    make_sim: Factory,
) -> None:
    sim = make_sim(max_body_bytes=100)
    async with _client(sim) as client:
        token = await _token(client)
        response = await client.post("/api/data/klantdossiers", params=token, content=b"x" * 101)

    assert response.status_code == 400
    assert response.json() == {
        "error": "Request body is groter dan toegestaan",
        "toegestaan": "100 bytes",
        "ontvangen": "101 bytes",
    }
    assert sim.dossiers() == []


async def test_requests_are_recorded_in_arrival_order_with_parsed_json_bodies(
    client: httpx.AsyncClient, sim: ElementsSimulator, clock: FakeClock
) -> None:
    token = await _token(client)
    clock.now += 0.5
    await client.post("/api/data/klantdossiers", params=token, json=DOSSIER)

    token_request, write = sim.requests
    assert (token_request.at, token_request.path, token_request.body) == (
        1000.0,
        "/oauth/access_token",
        None,
    )
    assert (write.at, write.method, write.path, write.status) == (
        1000.5,
        "POST",
        "/api/data/klantdossiers",
        201,
    )
    assert write.body == DOSSIER
    assert sim.write_count() == 1


# --- validation ---------------------------------------------------------------------------


async def test_schema_violation_answers_the_validatie_fouten_document(
    client: httpx.AsyncClient, sim: ElementsSimulator
) -> None:
    token = await _token(client)
    body = {"omschrijving": "x", "dossierstatus": {"id": 1}}

    response = await client.post("/api/data/klantdossiers", params=token, json=body)

    assert response.json() == {
        "total": 1,
        "message": "Validatie fouten",
        "_links": {
            "help": {"href": "http://api.fasterforward.nl/", "title": "Validatie informatie"}
        },
        "_embedded": {
            "errors": [{"path": "", "message": 'Required properties missing: ["kantoor"]'}]
        },
    }
    assert sim.write_count() == 0


async def test_nested_schema_violations_name_their_path(client: httpx.AsyncClient) -> None:
    token = await _token(client)
    body = {**DOSSIER, "dossierstatus": {"id": 0}, "extra": True}

    response = await client.post("/api/data/klantdossiers", params=token, json=body)

    paths = sorted(error["path"] for error in _errors(response))
    assert paths == ["", "dossierstatus.id"]


async def test_body_that_is_not_a_json_object_is_refused(client: httpx.AsyncClient) -> None:
    token = await _token(client)

    not_json = await client.post("/api/data/klantdossiers", params=token, content=b"{nope")
    array = await client.post("/api/data/klantdossiers", params=token, json=[DOSSIER])

    assert _errors(not_json)[0]["path"] == ""
    assert _errors(array)[0]["path"] == ""


async def test_custom_date_formats_are_checked(client: httpx.AsyncClient) -> None:
    token = await _token(client)
    params = {**token}

    bad_datetime = await client.post(
        "/api/data/klantdossiers",
        params=params,
        json={**DOSSIER, "aanmaakdatum": "2017-13-01 10:00:00"},
    )
    iso_datetime = await client.post(
        "/api/data/klantdossiers",
        params=params,
        json={**DOSSIER, "aanmaakdatum": "2017-01-01T10:00:00+01:00"},
    )
    dossier = iso_datetime.headers["location"]
    timestamp_as_date = await client.post(
        f"{dossier}/klanten/particulier",
        params={**params, "rol": "eerste-persoon"},
        json={"achternaam": "Jansen", "geboortedatum": "1980-01-25T00:00:00+01:00"},
    )

    assert _errors(bad_datetime)[0]["path"] == "aanmaakdatum"
    assert iso_datetime.status_code == 201
    assert _errors(timestamp_as_date)[0]["path"] == "geboortedatum"


# --- resources ----------------------------------------------------------------------------


async def test_dossier_create_answers_location_and_can_be_read_and_filtered(
    client: httpx.AsyncClient, sim: ElementsSimulator
) -> None:
    token = await _token(client)
    created = await client.post(
        "/api/data/klantdossiers/",
        params=token,
        json={**DOSSIER, "aanmaakdatum": "2017-01-01 10:00:00"},
    )
    other = {**DOSSIER, "relatienummer": "R-2", "dossierstatus": {"id": 2}}
    await client.post("/api/data/klantdossiers", params=token, json=other)

    assert created.status_code == 201
    assert created.text == ""
    assert created.headers["content-type"] == "text/html"
    location = created.headers["location"]
    assert location == "/api/data/klantdossiers/5526"
    item = (await client.get(location, params=token)).json()
    assert item["id"] == 5526
    assert item["omschrijving"] == "Dossier Jansen"
    assert item["relatienummer"] == "R-1"
    assert item["aanmaakdatum"] == "2017-01-01T10:00:00+0100"
    assert (item["status"], item["dossiertype"], item["deleted"]) == ("Nieuw", "klantdossier", None)
    assert item["_links"]["klanten/particulier"] == {"href": f"{location}/klanten/particulier"}
    found = await client.get("/api/data/klantdossiers", params={**token, "relatienummer": "R-2"})
    assert found.json()["_links"] == {"self": {"href": "/api/data/klantdossiers"}}
    [listed] = found.json()["_embedded"]["klantdossiers"]
    assert (listed["relatienummer"], listed["status"]) == ("R-2", "Lopend")
    assert listed["_embedded"] == {}
    assert sim.dossier_by_relatienummer("R-1") is not None
    assert sim.dossier_by_relatienummer("R-3") is None


async def test_new_dossier_cannot_name_a_standaardcorrespondentieadres(
    client: httpx.AsyncClient,
) -> None:
    token = await _token(client)
    body = {**DOSSIER, "standaardCorrespondentieadres": 7793}

    response = await client.post("/api/data/klantdossiers", params=token, json=body)

    assert _errors(response)[0]["path"] == "standaardCorrespondentieadres"


async def test_particulier_needs_a_rol_and_the_dossier_only_one_eerste_persoon(
    client: httpx.AsyncClient,
) -> None:
    dossier, _ = await _dossier_with_klant(client)
    token = await _token(client)
    path = f"{dossier}/klanten/particulier"

    no_rol = await client.post(path, params=token, json={"achternaam": "Jong"})
    second = await client.post(
        path, params={**token, "rol": "eerste-persoon"}, json={"achternaam": "Jong"}
    )
    partner = await client.post(
        path, params={**token, "rol": "partner"}, json={"achternaam": "Jong"}
    )

    assert _errors(no_rol)[0]["path"] == "rol"
    assert _errors(second)[0]["path"] == "rol"
    assert partner.status_code == 201
    listed = (await client.get(path, params=token)).json()["_embedded"]["particulier"]
    assert [(k["achternaam"], k["dossierrol"]) for k in listed] == [
        ("Jansen", "Eerste persoon"),
        ("Jong", "Partner"),
    ]


async def test_adres_patched_as_standaardcorrespondentieadres_is_embedded_in_the_dossier(
    client: httpx.AsyncClient, sim: ElementsSimulator
) -> None:
    dossier, klant = await _dossier_with_klant(client)
    token = await _token(client)
    adres = await _create(client, f"{klant}/adressen", ADRES)
    adres_id = _id(adres)

    patched = await client.patch(
        dossier, params=token, json={"standaardCorrespondentieadres": {"id": adres_id}}
    )
    klant_patched = await client.patch(
        klant, params=token, json={"standaardCorrespondentieadres": {"id": adres_id}}
    )

    assert (patched.status_code, patched.text) == (200, "")
    assert patched.headers["content-type"] == "text/html"
    assert klant_patched.status_code == 200
    embedded = (await client.get(dossier, params=token)).json()["_embedded"]
    assert embedded["standaardcorrespondentieadres"] == {
        "id": adres_id,
        "straat": "Grimbergen",
        "nummer": "3",
        "toevoeging": "B",
        "postcode": "4651ME",
        "plaatsnaam": "Steenbergen",
        "land": "NL",
    }
    listed = (await client.get(f"{klant}/adressen", params=token)).json()
    assert listed["_embedded"]["adressen"] == [(await client.get(adres, params=token)).json()]
    item = listed["_embedded"]["adressen"][0]
    assert (item["postcodegebied"], item["categorie"], item["longitude"]) == (
        "4651",
        "default",
        None,
    )
    assert item["_embedded"]["types"] == [{"id": 7, "naam": "correspondentieadres"}]
    [state] = sim.dossiers()
    assert state["_embedded"]["standaardcorrespondentieadres"]["id"] == adres_id
    [persoon] = state["klanten"]["particulier"]
    assert persoon["standaardCorrespondentieadres"] == adres_id
    assert [a["id"] for a in persoon["adressen"]] == [adres_id]


async def test_patch_standaardcorrespondentieadres_must_name_an_address_of_the_dossier(
    client: httpx.AsyncClient,
) -> None:
    dossier, klant = await _dossier_with_klant(client)
    token = await _token(client)

    unknown = await client.patch(
        dossier, params=token, json={"standaardCorrespondentieadres": {"id": 99}}
    )
    klant_unknown = await client.patch(
        klant, params=token, json={"standaardCorrespondentieadres": {"id": 99}}
    )
    empty = await client.patch(klant, params=token, json={})

    assert _errors(unknown)[0]["path"] == "standaardCorrespondentieadres.id"
    assert _errors(klant_unknown)[0]["path"] == "standaardCorrespondentieadres.id"
    assert (
        _errors(empty)[0]["message"]
        == 'Required properties missing: ["standaardCorrespondentieadres"]'
    )


async def test_adres_schema_refuses_linking_an_existing_adres_by_id(
    client: httpx.AsyncClient,
) -> None:
    _, klant = await _dossier_with_klant(client)
    token = await _token(client)
    adres_id = _id(await _create(client, f"{klant}/adressen", ADRES))

    response = await client.post(
        f"{klant}/adressen", params=token, json={"id": adres_id, "type": "Factuuradres"}
    )

    assert _errors(response)


async def test_email_and_phone_are_added_new_or_linked_by_id_within_the_dossier(
    client: httpx.AsyncClient, sim: ElementsSimulator
) -> None:
    dossier, klant = await _dossier_with_klant(client)
    token = await _token(client)
    partner = await _create(
        client, f"{dossier}/klanten/particulier", {"achternaam": "Jong"}, rol="partner"
    )
    email = await _create(
        client, f"{klant}/emailadressen", {"naam": "aad@home.nl", "type": "Prive"}
    )
    phone = await _create(
        client, f"{klant}/telefoonnummers", {"naam": "06-12345678", "type": "Mobiel"}
    )

    linked = await client.post(
        f"{partner}/emailadressen", params=token, json={"id": _id(email), "type": "Algemeen"}
    )
    unknown = await client.post(
        f"{partner}/emailadressen", params=token, json={"id": 1, "type": "Algemeen"}
    )
    both = await client.post(
        f"{partner}/emailadressen", params=token, json={"id": 1, "naam": "x@y.nl", "type": "Prive"}
    )
    bad_phone = await client.post(
        f"{partner}/telefoonnummers", params=token, json={"naam": "call me", "type": "Mobiel"}
    )

    assert linked.headers["location"] == f"{partner}/emailadressen/{_id(email)}"
    assert _errors(unknown)[0]["path"] == "id"
    assert _errors(both)
    assert _errors(bad_phone)[0]["path"] == "naam"
    emails = (await client.get(f"{partner}/emailadressen", params=token)).json()
    assert emails["_embedded"]["emailadressen"] == [
        {
            "id": _id(email),
            "naam": "aad@home.nl",
            "omschrijving": None,
            "_links": {"self": {"href": f"{partner}/emailadressen/{_id(email)}"}},
            "_embedded": {"types": [{"id": 3, "naam": "Algemeen"}]},
        }
    ]
    phone_item = (await client.get(phone, params=token)).json()
    assert phone_item["weergavenaam"] == "06-12345678"
    assert phone_item["omschrijving"] == " "
    assert phone_item["_embedded"]["types"] == [{"id": 2, "naam": "mobiel"}]
    found = await client.get(
        "/api/data/klantdossiers", params={**token, "emailadres": "aad@home.nl"}
    )
    assert [d["id"] for d in found.json()["_embedded"]["klantdossiers"]] == [_id(dossier)]


async def test_zakelijk_klant_has_its_own_contact_details(client: httpx.AsyncClient) -> None:
    dossier = await _create(client, "/api/data/klantdossiers", DOSSIER)
    token = await _token(client)
    organisatie = {"naam": "Faster Forward", "kvknummer": "12345", "type": "BV"}
    klant = await _create(client, f"{dossier}/klanten/zakelijk", organisatie)
    await _create(client, f"{klant}/adressen", {**ADRES, "type": "Bezoekadres"})
    await _create(client, f"{klant}/emailadressen", {"naam": "info@ff.nl", "type": "Zakelijk"})

    invalid = await client.post(f"{dossier}/klanten/zakelijk", params=token, json={"type": "BV"})

    assert _errors(invalid)[0]["message"] == 'Required properties missing: ["naam"]'
    listed = (await client.get(f"{dossier}/klanten/zakelijk", params=token)).json()
    [item] = listed["_embedded"]["zakelijk"]
    assert (item["naam"], item["kvknummer"], item["btwnummer"]) == ("Faster Forward", "12345", "")
    full = (await client.get(klant, params=token)).json()
    assert full["_links"]["adressen"] == {"href": f"{klant}/adressen"}
    adressen = (await client.get(f"{klant}/adressen", params=token)).json()
    assert adressen["_embedded"]["adressen"][0]["_embedded"]["types"] == [
        {"id": 1, "naam": "bezoekadres"}
    ]
    assert (
        await client.get(f"{dossier}/klanten/particulier/{_id(klant)}", params=token)
    ).status_code == 404


def _contract(klant_id: int, adres_id: int, **overrides: Any) -> dict[str, Any]:
    ref = {"id": 1}
    body = {
        "omschrijving": "Contract",
        "status": ref,
        "bestaandePropositie": ref,
        "accountmanager": ref,
        "accountBeheerderWorkflowgroep": ref,
        "bronvermelding": ref,
        "aanvragersParticulier": [{"id": klant_id}],
        "eersteAanvrager": {"id": klant_id},
        "correspondentieadres": {"id": adres_id},
        "contractnummer": "C-77",
        "contractDatum": "2016-01-01",
        "contractDatumDefinitief": True,
        "startdatum": "2016-01-01",
        "startdatumDefinitief": True,
        "leverancier": ref,
        "inkoopVia": ref,
        "gearchiveerd": False,
        "toonindigimap": True,
    }
    return {**body, **overrides}


async def test_contract_shows_up_as_product_and_takes_registraties(
    client: httpx.AsyncClient, sim: ElementsSimulator
) -> None:
    dossier, klant = await _dossier_with_klant(client)
    token = await _token(client)
    adres_id = _id(await _create(client, f"{klant}/adressen", ADRES))
    klant_id = _id(klant)

    stranger = await client.post(
        f"{dossier}/contracten",
        params=token,
        json=_contract(klant_id, adres_id, aanvragersParticulier=[{"id": klant_id}, {"id": 42}]),
    )
    contract = await _create(client, f"{dossier}/contracten", _contract(klant_id, adres_id))
    registratie = {**REGISTRATIE, "systeemregistratie": False, "persoon": {"id": klant_id}}
    await _create(client, f"{contract}/registraties", registratie)
    await _create(client, f"{dossier}/registraties", REGISTRATIE)

    assert _errors(stranger) == [
        {"path": "aanvragersParticulier.1.id", "message": "42 hoort niet bij dit klantdossier"}
    ]
    item = (await client.get(contract, params=token)).json()
    assert (item["id"], item["type"], item["status"]) == (_id(contract), 9, "Aanvraag nieuw")
    assert (item["omschrijving"], item["startdatum"]) == ("Contract", "2016-01-01T00:00:00+01:00")
    assert [a["id"] for a in item["_embedded"]["aanvragers"]] == [klant_id]
    assert item["_embedded"]["correspondentieadres"]["id"] == adres_id
    producten = (await client.get(f"{dossier}/producten", params=token)).json()
    [product] = producten["_embedded"]["producten"]
    assert (product["soort"], product["type"], product["omschrijving"]) == (
        "contracten",
        9,
        "Contract",
    )
    assert product["_links"]["self"]["href"] == contract
    registraties = (await client.get(f"{contract}/registraties", params=token)).json()
    [logged] = registraties["_embedded"]["registraties"]
    assert (logged["omschrijving"], logged["boekdatum"]) == ("Gebeld", "2017-01-01T10:00:00+0100")
    assert logged["_links"]["product"] == {"href": contract}
    assert logged["_embedded"]["persoon"][0]["id"] == klant_id
    dossier_registraties = (await client.get(f"{dossier}/registraties", params=token)).json()
    assert len(dossier_registraties["_embedded"]["registraties"]) == 1
    found = await client.get("/api/data/klantdossiers", params={**token, "contractnummer": "C-77"})
    assert [d["id"] for d in found.json()["_embedded"]["klantdossiers"]] == [_id(dossier)]
    [state] = sim.dossiers()
    [stored] = state["contracten"]
    assert (stored["id"], stored["contractnummer"]) == (_id(contract), "C-77")
    assert stored["registraties"][0]["omschrijving"] == "Gebeld"


async def test_contract_reads_show_no_contractnummer_though_the_dossier_search_filters_on_it(
    client: httpx.AsyncClient, sim: ElementsSimulator
) -> None:
    dossier, klant = await _dossier_with_klant(client)
    token = await _token(client)
    adres_id = _id(await _create(client, f"{klant}/adressen", ADRES))
    contract = await _create(client, f"{dossier}/contracten", _contract(_id(klant), adres_id))

    item = (await client.get(contract, params=token)).json()
    producten = (await client.get(f"{dossier}/producten", params=token)).json()
    found = await client.get("/api/data/klantdossiers", params={**token, "contractnummer": "C-77"})
    other = await client.get("/api/data/klantdossiers", params={**token, "contractnummer": "C-7"})

    assert "contractnummer" not in item
    assert ["contractnummer" in p for p in producten["_embedded"]["producten"]] == [False]
    assert [d["id"] for d in found.json()["_embedded"]["klantdossiers"]] == [_id(dossier)]
    assert other.json()["_embedded"]["klantdossiers"] == []
    [state] = sim.dossiers()
    assert [c["contractnummer"] for c in state["contracten"]] == ["C-77"]


async def test_eerste_aanvrager_of_a_particulier_contract_must_be_one_of_its_aanvragers(
    client: httpx.AsyncClient,
) -> None:
    dossier, klant = await _dossier_with_klant(client)
    token = await _token(client)
    partner = await _create(
        client, f"{dossier}/klanten/particulier", {"achternaam": "Jansen"}, rol="partner"
    )
    adres_id = _id(await _create(client, f"{klant}/adressen", ADRES))
    body = _contract(_id(klant), adres_id, eersteAanvrager={"id": _id(partner)})

    refused = await client.post(f"{dossier}/contracten", params=token, json=body)
    both = {**body, "aanvragersParticulier": [{"id": _id(klant)}, {"id": _id(partner)}]}
    accepted = await client.post(f"{dossier}/contracten", params=token, json=both)

    assert _errors(refused) == [
        {
            "path": "eersteAanvrager.id",
            "message": f"{_id(partner)} is geen aanvrager particulier en geen medewerker van "
            "de aanvrager zakelijk",
        }
    ]
    assert accepted.status_code == 201


async def _organisatie(client: httpx.AsyncClient) -> tuple[str, str, int]:
    """A dossier with a zakelijk klant and an address of it."""
    dossier = await _create(client, "/api/data/klantdossiers", DOSSIER)
    organisatie = await _create(client, f"{dossier}/klanten/zakelijk", {"naam": "Faster Forward"})
    adres = await _create(client, f"{organisatie}/adressen", ADRES)
    return dossier, organisatie, _id(adres)


def _zakelijk_contract(organisatie_id: int, eerste_id: int, adres_id: int) -> dict[str, Any]:
    body = _contract(eerste_id, adres_id, aanvragerZakelijk={"id": organisatie_id})
    del body["aanvragersParticulier"]
    return body


async def test_zakelijk_contract_takes_a_medewerker_of_its_organisation_as_eerste_aanvrager(
    client: httpx.AsyncClient,
) -> None:
    dossier, organisatie, adres_id = await _organisatie(client)
    token = await _token(client)
    org_id = _id(organisatie)
    stranger = await _create(client, "/api/data/klantdossiers", DOSSIER)
    elsewhere = await _create(client, f"{stranger}/klanten/zakelijk", {"naam": "Ander B.V."})
    foreign = await _create(
        client, f"{elsewhere}/medewerkers", {"achternaam": "Vos", "functie": [{"id": 1}]}
    )

    itself = await client.post(
        f"{dossier}/contracten", params=token, json=_zakelijk_contract(org_id, org_id, adres_id)
    )
    other_dossier = await client.post(
        f"{dossier}/contracten",
        params=token,
        json=_zakelijk_contract(org_id, _id(foreign), adres_id),
    )
    medewerker = await client.post(
        f"{organisatie}/medewerkers",
        params=token,
        json={"achternaam": "Groen", "tussenvoegsel": "de", "functie": [{"id": 3}]},
    )
    medewerker_id = _id(medewerker.headers["location"])
    contract = await _create(
        client, f"{dossier}/contracten", _zakelijk_contract(org_id, medewerker_id, adres_id)
    )

    for refused, ref in ((itself, org_id), (other_dossier, _id(foreign))):
        assert [e["path"] for e in _errors(refused)] == ["eersteAanvrager.id"]
        assert _errors(refused)[0]["message"].startswith(f"{ref} is geen aanvrager particulier")
    assert medewerker.status_code == 201
    assert medewerker.headers["location"] == f"{organisatie}/medewerkers/{medewerker_id}"
    item = (await client.get(contract, params=token)).json()
    aanvragers = item["_embedded"]["aanvragers"]
    assert [(a["id"], a.get("achternaam"), a.get("naam")) for a in aanvragers] == [
        (medewerker_id, "Groen", None),
        (org_id, None, "Faster Forward"),
    ]
    assert aanvragers[0]["_links"]["self"]["href"] == f"{organisatie}/medewerkers/{medewerker_id}"


async def test_medewerker_post_follows_the_spec_schema_and_serves_no_read(
    client: httpx.AsyncClient, sim: ElementsSimulator
) -> None:
    dossier, organisatie, _ = await _organisatie(client)
    _, persoon = await _dossier_with_klant(client)
    token = await _token(client)
    particulier = await _create(
        client, f"{dossier}/klanten/particulier", {"achternaam": "Bos"}, rol="eerste-persoon"
    )

    no_functie = await client.post(
        f"{organisatie}/medewerkers", params=token, json={"achternaam": "Groen"}
    )
    no_achternaam = await client.post(
        f"{organisatie}/medewerkers",
        params=token,
        json={"voornaam": "Piet", "functie": [{"id": 1}]},
    )
    unknown_id = await client.post(
        f"{organisatie}/medewerkers",
        params=token,
        json={"id": _id(persoon), "functie": [{"id": 1}]},
    )
    linked = await client.post(
        f"{organisatie}/medewerkers",
        params=token,
        json={"id": _id(particulier), "functie": [{"id": 1}]},
    )
    not_an_organisation = await client.post(
        f"{particulier.replace('particulier', 'zakelijk')}/medewerkers",
        params=token,
        json={"achternaam": "Groen", "functie": [{"id": 1}]},
    )
    listing = await client.get(f"{organisatie}/medewerkers", params=token)

    assert _errors(no_functie)
    assert _errors(no_achternaam)
    assert _errors(unknown_id) == [
        {"path": "id", "message": f"Persoon {_id(persoon)} hoort niet bij dit klantdossier"}
    ]
    assert linked.headers["location"] == f"{organisatie}/medewerkers/{_id(particulier)}"
    assert not_an_organisation.status_code == 404
    assert listing.status_code == 404
    state = next(d for d in sim.dossiers() if d["id"] == _id(dossier))
    [org] = state["klanten"]["zakelijk"]
    assert [(m["id"], m["achternaam"]) for m in org["medewerkers"]] == [(_id(particulier), "Bos")]


async def test_registratie_follows_the_systeemregistratie_one_of(client: httpx.AsyncClient) -> None:
    dossier = await _create(client, "/api/data/klantdossiers", DOSSIER)
    token = await _token(client)

    without_persoon = await client.post(
        f"{dossier}/registraties", params=token, json={**REGISTRATIE, "systeemregistratie": False}
    )

    assert _errors(without_persoon)


async def test_unknown_ids_are_404_and_wrong_methods_405(client: httpx.AsyncClient) -> None:
    dossier, klant = await _dossier_with_klant(client)
    token = await _token(client)

    responses = [
        await client.get("/api/data/klantdossiers/1", params=token),
        await client.get(f"{dossier}/klanten/particulier/1", params=token),
        await client.get(f"{klant}/adressen/1", params=token),
        await client.get(f"{dossier}/contracten/1", params=token),
        await client.get(f"{dossier}/klanten/robots", params=token),
    ]
    wrong_method = await client.delete(dossier, params=token)

    assert {(r.status_code, r.text) for r in responses} == {(404, '{"error":"Not found"}')}
    assert wrong_method.status_code == 405


# --- faults ---------------------------------------------------------------------------------


async def test_fail_next_answers_the_status_without_applying(
    client: httpx.AsyncClient, sim: ElementsSimulator
) -> None:
    token = await _token(client)
    sim.faults.fail_next(2, status=500)

    first = await client.post("/api/data/klantdossiers", params=token, json=DOSSIER)
    second = await client.get("/api/data/klantdossiers", params=token)
    third = await client.post("/api/data/klantdossiers", params=token, json=DOSSIER)

    assert (first.status_code, first.json()) == (500, {"error": "Injected fault"})
    assert second.status_code == 500
    assert third.status_code == 201
    assert len(sim.dossiers()) == 1
    assert sim.write_count() == 1


async def test_apply_then_fail_next_applies_the_write_but_loses_the_response(
    client: httpx.AsyncClient, sim: ElementsSimulator
) -> None:
    token = await _token(client)
    sim.faults.apply_then_fail_next(1)

    read = await client.get("/api/data/klantdossiers", params=token)
    lost = await client.post("/api/data/klantdossiers", params=token, json=DOSSIER)
    after = await client.post("/api/data/klantdossiers", params=token, json=DOSSIER)

    assert read.status_code == 200
    assert (lost.status_code, lost.json()) == (502, {"error": "Injected fault"})
    assert after.status_code == 201
    assert len(sim.dossiers()) == 2
    assert sim.write_count() == 2
    assert [r.status for r in sim.requests[1:]] == [200, 502, 201]


async def test_delay_next_stalls_data_requests_before_handling(
    client: httpx.AsyncClient, sim: ElementsSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(elements_module, "sleep", fake_sleep)
    sim.faults.delay_next(1, 2.5)
    token = await _token(client)

    delayed = await client.get("/api/data/klantdossiers", params=token)
    prompt = await client.get("/api/data/klantdossiers", params=token)

    assert (delayed.status_code, prompt.status_code) == (200, 200)
    assert slept == [2.5]


async def test_faults_do_not_touch_token_requests_but_requests_still_count(
    make_sim: Factory,
) -> None:
    sim = make_sim(rate_limit=2)
    sim.faults.fail_next(5)
    async with _client(sim) as client:
        granted = await _grant(client)
        token = {"access_token": granted.json()["access_token"]}
        failed = await client.get("/api/data/klantdossiers", params=token)
        limited = await client.get("/api/data/klantdossiers", params=token)

    assert (granted.status_code, failed.status_code, limited.status_code) == (200, 503, 429)


async def test_random_faults_are_reproducible_for_a_seed(
    make_sim: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fake_sleep(seconds: float) -> None:
        pass

    monkeypatch.setattr(elements_module, "sleep", fake_sleep)

    async def statuses(seed: int) -> list[int]:
        sim = make_sim()
        sim.faults.random(error_rate=0.5, slow_rate=0.5, slow_s=1.0, seed=seed)
        async with _client(sim) as client:
            token = await _token(client)
            return [
                (await client.get("/api/data/klantdossiers", params=token)).status_code
                for _ in range(20)
            ]

    first, again = await statuses(7), await statuses(7)
    assert first == again
    assert set(first) == {200, 503}


async def test_random_lost_responses_apply_writes_and_clear_restores_health(
    client: httpx.AsyncClient, sim: ElementsSimulator
) -> None:
    token = await _token(client)
    sim.faults.random(apply_then_502_rate=1.0)

    lost = await client.post("/api/data/klantdossiers", params=token, json=DOSSIER)
    sim.faults.clear()
    healthy = await client.post("/api/data/klantdossiers", params=token, json=DOSSIER)

    assert (lost.status_code, healthy.status_code) == (502, 201)
    assert sim.write_count() == 2
