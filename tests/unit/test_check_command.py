"""`python -m app check` without sockets: the lines, the summary and the exit code; which
variable each failure names; the API checks over the simulators (ASGI) and fake answers."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest
from aiokafka.errors import GroupAuthorizationFailedError, SaslAuthenticationFailed
from pydantic import SecretStr

from app.clients.anva import API as ANVA
from app.clients.elements import API as ELEMENTS
from app.clients.portal import API as PORTAL
from app.commands.check import (
    CheckLine,
    anva_line,
    elements_for_checks,
    elements_lines,
    exit_code,
    fail,
    grant_variables,
    group_failure,
    kafka_failure,
    ok,
    portal_line,
    redis_address,
    run_checks,
    settings_line,
    shown_url,
    skip,
    summary,
    topics_line,
    warn,
)
from app.errors import GrantRefused
from app.sandbox.simulators.anva import AnvaSimulator
from app.sandbox.simulators.elements import ElementsSimulator
from app.sandbox.simulators.portal import PortalSimulator
from app.sandbox.worker_process import free_port
from app.settings import (
    AnvaSettings,
    BackfillSettings,
    ElementsSettings,
    KafkaSettings,
    PortalSettings,
    RetrySettings,
    SettingsProblem,
    TopicSettings,
    read_settings,
)
from app.wiring import ApiClients, build_api_clients

TOKEN, SECRET, ORGANISATION, KANTOOR = "anva-token", "elements-secret", "4242", 3
TOPICS = TopicSettings()


def test_a_line_says_status_what_detail_and_the_variables_to_fix() -> None:
    assert str(ok("Kafka reachable")) == "ok Kafka reachable"
    assert str(ok("topics present", "all 7")) == "ok topics present: all 7"
    assert str(fail("ANVA token accepted", "ANVA refused our credentials (401)", "ANVA_TOKEN")) == (
        "FAIL ANVA token accepted: ANVA refused our credentials (401) (ANVA_TOKEN)"
    )
    assert str(warn("topics present", "missing x", "TOPIC_RESULTS", "TOPIC_STATE")) == (
        "warn topics present: missing x (TOPIC_RESULTS, TOPIC_STATE)"
    )
    assert str(skip("topics present", "needs Kafka reachable")) == (
        "skip topics present: needs Kafka reachable"
    )


@pytest.mark.parametrize(
    ("statuses", "expected_summary", "expected_exit"),
    [
        (["ok", "ok", "ok"], "3 checks: 3 ok, 0 FAIL", 0),
        (["ok", "warn", "ok"], "3 checks: 2 ok, 0 FAIL, 1 warning", 0),
        (["ok", "warn", "warn"], "3 checks: 1 ok, 0 FAIL, 2 warnings", 0),
        (["FAIL", "ok", "ok", "ok", "ok", "ok", "ok"], "7 checks: 6 ok, 1 FAIL", 1),
        (["FAIL", "skip", "skip", "ok"], "4 checks: 1 ok, 1 FAIL, 2 skipped", 1),
        (["ok", "skip"], "2 checks: 1 ok, 0 FAIL, 1 skipped", 1),
    ],
)
def test_the_summary_counts_each_status_and_only_passed_checks_exit_0(
    statuses: list[Any], expected_summary: str, expected_exit: int
) -> None:
    lines = [CheckLine(status, f"check {n}") for n, status in enumerate(statuses)]

    assert (summary(lines), exit_code(lines)) == (expected_summary, expected_exit)


def test_the_settings_line_names_every_problem_the_unset_ones_together() -> None:
    problems = [
        SettingsProblem("anva", "Field required", "ANVA_TOKEN"),
        SettingsProblem("kafka", "Input should be a valid integer", "KAFKA_MAX_IN_FLIGHT"),
        SettingsProblem("contracts", "Field required", "ELEMENTS_CONTRACT_PROPOSITIE_ID"),
        SettingsProblem("kafka", "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_PASSWORD"),
    ]

    assert str(settings_line([])) == (
        "ok settings complete: every required variable set, every tenant id given"
    )
    assert str(settings_line(problems)) == (
        "FAIL settings complete: required, not set (ANVA_TOKEN, ELEMENTS_CONTRACT_PROPOSITIE_ID); "
        "Input should be a valid integer (KAFKA_MAX_IN_FLIGHT); "
        "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_PASSWORD"
    )


def test_unset_tenant_ids_do_not_stop_the_elements_credentials_check(
    monkeypatch: pytest.MonkeyPatch, contract_environment: None
) -> None:
    monkeypatch.delenv("ELEMENTS_KANTOOR_ID")
    monkeypatch.delenv("ELEMENTS_DOSSIERSTATUS_ID")
    elements, kantoor_known = elements_for_checks(read_settings())

    monkeypatch.delenv("ELEMENTS_CLIENT_SECRET")
    without_secret = elements_for_checks(read_settings())

    assert elements is not None and not kantoor_known
    assert elements.client_secret.get_secret_value() == "secret"
    assert without_secret == (None, False)


KAFKA = KafkaSettings(bootstrap_servers="k1:9093,k2:9093", security_protocol="PLAINTEXT")


@pytest.mark.parametrize(
    ("cause", "variables"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), ("KAFKA_BOOTSTRAP_SERVERS",)),
        (TimeoutError(), ("KAFKA_BOOTSTRAP_SERVERS",)),
        (ssl.SSLCertVerificationError("CERTIFICATE_VERIFY_FAILED"), ("KAFKA_SSL_CA_FILE",)),
        (ssl.SSLError("TLSV13_ALERT_CERTIFICATE_REQUIRED"), ("KAFKA_SSL_CERT_FILE",)),
        (SaslAuthenticationFailed("Authentication failed"), ("KAFKA_SASL_PASSWORD",)),
    ],
)
def test_a_kafka_failure_names_the_setting_its_cause_points_at(
    cause: BaseException, variables: tuple[str, ...]
) -> None:
    line = kafka_failure(KAFKA, cause)

    assert line.status == "FAIL"
    assert set(variables) <= set(line.variables)
    assert type(cause).__name__ in line.detail


def test_missing_topics_fail_named_by_their_variables_or_warn_when_the_worker_creates_them() -> (
    None
):
    existing = set(TOPICS.model_dump().values()) - {TOPICS.results, TOPICS.state}
    off = KAFKA.model_copy(update={"create_topics": False})

    assert str(topics_line(off, TOPICS, set(TOPICS.model_dump().values()))) == (
        "ok topics present: all 7"
    )
    assert str(topics_line(off, TOPICS, existing)) == (
        "FAIL topics present: missing sync-results, elements-sync-state: create them "
        "(docs/deploy/kafka.md, Topics), or name the topic that exists (TOPIC_RESULTS, "
        "TOPIC_STATE)"
    )
    created = topics_line(KAFKA, TOPICS, existing)
    assert (created.status, created.variables) == ("warn", ("TOPIC_RESULTS", "TOPIC_STATE"))
    assert "KAFKA_CREATE_TOPICS=true" in created.detail


def test_a_group_the_user_may_not_use_names_the_group_and_the_acl() -> None:
    line = group_failure("elements-sync", GroupAuthorizationFailedError())

    assert line.what == "consumer group elements-sync usable"
    assert (line.status, line.variables) == ("FAIL", ("KAFKA_GROUP_ID",))
    assert "ACL" in line.detail


def test_addresses_are_shown_without_passwords_or_tokens() -> None:
    assert redis_address("redis://:hunter2@redis.example:6380/1") == "redis.example:6380/1"
    assert redis_address("rediss://user:hunter2@redis.example/0") == "redis.example:6379/0"
    assert shown_url("https://user:hunter2@hub.example.nl/api?token=t") == (
        "https://hub.example.nl/api"
    )


@pytest.mark.parametrize(
    ("status", "oauth_error", "variables"),
    [
        (401, "invalid_client", ("ELEMENTS_CLIENT_ID", "ELEMENTS_CLIENT_SECRET")),
        (400, "invalid_scope", ("ELEMENTS_SCOPE",)),
        (400, "invalid_grant", ("ELEMENTS_ORGANISATION", "ELEMENTS_WEBSERVICE", "ELEMENTS_SCOPE")),
    ],
)
def test_a_refused_grant_names_what_its_oauth_error_points_at(
    status: int, oauth_error: str, variables: tuple[str, ...]
) -> None:
    error = GrantRefused("refused", status=status, oauth_error=oauth_error)

    assert grant_variables(error) == variables


# --- the API checks over ASGI ---------------------------------------------------------------


def api_clients(
    transports: Mapping[str, httpx.AsyncBaseTransport], **elements: Any
) -> tuple[ApiClients, ElementsSettings]:
    given: dict[str, Any] = {
        "base_url": "http://elements",
        "client_id": "elements-sync",
        "client_secret": SecretStr(SECRET),
        "organisation": ORGANISATION,
        "kantoor_id": KANTOOR,
        "dossierstatus_id": 1,
        "rate_limit": 1000,
        **elements,
    }
    settings = ElementsSettings(**given)
    clients = build_api_clients(
        anva=AnvaSettings(base_url="http://anva/api", token=SecretStr(TOKEN)),
        portal=PortalSettings(base_url="http://portal/v1", token=SecretStr(TOKEN)),
        elements=settings,
        retry=RetrySettings(),
        backfill=BackfillSettings(),
        timeout_s=1.0,
        transports=transports,
    )
    return clients, settings


def answering(status: int) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json={"error": "x"}))


async def test_the_token_checks_name_the_token_when_refused_and_the_url_on_a_404() -> None:
    clients, _ = api_clients({ANVA: answering(404), PORTAL: answering(401)})
    try:
        assert clients.anva is not None and clients.portal is not None
        anva = await anva_line(
            AnvaSettings(base_url="http://anva/api", token=SecretStr(TOKEN)), clients.anva
        )
        portal = await portal_line(
            PortalSettings(base_url="http://portal/v1", token=SecretStr(TOKEN)),
            clients.portal,
        )
    finally:
        await clients.close()

    assert (anva.status, anva.variables) == ("FAIL", ("ANVA_BASE_URL",))
    assert "404 below http://anva/api" in anva.detail
    assert str(portal) == (
        "FAIL portal token accepted: portal refused our credentials (401) (PORTAL_TOKEN)"
    )


async def test_the_anva_and_portal_checks_pass_on_the_simulators() -> None:
    anva, portal = AnvaSimulator(token=TOKEN), PortalSimulator(token=TOKEN)
    clients, _ = api_clients(
        {ANVA: httpx.ASGITransport(app=anva.app), PORTAL: httpx.ASGITransport(app=portal.app)}
    )
    try:
        assert clients.anva is not None and clients.portal is not None
        lines = [
            await anva_line(
                AnvaSettings(base_url="http://anva/api", token=SecretStr(TOKEN)), clients.anva
            ),
            await portal_line(
                PortalSettings(base_url="http://portal/v1", token=SecretStr(TOKEN)),
                clients.portal,
            ),
        ]
    finally:
        await clients.close()

    assert [line.status for line in lines] == ["ok", "ok"]


async def elements_check(
    elements: ElementsSimulator, *, kantoor_known: bool = True, **settings: Any
) -> tuple[list[CheckLine], int]:
    """The Elements lines, and how many requests the limiter counted for them."""
    clients, config = api_clients({ELEMENTS: httpx.ASGITransport(app=elements.app)}, **settings)
    try:
        assert clients.elements is not None and clients.limiter is not None
        lines = await elements_lines(config, clients.elements, kantoor_known=kantoor_known)
        counted = config.daily_limit - clients.limiter.remaining_today
    finally:
        await clients.close()
    return lines, counted


def simulator() -> ElementsSimulator:
    return ElementsSimulator("elements-sync", SECRET, ORGANISATION, rate_limit=10_000)


async def test_elements_costs_a_token_and_two_searches_through_the_limiter_and_writes_nothing() -> (
    None
):
    elements = simulator()
    elements.add_dossier("100001", kantoor_id=KANTOOR)
    elements.add_dossier("100002", kantoor_id=KANTOOR + 1)

    lines, counted = await elements_check(elements)

    assert [str(line) for line in lines] == [
        "ok Elements credentials accepted: a token granted, klantdossiers searched",
        "ok kantoor on existing klantdossiers: kantoor 3 carried by 1 klantdossier",
    ]
    assert counted == 3
    assert [(r.method, r.path, r.query) for r in elements.requests] == [
        ("POST", "/oauth/access_token", ""),
        ("GET", "/api/data/klantdossiers", "relatienummer=0"),
        ("GET", "/api/data/klantdossiers", "kantoor=3"),
    ]


async def test_a_kantoor_no_klantdossier_carries_is_a_warning_naming_it() -> None:
    elements = simulator()
    elements.add_dossier("100002", kantoor_id=KANTOOR + 1)

    lines, _ = await elements_check(elements)
    unknown, _ = await elements_check(simulator(), kantoor_known=False)

    assert [line.status for line in lines] == ["ok", "warn"]
    assert lines[1].variables == ("ELEMENTS_KANTOOR_ID",)
    assert [line.status for line in unknown] == ["ok", "skip"]


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"client_secret": SecretStr("wrong")}, "ELEMENTS_CLIENT_SECRET"),
        ({"organisation": "9999"}, "ELEMENTS_ORGANISATION"),
        ({"scope": "klantdossier.write"}, "ELEMENTS_SCOPE"),
    ],
)
async def test_refused_elements_credentials_name_the_setting_and_skip_the_kantoor(
    settings: dict[str, Any], variable: str
) -> None:
    elements = simulator()

    (credentials, kantoor), _ = await elements_check(elements, **settings)

    assert credentials.status == "FAIL" and variable in credentials.variables
    assert kantoor.status == "skip"
    assert SECRET not in str(credentials) and "wrong" not in str(credentials)


async def test_a_check_that_raises_what_no_branch_foresaw_gives_a_fail_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, contract_environment: None
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("boom")

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    build: Callable[..., ApiClients] = lambda **groups: build_api_clients(  # noqa: E731
        **groups, transports={ANVA: httpx.MockTransport(broken)}
    )

    lines = await run_checks(read_settings(), build_clients=build)

    assert [line.what for line in lines][:2] == ["settings complete", "Kafka reachable"]
    assert str(lines[5]) == "FAIL ANVA token accepted: unexpected RuntimeError: boom"
    assert [line.status for line in lines][:3] == ["ok", "FAIL", "skip"]
