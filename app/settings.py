"""One settings tree, read once from the environment (and a `.env` file).

The environment names are the service's public contract (see README), so each group
is its own `BaseSettings` with the contract's prefix instead of a nested delimiter:
`ELEMENTS_CLIENT_ID` stays `ELEMENTS_CLIENT_ID`, not `ELEMENTS__CLIENT_ID`.
Kubernetes Secrets mounted as files work through `SETTINGS_SECRETS_DIR`.
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
    )


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


TenantId = Annotated[int, Field(ge=1)]
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

    bootstrap_servers: str = "localhost:9092"
    client_id: str = "elements-sync"
    group_id: str = "elements-sync"
    enable_idempotence: bool = True
    max_batch_bytes: Annotated[int, Field(ge=1)] = 16_384
    """How many bytes a producer gathers per partition into one record batch (aiokafka's
    `max_batch_size`); a record larger than this still goes, alone in its batch."""
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_file: Path | None = None
    ssl_cert_file: Path | None = None
    ssl_key_file: Path | None = None
    create_topics: bool = True
    replication_factor: Annotated[int, Field(ge=1)] | None = None
    """None: the broker's `default.replication.factor`."""
    session_timeout_ms: Annotated[int, Field(ge=100)] = 10_000
    heartbeat_interval_ms: Annotated[int, Field(ge=50)] = 3_000
    topic_partitions: Annotated[int, Field(ge=1)] = 4
    max_in_flight: Annotated[int, Field(ge=1)] = 64
    max_event_bytes: Annotated[int, Field(ge=1024)] = DEFAULT_MAX_EVENT_BYTES
    handover_timeout_s: Annotated[float, Field(gt=0)] = 20.0
    """How long letting partitions go (a rebalance, SIGTERM) waits for the events' requests in
    flight to end; past it the events are cancelled. A little above one Elements request's
    timeout (`ELEMENTS_TIMEOUT_S`, 15 s)."""

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

    customer_events: str = "customer-events"
    contract_events: str = "contract-events"
    form_submissions: str = "form-submissions"
    results: str = "sync-results"
    dead_letter: str = "sync-dead-letter"
    backfill: str = "customer-backfill"
    state: str = "elements-sync-state"

    @property
    def inputs(self) -> tuple[str, str, str]:
        return (self.customer_events, self.contract_events, self.form_submissions)


class AnvaSettings(BaseSettings):
    """ANVA Hub customer API, read with the integration's own bearer token."""

    model_config = _config("ANVA_")

    base_url: AnyHttpUrl
    token: SecretStr
    timeout_s: Annotated[float, Field(gt=0)] = 10.0
    listing_min_interval_s: Annotated[float, Field(ge=0)] = 0.2


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

    base_url: AnyHttpUrl = AnyHttpUrl("https://api.mijnklantportaal.nl/v1")
    token: SecretStr
    timeout_s: Annotated[float, Field(gt=0)] = 10.0
    index_ttl_s: Annotated[float, Field(gt=0)] = 3600.0
    refresh_pages_per_s: Annotated[float, Field(gt=0)] = 20.0
    append_pages: Annotated[int, Field(ge=1)] = 3
    miss_ttl_s: Annotated[float, Field(ge=0)] = 300.0


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
    client_id: str
    client_secret: SecretStr
    organisation: str
    webservice: str = "data"
    scope: str = "klantdossier.read klantdossier.write"
    kantoor_id: TenantId
    dossierstatus_id: TenantId
    rate_limit: Annotated[int, Field(ge=1)] = 5
    daily_limit: Annotated[int, Field(ge=1)] = 100_000
    rate_margin_s: Annotated[float, Field(ge=0)] = 0.05
    timeout_s: Annotated[float, Field(gt=0)] = 15.0
    token_refresh_margin_s: Annotated[float, Field(ge=0)] = 60.0
    limiter_redis_url: SecretStr | None = None
    limiter_shared: bool = False
    """Several replicas run (k8s/replicas/): without `limiter_redis_url` each would allow the
    whole limit, so the worker does not start."""

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

    status_map: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_CONTRACT_STATUS_MAP))
    default_status_id: TenantId
    propositie_id: TenantId
    accountmanager_id: TenantId
    bronvermelding_id: TenantId
    leverancier_id: TenantId
    inkoop_via_id: TenantId
    accountbeheerder_workflowgroep_id: TenantId
    registratie_activiteit_id: TenantId
    registratie_type_id: TenantId
    medewerker_functie_id: TenantId

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
    max_elapsed_s: Annotated[float, Field(gt=0)] = 120.0
    max_outage_s: Annotated[float, Field(gt=0)] = 600.0
    initial_backoff_s: Annotated[float, Field(gt=0)] = 0.5
    max_backoff_s: Annotated[float, Field(gt=0)] = 30.0
    probe_interval_s: Annotated[float, Field(gt=0)] = 5.0


class FormsSettings(BaseSettings):
    """The MijnKlantportaal Forms ingress: closed unless a shared secret is set (or, for local
    demos only, anonymous access is allowed)."""

    model_config = _config("FORMS_")

    shared_secret: SecretStr | None = None
    allow_anonymous: bool = False
    max_body_bytes: Annotated[int, Field(ge=1)] = 64 * 1024
    publish_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    prefill_elements_timeout_s: Annotated[float, Field(gt=0)] = 0.8


class BackfillSettings(BaseSettings):
    """How the worker serves `TOPIC_BACKFILL` beside the live topics.

    A backfill takes an Elements slot only while no live event is in flight; at most
    `max_in_flight` backfill events are taken at once, so live events never queue behind
    a backlog of them; and it stops for the day when only `daily_reserve` (a share of
    `ELEMENTS_DAILY_LIMIT`) is left, which stays for live events.
    """

    model_config = _config("BACKFILL_")

    max_in_flight: Annotated[int, Field(ge=1)] = 2
    daily_reserve: Annotated[float, Field(ge=0, le=1)] = 0.2
    progress_every: Annotated[int, Field(ge=1)] = 100


class TracingSettings(BaseSettings):
    """OpenTelemetry tracing, under the standard `OTEL_` names; off while no endpoint is set.

    `exporter_otlp_endpoint` is the collector's OTLP/HTTP base URL (`/v1/traces` is appended,
    as the OpenTelemetry specification says for `OTEL_EXPORTER_OTLP_ENDPOINT`).
    `exporter_otlp_headers` (`key=value,…`, values URL-encoded) usually holds a vendor's API
    key, so it is a secret and may come from a mounted file like the others. The exporter
    reads its remaining `OTEL_EXPORTER_OTLP_*` variables (certificates, timeout) itself.
    """

    model_config = _config("OTEL_")

    exporter_otlp_endpoint: AnyHttpUrl | None = None
    exporter_otlp_headers: SecretStr | None = None
    service_name: str = "elements-sync"


class StateSettings(BaseSettings):
    """The worker's durable memory on `TOPIC_STATE`; a record older than `max_age_s` no
    longer spares a read of Elements (a hand edit there is healed within that time)."""

    model_config = _config("STATE_")

    max_age_s: Annotated[float, Field(gt=0)] = 86_400.0
    load_timeout_s: Annotated[float, Field(gt=0)] = 300.0


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
    http_port: Annotated[int, Field(ge=0, le=65535)] = 8080
    log_format: Literal["json", "console"] = "json"
    log_level: str = "INFO"
    log_stall_after_s: Annotated[float, Field(gt=0)] = 60.0
    """An event that makes no progress for this long is logged, once per stall, with its step
    and what it waits for (`app.progress`)."""
    shutdown_grace_period_s: Annotated[float, Field(gt=0)] = 25.0
    dead_letters_refresh_s: Annotated[float, Field(gt=0)] = 60.0
    """How often the worker counts the dead letters not yet handled (`app.kafka.dead_letters`)."""

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
