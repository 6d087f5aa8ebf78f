"""The local database's secrets: passwords kept private, stored as SCRAM verifiers, never printed."""

from __future__ import annotations

import base64
import re
import stat
from pathlib import Path

import pytest

from common.config import Service
from saga_tools.local_stack.pg_auth import ensure_passwords, hba_conf, read_passwords, scram_verifier
from saga_tools.redact import has_password, mask_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql+psycopg://payment:s3cr@t@postgres:5432/payment",
            "postgresql+psycopg://payment:***@postgres:5432/payment",
        ),
        ("postgresql://u:p@h/db?sslmode=verify-full", "postgresql://u:***@h/db?sslmode=verify-full"),
        (
            "postgresql://u@h/db?password=p&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("postgresql://:p@h/db", "postgresql://:***@h/db"),
    ],
)
def test_a_url_is_printed_without_its_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert has_password(url)


@pytest.mark.parametrize(
    "password",
    ["a/b", "a?b", "a#b", "a@b", "p/a?s#s@w:o%rd", "/", "?x=1#", "@@", "a:b"],
)
@pytest.mark.parametrize(
    "template",
    [
        "postgresql+psycopg://payment:{}@postgres:5432/payment",
        "postgresql://u:{}@h/db?sslmode=verify-full#frag",
        "postgresql://admin@example.org:{}@h:5432/db",  # a user name with an @ of its own
        "kafka://u:{}@h",
    ],
)
def test_a_password_with_any_character_is_hidden_whole(template: str, password: str) -> None:
    url = template.format(password)

    assert mask_url(url) == template.format("***")
    assert has_password(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://payment@/payment?host=%2Ftmp%2Fs&port=5432&passfile=%2Ftmp%2Fpasswords",
        "postgresql://h:5432/db",
        "postgresql://u@localhost:5432/db?sslmode=verify-full&sslrootcert=%2Fca.crt",
    ],
)
def test_a_url_without_a_password_is_printed_as_it_is(url: str) -> None:
    assert mask_url(url) == url
    assert not has_password(url)


def test_passwords_are_generated_once_per_service_in_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    first = ensure_passwords(path)
    assert set(first) == {service.value for service in Service}
    assert len(set(first.values())) == 3 and all(len(password) >= 32 for password in first.values())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_passwords(path) == first == read_passwords(path)
    # libpq's format: host:port:database:user:password, any host, port and database.
    assert f"*:*:*:order:{first['order']}" in path.read_text().splitlines()


def test_a_missing_password_is_added_and_the_others_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "passwords"
    first = ensure_passwords(path)
    path.write_text("\n".join(f"*:*:*:{role}:{pw}" for role, pw in first.items() if role != "order") + "\n")
    second = ensure_passwords(path)
    assert second["payment"] == first["payment"] and second["delivery"] == first["delivery"]
    assert second["order"] != first["order"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_server_is_given_a_scram_verifier_not_the_password() -> None:
    salt = b"0123456789abcdef"
    verifier = scram_verifier("pencil", salt=salt)
    match = re.fullmatch(r"SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)", verifier)
    assert match is not None and "pencil" not in verifier
    assert base64.b64decode(match[1]) == salt
    assert len(base64.b64decode(match[2])) == len(base64.b64decode(match[3])) == 32
    assert scram_verifier("pencil", salt=salt) == verifier  # deterministic for a salt
    assert scram_verifier("pencil") != scram_verifier("pencil")  # a fresh salt each time


@pytest.mark.parametrize("tls", [False, True])
def test_only_the_stack_user_is_superuser_and_everyone_else_needs_a_scram_password(tls: bool) -> None:
    rules = [line.split() for line in hba_conf(tls=tls).splitlines() if line and not line.startswith("#")]
    tcp = "hostssl" if tls else "host"
    assert rules == [
        ["local", "all", "postgres", "peer", "map=stack"],
        ["local", "all", "all", "scram-sha-256"],
        [tcp, "all", "postgres", "127.0.0.1/32", "reject"],
        [tcp, "all", "all", "127.0.0.1/32", "scram-sha-256"],
    ]
