"""The local broker's security material: a CA, the broker's certificate, and a password per principal.

Made once with openssl in `<state>/kafka/security` (0700; keys and passwords 0600) and reused on a warm
start. The broker's clients connect over SASL_SSL with SCRAM-SHA-512; the controller listener (and the
broker's own connection to it) uses TLS with client certificates, so the only principals the broker
knows are the SCRAM users below and the broker's certificate. Nothing here prints a password.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from common.kafka_security import KafkaConnection
from saga_tools.local_stack.kafka_acls import OPERATOR, SERVICE_PRINCIPALS

ADMIN = "admin"
PRINCIPALS: tuple[str, ...] = (ADMIN, *SERVICE_PRINCIPALS, OPERATOR)
SCRAM_MECHANISM = "SCRAM-SHA-512"
# The broker's certificate subject is its principal on the controller listener (a super user).
BROKER_SUBJECT = "CN=saga-kafka-broker"
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"


class KafkaSecuritySetupError(RuntimeError):
    """The CA or the broker's certificate could not be made; the message says what to install."""


@dataclass(frozen=True)
class LocalKafkaSecurity:
    """The files of one local cluster's security, under `directory`."""

    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def keystore_file(self) -> Path:
        """The broker's private key and certificate chain, PKCS#12 (Kafka's PEM key store would need an
        encrypted PKCS#8 key, which is no safer and less portable between openssl and Java versions)."""
        return self.directory / "broker.p12"

    @property
    def keystore_password_file(self) -> Path:
        return self.directory / "keystore.password"

    def password_file(self, principal: str) -> Path:
        return self.directory / f"{principal}.password"

    def password(self, principal: str) -> SecretStr:
        return SecretStr(self.password_file(principal).read_text().strip())

    def prepare(self) -> None:
        """Make whatever is missing: the directory, one password per principal, the CA and certificate."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        for path in [*(self.password_file(p) for p in PRINCIPALS), self.keystore_password_file]:
            if not path.exists():
                _write_private(path, secrets.token_urlsafe(24))
        if not (self.ca_file.exists() and self.keystore_file.exists()):
            self._make_certificates()

    def connection(self, bootstrap_servers: str, principal: str) -> KafkaConnection:
        """How `principal` reaches the local broker."""
        return KafkaConnection(
            bootstrap_servers, "SASL_SSL", SCRAM_MECHANISM, principal, self.password(principal), self.ca_file
        )

    def client_environment(self, principal: str) -> dict[str, str]:
        """The variables that make a process connect as `principal` (the password stays in its file)."""
        return {
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": SCRAM_MECHANISM,
            "KAFKA_SASL_USERNAME": principal,
            "KAFKA_SASL_PASSWORD_FILE": str(self.password_file(principal)),
            "KAFKA_SSL_CAFILE": str(self.ca_file),
        }

    def redact(self, text: str) -> str:
        """`text` with every principal's password replaced (for a tool's output shown in an error)."""
        for path in [*(self.password_file(p) for p in PRINCIPALS), self.keystore_password_file]:
            text = text.replace(path.read_text().strip(), "[hidden]")
        return text

    def scram_format_args(self) -> list[str]:
        """`StorageTool format` arguments that create every principal's SCRAM credential with the cluster.

        They hold the passwords: the tool reads them from a 0600 @-file, never from its command line
        (`KafkaCluster._format_if_needed`); StorageTool has no other way in for them.
        """
        args: list[str] = []
        for principal in PRINCIPALS:
            secret = self.password(principal).get_secret_value()
            args += ["--add-scram", f"{SCRAM_MECHANISM}=[name={principal},password={secret}]"]
        return args

    def broker_properties(self, broker_port: int, controller_port: int) -> dict[str, object]:
        """server.properties entries of a secured node (written to a 0600 file: it holds admin's password)."""
        admin = self.password(ADMIN).get_secret_value()
        keystore_password = self.keystore_password_file.read_text().strip()
        return {
            "listeners": f"SASL_SSL://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{broker_port}",
            "inter.broker.listener.name": "SASL_SSL",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
            f"listener.name.sasl_ssl.{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
                f'{SCRAM_LOGIN} required username="{ADMIN}" password="{admin}";'
            ),
            # The controller listener accepts only a certificate signed by our CA: the broker's own.
            "listener.name.controller.ssl.client.auth": "required",
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.keystore_file),
            "ssl.keystore.password": keystore_password,
            "ssl.key.password": keystore_password,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN};User:{BROKER_SUBJECT}",
            "allow.everyone.if.no.acl.found": "false",
        }

    def _make_certificates(self) -> None:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise KafkaSecuritySetupError("`openssl` was not found on PATH (e.g. `apt-get install openssl`).")
        ca_key, key = self.directory / "ca.key", self.directory / "broker.key"
        csr, cert = self.directory / "broker.csr", self.directory / "broker.crt"
        extensions = self.directory / "broker.ext"
        extensions.write_text(
            "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            # serverAuth for the listeners, clientAuth for the broker's connection to the controller.
            "extendedKeyUsage=serverAuth,clientAuth\n"
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        )
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        _openssl(
            openssl,
            ["req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(self.ca_file), "-days", "3650"],
            ["-subj", "/CN=saga-local-kafka-ca", "-addext", "basicConstraints=critical,CA:TRUE"],
            ["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        )
        _openssl(openssl, ["req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/{BROKER_SUBJECT}"])
        _openssl(
            openssl,
            ["x509", "-req", "-in", str(csr), "-CA", str(self.ca_file), "-CAkey", str(ca_key)],
            ["-CAcreateserial", "-out", str(cert), "-days", "825", "-extfile", str(extensions)],
        )
        _openssl(
            openssl,
            ["pkcs12", "-export", "-in", str(cert), "-inkey", str(key), "-certfile", str(self.ca_file)],
            ["-name", "broker", "-out", str(self.keystore_file)],
            ["-passout", f"file:{self.keystore_password_file}"],
        )
        self.keystore_file.chmod(0o600)
        for path in (ca_key, key):
            path.chmod(0o600)
        csr.unlink()


def _openssl(openssl: str, *parts: Sequence[str]) -> None:
    command = [openssl, *(arg for part in parts for arg in part)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise KafkaSecuritySetupError(f"openssl {command[1]} failed:\n{result.stderr[-2000:]}")


def _write_private(path: Path, text: str) -> None:
    """Write `text` to a file only its owner can read (created so from the start, never world-readable)."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w") as out:
        out.write(text)
