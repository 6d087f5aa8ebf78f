"""How every Kafka client of the project connects: one place turns the settings into client options.

The Faust app, the relay's producer, the admin clients (ensure_topics, readiness), the operator commands
and Kafka's own Java tools all take their connection from `kafka_connection(settings)`, so a broker that
asks for SASL (SCRAM-SHA-512) over TLS is reached the same way by all of them. The password is held as a
`SecretStr` and is never part of a repr, a log line or an error message built here.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from common.config import KafkaSaslMechanism, KafkaSecurityProtocol, Settings

DEFAULT_SASL_MECHANISM: KafkaSaslMechanism = "SCRAM-SHA-512"


class KafkaSecurityError(ValueError):
    """The Kafka security settings do not fit together; the message names the variables (never a secret)."""


@dataclass(frozen=True)
class KafkaConnection:
    """Where the broker is and how to authenticate to it (PLAINTEXT unless the settings ask for more)."""

    bootstrap_servers: str
    security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    sasl_mechanism: KafkaSaslMechanism = DEFAULT_SASL_MECHANISM
    username: str | None = None
    password: SecretStr | None = field(default=None, repr=False)
    cafile: Path | None = None

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def describe(self) -> str:
        """For humans: the address, the protocol and the principal; never the password."""
        if not self.uses_sasl:
            return f"{self.bootstrap_servers} ({self.security_protocol})"
        return f"{self.bootstrap_servers} ({self.security_protocol} {self.sasl_mechanism} as {self.username})"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A TLS context that verifies the broker's certificate and host name (None without TLS)."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=str(self.cafile) if self.cafile else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def aiokafka_options(self) -> dict[str, Any]:
        """Keyword arguments for any aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers}
        if self.security_protocol == "PLAINTEXT":
            return options
        options["security_protocol"] = self.security_protocol
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            assert self.password is not None
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password.get_secret_value()
        return options

    def java_properties(self) -> str:
        """The same connection as a Java client's properties (`--command-config` of Kafka's tools)."""
        lines = [f"bootstrap.servers={self.bootstrap_servers}", f"security.protocol={self.security_protocol}"]
        if self.uses_tls and self.cafile is not None:
            lines += ["ssl.truststore.type=PEM", f"ssl.truststore.location={self.cafile}"]
        if self.uses_sasl:
            assert self.password is not None and self.username is not None
            module = (
                "org.apache.kafka.common.security.plain.PlainLoginModule"
                if self.sasl_mechanism == "PLAIN"
                else "org.apache.kafka.common.security.scram.ScramLoginModule"
            )
            lines += [
                f"sasl.mechanism={self.sasl_mechanism}",
                f"sasl.jaas.config={module} required username={_jaas_quote(self.username)} "
                f"password={_jaas_quote(self.password.get_secret_value())};",
            ]
        return "".join(f"{line}\n" for line in lines)

    @contextmanager
    def java_config_file(self) -> Iterator[Path]:
        """A private (0600) temporary properties file for a Java tool, removed afterwards."""
        handle, name = tempfile.mkstemp(prefix="kafka-client-", suffix=".properties")
        try:
            with os.fdopen(handle, "w") as out:
                out.write(self.java_properties())
            yield Path(name)
        finally:
            Path(name).unlink(missing_ok=True)


def _jaas_quote(value: str) -> str:
    # JAAS values are double-quoted; a quote or backslash inside is escaped with a backslash.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def kafka_connection(settings: Settings) -> KafkaConnection:
    """The connection the settings describe. SASL needs a user name and a password (given, or read from
    KAFKA_SASL_PASSWORD_FILE); a CA file must exist. Raises KafkaSecurityError saying what is missing."""
    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap:
        raise KafkaSecurityError("KAFKA_BOOTSTRAP_SERVERS is not set")
    protocol: KafkaSecurityProtocol = settings.kafka_security_protocol or "PLAINTEXT"
    cafile = settings.kafka_ssl_cafile
    if cafile is not None and not cafile.is_file():
        raise KafkaSecurityError(f"KAFKA_SSL_CAFILE {cafile} is not a file")
    if not protocol.startswith("SASL_"):
        return KafkaConnection(bootstrap, protocol, cafile=cafile)
    if not settings.kafka_sasl_username:
        raise KafkaSecurityError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME")
    return KafkaConnection(
        bootstrap,
        protocol,
        settings.kafka_sasl_mechanism or DEFAULT_SASL_MECHANISM,
        settings.kafka_sasl_username,
        _password(settings, protocol),
        cafile,
    )


def _password(settings: Settings, protocol: str) -> SecretStr:
    if settings.kafka_sasl_password is not None:
        return settings.kafka_sasl_password
    path = settings.kafka_sasl_password_file
    if path is None:
        raise KafkaSecurityError(
            f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE"
        )
    try:
        return SecretStr(path.read_text().strip())
    except OSError as exc:
        raise KafkaSecurityError(f"KAFKA_SASL_PASSWORD_FILE {path} cannot be read ({exc.strerror})") from exc


KafkaTarget = KafkaConnection | str
"""What the Kafka edges accept: a connection, or a bare address meaning PLAINTEXT (tests, the bench)."""


def as_connection(target: KafkaTarget) -> KafkaConnection:
    """`target` as a connection; a bare `host:port[,…]` is a PLAINTEXT one."""
    return target if isinstance(target, KafkaConnection) else KafkaConnection(target)
