"""The local broker's security material: made once, private, and never echoed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from common.infra.kafka_security import PRINCIPALS, LocalKafkaSecurity

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def test_prepare_makes_private_passwords_and_a_broker_certificate_signed_by_the_ca(tmp_path: Path) -> None:
    security = LocalKafkaSecurity(tmp_path / "security")
    security.prepare()
    passwords = {security.password(p).get_secret_value() for p in PRINCIPALS}
    assert len(passwords) == len(PRINCIPALS)
    assert security.directory.stat().st_mode & 0o077 == 0
    for path in [*(security.password_file(p) for p in PRINCIPALS), security.keystore_file]:
        assert path.stat().st_mode & 0o077 == 0, path
    certificate = security.directory / "broker.crt"
    verified = subprocess.run(
        ["openssl", "verify", "-CAfile", str(security.ca_file), str(certificate)],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", str(certificate), "-noout", "-text"], capture_output=True, text=True
    ).stdout
    assert "IP Address:127.0.0.1" in text and "TLS Web Client Authentication" in text

    before = security.password("delivery")
    security.prepare()  # a warm start keeps what exists
    assert security.password("delivery") == before


def test_the_environment_points_at_the_password_file_never_the_password(tmp_path: Path) -> None:
    security = LocalKafkaSecurity(tmp_path / "security")
    security.prepare()
    env = security.client_environment("payment")
    secret = security.password("payment").get_secret_value()
    assert env["KAFKA_SASL_USERNAME"] == "payment"
    assert secret not in "".join(env.values())
    assert security.redact(f"failed with password={secret}") == "failed with password=[hidden]"
    assert secret not in str(security.broker_properties(9092, 9093)["super.users"])
