"""Every Kafka client takes its connection from one function; the password never shows in a repr."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from common.app import faust_credentials
from common.config import Settings
from common.kafka_security import KafkaConnection, KafkaSecurityError, as_connection, kafka_connection

SECRET = "s3cr3t-Pa55word"


def _settings(**env: str) -> Settings:
    return Settings.model_validate({"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", **env})


def _ca(tmp_path: Path) -> Path:
    # Any PEM certificate will do for building a context: the system's CA bundle has many.
    bundle = ssl.get_default_verify_paths().cafile
    if bundle is None or not Path(bundle).is_file():
        pytest.skip("no system CA bundle to stand in for a CA file")
    target = tmp_path / "ca.pem"
    target.write_bytes(Path(bundle).read_bytes())
    return target


def test_without_security_settings_clients_connect_in_plaintext() -> None:
    connection = kafka_connection(_settings())
    assert connection.security_protocol == "PLAINTEXT"
    assert connection.aiokafka_options() == {"bootstrap_servers": "127.0.0.1:9092"}
    assert faust_credentials(connection) is None
    assert as_connection("127.0.0.1:9092") == connection


def test_sasl_ssl_gives_every_client_the_same_scram_credentials_and_a_verifying_context(
    tmp_path: Path,
) -> None:
    cafile = _ca(tmp_path)
    connection = kafka_connection(
        _settings(
            KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            KAFKA_SASL_USERNAME="delivery",
            KAFKA_SASL_PASSWORD=SECRET,
            KAFKA_SSL_CAFILE=str(cafile),
        )
    )
    options = connection.aiokafka_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("delivery", SECRET)
    context = options["ssl_context"]
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED

    credentials = faust_credentials(connection)
    assert credentials is not None
    assert credentials.protocol.value == "SASL_SSL"  # type: ignore[attr-defined]
    assert credentials.mechanism.value == "SCRAM-SHA-512"  # type: ignore[attr-defined]

    properties = connection.java_properties()
    assert "security.protocol=SASL_SSL" in properties
    assert f"ssl.truststore.location={cafile}" in properties
    assert 'ScramLoginModule required username="delivery"' in properties


def test_the_password_never_appears_in_reprs_or_descriptions() -> None:
    settings = _settings(
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT", KAFKA_SASL_USERNAME="order", KAFKA_SASL_PASSWORD=SECRET
    )
    connection = kafka_connection(settings)
    for shown in (repr(settings), str(settings), repr(connection), connection.describe()):
        assert SECRET not in shown
    assert SECRET not in repr(faust_credentials(connection))
    assert "order" in connection.describe()


def test_the_password_can_come_from_a_private_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "payment.password"
    secret_file.write_text(SECRET + "\n")
    connection = kafka_connection(
        _settings(
            KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
            KAFKA_SASL_USERNAME="payment",
            KAFKA_SASL_PASSWORD_FILE=str(secret_file),
        )
    )
    assert connection.password is not None and connection.password.get_secret_value() == SECRET


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_USERNAME"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "x"}, "KAFKA_SASL_PASSWORD"),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "KAFKA_SSL_CAFILE"),
    ],
)
def test_incomplete_security_settings_are_refused_by_name(env: dict[str, str], names: str) -> None:
    with pytest.raises(KafkaSecurityError, match=names):
        kafka_connection(_settings(**env))


def test_java_tools_get_a_private_config_file_that_is_removed_afterwards() -> None:
    connection = KafkaConnection("127.0.0.1:9092")
    with connection.java_config_file() as path:
        assert path.stat().st_mode & 0o077 == 0
        assert "bootstrap.servers=127.0.0.1:9092" in path.read_text()
    assert not path.exists()
