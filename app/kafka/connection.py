"""How every Kafka client of the service connects: one place turns `KafkaSettings` into
FastStream's `security` object, and the same object into aiokafka's keyword arguments.

The broker (consumer, producers, and through it the readiness ping) takes
`broker_security`; the admin client, the sandbox and the tests take `client_options`,
which FastStream's own translation derives from that same object — so no client can
connect differently from the worker. Every producer takes `producer_options`: each write
waits for all in-sync replicas, and batches as the settings say.
"""

from __future__ import annotations

import ssl
from typing import Any

from aiokafka.helpers import create_ssl_context
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from app.settings import KafkaSettings, SaslMechanism

SASL: dict[SaslMechanism, type[SASLPlaintext | SASLScram256 | SASLScram512]] = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """Verifies the brokers against `KAFKA_SSL_CA_FILE` (unset: the system's CAs), with the
    client certificate when one is configured; None when the protocol has no TLS."""
    if not kafka.uses_tls:
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=kafka.ssl_ca_file,
        certfile=kafka.ssl_cert_file,
        keyfile=kafka.ssl_key_file,
    )
    return context


def broker_security(kafka: KafkaSettings) -> BaseSecurity | None:
    """FastStream's form of the settings; None is PLAINTEXT."""
    context = ssl_context(kafka)
    if not kafka.uses_sasl:
        return BaseSecurity(ssl_context=context) if context is not None else None
    assert kafka.sasl_username is not None and kafka.sasl_password is not None, "settings check"
    return SASL[kafka.sasl_mechanism](
        kafka.sasl_username,
        kafka.sasl_password.get_secret_value(),
        ssl_context=context,
        use_ssl=kafka.uses_tls,
    )


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (admin, producer, consumer)."""
    return {
        "bootstrap_servers": kafka.servers,
        "client_id": kafka.client_id,
        **parse_security(broker_security(kafka)),
    }


def producer_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments every producer shares, the worker's FastStream broker included."""
    return {
        "acks": "all",
        "enable_idempotence": kafka.enable_idempotence,
        "max_batch_size": kafka.max_batch_bytes,
    }
