"""Who may call what: key entries, the caller a key identifies, the decision, and where keys come from."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from common import api_keys as api_keys_module
from common.api_keys import ApiKeys, NoApiKeys
from common.auth import (
    ALL_SCOPES,
    ANONYMOUS,
    PUBLIC,
    Access,
    Caller,
    Decision,
    InvalidKeyEntry,
    Scope,
    bearer_token,
    decide,
    entry_for,
    identify,
    new_key,
    parse_entries,
)
from common.cli import app
from common.config import Settings
from common.infra.api_keys import LocalApiKeys, all_scopes_key

SHOP, CARRIER, OPERATOR = Scope.SHOP, Scope.CARRIER, Scope.OPERATOR


def caller(*scopes: Scope) -> Caller:
    return Caller("someone", frozenset(scopes))


@pytest.mark.parametrize(
    ("access", "who", "decision"),
    [
        (PUBLIC, None, Decision.ALLOW),
        (PUBLIC, caller(SHOP), Decision.ALLOW),
        (Access.of(SHOP), None, Decision.UNAUTHENTICATED),
        (Access.of(SHOP), caller(SHOP), Decision.ALLOW),
        (Access.of(SHOP), caller(CARRIER), Decision.FORBIDDEN),
        (Access.of(SHOP), caller(OPERATOR), Decision.FORBIDDEN),  # an operator does not check out
        (Access.of(SHOP, OPERATOR), caller(OPERATOR), Decision.ALLOW),  # but reads what a shop reads
        (Access.of(CARRIER), caller(SHOP, OPERATOR), Decision.FORBIDDEN),
        (Access.of(CARRIER), caller(SHOP, CARRIER), Decision.ALLOW),
        (Access.of(OPERATOR), ANONYMOUS, Decision.ALLOW),  # authentication off: everyone may do anything
    ],
)
def test_a_route_lets_in_a_key_with_one_of_its_scopes_and_refuses_the_others(
    access: Access, who: Caller | None, decision: Decision
) -> None:
    assert decide(access, who) is decision


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("BEARER abc", "abc"),
        ("Basic YWxhZGRpbjpvcGVu", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("abc", None),
        ("", None),
        (None, None),
        ("Bearer saga_AbC-_x", "saga_AbC-_x"),
        ("Bearer a\udcfeb", None),  # bytes that are not UTF-8, as aiohttp hands them on (a 500 once)
        ("Bearer ключ", None),
        ("Bearer a b", None),
        ("Bearer a\x00b", None),
    ],
)
def test_only_a_bearer_header_carries_a_key(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_a_key_is_known_by_its_digest_and_identifies_its_owner_and_scopes() -> None:
    key, other = new_key(), new_key()
    entries = [entry_for("acme", [SHOP], key), entry_for("ops", [OPERATOR, SHOP], other)]

    assert identify(entries, key) == Caller("acme", frozenset({SHOP}))
    assert identify(entries, other) == Caller("ops", frozenset({OPERATOR, SHOP}))
    assert identify(entries, new_key()) is None
    assert identify(entries, None) is None
    assert identify(entries, key[:-1]) is None


def test_an_entry_holds_the_digest_of_the_key_never_the_key() -> None:
    key = new_key()
    line = entry_for("acme", [SHOP, CARRIER], key).line()

    assert key not in line and key[len("saga_") :] not in line
    assert line.startswith("acme carrier,shop sha256:")
    assert parse_entries(line) == [entry_for("acme", [SHOP, CARRIER], key)]


def test_two_keys_of_one_caller_are_both_active_which_is_how_a_key_is_rotated() -> None:
    old, new = new_key(), new_key()
    entries = parse_entries(
        f"{entry_for('acme', [SHOP], old).line()}; {entry_for('acme', [SHOP], new).line()}"
    )

    assert identify(entries, old) == identify(entries, new) == Caller("acme", frozenset({SHOP}))


def test_keys_files_skip_blank_lines_and_comments() -> None:
    key = new_key()
    text = f"# the shop's keys\n\n{entry_for('acme', [SHOP], key).line()}  # since March\n"

    assert [entry.name for entry in parse_entries(text)] == ["acme"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("acme shop", "expected `name scopes sha256:<hex> [for=shop,...]`, got 2 fields"),
        ("acme shop,root sha256:" + "0" * 64, "unknown scope in 'shop,root'"),
        ("acme shop sha256:" + "0" * 63, "sha256: and 64 hex digits"),
        ("acme/x shop sha256:" + "0" * 64, "the name 'acme/x' must be"),
    ],
)
def test_an_entry_that_does_not_parse_is_refused_saying_where_and_why(text: str, message: str) -> None:
    with pytest.raises(InvalidKeyEntry, match=r"keys\.txt, entry 2") as raised:
        parse_entries("# header\n" + text, "keys.txt")
    assert message in str(raised.value)


def test_a_key_pasted_where_its_digest_belongs_is_not_echoed_in_the_error() -> None:
    key = new_key()
    with pytest.raises(InvalidKeyEntry) as raised:
        parse_entries(f"acme shop {key}")
    assert key not in str(raised.value)


def test_a_service_with_no_keys_and_authentication_on_refuses_to_start() -> None:
    with pytest.raises(NoApiKeys, match="SAGA_API_KEYS_FILE or SAGA_API_KEYS"):
        ApiKeys.from_settings(Settings.model_validate({}))


def test_a_keys_file_that_cannot_be_read_stops_the_service_saying_which(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-keys"
    with pytest.raises(NoApiKeys, match="SAGA_API_KEYS_FILE cannot be read") as raised:
        ApiKeys.from_settings(Settings.model_validate({"SAGA_API_KEYS_FILE": str(missing)}))
    assert str(missing) in str(raised.value)


def test_with_authentication_off_every_caller_is_anonymous_with_every_scope() -> None:
    keys = ApiKeys.from_settings(Settings.model_validate({"SAGA_DISABLE_AUTHENTICATION": "true"}))

    assert keys.disabled
    assert keys.caller(None) is ANONYMOUS and ANONYMOUS.scopes == ALL_SCOPES


def test_inline_entries_and_the_keys_file_are_both_active(tmp_path: Path) -> None:
    inline_key, (file_key, _) = new_key(), all_scopes_key("ops")
    path = tmp_path / "keys"
    path.write_text(entry_for("acme", [SHOP], file_key).line() + "\n")
    settings = Settings.model_validate(
        {"SAGA_API_KEYS": entry_for("bench", [CARRIER], inline_key).line(), "SAGA_API_KEYS_FILE": str(path)}
    )
    keys = ApiKeys.from_settings(settings)

    assert keys.caller(inline_key) == Caller("bench", frozenset({CARRIER}))
    assert keys.caller(file_key) == Caller("acme", frozenset({SHOP}))


def test_a_changed_keys_file_is_read_again_without_a_restart_and_a_broken_one_keeps_the_keys_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_keys_module, "_RECHECK_SECONDS", 0.0)
    old, new = new_key(), new_key()
    path = tmp_path / "keys"
    path.write_text(entry_for("acme", [SHOP], old).line())
    keys = ApiKeys.from_settings(Settings.model_validate({"SAGA_API_KEYS_FILE": str(path)}))
    assert keys.caller(old) is not None and keys.caller(new) is None

    path.write_text(entry_for("acme", [SHOP], old).line() + "\n" + entry_for("acme", [SHOP], new).line())
    assert keys.caller(new) is not None  # the new key is added: both work during the rotation

    path.write_text(entry_for("acme", [SHOP], new).line() + "\n\n")
    assert keys.caller(old) is None and keys.caller(new) is not None  # the old one is revoked

    path.write_text("acme shop not-a-digest")
    assert keys.caller(new) is not None  # a broken file changes nothing


def test_the_local_stack_makes_demo_keys_once_private_and_known_to_the_services(tmp_path: Path) -> None:
    local = LocalApiKeys(tmp_path / "api-keys")
    local.ensure()
    first = local.demo_keys()
    local.ensure()

    assert local.demo_keys() == first  # kept: the keys `saga run` printed stay valid
    assert set(first) == set(Scope) - {Scope.PAYMENT_LOOKUP}  # the order service has its own
    for path in tmp_path.joinpath("api-keys").iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    keys = ApiKeys.from_settings(Settings.model_validate(local.environment()))
    for scope, key in first.items():
        found = keys.caller(key)
        assert found is not None and found.scopes == {scope}
    lookup = keys.caller(local.key("order-service"))
    assert lookup == Caller("order-service", frozenset({Scope.PAYMENT_LOOKUP}))
    assert Settings.model_validate(local.environment()).operator_api_key_value() == first[OPERATOR]


def test_saga_keys_new_prints_the_key_once_and_an_entry_that_lets_exactly_it_in() -> None:
    result = CliRunner().invoke(
        app, ["keys", "new", "--name", "acme", "--scope", "shop", "--scope", "carrier"]
    )

    assert result.exit_code == 0, result.output
    key, *rest = result.stdout.split()
    entry_line = next(line for line in result.stderr.splitlines() if line.startswith("acme "))
    assert rest == [] and key.startswith("saga_")
    assert identify(parse_entries(entry_line), key) == Caller("acme", frozenset({SHOP, CARRIER}))
    assert key not in result.stderr


def test_the_key_a_process_sends_comes_from_its_variable_then_its_file_and_a_missing_file_is_no_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "operator.key"
    path.write_text("saga_from_file\n")

    assert Settings.model_validate({"SAGA_OPERATOR_API_KEY_FILE": str(path)}).operator_api_key_value() == (
        "saga_from_file"
    )
    given = {"SAGA_OPERATOR_API_KEY": "saga_given", "SAGA_OPERATOR_API_KEY_FILE": str(path)}
    assert Settings.model_validate(given).operator_api_key_value() == "saga_given"
    missing = {"ORDER_PAYMENT_API_KEY_FILE": str(tmp_path / "gone.key")}
    assert Settings.model_validate(missing).payment_lookup_api_key() is None
