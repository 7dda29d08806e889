"""A secured local stack for tests: a CA and a loopback server certificate (``openssl``),
Kafka SASL_SSL (SCRAM-SHA-512) and Redis TLS with an ACL user.

Passwords are random per stack and live in files readable by the owner only (the broker's
``server.properties``, Redis's ``redis.conf``), never on a command line that stays in ``ps``.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "StackSecurity",
    "kafka_security_properties",
    "make_certificates",
    "redis_security_config",
]

CERT_DAYS = 7
_SERVER_EXTENSIONS = (
    "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth,clientAuth\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid,issuer\n"
)


class CertificateError(RuntimeError):
    """``openssl`` is missing or failed (one-line message naming the step and the log)."""


@dataclass(frozen=True)
class StackSecurity:
    """Credentials and certificates of a secured stack; passwords never show in ``repr``."""

    kafka_username: str
    kafka_password: str = field(repr=False)
    redis_username: str
    redis_password: str = field(repr=False)
    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def generate(cls, directory: Path) -> StackSecurity:
        """Fresh certificates under ``directory`` and random passwords."""
        ca, cert, key = make_certificates(directory)
        return cls(
            "segstream-kafka",
            secrets.token_urlsafe(18),
            "segstream-redis",
            secrets.token_urlsafe(18),
            ca,
            cert,
            key,
        )

    def kafka_client_kwargs(self) -> dict[str, Any]:
        """kafka-python kwargs that log in to the stack's SASL_SSL listener."""
        return {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": self.kafka_username,
            "sasl_plain_password": self.kafka_password,
            "ssl_cafile": str(self.ca_file),
        }

    def scram_format_arg(self) -> str:
        """``kafka-storage format --add-scram`` value creating the SCRAM user at format time."""
        return f"SCRAM-SHA-512=[name={self.kafka_username},password={self.kafka_password}]"


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: ``(ca.pem, server.pem,
    server.key)``, the key unencrypted PKCS#8 (what Kafka's PEM key store and Redis read)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise CertificateError("openssl not found: install it with `apt-get install openssl`")
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert, ext = (
        directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem", "server.ext")
    )
    ext.write_text(_SERVER_EXTENSIONS)
    steps = {
        "CA": [
            *("req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key)),
            *("-out", str(ca), "-days", str(CERT_DAYS), "-subj", "/CN=segstream test CA"),
            *(
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ),
        ],
        "server key": [
            *("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key)),
            *("-out", str(csr), "-subj", "/CN=localhost"),
        ],
        "server certificate": [
            *("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key)),
            *("-set_serial", str(secrets.randbits(63)), "-days", str(CERT_DAYS)),
            *("-out", str(cert), "-extfile", str(ext)),
        ],
    }
    log = directory / "openssl.log"
    with log.open("w") as out:
        for step, args in steps.items():
            done = subprocess.run([openssl, *args], stdout=out, stderr=subprocess.STDOUT, timeout=60)
            if done.returncode != 0:
                raise CertificateError(
                    f"openssl could not make the {step} (exit {done.returncode}): read {log}"
                )
    for private in (ca_key, key):
        private.chmod(0o600)
    return ca, cert, key


def kafka_security_properties(security: StackSecurity, keystore: Path) -> str:
    """server.properties lines for a SASL_SSL listener (SCRAM-SHA-512), also used between brokers.

    ``keystore`` is a PEM file holding the server key then its certificate.
    """
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{security.kafka_username}" password="{security.kafka_password}";'
    )
    return (
        "inter.broker.listener.name=SASL_SSL\n"
        "sasl.enabled.mechanisms=SCRAM-SHA-512\n"
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512\n"
        f"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}\n"
        "ssl.keystore.type=PEM\n"
        f"ssl.keystore.location={keystore}\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={security.ca_file}\n"
        "ssl.client.auth=none\n"
    )


def redis_security_config(security: StackSecurity, tls_port: int) -> str:
    """redis.conf lines: TLS only (no plain port), the ``default`` user off, one ACL user."""
    return (
        "port 0\n"
        f"tls-port {tls_port}\n"
        f"tls-cert-file {security.cert_file}\n"
        f"tls-key-file {security.key_file}\n"
        f"tls-ca-cert-file {security.ca_file}\n"
        "tls-auth-clients no\n"
        "user default off\n"
        f"user {security.redis_username} on >{security.redis_password} ~* &* +@all\n"
    )
