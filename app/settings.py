"""One settings tree, read once from the environment (and a `.env` file).

The environment names are the service's public contract (docs/reference/configuration.md),
so each group is its own `BaseSettings` with the contract's prefix instead of a nested
delimiter: `ELEMENTS_CLIENT_ID` stays `ELEMENTS_CLIENT_ID`, not `ELEMENTS__CLIENT_ID`.
Kubernetes Secrets mounted as files work through `SETTINGS_SECRETS_DIR`.

Every field's docstring is its meaning in that reference page, which `.ci/reference_docs.py`
generates from this module: the variable, its kind (required, per tenant, for the deployment,
tuning; secret), its default and its meaning. A field is required when it has no default and
secret when it is a `SecretStr`; `PER_TENANT` and `FOR_THE_DEPLOYMENT` in its annotation say
the rest, and an unmarked field with a default is tuning.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import SettingsError
from app.events import DEFAULT_MAX_EVENT_BYTES

SECRETS_DIR_VARIABLE = "SETTINGS_SECRETS_DIR"


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        secrets_dir=os.environ.get(SECRETS_DIR_VARIABLE),
        use_attribute_docstrings=True,
    )


@dataclass(frozen=True)
class SettingKind:
    """How an operator treats a setting with a default, put in its annotation
    (`Annotated[str, FOR_THE_DEPLOYMENT]`); unmarked, such a setting is tuning."""

    name: str


PER_TENANT = SettingKind("per tenant")
"""The tenant's own Elements: its ids, its limits, its contract statuses."""
FOR_THE_DEPLOYMENT = SettingKind("deployment")
"""Names something of this deployment (an address, a topic, a security setting, a secret):
set it to match, whatever its default."""


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


def _read_pem(path: Path, marker: str, what: str) -> str:
    """The file's text, or a ValueError saying why it cannot be the PEM file asked for."""
    try:
        text = path.read_bytes().decode("ascii", errors="replace")
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror}") from None
    if f"{marker}-----" not in text:
        raise ValueError(f"{path} is not a PEM file with {what}")
    return text


TenantId = Annotated[int, Field(ge=1), PER_TENANT]
"""An id of the tenant's own Elements (a kantoor, a status, a propositie, …): required, no
default, since a wrong one files every new klantdossier or contract wrongly."""


def _tenant_id_given(value: object) -> object:
    """A ConfigMap entry left empty for the operator to fill is named, not read as a number."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("empty: set it to this tenant's id")
    return value


def _no_key_password() -> bytes:
    """An encrypted key then fails to load instead of OpenSSL prompting on a terminal."""
    return b""


class KafkaSettings(BaseSettings):
    """Broker connection, security, topic creation and consumer tuning.

    The security variables are checked here, at start: a TLS file that cannot be read or
    is not PEM, or SASL without credentials, is a configuration error naming the variable
    rather than a worker that retries a handshake forever without becoming ready.
    """

    model_config = _config("KAFKA_")

    bootstrap_servers: Annotated[str, FOR_THE_DEPLOYMENT] = "localhost:9092"
    """The brokers, comma-separated `host:port`."""
    client_id: Annotated[str, FOR_THE_DEPLOYMENT] = "elements-sync"
    """The Kafka client id of every client the service opens."""
    group_id: Annotated[str, FOR_THE_DEPLOYMENT] = "elements-sync"
    """The worker's consumer group. The redrive bookkeeping of older releases used the groups
    `<KAFKA_GROUP_ID>-redrive` and `<KAFKA_GROUP_ID>-redrive-<CODE>`."""
    enable_idempotence: Annotated[bool, FOR_THE_DEPLOYMENT] = True
    """Producer idempotence; brokers that lack it (like the embedded one of the sandbox)
    need `false`."""
    max_batch_bytes: Annotated[int, Field(ge=1)] = 16_384
    """How many bytes a producer gathers per partition into one record batch (aiokafka's
    `max_batch_size`); a record larger than this still goes, alone in its batch. The sandbox
    sets `1` (one record per batch) for its embedded broker, whose end offsets would otherwise
    hide a batch's later records from readers that stop at the end offset."""
    security_protocol: Annotated[SecurityProtocol, FOR_THE_DEPLOYMENT] = "PLAINTEXT"
    """`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`."""
    sasl_mechanism: Annotated[SaslMechanism, FOR_THE_DEPLOYMENT] = "PLAIN"
    """`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; used with a `SASL_` protocol."""
    sasl_username: Annotated[str | None, FOR_THE_DEPLOYMENT] = None
    """The SASL user (Confluent Cloud: the API key); required with a `SASL_` protocol."""
    sasl_password: Annotated[SecretStr | None, FOR_THE_DEPLOYMENT] = None
    """The SASL password (Confluent Cloud: the API secret); required with a `SASL_`
    protocol."""
    ssl_ca_file: Annotated[Path | None, FOR_THE_DEPLOYMENT] = None
    """PEM file of the CAs that sign the brokers' certificates; unset: the system's CAs."""
    ssl_cert_file: Annotated[Path | None, FOR_THE_DEPLOYMENT] = None
    """PEM file of the client certificate, for brokers that require mutual TLS."""
    ssl_key_file: Annotated[Path | None, FOR_THE_DEPLOYMENT] = None
    """PEM file of the client certificate's private key, unencrypted."""
    create_topics: Annotated[bool, FOR_THE_DEPLOYMENT] = True
    """Create the missing topics at start. `false` on managed clusters: the worker then
    waits, not ready, naming the missing topics."""
    replication_factor: Annotated[Annotated[int, Field(ge=1)] | None, FOR_THE_DEPLOYMENT] = None
    """Replicas of the topics the worker creates; unset: the broker's
    `default.replication.factor` (Kafka 2.4 and later)."""
    session_timeout_ms: Annotated[int, Field(ge=100)] = 10_000
    """The consumer's session timeout (the tests use 1000). The group waits `KAFKA_HANDOVER_TIMEOUT_S` + 20 s (at
    least this) for a member to rejoin after a rebalance, so a member that hands its events
    over is never left out while it still holds them."""
    heartbeat_interval_ms: Annotated[int, Field(ge=50)] = 3_000
    """The consumer's heartbeat (the tests use 300); a staying member learns of a rebalance at
    its next one."""
    topic_partitions: Annotated[int, Field(ge=1), FOR_THE_DEPLOYMENT] = 4
    """Partitions of the topics the worker creates. They do not limit concurrency, but a
    replica beyond the partition count gets none."""
    max_in_flight: Annotated[int, Field(ge=1)] = 64
    """Messages processed at once (of different keys; one key's are always in order). Intake
    pauses while this many are in flight. A handover does not depend on it."""
    max_event_bytes: Annotated[int, Field(ge=1024)] = DEFAULT_MAX_EVENT_BYTES
    """Larger input messages are `rejected` (`too_large`) unread. The topics'
    `max.message.bytes` must be at least this."""
    handover_timeout_s: Annotated[float, Field(gt=0)] = 20.0
    """How long letting partitions go (a rebalance, SIGTERM) waits for the events' Elements
    requests in flight to be answered; past it the events are cancelled with a warning (a
    request then in flight may be answered after the next owner started). A little above one
    request's `ELEMENTS_TIMEOUT_S`."""

    @field_validator(
        "sasl_username",
        "sasl_password",
        "ssl_ca_file",
        "ssl_cert_file",
        "ssl_key_file",
        "replication_factor",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """A ConfigMap entry left empty means unset, not a file named ""."""
        return None if value == "" else value

    @field_validator("ssl_ca_file")
    @classmethod
    def _ca_file_holds_certificates(cls, path: Path | None) -> Path | None:
        if path is not None:
            _read_pem(path, "CERTIFICATE", "CA certificates")
            try:
                ssl.create_default_context(cafile=path)
            except ssl.SSLError as error:
                raise ValueError(f"{path} holds no usable CA certificate ({error})") from None
        return path

    @field_validator("ssl_cert_file")
    @classmethod
    def _cert_file_holds_a_certificate(cls, path: Path | None) -> Path | None:
        if path is not None:
            _read_pem(path, "CERTIFICATE", "a client certificate")
        return path

    @field_validator("ssl_key_file")
    @classmethod
    def _key_file_holds_an_unencrypted_key(cls, path: Path | None) -> Path | None:
        if path is not None and "ENCRYPTED" in _read_pem(path, "PRIVATE KEY", "a private key"):
            raise ValueError(f"{path} holds an encrypted private key; give it unencrypted")
        return path

    @model_validator(mode="after")
    def _security_is_consistent(self) -> Self:
        problems = [*self._sasl_problems(), *self._tls_problems()]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def _sasl_problems(self) -> list[str]:
        given = {
            "KAFKA_SASL_USERNAME": self.sasl_username is not None,
            "KAFKA_SASL_PASSWORD": self.sasl_password is not None,
        }
        protocol = f"KAFKA_SECURITY_PROTOCOL={self.security_protocol}"
        if self.uses_sasl:
            return [f"{protocol} needs {name}" for name, is_set in given.items() if not is_set]
        return [
            f"{name} is set, but {protocol} does not use SASL (use SASL_PLAINTEXT or SASL_SSL)"
            for name, is_set in given.items()
            if is_set
        ]

    def _tls_problems(self) -> list[str]:
        files = {
            "KAFKA_SSL_CA_FILE": self.ssl_ca_file,
            "KAFKA_SSL_CERT_FILE": self.ssl_cert_file,
            "KAFKA_SSL_KEY_FILE": self.ssl_key_file,
        }
        if not self.uses_tls:
            protocol = f"KAFKA_SECURITY_PROTOCOL={self.security_protocol}"
            return [
                f"{name} is set, but {protocol} does not use TLS (use SSL or SASL_SSL)"
                for name, path in files.items()
                if path is not None
            ]
        if self.ssl_key_file is not None and self.ssl_cert_file is None:
            return ["KAFKA_SSL_KEY_FILE is set without KAFKA_SSL_CERT_FILE, its certificate"]
        if self.ssl_cert_file is not None:
            try:
                ssl.create_default_context().load_cert_chain(
                    self.ssl_cert_file, self.ssl_key_file, password=_no_key_password
                )
            except ssl.SSLError as error:
                key = self.ssl_key_file or self.ssl_cert_file
                return [
                    f"KAFKA_SSL_CERT_FILE / KAFKA_SSL_KEY_FILE: {key} holds no unencrypted "
                    f"private key of the certificate in {self.ssl_cert_file} ({error})"
                ]
        return []

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]


class TopicSettings(BaseSettings):
    """Topic names. With `KAFKA_CREATE_TOPICS` the worker creates the missing ones."""

    model_config = _config("TOPIC_")

    customer_events: Annotated[str, FOR_THE_DEPLOYMENT] = "customer-events"
    """Input: `customer.changed`, keyed by dossier number."""
    contract_events: Annotated[str, FOR_THE_DEPLOYMENT] = "contract-events"
    """Input: `contract.changed`, keyed by dossier number."""
    form_submissions: Annotated[str, FOR_THE_DEPLOYMENT] = "form-submissions"
    """Input: `form.submitted`, written by the worker's forms ingress, keyed by portal
    customer id."""
    results: Annotated[str, FOR_THE_DEPLOYMENT] = "sync-results"
    """One `elements.sync.result` per input message, keyed like its input."""
    dead_letter: Annotated[str, FOR_THE_DEPLOYMENT] = "sync-dead-letter"
    """Input messages that failed or were rejected, as they came, for a person and
    `redrive`."""
    backfill: Annotated[str, FOR_THE_DEPLOYMENT] = "customer-backfill"
    """The `customer.changed` events of a backfill, served after the live topics."""
    state: Annotated[str, FOR_THE_DEPLOYMENT] = "elements-sync-state"
    """Compacted: the worker's durable memory (a record per dossier, the day's Elements
    count), what a partition's last owner finished above its commit point, and the redrive
    marks of the dead letters."""

    @property
    def inputs(self) -> tuple[str, str, str]:
        return (self.customer_events, self.contract_events, self.form_submissions)


class AnvaSettings(BaseSettings):
    """ANVA Hub customer API, read with the integration's own bearer token."""

    model_config = _config("ANVA_")

    base_url: AnyHttpUrl
    """ANVA Hub's API, e.g. `https://hub.example.nl/api` (the spec's paths are appended)."""
    token: SecretStr
    """Bearer token of the integration's ANVA account."""
    timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """Per request."""
    listing_min_interval_s: Annotated[float, Field(ge=0)] = 0.2
    """Least time between the starts of two `/account/mine` reads; every event that arrives
    meanwhile shares the next read."""


class PortalSettings(BaseSettings):
    """MijnKlantportaal customers API, and how the customer directory keeps its page locators.

    The full index is rebuilt in the background every `index_ttl_s`, at
    `refresh_pages_per_s` (about 35 s for 700 pages at 20/s). An hour suffices: a lookup
    that finds its customer moved looks on the pages around its own, and a new customer is
    found in the `append_pages` last pages, which every lookup that finds nothing reads. A
    customer the locators knew that is in neither is looked for in one full read of the
    listing; not there either, it is remembered as gone for `miss_ttl_s`, which spares
    that full read (never the last pages) for its repeats.
    """

    model_config = _config("PORTAL_")

    base_url: Annotated[AnyHttpUrl, FOR_THE_DEPLOYMENT] = AnyHttpUrl(
        "https://api.mijnklantportaal.nl/v1"
    )
    """The MijnKlantportaal customers API."""
    token: SecretStr
    """Bearer token."""
    timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """Per request."""
    index_ttl_s: Annotated[float, Field(gt=0)] = 3600.0
    """Interval of the background rebuild of the portal's page locators."""
    refresh_pages_per_s: Annotated[float, Field(gt=0)] = 20.0
    """Pace of that rebuild, in portal pages per second."""
    append_pages: Annotated[int, Field(ge=1)] = 3
    """Last pages a lookup reads for a customer the locators do not know (past them, one
    shared catch-up to the end)."""
    miss_ttl_s: Annotated[float, Field(ge=0)] = 300.0
    """How long a customer whose locator failed, and whom a full read of the listing did not
    show either, is not searched in full again; its pages and the last pages are still
    read."""


class ElementsSettings(BaseSettings):
    """Faster Forward Elements, organisation flow; limits are for the whole deployment.

    `limiter_redis_url` (`ELEMENTS_LIMITER_REDIS_URL`, e.g. `redis://:password@redis:6379/0`,
    `rediss://` for TLS) makes every replica share the rate limit and the daily count
    through that Redis; unset, both live in the process, which is right for one replica only.
    A URL can carry a password, so it is a secret: in Kubernetes a file of the mounted Secret,
    read through `SETTINGS_SECRETS_DIR` like every secret, never an environment variable.
    """

    model_config = _config("ELEMENTS_")

    base_url: AnyHttpUrl
    """The tenant's Elements, e.g. `https://tenant.fasterforwardelements.nl`."""
    client_id: str
    """HTTP Basic user on `POST /oauth/access_token` (the spec's `PHP_AUTH_USER`)."""
    client_secret: SecretStr
    """HTTP Basic password on `POST /oauth/access_token` (the spec's `PHP_AUTH_PW`)."""
    organisation: Annotated[str, PER_TENANT]
    """The organisation id of the organisation flow."""
    webservice: Annotated[str, FOR_THE_DEPLOYMENT] = "data"
    """The Elements webservice the API paths live under."""
    scope: Annotated[str, FOR_THE_DEPLOYMENT] = "klantdossier.read klantdossier.write"
    """The OAuth scope asked for."""
    kantoor_id: TenantId
    """`kantoor.id` of new klantdossiers (`check` warns when no klantdossier carries it)."""
    dossierstatus_id: TenantId
    """`dossierstatus.id` of new klantdossiers."""
    rate_limit: Annotated[int, Field(ge=1), PER_TENANT] = 5
    """Elements requests per second for the whole deployment, token requests included."""
    daily_limit: Annotated[int, Field(ge=1), PER_TENANT] = 100_000
    """Elements requests per day (Europe/Amsterdam) for the whole deployment."""
    rate_margin_s: Annotated[float, Field(ge=0)] = 0.05
    """Extra spacing per second against clock and network jitter: requests go out one every
    `(1 + ELEMENTS_RATE_MARGIN_S) / ELEMENTS_RATE_LIMIT` seconds."""
    timeout_s: Annotated[float, Field(gt=0)] = 15.0
    """Per request."""
    token_refresh_margin_s: Annotated[float, Field(ge=0)] = 60.0
    """Renew the access token at most this long before `expires_in`; a shorter-lived token is
    renewed when a tenth of its lifetime is left (a 2 s token after 1.8 s)."""
    limiter_redis_url: Annotated[SecretStr | None, FOR_THE_DEPLOYMENT] = None
    """`redis://[:password@]host:6379/0` (`rediss://` for TLS). Set, every replica shares the
    rate limit, the daily count and the dossier leases through this Redis; unset, they live in
    the process and the deployment runs one replica."""
    limiter_shared: Annotated[bool, FOR_THE_DEPLOYMENT] = False
    """`true` where several replicas run (the Component `k8s/replicas/` sets it): the worker
    then refuses to start without `ELEMENTS_LIMITER_REDIS_URL` (exit 2, naming it) rather
    than allow the whole limit on its own."""

    _tenant_ids_given = field_validator("kantoor_id", "dossierstatus_id", mode="before")(
        _tenant_id_given
    )

    @field_validator("limiter_redis_url", mode="before")
    @classmethod
    def _empty_url_is_unset(cls, value: object) -> object:
        """An empty Secret key means one replica, not a Redis at ""."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _shared_limiter_has_its_redis(self) -> Self:
        if self.limiter_shared and self.limiter_redis_url is None:
            raise ValueError(
                "ELEMENTS_LIMITER_REDIS_URL is required with ELEMENTS_LIMITER_SHARED=true: the "
                "replicas share the Elements limit through that Redis (a key of the Secret, read "
                "as a file from SETTINGS_SECRETS_DIR)"
            )
        return self


DEFAULT_CONTRACT_STATUS_MAP = {
    "nieuw": 1,
    "new": 1,
    "pending": 1,
    "aanvraag": 1,
    "lopend": 2,
    "actief": 2,
    "active": 2,
    "beeindigd": 3,
    "beëindigd": 3,
    "ended": 3,
    "cancelled": 3,
    "geroyeerd": 3,
}


CONTRACT_TENANT_IDS = (
    "default_status_id",
    "propositie_id",
    "accountmanager_id",
    "bronvermelding_id",
    "leverancier_id",
    "inkoop_via_id",
    "accountbeheerder_workflowgroep_id",
    "registratie_activiteit_id",
    "registratie_type_id",
    "medewerker_functie_id",
)
"""The fields of `ContractSettings` that are tenant ids (`ELEMENTS_CONTRACT_<NAME>`)."""


class ContractSettings(BaseSettings):
    """Tenant ids a new Elements contract needs, which ANVA cannot provide; set them per tenant.

    Every id is required: a default would be some other tenant's id (or none), and every
    contract the worker creates would carry it. `status_map` maps an ANVA contract status
    (case-insensitive) to an Elements status id, e.g.
    `ELEMENTS_CONTRACT_STATUS_MAP='{"lopend": 2}'`; unknown statuses get `default_status_id`.
    `medewerker_functie_id` is the `functie` of the medewerker that applies for a contract of
    a zakelijk klant (the medewerker schema requires one).
    """

    model_config = _config("ELEMENTS_CONTRACT_")

    status_map: Annotated[dict[str, int], PER_TENANT] = Field(
        default_factory=lambda: dict(DEFAULT_CONTRACT_STATUS_MAP)
    )
    """JSON object: ANVA contract status (case-insensitive) → Elements contract status id."""
    default_status_id: TenantId
    """The Elements status id of ANVA statuses not in `ELEMENTS_CONTRACT_STATUS_MAP`."""
    propositie_id: TenantId
    """`bestaandePropositie` of a new contract."""
    accountmanager_id: TenantId
    """`accountmanager` of a new contract."""
    bronvermelding_id: TenantId
    """`bronvermelding` of a new contract."""
    leverancier_id: TenantId
    """`leverancier` of a new contract."""
    inkoop_via_id: TenantId
    """`inkoopVia` of a new contract."""
    accountbeheerder_workflowgroep_id: TenantId
    """`accountbeheerderWorkflowgroep` of a new contract."""
    registratie_activiteit_id: TenantId
    """`activiteit` of the registraties that record contract changes."""
    registratie_type_id: TenantId
    """`registratietype` of the registraties that record contract changes."""
    medewerker_functie_id: TenantId
    """`functie` of the medewerker that applies for a zakelijk klant's contract."""

    _tenant_ids_given = field_validator(*CONTRACT_TENANT_IDS, mode="before")(_tenant_id_given)

    def status_id(self, anva_status: str | None) -> int:
        key = (anva_status or "").strip().casefold()
        lowered = {k.casefold(): v for k, v in self.status_map.items()}
        return lowered.get(key, self.default_status_id)


class RetrySettings(BaseSettings):
    """How long a transient failure is retried before its event fails.

    An unreachable upstream (5xx, timeout, connection error) is retried for up to
    `max_outage_s`; other transient errors up to `max_attempts` or `max_elapsed_s`.
    While an upstream is down it is probed `probe_interval_s` after the outage starts, then
    at doubling intervals up to `max_backoff_s`, so intake resumes once it answers even
    when every event that was waiting for it has given up.
    """

    model_config = _config("RETRY_")

    max_attempts: Annotated[int, Field(ge=1)] = 5
    """Attempts of an event for transient errors other than an unreachable upstream."""
    max_elapsed_s: Annotated[float, Field(gt=0)] = 120.0
    """The longest those attempts may take together."""
    max_outage_s: Annotated[float, Field(gt=0)] = 600.0
    """How long an unreachable ANVA, portal or Elements (5xx, timeout, connection error) is
    retried before the event fails."""
    initial_backoff_s: Annotated[float, Field(gt=0)] = 0.5
    """First backoff; backoffs grow exponentially, with full jitter, and a 429's or 503's
    `Retry-After` is their floor."""
    max_backoff_s: Annotated[float, Field(gt=0)] = 30.0
    """Longest backoff, and longest interval between the probes of an API found down."""
    probe_interval_s: Annotated[float, Field(gt=0)] = 5.0
    """An API found down is probed this long after, then at doubling intervals up to
    `RETRY_MAX_BACKOFF_S`, until it answers."""


class FormsSettings(BaseSettings):
    """The MijnKlantportaal Forms ingress: closed unless a shared secret is set (or, for local
    demos only, anonymous access is allowed)."""

    model_config = _config("FORMS_")

    shared_secret: Annotated[SecretStr | None, FOR_THE_DEPLOYMENT] = None
    """The secret the portal's form calls must carry: as the HTTP Basic password (any user
    name) or in `X-Forms-Secret`, compared in constant time. Unset, the forms routes answer
    503. Make it URL-safe (`openssl rand -hex 32`)."""
    allow_anonymous: Annotated[bool, FOR_THE_DEPLOYMENT] = False
    """`true` opens the forms routes without a secret: local demos only (the sandbox sets
    it)."""
    max_body_bytes: Annotated[int, Field(ge=1)] = 64 * 1024
    """Larger form bodies are answered 413."""
    publish_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """How long a form submission waits for Kafka before it is answered 503."""
    prefill_elements_timeout_s: Annotated[float, Field(gt=0)] = 0.8
    """A prefill for a dossier the worker has no record of reads Elements for at most this
    long, then answers with the portal's values."""


class BackfillSettings(BaseSettings):
    """How the worker serves `TOPIC_BACKFILL` beside the live topics.

    A backfill takes an Elements slot only while no live event is in flight; at most
    `max_in_flight` backfill events are taken at once, so live events never queue behind
    a backlog of them; and it stops for the day when only `daily_reserve` (a share of
    `ELEMENTS_DAILY_LIMIT`) is left, which stays for live events.
    """

    model_config = _config("BACKFILL_")

    max_in_flight: Annotated[int, Field(ge=1)] = 2
    """Backfill events the worker takes at once (only the backfill topic pauses
    meanwhile)."""
    daily_reserve: Annotated[float, Field(ge=0, le=1)] = 0.2
    """Share of `ELEMENTS_DAILY_LIMIT` kept for live events: when only this much is left
    today, the backfill waits (no failures) until the next day, Europe/Amsterdam."""
    progress_every: Annotated[int, Field(ge=1)] = 100
    """A `backfill progress` log line per this many finished backfill events."""


class TracingSettings(BaseSettings):
    """OpenTelemetry tracing, under the standard `OTEL_` names; off while no endpoint is set.

    `exporter_otlp_endpoint` is the collector's OTLP/HTTP base URL (`/v1/traces` is appended,
    as the OpenTelemetry specification says for `OTEL_EXPORTER_OTLP_ENDPOINT`).
    `exporter_otlp_headers` (`key=value,…`, values URL-encoded) usually holds a vendor's API
    key, so it is a secret and may come from a mounted file like the others. The exporter
    reads its remaining `OTEL_EXPORTER_OTLP_*` variables (certificates, timeout) itself.
    """

    model_config = _config("OTEL_")

    exporter_otlp_endpoint: Annotated[AnyHttpUrl | None, FOR_THE_DEPLOYMENT] = None
    """OTLP/HTTP base URL of a trace collector (e.g. `http://otel-collector:4318`;
    `/v1/traces` is appended). Unset: tracing is off."""
    exporter_otlp_headers: Annotated[SecretStr | None, FOR_THE_DEPLOYMENT] = None
    """`key=value,…` sent with each export (a vendor's API key)."""
    service_name: Annotated[str, FOR_THE_DEPLOYMENT] = "elements-sync"
    """The traces' `service.name`."""


class StateSettings(BaseSettings):
    """The worker's durable memory on `TOPIC_STATE`; a record older than `max_age_s` no
    longer spares a read of Elements (a hand edit there is healed within that time)."""

    model_config = _config("STATE_")

    max_age_s: Annotated[float, Field(gt=0)] = 86_400.0
    """A dossier's record older than this no longer spares reading Elements: a hand edit in
    Elements is healed within this time."""
    load_timeout_s: Annotated[float, Field(gt=0)] = 300.0
    """How long reading the state topic at start may take before the start is retried."""


class Settings(BaseSettings):
    """The whole tree; groups read their own prefixed variables."""

    model_config = _config("")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    anva: AnvaSettings = Field(default_factory=AnvaSettings)
    portal: PortalSettings = Field(default_factory=PortalSettings)
    elements: ElementsSettings = Field(default_factory=ElementsSettings)
    contracts: ContractSettings = Field(default_factory=ContractSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    forms: FormsSettings = Field(default_factory=FormsSettings)
    backfill: BackfillSettings = Field(default_factory=BackfillSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    state: StateSettings = Field(default_factory=StateSettings)
    http_port: Annotated[int, Field(ge=0, le=65535), FOR_THE_DEPLOYMENT] = 8080
    """The HTTP side: forms ingress, health, readiness, metrics, AsyncAPI."""
    log_format: Annotated[Literal["json", "console"], FOR_THE_DEPLOYMENT] = "json"
    """`json` (one object per line) or `console`."""
    log_level: str = "INFO"
    """The least level logged."""
    log_stall_after_s: Annotated[float, Field(gt=0)] = 60.0
    """An event that makes no progress for this long (no step begun, nothing it waited for
    came) is logged once per stall (`event makes no progress`, a warning) with its step, what
    it waits for (`waiting_for`) and for how long (`no_progress_s`)."""
    shutdown_grace_period_s: Annotated[float, Field(gt=0), FOR_THE_DEPLOYMENT] = 25.0
    """Bounds SIGTERM's handover too (it waits at most the lesser of this and
    `KAFKA_HANDOVER_TIMEOUT_S`); keep it below the pod's `terminationGracePeriodSeconds`."""
    dead_letters_refresh_s: Annotated[float, Field(gt=0)] = 60.0
    """How often the worker counts the dead letters not yet handled (redriven or dismissed)
    for `elements_sync_dead_letters_outstanding`: it reads what the dead-letter topic gained
    since (each letter's partition, offset, timestamp and reason, never its value)."""

    @field_validator("log_level")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


def _groups() -> dict[str, type[BaseSettings]]:
    """The tree's groups by field name, read from `Settings` itself."""
    return {
        name: info.annotation
        for name, info in Settings.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseSettings)
    }


def _prefix(group: type[BaseSettings]) -> str:
    return str(group.model_config.get("env_prefix", ""))


def environment_names() -> tuple[str, ...]:
    """Every variable name, or prefix of names, the service reads (tests keep them out)."""
    top_level = [name.upper() for name in Settings.model_fields if name not in _groups()]
    return (*(_prefix(group) for group in _groups().values()), *top_level, SECRETS_DIR_VARIABLE)


@dataclass(frozen=True)
class SettingsProblem:
    """One variable missing or malformed, or a rule that several of them break together."""

    group: str
    """The field of the tree it keeps from being read (`kafka`, `elements`, …); "" for a
    top-level variable."""
    message: str
    variable: str | None = None
    """The variable to fix; None when the message names the variables itself."""

    def __str__(self) -> str:
        return f"{self.variable}: {self.message}" if self.variable else self.message


G = TypeVar("G", bound=BaseSettings)


@dataclass(frozen=True)
class SettingsRead:
    """Everything the environment gave: each group that could be read, the problems of those
    that could not (all of them, not only the first), and the whole tree when there are none.
    `python -m app check` reports the problems and runs every check whose group was read."""

    groups: dict[str, BaseSettings]
    problems: tuple[SettingsProblem, ...]
    settings: Settings | None

    def group(self, cls: type[G]) -> G | None:
        """The group of this class, or None when its variables could not be read."""
        found = next((g for g in self.groups.values() if isinstance(g, cls)), None)
        return found

    def unread(self, group: str) -> bool:
        return any(problem.group == group for problem in self.problems)


def _problems(error: ValidationError, group: str, prefix: str) -> list[SettingsProblem]:
    """One problem per error, each naming its variable; a check of several variables
    (an empty `loc`) names them in its own message."""
    problems = []
    for item in error.errors():
        cause = item.get("ctx", {}).get("error")
        message = str(cause) if item["type"] == "value_error" and cause else item["msg"]
        variable = (prefix + "_".join(str(part) for part in item["loc"])).upper() or None
        problems.append(SettingsProblem(group, message, variable if item["loc"] else None))
    return problems


def read_settings(**overrides: Any) -> SettingsRead:
    """Read every group once; one that cannot be read leaves its problems, not an exception."""
    groups: dict[str, BaseSettings] = {}
    problems: list[SettingsProblem] = []
    for field, cls in _groups().items():
        if field in overrides:
            groups[field] = overrides.pop(field)
            continue
        try:
            groups[field] = cls()
        except ValidationError as error:
            problems += _problems(error, field, _prefix(cls))
    # An unread group stands in as an empty shell, so the top level is still checked.
    tree: dict[str, Any] = {
        field: groups[field] if field in groups else cls.model_construct()
        for field, cls in _groups().items()
    }
    try:
        settings = Settings(**tree, **overrides)
    except ValidationError as error:
        problems += _problems(error, "", "")
        settings = None
    return SettingsRead(groups, tuple(problems), None if problems else settings)


def load_settings(**overrides: Any) -> Settings:
    """Read the tree once; SettingsError names every missing or malformed variable."""
    read = read_settings(**overrides)
    if read.settings is None:
        raise SettingsError("; ".join(str(problem) for problem in read.problems))
    return read.settings
