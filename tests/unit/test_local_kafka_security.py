"""The local broker's security material: made once, private, and never echoed."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from saga_tools.local_stack import local_kafka as kafka_module
from saga_tools.local_stack.local_kafka import KafkaCluster, kafka_tool_command
from saga_tools.local_stack.local_kafka_security import PRINCIPALS, LocalKafkaSecurity

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


def test_formatting_a_secured_node_puts_no_password_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = KafkaCluster(tmp_path / "jars", tmp_path / "kafka", secure=True)
    seen: list[tuple[list[str], str]] = []

    real_run = subprocess.run

    def run(command: list[str], **options: Any) -> subprocess.CompletedProcess[str]:
        if command[0] != "java":  # openssl, making the certificates
            return real_run(command, **options)
        args_file = Path(command[-1].removeprefix("@"))
        seen.append((command, args_file.read_text()))
        assert stat.S_IMODE(args_file.stat().st_mode) == 0o600
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(kafka_module.subprocess, "run", run)
    cluster.prepare()

    [(command, args_file_text)] = seen
    assert cluster.security is not None
    for principal in PRINCIPALS:
        secret = cluster.security.password(principal).get_secret_value()
        assert not any(secret in arg for arg in command)
        assert f'"SCRAM-SHA-512=[name={principal},password={secret}]"' in args_file_text.splitlines()
    assert args_file_text.splitlines()[:2] == ['"kafka.tools.StorageTool"', '"format"']
    assert not list(cluster.state_dir.rglob("*.args"))  # deleted once the tool ran


def test_an_argument_with_quotes_spaces_and_backslashes_survives_the_args_file(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    source = tmp_path / "Echo.java"
    source.write_text(
        "public class Echo { public static void main(String[] a) {"
        " for (String s : a) System.out.println('[' + s + ']'); } }"
    )
    tricky = ["a b", 'q"uote', "back\\slash", "end\\", "p=[x,y]"]
    args_file = tmp_path / "echo.args"
    command = kafka_tool_command(tmp_path, "Echo", *tricky, jvm_options=(), args_file=args_file)
    # A single-file source program instead of Kafka's jars: the same launcher reads the same @-file.
    command = [arg for arg in command if not arg.startswith(("-Dlog4j2", "-cp", str(tmp_path) + "/*"))]
    args_file.write_text(args_file.read_text().replace('"Echo"', f'"{source}"', 1))

    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout

    assert output.splitlines() == [f"[{arg}]" for arg in tricky]
    assert not any(arg in command for arg in tricky)
