"""The Kafka login (SASL/TLS) of the Faust app (the worker's and the evaluation process's) and of
segstream's own aiokafka clients (the partitioned evaluation's links)."""

from __future__ import annotations

import ssl
from typing import Any

import faust

from agents.settings import Settings

__all__ = ["aiokafka_login", "broker_credentials"]


def broker_credentials(settings: Settings) -> faust.SASLCredentials | None:
    """The Faust app's Kafka login, from the same kwargs as every kafka-python client.

    Faust hands them to every aiokafka consumer and producer it makes: ``security_protocol``
    SASL_SSL (because of the SSL context), the mechanism, user name, password and context.
    """
    kwargs = settings.kafka_client_kwargs()
    if kwargs["security_protocol"] == "PLAINTEXT":
        return None
    context = ssl.create_default_context(cafile=kwargs["ssl_cafile"])
    context.check_hostname = kwargs["ssl_check_hostname"]
    return faust.SASLCredentials(
        username=kwargs["sasl_plain_username"],
        password=kwargs["sasl_plain_password"],
        mechanism=kwargs["sasl_mechanism"],
        ssl_context=context,
    )


def aiokafka_login(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of an aiokafka client: the brokers and the same login as Faust's."""
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap}
    credentials = broker_credentials(settings)
    if credentials is None:
        return {**kwargs, "security_protocol": "PLAINTEXT"}
    return {
        **kwargs,
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": credentials.mechanism.value,
        "sasl_plain_username": credentials.username,
        "sasl_plain_password": credentials.password,
        "ssl_context": credentials.ssl_context,
    }
