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
from common.config import Settings
from saga_tools.cli import app
from saga_tools.local_stack.local_api_keys import LocalApiKeys, all_scopes_key

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


def test_a_keys_file_that_cannot_be_read_at_start_stops_the_service_saying_which(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-keys"
    with pytest.raises(NoApiKeys, match="SAGA_API_KEYS_FILE cannot be read") as raised:
        ApiKeys.from_settings(Settings.model_validate({"SAGA_API_KEYS_FILE": str(missing)}))
    assert str(missing) in str(raised.value)


def test_a_keys_file_that_does_not_parse_at_start_stops_the_service(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("acme shop not-a-digest\n")
    with pytest.raises(InvalidKeyEntry, match="entry 1"):
        ApiKeys.from_settings(Settings.model_validate({"SAGA_API_KEYS_FILE": str(path)}))


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


def test_a_changed_keys_file_is_read_again_without_a_restart(
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
    assert keys.problem() is None


def _keys_of_file(path: Path, monkeypatch: pytest.MonkeyPatch, inline: str = "") -> ApiKeys:
    monkeypatch.setattr(api_keys_module, "_RECHECK_SECONDS", 0.0)
    return ApiKeys.from_settings(
        Settings.model_validate({"SAGA_API_KEYS_FILE": str(path), "SAGA_API_KEYS": inline})
    )


def test_a_deleted_keys_file_gives_no_key_but_the_inline_ones_still_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file_key, inline_key = new_key(), new_key()
    path = tmp_path / "keys"
    path.write_text(entry_for("acme", [SHOP], file_key).line())
    keys = _keys_of_file(path, monkeypatch, inline=entry_for("ops", [OPERATOR], inline_key).line())

    path.unlink()

    assert keys.caller(file_key) is None
    assert keys.caller(inline_key) == Caller("ops", frozenset({OPERATOR}))
    problem = keys.problem()
    assert problem is not None and str(path) in problem and "cannot be read" in problem
    assert problem.endswith("no key from it is accepted")


def test_an_unreadable_keys_file_gives_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key()
    path = tmp_path / "keys"
    path.write_text(entry_for("acme", [SHOP], key).line())
    keys = _keys_of_file(path, monkeypatch)

    path.unlink()
    path.mkdir()  # reading a directory fails, whoever runs the test (root reads a mode 000 file)

    assert keys.caller(key) is None
    assert "cannot be read" in (keys.problem() or "")


@pytest.mark.parametrize(
    "bad_line",
    [
        "acme shop {key}",  # the key pasted where its digest belongs
        "acme shop,{key} {digest}",  # the key pasted among the scopes (echoed by the scope's error)
        "acme shop {digest}x",  # a digest one character too long
    ],
)
def test_one_bad_line_gives_no_key_from_the_file_and_the_problem_says_why_without_the_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_line: str
) -> None:
    good, pasted = new_key(), new_key()
    good_line = entry_for("acme", [SHOP], good).line()
    path = tmp_path / "keys"
    path.write_text(good_line + "\n")
    keys = _keys_of_file(path, monkeypatch)
    digest = good_line.split()[2]

    path.write_text(good_line + "\n" + bad_line.format(key=pasted, digest=digest) + "\n")

    assert keys.caller(good) is None  # the whole file counts for nothing, its good line included
    problem = keys.problem()
    assert problem is not None and f"{path}, entry 2" in problem, problem
    assert pasted not in problem and pasted[len("saga_") :] not in problem
    assert digest[len("sha256:") :] not in problem


def test_a_rewrite_that_keeps_size_and_mtime_is_still_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    revoked, other = new_key(), new_key()
    path = tmp_path / "keys"
    path.write_text(entry_for("acme", [SHOP], revoked).line())
    keys = _keys_of_file(path, monkeypatch)
    before = os.stat(path)

    path.write_text(entry_for("acme", [SHOP], other).line())  # the same length: one digest for another
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    assert keys.caller(revoked) is None
    assert keys.caller(other) == Caller("acme", frozenset({SHOP}))


def test_a_fixed_keys_file_is_accepted_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key()
    line = entry_for("acme", [SHOP], key).line()
    path = tmp_path / "keys"
    path.write_text(line)
    keys = _keys_of_file(path, monkeypatch)

    path.write_text(line + "\nacme shop not-a-digest\n")
    assert keys.caller(key) is None and keys.problem() is not None

    path.write_text(line + "\n")
    assert keys.caller(key) == Caller("acme", frozenset({SHOP}))
    assert keys.problem() is None


def test_a_broken_keys_file_is_reported_once_not_every_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys"
    path.write_text(entry_for("acme", [SHOP], new_key()).line())
    keys = _keys_of_file(path, monkeypatch)
    path.write_text("acme shop not-a-digest")

    for _ in range(3):
        keys.caller(new_key())

    assert [record.levelname for record in caplog.records if "no key from it" in record.message] == ["ERROR"]


def test_the_keys_are_read_at_most_once_a_second(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key()
    path = tmp_path / "keys"
    path.write_text(entry_for("acme", [SHOP], key).line())
    now = [1000.0]
    monkeypatch.setattr(api_keys_module.time, "monotonic", lambda: now[0])
    keys = ApiKeys.from_settings(Settings.model_validate({"SAGA_API_KEYS_FILE": str(path)}))

    path.unlink()
    now[0] += 0.5
    assert keys.caller(key) is not None  # not looked at yet
    now[0] += 0.6
    assert keys.caller(key) is None


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
