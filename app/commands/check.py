"""`python -m app check`: the preflight an operator runs with the deployment's own settings.

Before a rollout (a Job) or beside a running worker (`kubectl exec`), it asks each thing the
worker needs the question the worker would meet first: are the settings complete, does
Kafka answer with its security settings, does every topic exist, may the group be used, does
the limiter's Redis answer, are the ANVA, portal and Elements credentials accepted. One line
per check, `ok …` or `FAIL <what>: <what to fix> (<VARIABLE>)`, then a summary; exit 0 when
every check passed, 1 otherwise.

It writes nothing anywhere: Kafka is asked for metadata, the group's description and its
committed offsets (no consumer joins the group, so a running worker sees no rebalance);
Elements gets a token request and two searches, through the limiter the worker builds (so
they count against the deployment's budget and spacing, in Redis when it is configured).

The checks are independent: one whose settings could not be read, or whose prerequisite
failed (the topics need a broker, Elements' slots need the limiter's Redis), says so as
`skip` and counts as not passed; the others run. Every network call gives up after
`TIMEOUT_S`, and no line carries a secret: URLs are shown without their user info, errors
by their type and the API's own words.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    AuthenticationFailedError,
    GroupAuthorizationFailedError,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    UnsupportedSaslMechanismError,
    for_code,
)
from aiokafka.structs import TopicPartition
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisError

from app.clients.anva import AnvaClient
from app.clients.elements import ElementsClient
from app.clients.portal import PortalClient
from app.errors import (
    AuthenticationFailed,
    DailyBudgetExhausted,
    GrantRefused,
    RateLimited,
    SyncError,
    UpstreamRejected,
    UpstreamUnavailable,
)
from app.kafka.connection import client_options
from app.settings import (
    AnvaSettings,
    BackfillSettings,
    ElementsSettings,
    KafkaSettings,
    PortalSettings,
    RetrySettings,
    SettingsProblem,
    SettingsRead,
    TopicSettings,
    read_settings,
)
from app.wiring import ApiClients, build_api_clients

TIMEOUT_S = 5.0
"""Every network call: a connection, a request, a Kafka round trip."""
CHECK_TIMEOUT_S = 12.0
"""One check as a whole (Elements: a token request and a search, each a slot apart)."""
ERROR_TEXT_MAX = 160

Status = Literal["ok", "FAIL", "warn", "skip"]


@dataclass(frozen=True)
class CheckLine:
    """One check's answer: `ok <what>[: detail]`, `FAIL <what>: <fix> (<VARIABLES>)`,
    `warn …` (worth a look, not a failure) or `skip <what>: <why>` (not run)."""

    status: Status
    what: str
    detail: str = ""
    variables: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.status} {self.what}"
        if self.detail:
            text += f": {self.detail}"
        if self.variables:
            text += f" ({', '.join(self.variables)})"
        return text


def ok(what: str, detail: str = "") -> CheckLine:
    return CheckLine("ok", what, detail)


def fail(what: str, fix: str, *variables: str) -> CheckLine:
    return CheckLine("FAIL", what, fix, variables)


def warn(what: str, detail: str, *variables: str) -> CheckLine:
    return CheckLine("warn", what, detail, variables)


def skip(what: str, why: str) -> CheckLine:
    return CheckLine("skip", what, why)


def summary(lines: Sequence[CheckLine]) -> str:
    """`8 checks: 7 ok, 1 FAIL`, with warnings and skipped checks when there are any."""
    counts = Counter(line.status for line in lines)
    parts = [f"{counts['ok']} ok", f"{counts['FAIL']} FAIL"]
    if counts["warn"]:
        parts.append(f"{counts['warn']} warning{'s' if counts['warn'] > 1 else ''}")
    if counts["skip"]:
        parts.append(f"{counts['skip']} skipped")
    return f"{len(lines)} checks: {', '.join(parts)}"


def exit_code(lines: Iterable[CheckLine]) -> int:
    """0 when every check passed (a warning passes); a failed or skipped one makes it 1."""
    return 1 if any(line.status in ("FAIL", "skip") for line in lines) else 0


def _short(error: BaseException) -> str:
    """An error by its type and its own words, cut short (no URL ever reaches these)."""
    text = str(error).strip()
    name = type(error).__name__
    if text.startswith(f"{name}:"):
        text = text[len(name) + 1 :].strip()
    if len(text) > ERROR_TEXT_MAX:
        text = text[: ERROR_TEXT_MAX - 1] + "…"
    return f"{name}: {text}" if text else name


def shown_url(url: object) -> str:
    """A URL as a line may show it: without user info (a password) or query (a token)."""
    parts = urlsplit(str(url))
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


# --- settings ------------------------------------------------------------------------------

SETTINGS = "settings complete"
REQUIRED_MESSAGE = "Field required"


def settings_line(problems: Sequence[SettingsProblem]) -> CheckLine:
    """Every problem of every group in one line, the variables that share a message together:
    `required, not set (ANVA_TOKEN, ELEMENTS_CONTRACT_PROPOSITIE_ID); …`."""
    if not problems:
        return ok(SETTINGS, "every required variable set, every tenant id given")
    variables: dict[str, list[str]] = {}
    for problem in problems:
        message = "required, not set" if problem.message == REQUIRED_MESSAGE else problem.message
        named = variables.setdefault(message, [])
        if problem.variable:
            named.append(problem.variable)
    parts = [
        f"{message} ({', '.join(names)})" if names else message
        for message, names in variables.items()
    ]
    return fail(SETTINGS, "; ".join(parts))


def needs_settings(read: SettingsRead, *groups: str) -> str:
    """Why a check whose settings groups could not be read is skipped."""
    missing = [group for group in groups if read.unread(group)] or list(groups)
    return f"needs the {', '.join(missing)} settings above"


ELEMENTS_TENANT_IDS = {
    "ELEMENTS_KANTOOR_ID": "kantoor_id",
    "ELEMENTS_DOSSIERSTATUS_ID": "dossierstatus_id",
}
"""The `ElementsSettings` fields no check but the kantoor's needs."""


def elements_for_checks(read: SettingsRead) -> tuple[ElementsSettings | None, bool]:
    """Elements' settings for the credentials check, and whether `ELEMENTS_KANTOOR_ID` is
    among them. Unset tenant ids do not stop the credentials check: they stand in as 1 here,
    which no request of it sends (the settings line has named them)."""
    given = read.group(ElementsSettings)
    if given is not None:
        return given, True
    problems = [p for p in read.problems if p.group == "elements"]
    if not problems or any(p.variable not in ELEMENTS_TENANT_IDS for p in problems):
        return None, False
    stand_ins: dict[str, Any] = {ELEMENTS_TENANT_IDS[str(p.variable)]: 1 for p in problems}
    try:
        settings = ElementsSettings(**stand_ins)
    except ValueError:
        return None, False
    return settings, "kantoor_id" not in stand_ins


# --- Kafka -----------------------------------------------------------------------------------

KAFKA = "Kafka reachable"
TOPICS = "topics present"
SASL_REFUSED = (
    SaslAuthenticationFailed,
    AuthenticationFailedError,
    IllegalSaslStateError,
    UnsupportedSaslMechanismError,
)


class _KafkaErrors(logging.Handler):
    """aiokafka logs why a bootstrap server could not be reached and raises only "Unable to
    bootstrap": the logged error (a refused connection, an untrusted certificate, a refused
    SASL login) is the one the line names."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        cause = record.args[-1] if isinstance(record.args, tuple) and record.args else None
        if isinstance(cause, BaseException):
            self.errors.append(cause)


@contextmanager
def _kafka_errors_kept() -> Iterator[_KafkaErrors]:
    """aiokafka's log lines go to the handler alone while the Kafka checks run."""
    logger = logging.getLogger("aiokafka")
    handler = _KafkaErrors()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def kafka_failure(kafka: KafkaSettings, cause: BaseException) -> CheckLine:
    """What to fix, from the reason the brokers could not be used."""
    text = _short(cause)
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return fail(
            KAFKA,
            f"the brokers' certificate is not trusted ({text}): name the CA that signs it",
            "KAFKA_SSL_CA_FILE",
        )
    if isinstance(cause, ssl.SSLError):
        return fail(
            KAFKA,
            f"the TLS handshake failed ({text}): a broker that requires a client certificate "
            "needs one, and a listener without TLS needs a protocol without SSL",
            "KAFKA_SECURITY_PROTOCOL",
            "KAFKA_SSL_CERT_FILE",
            "KAFKA_SSL_KEY_FILE",
        )
    if isinstance(cause, SASL_REFUSED):
        return fail(
            KAFKA,
            f"the brokers refused the SASL login ({text})",
            "KAFKA_SASL_USERNAME",
            "KAFKA_SASL_PASSWORD",
            "KAFKA_SASL_MECHANISM",
        )
    return fail(
        KAFKA,
        f"no broker answered at {kafka.bootstrap_servers} over {kafka.security_protocol} ({text})",
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_SECURITY_PROTOCOL",
    )


def _kafka_reached(kafka: KafkaSettings) -> str:
    login = f", SASL {kafka.sasl_mechanism} as {kafka.sasl_username}" if kafka.uses_sasl else ""
    return f"{kafka.bootstrap_servers} answered over {kafka.security_protocol}{login}"


def topic_variables(topics: TopicSettings) -> dict[str, str]:
    """Each topic's variable → the topic it names."""
    return {
        f"TOPIC_{field.upper()}": getattr(topics, field) for field in TopicSettings.model_fields
    }


def topics_line(kafka: KafkaSettings, topics: TopicSettings, existing: set[str]) -> CheckLine:
    """Every topic the service uses must exist. With `KAFKA_CREATE_TOPICS=true` the worker
    creates the missing ones at its start, so they are a warning; otherwise a failure."""
    names = topic_variables(topics)
    missing = {variable: topic for variable, topic in names.items() if topic not in existing}
    if not missing:
        return ok(TOPICS, f"all {len(names)}")
    listed = f"missing {', '.join(missing.values())}"
    if kafka.create_topics:
        return warn(
            TOPICS,
            f"{listed}: the worker creates them at its start (KAFKA_CREATE_TOPICS=true, "
            f"{kafka.topic_partitions} partitions each) if its ACLs allow it",
            *missing,
        )
    return fail(
        TOPICS,
        f"{listed}: create them (docs/deploy/kafka.md, Topics), or name the topic that exists",
        *missing,
    )


def group_failure(group_id: str, cause: BaseException) -> CheckLine:
    what = f"consumer group {group_id} usable"
    if isinstance(cause, GroupAuthorizationFailedError):
        return fail(
            what,
            f"the Kafka user may not use this group ({_short(cause)}): allow it Describe and "
            "Read on the group (an ACL: docs/deploy/kafka.md, ACLs), or name the group the ACL allows",
            "KAFKA_GROUP_ID",
        )
    if isinstance(cause, TopicAuthorizationFailedError):
        return fail(
            what,
            f"the Kafka user may not read the input topics ({_short(cause)}): allow it "
            "Describe and Read on them (docs/deploy/kafka.md, ACLs)",
            "KAFKA_SASL_USERNAME",
        )
    if isinstance(cause, TimeoutError):
        return fail(
            what, f"its coordinator did not answer within {TIMEOUT_S:g} s", "KAFKA_GROUP_ID"
        )
    return fail(what, f"the brokers answered {_short(cause)}", "KAFKA_GROUP_ID")


async def _group_line(
    admin: AIOKafkaAdminClient, kafka: KafkaSettings, topics: TopicSettings, existing: set[str]
) -> CheckLine:
    """Described and its committed offsets read, as the worker's first join would: the
    coordinator, Describe on the group, the offsets of the consumed topics' partitions."""
    group_id = kafka.group_id
    consumed = [t for t in (*topics.inputs, topics.backfill) if t in existing]
    async with asyncio.timeout(TIMEOUT_S):
        coordinator = await admin.find_coordinator(group_id)
        (response,) = await admin.describe_consumer_groups(
            [group_id], group_coordinator_id=coordinator
        )
        (group,) = response.to_object()["groups"]
        if group["error_code"]:
            raise for_code(group["error_code"])(f"DescribeGroups {group_id}")
        partitions = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in (await admin.describe_topics(consumed) if consumed else [])
            for partition in topic["partitions"]
        ]
        offsets = (
            await admin.list_consumer_group_offsets(group_id, coordinator, partitions)
            if partitions
            else {}
        )
    members = len(group["members"])
    committed = sum(1 for offset in offsets.values() if offset.offset >= 0)
    return ok(
        f"consumer group {group_id} usable",
        f"{str(group['state']).lower() or 'unknown'}, {members} member{'s' * (members != 1)}, "
        f"offsets committed on {committed} of {len(partitions)} partitions",
    )


async def kafka_lines(kafka: KafkaSettings, topics: TopicSettings) -> list[CheckLine]:
    """Reachable, topics, group: one admin client, as the worker's topic check connects."""
    group = f"consumer group {kafka.group_id} usable"
    admin = AIOKafkaAdminClient(**client_options(kafka), request_timeout_ms=int(TIMEOUT_S * 1000))
    with _kafka_errors_kept() as logged:
        try:
            try:
                async with asyncio.timeout(TIMEOUT_S):
                    await admin.start()
            except (KafkaError, OSError, TimeoutError) as error:
                cause = logged.errors[-1] if logged.errors else error
                unreachable = "needs Kafka reachable"
                return [
                    kafka_failure(kafka, cause),
                    skip(TOPICS, unreachable),
                    skip(group, unreachable),
                ]
            lines = [ok(KAFKA, _kafka_reached(kafka))]
            try:
                async with asyncio.timeout(TIMEOUT_S):
                    existing = set(await admin.list_topics())
            except (KafkaError, OSError, TimeoutError) as error:
                return [
                    *lines,
                    fail(TOPICS, f"the topics could not be listed: {_short(error)}"),
                    skip(group, "needs the topics listed"),
                ]
            lines.append(topics_line(kafka, topics, existing))
            try:
                lines.append(await _group_line(admin, kafka, topics, existing))
            except (KafkaError, OSError, TimeoutError) as error:
                lines.append(group_failure(kafka.group_id, error))
            return lines
        finally:
            await admin.close()


# --- Redis -----------------------------------------------------------------------------------

REDIS = "Redis reachable"


def redis_address(url: str) -> str:
    """host:port/db of a Redis URL, never its password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    port = parts.port or 6379
    return f"{parts.hostname or 'localhost'}:{port}{parts.path}"


async def redis_line(elements: ElementsSettings) -> CheckLine:
    """PING the limiter's Redis, when one is configured."""
    secret = elements.limiter_redis_url
    if secret is None:
        return ok(
            REDIS,
            "not configured (ELEMENTS_LIMITER_REDIS_URL unset): the rate limit and the day's "
            "count live in the worker's process, right for one replica only",
        )
    url = secret.get_secret_value()
    try:
        redis = Redis.from_url(
            url,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as error:
        return fail(
            REDIS,
            f"not a Redis URL ({error}): redis://[:password@]host:6379/0, rediss:// for TLS",
            "ELEMENTS_LIMITER_REDIS_URL",
        )
    address = redis_address(url)
    try:
        async with asyncio.timeout(TIMEOUT_S):
            await redis.ping()
    except AuthenticationError as error:
        return fail(
            REDIS, f"{address} refused the password ({_short(error)})", "ELEMENTS_LIMITER_REDIS_URL"
        )
    except (RedisError, OSError, TimeoutError) as error:
        return fail(
            REDIS,
            f"no Redis answered at {address} ({_short(error)})",
            "ELEMENTS_LIMITER_REDIS_URL",
        )
    finally:
        await redis.aclose()
    return ok(REDIS, f"{address} answered PING")


# --- the APIs --------------------------------------------------------------------------------

ANVA_CHECK = "ANVA token accepted"
PORTAL_CHECK = "portal token accepted"
ELEMENTS_CHECK = "Elements credentials accepted"
KANTOOR_CHECK = "kantoor on existing klantdossiers"


def api_failure(
    what: str, api: str, error: BaseException, *, base_url: object, token: str, url_variable: str
) -> CheckLine:
    """A token check's failure: refused credentials name the token, anything else the URL."""
    where = shown_url(base_url)
    if isinstance(error, AuthenticationFailed):
        return fail(what, str(error), token)
    if isinstance(error, UpstreamRejected) and error.status == 404:
        return fail(
            what,
            f"{api} answered 404 below {where}: the URL must end where the spec's paths begin",
            url_variable,
        )
    if isinstance(error, UpstreamUnavailable | TimeoutError):
        return fail(what, f"{api} did not answer at {where} ({_short(error)})", url_variable)
    return fail(what, f"{api} answered {_short(error)} at {where}", url_variable, token)


async def anva_line(settings: AnvaSettings, anva: AnvaClient) -> CheckLine:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            seen = await anva.organisations_seen()
    except (SyncError, TimeoutError) as error:
        return api_failure(
            ANVA_CHECK,
            "ANVA",
            error,
            base_url=settings.base_url,
            token="ANVA_TOKEN",
            url_variable="ANVA_BASE_URL",
        )
    return ok(ANVA_CHECK, f"{seen} organisation{'s' * (seen != 1)} visible to the integration")


async def portal_line(settings: PortalSettings, portal: PortalClient) -> CheckLine:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            page = await portal.page(1)
    except (SyncError, TimeoutError) as error:
        return api_failure(
            PORTAL_CHECK,
            "the portal",
            error,
            base_url=settings.base_url,
            token="PORTAL_TOKEN",
            url_variable="PORTAL_BASE_URL",
        )
    return ok(PORTAL_CHECK, f"page 1 read, {len(page.customers)} customers")


def grant_variables(error: GrantRefused) -> tuple[str, ...]:
    """Which settings a refused grant points at, from its OAuth 2 error code."""
    if error.status == 401 or error.oauth_error == "invalid_client":
        return ("ELEMENTS_CLIENT_ID", "ELEMENTS_CLIENT_SECRET")
    if error.oauth_error == "invalid_scope":
        return ("ELEMENTS_SCOPE",)
    return ("ELEMENTS_ORGANISATION", "ELEMENTS_WEBSERVICE", "ELEMENTS_SCOPE")


def elements_failure(settings: ElementsSettings, error: BaseException) -> CheckLine:
    where = shown_url(settings.base_url)
    if isinstance(error, GrantRefused):
        return fail(ELEMENTS_CHECK, str(error), *grant_variables(error))
    if isinstance(error, AuthenticationFailed):
        return fail(
            ELEMENTS_CHECK,
            f"a token was granted, and the klantdossiers search refused with it ({error}): "
            "the scope must hold klantdossier.read",
            "ELEMENTS_SCOPE",
            "ELEMENTS_WEBSERVICE",
        )
    if isinstance(error, DailyBudgetExhausted):
        return fail(ELEMENTS_CHECK, f"the day's budget is spent ({error})", "ELEMENTS_DAILY_LIMIT")
    if isinstance(error, RateLimited):
        return fail(
            ELEMENTS_CHECK,
            "Elements answered 429: more than its rate reached it (a worker beside this check "
            "without the shared Redis?); run check again",
            "ELEMENTS_RATE_LIMIT",
            "ELEMENTS_LIMITER_REDIS_URL",
        )
    return api_failure(
        ELEMENTS_CHECK,
        "Elements",
        error,
        base_url=where,
        token="ELEMENTS_CLIENT_SECRET",
        url_variable="ELEMENTS_BASE_URL",
    )


async def elements_lines(
    settings: ElementsSettings, elements: ElementsClient, *, kantoor_known: bool
) -> list[CheckLine]:
    """A token and a search that finds nothing (the outage probe), then one search filtered on
    the configured kantoor: a warning, not a failure, when it finds no klantdossier (a new
    tenant has none yet; a kantoor id of another tenant finds none either)."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await elements.probe()
    except (SyncError, TimeoutError) as error:
        return [
            elements_failure(settings, error),
            skip(KANTOOR_CHECK, "needs the Elements credentials"),
        ]
    lines = [ok(ELEMENTS_CHECK, "a token granted, klantdossiers searched")]
    if not kantoor_known:
        return [*lines, skip(KANTOOR_CHECK, "needs ELEMENTS_KANTOOR_ID")]
    kantoor = settings.kantoor_id
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            found = await elements.find_dossiers(kantoor=str(kantoor))
    except (SyncError, TimeoutError) as error:
        return [
            *lines,
            warn(
                KANTOOR_CHECK,
                f"could not tell: the search by kantoor {kantoor} failed ({_short(error)})",
            ),
        ]
    if found:
        carried = f"{len(found)} klantdossier{'s' * (len(found) != 1)}"
        return [*lines, ok(KANTOOR_CHECK, f"kantoor {kantoor} carried by {carried}")]
    return [
        *lines,
        warn(
            KANTOOR_CHECK,
            f"no klantdossier carries kantoor {kantoor}: right for a tenant with none yet, "
            "otherwise an id of another tenant or office",
            "ELEMENTS_KANTOOR_ID",
        ),
    ]


# --- the whole preflight ---------------------------------------------------------------------


async def _named(what: str, check: Awaitable[CheckLine]) -> CheckLine:
    """A check that raised what no branch foresaw still gives its line, never a traceback."""
    try:
        return await check
    except Exception as error:  # reported as the check's failure, never a traceback
        return fail(what, f"unexpected {_short(error)}")


async def _lines_named(whats: Sequence[str], check: Awaitable[list[CheckLine]]) -> list[CheckLine]:
    try:
        return await check
    except Exception as error:  # reported as the first check's failure
        return [
            fail(whats[0], f"unexpected {_short(error)}"),
            *(skip(w, "not run") for w in whats[1:]),
        ]


async def run_checks(
    read: SettingsRead,
    *,
    build_clients: Callable[..., ApiClients] = build_api_clients,
    emit: Callable[[CheckLine], None] = lambda line: None,
) -> list[CheckLine]:
    """Every check, concurrently, each line emitted in order as soon as it and those above
    it are known; returns them all."""
    kafka, topics = read.group(KafkaSettings), read.group(TopicSettings)
    elements, kantoor_known = elements_for_checks(read)
    clients = build_clients(
        anva=read.group(AnvaSettings),
        portal=read.group(PortalSettings),
        elements=elements,
        retry=read.group(RetrySettings),
        backfill=read.group(BackfillSettings),
        timeout_s=TIMEOUT_S,
    )
    group_what = f"consumer group {kafka.group_id} usable" if kafka else "consumer group usable"

    async def kafka_part() -> list[CheckLine]:
        if kafka is None or topics is None:
            why = needs_settings(read, "kafka", "topics")
            return [skip(what, why) for what in (KAFKA, TOPICS, group_what)]
        return await _lines_named((KAFKA, TOPICS, group_what), kafka_lines(kafka, topics))

    async def redis_part() -> CheckLine:
        if elements is None:
            return skip(REDIS, needs_settings(read, "elements"))
        return await _named(REDIS, redis_line(elements))

    async def anva_part() -> CheckLine:
        anva = read.group(AnvaSettings)
        if anva is None or clients.anva is None:
            return skip(ANVA_CHECK, needs_settings(read, "anva"))
        return await _named(ANVA_CHECK, anva_line(anva, clients.anva))

    async def portal_part() -> CheckLine:
        portal = read.group(PortalSettings)
        if portal is None or clients.portal is None:
            return skip(PORTAL_CHECK, needs_settings(read, "portal"))
        return await _named(PORTAL_CHECK, portal_line(portal, clients.portal))

    async def elements_part(redis: asyncio.Task[CheckLine]) -> list[CheckLine]:
        if elements is None or clients.elements is None:
            why = needs_settings(read, "elements", "retry", "backfill")
            return [skip(ELEMENTS_CHECK, why), skip(KANTOOR_CHECK, why)]
        if (await redis).status != "ok":
            why = (
                "every Elements request waits for a slot in the limiter's Redis, which failed above"
            )
            return [skip(ELEMENTS_CHECK, why), skip(KANTOOR_CHECK, why)]
        return await _lines_named(
            (ELEMENTS_CHECK, KANTOOR_CHECK),
            elements_lines(elements, clients.elements, kantoor_known=kantoor_known),
        )

    lines = [settings_line(read.problems)]
    emit(lines[0])
    try:
        redis = asyncio.create_task(redis_part())
        parts: list[asyncio.Task[Any]] = [
            asyncio.create_task(kafka_part()),
            redis,
            asyncio.create_task(anva_part()),
            asyncio.create_task(portal_part()),
            asyncio.create_task(elements_part(redis)),
        ]
        for part in parts:
            answer = await part
            for line in answer if isinstance(answer, list) else [answer]:
                lines.append(line)
                emit(line)
    finally:
        await clients.close()
    return lines


def _quiet_logging() -> None:
    """The lines are the output: library and service logs below ERROR stay out of it."""
    from app.logs import configure_logging

    configure_logging("console", "ERROR")


async def run_check() -> int:
    """Read the settings as the worker does, run every check, print the lines and a summary."""
    _quiet_logging()
    read = read_settings()

    def emit(line: CheckLine) -> None:
        print(line, flush=True)

    lines = await run_checks(read, emit=emit)
    print(summary(lines), flush=True)
    return exit_code(lines)
