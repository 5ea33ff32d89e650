"""Settings come from the contract's environment names, with its defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.errors import SettingsError
from app.settings import Settings, load_settings

PREFIXES = ("KAFKA_", "TOPIC_", "ANVA_", "PORTAL_", "ELEMENTS_")
TOP_LEVEL = ("HTTP_PORT", "LOG_FORMAT", "LOG_LEVEL", "SHUTDOWN_GRACE_PERIOD_S")

REQUIRED = {
    "ANVA_BASE_URL": "https://anva.example/api",
    "ANVA_TOKEN": "anva-secret-token",
    "PORTAL_TOKEN": "portal-secret-token",
    "ELEMENTS_BASE_URL": "https://elements.example/api",
    "ELEMENTS_CLIENT_ID": "client-7",
    "ELEMENTS_CLIENT_SECRET": "elements-secret-value",
    "ELEMENTS_ORGANISATION": "acme-org",
    "ELEMENTS_KANTOOR_ID": "3",
}
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
    assert settings.elements.dossierstatus_id == 1
    assert settings.elements.rate_limit == 5
    assert settings.elements.daily_limit == 100_000
    assert settings.http_port == 8080


def test_kafka_enable_idempotence_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(monkeypatch, KAFKA_ENABLE_IDEMPOTENCE="false").kafka.enable_idempotence is False


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
