"""The client configuration built from the security settings, for each protocol and mechanism.

The embedded broker cannot run SASL end to end (its users live in storage that only an
authenticated client can write), so SASL is proven here, on the exact objects and keyword
arguments the broker and the aiokafka clients receive; TLS also end to end (tests/e2e).
"""

from __future__ import annotations

import ssl

import pytest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import SecretStr

from app.kafka.connection import broker_security, client_options
from app.sandbox.tls import Certificates
from app.settings import KafkaSettings

SERVERS = "k1.example:9093, k2.example:9093"
PASSWORD = "sasl-SECRET-6a1f"


def kafka(**fields: object) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=SERVERS, client_id="sync-7", **fields)  # type: ignore[arg-type]


def sasl(protocol: str, mechanism: str, **fields: object) -> KafkaSettings:
    return kafka(
        security_protocol=protocol,
        sasl_mechanism=mechanism,
        sasl_username="elements-sync",
        sasl_password=SecretStr(PASSWORD),
        **fields,
    )


def trusts(context: ssl.SSLContext, certificates: Certificates) -> bool:
    """Whether the context verifies brokers against the test CA."""
    subjects = [dict(item[0] for item in ca["subject"]) for ca in context.get_ca_certs()]
    return {"commonName": "elements-sync sandbox CA"} in subjects


def test_plaintext_passes_no_security_and_names_the_client() -> None:
    settings = kafka()

    assert broker_security(settings) is None
    assert client_options(settings) == {
        "bootstrap_servers": ["k1.example:9093", "k2.example:9093"],
        "client_id": "sync-7",
    }


def test_ssl_verifies_the_broker_against_the_configured_ca(certificates: Certificates) -> None:
    settings = kafka(security_protocol="SSL", ssl_ca_file=certificates.ca_file)

    security = broker_security(settings)
    options = client_options(settings)

    assert type(security) is BaseSecurity
    assert security.use_ssl is True
    assert security.ssl_context is not None
    assert trusts(security.ssl_context, certificates)
    assert set(options) == {"bootstrap_servers", "client_id", "security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert trusts(context, certificates)


def test_ssl_without_a_ca_file_trusts_the_system_cas(certificates: Certificates) -> None:
    security = broker_security(kafka(security_protocol="SSL"))

    assert security is not None and security.ssl_context is not None
    context = security.ssl_context
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.cert_store_stats() == ssl.create_default_context().cert_store_stats()
    assert not trusts(context, certificates)


@pytest.mark.parametrize(
    ("mechanism", "kind"),
    [("PLAIN", SASLPlaintext), ("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)],
)
def test_sasl_plaintext_sends_the_credentials_with_the_mechanism_and_no_tls(
    mechanism: str, kind: type[BaseSecurity]
) -> None:
    settings = sasl("SASL_PLAINTEXT", mechanism)

    security = broker_security(settings)

    assert type(security) is kind
    assert (security.username, security.password) == ("elements-sync", PASSWORD)  # type: ignore[attr-defined]
    assert (security.use_ssl, security.ssl_context) == (False, None)
    assert client_options(settings) == {
        "bootstrap_servers": ["k1.example:9093", "k2.example:9093"],
        "client_id": "sync-7",
        "security_protocol": "SASL_PLAINTEXT",
        "ssl_context": None,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "elements-sync",
        "sasl_plain_password": PASSWORD,
    }


@pytest.mark.parametrize(
    ("mechanism", "kind"),
    [("PLAIN", SASLPlaintext), ("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)],
)
def test_sasl_ssl_sends_the_credentials_over_tls_trusting_the_ca(
    mechanism: str, kind: type[BaseSecurity], certificates: Certificates
) -> None:
    settings = sasl("SASL_SSL", mechanism, ssl_ca_file=certificates.ca_file)

    security = broker_security(settings)
    options = client_options(settings)

    assert type(security) is kind
    assert security.use_ssl is True
    assert {k: v for k, v in options.items() if k != "ssl_context"} == {
        "bootstrap_servers": ["k1.example:9093", "k2.example:9093"],
        "client_id": "sync-7",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "elements-sync",
        "sasl_plain_password": PASSWORD,
    }
    assert trusts(options["ssl_context"], certificates)


def test_the_sasl_password_stays_out_of_the_settings_repr() -> None:
    settings = sasl("SASL_SSL", "SCRAM-SHA-512")

    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)
