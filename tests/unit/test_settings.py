"""Settings come from the contract's environment names, with its defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.__main__ import main
from app.errors import SettingsError
from app.kafka.connection import producer_options
from app.sandbox.tenant import tenant_environment
from app.sandbox.tls import Certificates
from app.settings import PortalSettings, Settings, load_settings, read_settings

PREFIXES = ("KAFKA_", "TOPIC_", "ANVA_", "PORTAL_", "ELEMENTS_")
TOP_LEVEL = (
    "HTTP_PORT",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "LOG_STALL_AFTER_S",
    "SHUTDOWN_GRACE_PERIOD_S",
    "DEAD_LETTERS_REFRESH_S",
)

REQUIRED = {
    "ANVA_BASE_URL": "https://anva.example/api",
    "ANVA_TOKEN": "anva-secret-token",
    "PORTAL_TOKEN": "portal-secret-token",
    "ELEMENTS_BASE_URL": "https://elements.example/api",
    "ELEMENTS_CLIENT_ID": "client-7",
    "ELEMENTS_CLIENT_SECRET": "elements-secret-value",
    "ELEMENTS_ORGANISATION": "acme-org",
    **tenant_environment(),
    "ELEMENTS_KANTOOR_ID": "3",
}
TENANT_IDS = sorted(name for name in tenant_environment())
"""The tenant ids: required, no default."""
SECRETS = ("anva-secret-token", "portal-secret-token", "elements-secret-value")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No inherited variable and no `.env` file reach the settings."""
    for name in list(os.environ):
        if name.upper().startswith(PREFIXES) or name.upper() in TOP_LEVEL:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def load(monkeypatch: pytest.MonkeyPatch, **env: str | None) -> Settings:
    """Settings from REQUIRED plus `env`; a None value removes that variable."""
    for name, value in {**REQUIRED, **env}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return load_settings()


def test_reads_the_contract_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(
        monkeypatch,
        KAFKA_BOOTSTRAP_SERVERS="k1:9092, k2:9092",
        HTTP_PORT="9000",
        ELEMENTS_RATE_LIMIT="4",
    )
    assert settings.kafka.servers == ["k1:9092", "k2:9092"]
    assert str(settings.anva.base_url) == "https://anva.example/api"
    assert settings.anva.token.get_secret_value() == "anva-secret-token"
    assert settings.portal.token.get_secret_value() == "portal-secret-token"
    assert str(settings.elements.base_url) == "https://elements.example/api"
    assert settings.elements.client_id == "client-7"
    assert settings.elements.client_secret.get_secret_value() == "elements-secret-value"
    assert settings.elements.organisation == "acme-org"
    assert settings.elements.kantoor_id == 3
    assert settings.elements.rate_limit == 4
    assert settings.http_port == 9000


def test_unset_variables_take_the_contract_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch)
    assert settings.kafka.group_id == "elements-sync"
    assert settings.kafka.enable_idempotence is True
    assert settings.topics.inputs == ("customer-events", "contract-events", "form-submissions")
    assert (settings.topics.results, settings.topics.dead_letter) == (
        "sync-results",
        "sync-dead-letter",
    )
    assert str(settings.portal.base_url) == "https://api.mijnklantportaal.nl/v1"
    assert settings.elements.webservice == "data"
    assert settings.elements.scope == "klantdossier.read klantdossier.write"
    assert settings.elements.rate_limit == 5
    assert settings.elements.daily_limit == 100_000
    assert settings.http_port == 8080
    assert settings.log_stall_after_s == 60.0


def test_log_stall_after_s_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(monkeypatch, LOG_STALL_AFTER_S="15").log_stall_after_s == 15.0


def test_kafka_enable_idempotence_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(monkeypatch, KAFKA_ENABLE_IDEMPOTENCE="false").kafka.enable_idempotence is False


def test_kafka_max_batch_bytes_is_every_producers_batch_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka = load(monkeypatch, KAFKA_MAX_BATCH_BYTES="1").kafka

    assert producer_options(kafka) == {
        "acks": "all",
        "enable_idempotence": True,
        "max_batch_size": 1,
    }


def test_secrets_are_secretstr_and_kept_out_of_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch)
    assert isinstance(settings.anva.token, SecretStr)
    assert isinstance(settings.portal.token, SecretStr)
    assert isinstance(settings.elements.client_secret, SecretStr)
    for shown in (repr(settings), str(settings)):
        assert not [secret for secret in SECRETS if secret in shown]


@pytest.mark.parametrize(
    "name",
    [
        "ANVA_TOKEN",
        "ANVA_BASE_URL",
        "PORTAL_TOKEN",
        "ELEMENTS_CLIENT_SECRET",
        "ELEMENTS_KANTOOR_ID",
    ],
)
def test_missing_required_variable_raises_settings_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    with pytest.raises(SettingsError, match=name):
        load(monkeypatch, **{name: None})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ELEMENTS_RATE_LIMIT", "abc"),
        ("ELEMENTS_RATE_LIMIT", "0"),
        ("ELEMENTS_KANTOOR_ID", "0"),
        ("ANVA_BASE_URL", "not a url"),
        ("KAFKA_MAX_IN_FLIGHT", "many"),
        ("HTTP_PORT", "70000"),
    ],
)
def test_malformed_variable_raises_settings_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=name):
        load(monkeypatch, **{name: value})


@pytest.mark.parametrize("name", TENANT_IDS)
def test_a_tenant_id_has_no_default_and_an_unset_one_is_named(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load(monkeypatch, **{name: None})

    assert str(raised.value) == f"{name}: Field required"


@pytest.mark.parametrize("name", TENANT_IDS)
def test_a_tenant_id_left_empty_in_a_configmap_is_named_as_empty(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        load(monkeypatch, **{name: ""})

    assert str(raised.value) == (f"{name}: empty: set it to this tenant's id")


def test_every_problem_is_named_at_once_with_the_group_it_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {**REQUIRED, "HTTP_PORT": "70000", "KAFKA_MAX_IN_FLIGHT": "many"}.items():
        monkeypatch.setenv(name, value)
    for name in ("ANVA_TOKEN", "ELEMENTS_DOSSIERSTATUS_ID", "ELEMENTS_CONTRACT_PROPOSITIE_ID"):
        monkeypatch.delenv(name)

    read = read_settings()

    assert [(p.group, p.variable) for p in read.problems] == [
        ("kafka", "KAFKA_MAX_IN_FLIGHT"),
        ("anva", "ANVA_TOKEN"),
        ("elements", "ELEMENTS_DOSSIERSTATUS_ID"),
        ("contracts", "ELEMENTS_CONTRACT_PROPOSITIE_ID"),
        ("", "HTTP_PORT"),
    ]
    assert read.settings is None
    assert read.group(PortalSettings) is not None
    assert {read.unread(group) for group in ("kafka", "anva", "elements", "contracts")} == {True}
    assert not read.unread("portal")


def test_the_worker_exits_2_naming_every_unset_tenant_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("ELEMENTS_CONTRACT_LEVERANCIER_ID")
    monkeypatch.delenv("ELEMENTS_DOSSIERSTATUS_ID")

    status = main(["worker"])

    assert status == 2
    assert capsys.readouterr().err == (
        "configuration error: ELEMENTS_DOSSIERSTATUS_ID: Field required; "
        "ELEMENTS_CONTRACT_LEVERANCIER_ID: Field required\n"
    )


def test_settings_error_does_not_leak_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as raised:
        load(monkeypatch, ELEMENTS_RATE_LIMIT="abc", ANVA_TOKEN=None)
    assert not [secret for secret in SECRETS if secret in str(raised.value)]


def test_dotenv_in_working_directory_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("KAFKA_GROUP_ID=from-dotenv\nHTTP_PORT=9100\n")
    settings = load(monkeypatch, HTTP_PORT="9200")
    assert settings.kafka.group_id == "from-dotenv"
    assert settings.http_port == 9200


def test_the_contract_medewerker_functie_is_read_from_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load(monkeypatch).contracts.medewerker_functie_id == 1
    configured = load(monkeypatch, ELEMENTS_CONTRACT_MEDEWERKER_FUNCTIE_ID="7")
    assert configured.contracts.medewerker_functie_id == 7


def test_every_variable_of_the_tree_is_one_the_tests_keep_out_of_the_environment() -> None:
    from pydantic_settings import BaseSettings

    from app.settings import Settings, environment_names

    names = []
    for field, info in Settings.model_fields.items():
        group = info.annotation
        if isinstance(group, type) and issubclass(group, BaseSettings):
            prefix = str(group.model_config.get("env_prefix", ""))
            names += [prefix + name.upper() for name in group.model_fields]
        else:
            names.append(field.upper())

    assert "RETRY_MAX_ATTEMPTS" in names and "SHUTDOWN_GRACE_PERIOD_S" in names
    assert all(name.startswith(environment_names()) for name in names)


def test_kafka_security_and_topics_take_the_contract_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka, topics = load(monkeypatch).kafka, load(monkeypatch).topics

    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("PLAINTEXT", "PLAIN")
    assert (kafka.sasl_username, kafka.sasl_password) == (None, None)
    assert (kafka.ssl_ca_file, kafka.ssl_cert_file, kafka.ssl_key_file) == (None, None, None)
    assert kafka.client_id == "elements-sync"
    assert (kafka.create_topics, kafka.replication_factor) == (True, None)
    assert (topics.backfill, topics.state) == ("customer-backfill", "elements-sync-state")


def test_reads_the_kafka_security_and_topic_variables(
    monkeypatch: pytest.MonkeyPatch, certificates: Certificates
) -> None:
    settings = load(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="elements-sync",
        KAFKA_SASL_PASSWORD="sasl-secret-value",
        KAFKA_SSL_CA_FILE=str(certificates.ca_file),
        KAFKA_SSL_CERT_FILE=str(certificates.client_cert_file),
        KAFKA_SSL_KEY_FILE=str(certificates.client_key_file),
        KAFKA_CLIENT_ID="sync-acme",
        KAFKA_CREATE_TOPICS="false",
        KAFKA_REPLICATION_FACTOR="3",
        TOPIC_BACKFILL="acme-backfill",
        TOPIC_STATE="acme-state",
    )
    kafka = settings.kafka

    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert kafka.sasl_username == "elements-sync"
    assert isinstance(kafka.sasl_password, SecretStr)
    assert kafka.sasl_password.get_secret_value() == "sasl-secret-value"
    assert "sasl-secret-value" not in repr(settings)
    assert kafka.ssl_ca_file == certificates.ca_file
    assert (kafka.ssl_cert_file, kafka.ssl_key_file) == (
        certificates.client_cert_file,
        certificates.client_key_file,
    )
    assert kafka.client_id == "sync-acme"
    assert (kafka.create_topics, kafka.replication_factor) == (False, 3)
    assert (settings.topics.backfill, settings.topics.state) == ("acme-backfill", "acme-state")


def test_empty_kafka_variables_count_as_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    kafka = load(
        monkeypatch,
        KAFKA_SSL_CA_FILE="",
        KAFKA_SASL_USERNAME="",
        KAFKA_REPLICATION_FACTOR="",
    ).kafka

    assert (kafka.ssl_ca_file, kafka.sasl_username, kafka.replication_factor) == (None, None, None)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, certificates: Certificates) -> Path:
    """A text file, and an encrypted copy of the client key, beside the test certificates."""
    directory = tmp_path_factory.mktemp("bad")
    (directory / "notes.txt").write_text("not a certificate\n")
    subprocess.run(
        [
            *("openssl", "pkey", "-in", certificates.client_key_file, "-aes256"),
            *("-passout", "pass:key-password", "-out", directory / "encrypted.key"),
        ],
        check=True,
        capture_output=True,
    )
    return directory


TLS_ERRORS = {
    "missing CA file": (
        {"KAFKA_SSL_CA_FILE": "/nonexistent/ca.pem"},
        "KAFKA_SSL_CA_FILE: cannot read /nonexistent/ca.pem: No such file or directory",
    ),
    "CA file that is no PEM": (
        {"KAFKA_SSL_CA_FILE": "{bad}/notes.txt"},
        "KAFKA_SSL_CA_FILE: {bad}/notes.txt is not a PEM file with CA certificates",
    ),
    "key given as CA file": (
        {"KAFKA_SSL_CA_FILE": "{pki}/client.key"},
        "KAFKA_SSL_CA_FILE: {pki}/client.key is not a PEM file with CA certificates",
    ),
    "key given as certificate": (
        {"KAFKA_SSL_CERT_FILE": "{pki}/client.key", "KAFKA_SSL_KEY_FILE": "{pki}/client.key"},
        "KAFKA_SSL_CERT_FILE: {pki}/client.key is not a PEM file with a client certificate",
    ),
    "certificate given as key": (
        {"KAFKA_SSL_CERT_FILE": "{pki}/client.pem", "KAFKA_SSL_KEY_FILE": "{pki}/client.pem"},
        "KAFKA_SSL_KEY_FILE: {pki}/client.pem is not a PEM file with a private key",
    ),
    "encrypted key": (
        {"KAFKA_SSL_CERT_FILE": "{pki}/client.pem", "KAFKA_SSL_KEY_FILE": "{bad}/encrypted.key"},
        "KAFKA_SSL_KEY_FILE: {bad}/encrypted.key holds an encrypted private key; "
        "give it unencrypted",
    ),
    "key of another certificate": (
        {"KAFKA_SSL_CERT_FILE": "{pki}/client.pem", "KAFKA_SSL_KEY_FILE": "{pki}/broker.key"},
        "KAFKA_SSL_CERT_FILE / KAFKA_SSL_KEY_FILE: {pki}/broker.key holds no unencrypted "
        "private key of the certificate in {pki}/client.pem (",
    ),
    "key without certificate": (
        {"KAFKA_SSL_KEY_FILE": "{pki}/client.key"},
        "KAFKA_SSL_KEY_FILE is set without KAFKA_SSL_CERT_FILE, its certificate",
    ),
}


@pytest.mark.parametrize(("variables", "message"), TLS_ERRORS.values(), ids=TLS_ERRORS.keys())
def test_a_tls_file_that_cannot_serve_is_a_settings_error_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch,
    certificates: Certificates,
    bad_files: Path,
    variables: dict[str, str],
    message: str,
) -> None:
    paths = {"pki": certificates.ca_file.parent, "bad": bad_files}
    env = {name: value.format(**paths) for name, value in variables.items()}

    with pytest.raises(SettingsError) as raised:
        load(monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL", **env)

    assert str(raised.value).startswith(message.format(**paths))


SECURITY_ERRORS = {
    "SASL without credentials": (
        {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
        "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_USERNAME; "
        "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_PASSWORD",
    ),
    "SASL without password": (
        {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "sync"},
        "KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs KAFKA_SASL_PASSWORD",
    ),
    "credentials without SASL": (
        {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SASL_PASSWORD": "sasl-secret-value"},
        "KAFKA_SASL_PASSWORD is set, but KAFKA_SECURITY_PROTOCOL=SSL does not use SASL "
        "(use SASL_PLAINTEXT or SASL_SSL)",
    ),
    "CA file without TLS": (
        {"KAFKA_SSL_CA_FILE": "{pki}/ca.pem"},
        "KAFKA_SSL_CA_FILE is set, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS "
        "(use SSL or SASL_SSL)",
    ),
    "unknown protocol": (
        {"KAFKA_SECURITY_PROTOCOL": "TLS"},
        "KAFKA_SECURITY_PROTOCOL: Input should be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or "
        "'SASL_SSL'",
    ),
    "unknown mechanism": (
        {"KAFKA_SASL_MECHANISM": "GSSAPI"},
        "KAFKA_SASL_MECHANISM: Input should be 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'",
    ),
    "replication factor below one": (
        {"KAFKA_REPLICATION_FACTOR": "0"},
        "KAFKA_REPLICATION_FACTOR: Input should be greater than or equal to 1",
    ),
}


@pytest.mark.parametrize(
    ("variables", "message"), SECURITY_ERRORS.values(), ids=SECURITY_ERRORS.keys()
)
def test_inconsistent_kafka_security_is_a_settings_error_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch,
    certificates: Certificates,
    variables: dict[str, str],
    message: str,
) -> None:
    pki = certificates.ca_file.parent
    env = {name: value.format(pki=pki) for name, value in variables.items()}

    with pytest.raises(SettingsError) as raised:
        load(monkeypatch, **env)

    assert str(raised.value) == message.format(pki=pki)
    assert "sasl-secret-value" not in str(raised.value)


def test_the_worker_exits_2_naming_a_missing_ca_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {
        **REQUIRED,
        "KAFKA_SECURITY_PROTOCOL": "SSL",
        "KAFKA_SSL_CA_FILE": "/etc/kafka/missing-ca.pem",
    }.items():
        monkeypatch.setenv(name, value)

    status = main(["worker"])

    assert status == 2
    assert capsys.readouterr().err == (
        "configuration error: KAFKA_SSL_CA_FILE: cannot read /etc/kafka/missing-ca.pem: "
        "No such file or directory\n"
    )


def test_the_redis_url_and_its_password_are_read_from_the_mounted_secrets_file(
    tmp_path: Path,
) -> None:
    """As k8s/replicas/ has it: the URL is a file of the Secret, no environment variable."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "ELEMENTS_LIMITER_REDIS_URL").write_text("redis://:s3cret@redis.example:6379/0\n")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.upper().startswith(PREFIXES)},
        **REQUIRED,
        "ELEMENTS_LIMITER_SHARED": "true",
        "SETTINGS_SECRETS_DIR": str(secrets),
    }
    probe = (
        "from app.settings import load_settings; "
        "url = load_settings().elements.limiter_redis_url; "
        "print(url.get_secret_value() if url else None)"
    )

    read = subprocess.run(
        [sys.executable, "-c", probe],
        env=environment,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
    )

    assert read.stdout.strip() == "redis://:s3cret@redis.example:6379/0"


def test_a_shared_limiter_without_its_redis_url_is_a_settings_error_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(SettingsError) as refused:
        load(monkeypatch, ELEMENTS_LIMITER_SHARED="true")

    assert "ELEMENTS_LIMITER_REDIS_URL is required with ELEMENTS_LIMITER_SHARED=true" in str(
        refused.value
    )
    assert load(monkeypatch, ELEMENTS_LIMITER_SHARED=None).elements.limiter_shared is False
