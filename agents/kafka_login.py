"""The Faust app's Kafka login (SASL/TLS), shared by the worker and the evaluation process."""

from __future__ import annotations

import ssl

import faust

from agents.settings import Settings

__all__ = ["broker_credentials"]


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
