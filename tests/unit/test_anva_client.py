"""AnvaClient on the ANVA simulator (httpx.ASGITransport): an odd record breaks only itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from app.clients.anva import AnvaClient, dossier_numbers
from app.clients.shared_read import loop_time
from app.errors import UnreadableRecord, UpstreamUnavailable
from app.sandbox.simulators.anva import AnvaSimulator

TOKEN = "anva-token"


@pytest.fixture
def anva() -> AnvaSimulator:
    sim = AnvaSimulator(token=TOKEN)
    sim.add_account(
        account_id=1,
        first_name="Piet",
        middle_name="van",
        last_name="Jansen",
        email="piet@example.nl",
        dossiers={"301": "100234"},
    )
    return sim


@pytest.fixture
async def client(anva: AnvaSimulator) -> AsyncIterator[AnvaClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=anva.app), base_url="http://anva/api"
    ) as http:
        yield AnvaClient(http, SecretStr(TOKEN))


@asynccontextmanager
async def client_answering(document: Any) -> AsyncIterator[AnvaClient]:
    """A client whose every request is answered 200 with `document`."""
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=document))
    async with httpx.AsyncClient(transport=transport, base_url="http://anva/api") as http:
        yield AnvaClient(http, SecretStr(TOKEN))


@pytest.mark.parametrize(
    ("dossiers", "read_as"),
    [
        pytest.param([], {}, id="php-empty-map"),
        pytest.param(None, {}, id="null"),
        pytest.param({"301": 100777}, {"301": "100777"}, id="number"),
        pytest.param(["100888", 100999], {"0": "100888", "1": "100999"}, id="list"),
        pytest.param(
            {"301": None, "302": True, "303": {"nr": "1"}, "304": " 100555 "},
            {"304": "100555"},
            id="odd-entries-left-out",
        ),
        pytest.param("100234", {}, id="text"),
    ],
)
def test_dossiers_are_read_as_php_writes_them(dossiers: Any, read_as: dict[str, str]) -> None:
    assert dossier_numbers(dossiers) == read_as


async def test_accounts_with_empty_null_or_numeric_dossiers_do_not_hide_the_others(
    anva: AnvaSimulator, client: AnvaClient
) -> None:
    anva.add_account_record({"id": 2, "lastName": "Leeg", "dossiers": []})
    anva.add_account_record({"id": 3, "lastName": "Niets", "dossiers": None})
    anva.add_account_record({"id": 4, "lastName": "Getal", "dossiers": {"301": 100777}})
    anva.add_account_record({"id": 5, "lastName": "Lijst", "dossiers": ["100888"]})

    jansen = await client.account_for_dossier("100234", fresh_after=loop_time())
    getal = await client.account_for_dossier("100777", fresh_after=loop_time())
    lijst = await client.account_for_dossier("100888", fresh_after=loop_time())

    assert jansen is not None and jansen.lastName == "Jansen"
    assert getal is not None and (getal.id, getal.dossiers) == ("4", {"301": "100777"})
    assert lijst is not None and lijst.lastName == "Lijst"
    assert [a.id for a in await client.accounts()] == ["1", "2", "3", "4", "5"]


async def test_an_account_with_extra_nested_fields_is_read(
    anva: AnvaSimulator, client: AnvaClient
) -> None:
    anva.add_account_record(
        {
            "id": 6,
            "firstName": "Lotte",
            "lastName": "Bakker",
            "dossiers": {"301": "100600"},
            "groupIds": None,
            "preferences": {"language": {"code": "nl", "fallbacks": ["en"]}},
            "addresses": [{"street": "Kerkstraat", "number": 5}],
        }
    )

    account = await client.account_for_dossier("100600", fresh_after=loop_time())

    assert account is not None
    assert (account.firstName, account.lastName, account.groupIds) == ("Lotte", "Bakker", [])


async def test_an_unreadable_account_fails_only_its_own_dossier_naming_the_field(
    anva: AnvaSimulator, client: AnvaClient
) -> None:
    anva.add_account_record(
        {"id": 7, "firstName": {"nl": "Kees"}, "lastName": "Dijk", "dossiers": {"301": "100700"}}
    )

    other = await client.account_for_dossier("100234", fresh_after=loop_time())
    with pytest.raises(UnreadableRecord) as raised:
        await client.account_for_dossier("100700", fresh_after=loop_time())

    assert other is not None and other.lastName == "Jansen"
    assert (
        str(raised.value)
        == "ANVA account of dossier 100700 cannot be read (firstName: string_type)"
    )
    assert raised.value.retryable is False


async def test_the_listing_skips_an_unreadable_account_with_a_warning_without_its_data(
    anva: AnvaSimulator, client: AnvaClient
) -> None:
    anva.add_account_record({"id": 8, "firstName": ["Kees"], "lastName": "Dijk"})

    with capture_logs() as logs:
        accounts = await client.accounts()

    assert [a.id for a in accounts] == ["1"]
    assert logs == [
        {
            "event": "skipped an unreadable item",
            "log_level": "warning",
            "api": "ANVA",
            "kind": "AnvaAccount",
            "item_id": "8",
            "problems": ["firstName: string_type"],
        }
    ]


async def test_a_contract_whose_metadata_is_a_php_empty_map_is_read() -> None:
    contract = {"id": "C-1", "dossierNumber": 100234, "metadata": [], "status": "Lopend"}
    async with client_answering({"data": {"items": [contract]}}) as client:
        found = await client.contract("C-1")

    assert found is not None
    assert (found.dossierNumber, found.metadata) == ("100234", {})


async def test_an_unreadable_contract_fails_its_event_naming_the_field() -> None:
    document = {"data": {"items": [{"id": "C-1", "status": "Lopend"}]}}

    async with client_answering(document) as client:
        with pytest.raises(UnreadableRecord, match=r"contract C-1 cannot be read \(dossierNumber"):
            await client.contract("C-1")


@pytest.mark.parametrize(
    "document",
    [{"data": []}, {"data": None}, {"data": {"items": None}}, {}],
    ids=["data-php-empty-map", "data-null", "items-null", "no-data"],
)
async def test_an_answer_without_items_is_a_broken_upstream(document: dict[str, Any]) -> None:
    async with client_answering(document) as client:
        with pytest.raises(UpstreamUnavailable, match=r"without data\.items"):
            await client.accounts()


async def test_the_probe_asks_for_the_organisations(
    anva: AnvaSimulator, client: AnvaClient
) -> None:
    await client.probe()

    assert [(r.method, r.path, r.status) for r in anva.requests] == [
        ("GET", "/api/organization/organizations/mine", 200)
    ]


async def test_all_dossier_numbers_include_those_of_an_account_with_an_odd_field(
    anva: AnvaSimulator, client: AnvaClient
) -> None:
    """A backfill must reach every dossier, even one whose account another event cannot read."""
    anva.add_account_record({"id": "7", "firstName": ["not", "text"], "dossiers": {"301": 100700}})
    anva.add_account_record({"id": "8", "dossiers": []})

    assert await client.all_dossier_numbers() == ["100234", "100700"]
