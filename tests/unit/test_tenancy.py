"""Whose object is this (common/tenancy.py): which saga a caller's reference names, which owners it sees,
and how carrier entries name their shops — as a table of every kind of caller against every kind of
reference."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from common.auth import (
    ALL_SCOPES,
    Caller,
    InvalidKeyEntry,
    Scope,
    entry_for,
    identify,
    new_key,
    parse_entries,
)
from common.tenancy import (
    LEGACY_OWNER,
    NOBODY,
    REFERENCE_PATTERN,
    order_id_of,
    owner_of,
    qualified,
    resolve,
    saga_id,
    split_saga_id,
    visible_owners,
)
from saga_tools.cli import app

ACME = Caller("acme", frozenset({Scope.SHOP}))
GLOBEX = Caller("globex", frozenset({Scope.SHOP}))
OPERATOR = Caller("ops", frozenset({Scope.OPERATOR}))
ORDER_SERVICE = Caller("order-service", frozenset({Scope.PAYMENT_LOOKUP}))
ACME_CARRIER = Caller("dhl", frozenset({Scope.CARRIER}), frozenset({"acme"}))
TWO_SHOP_CARRIER = Caller("ups", frozenset({Scope.CARRIER}), frozenset({"acme", "globex"}))
HARNESS = Caller("tests", ALL_SCOPES)

# caller, reference → the saga it names (NOBODY's namespace: answered as an id that does not exist)
RESOLVED = [
    (ACME, "o-1", "acme:o-1"),
    (ACME, "acme:o-1", "acme:o-1"),
    (ACME, "globex:o-1", f"{NOBODY}:o-1"),
    (ACME, "legacy:o-1", f"{NOBODY}:o-1"),
    (GLOBEX, "o-1", "globex:o-1"),
    (GLOBEX, "acme:o-1", f"{NOBODY}:o-1"),
    (OPERATOR, "acme:o-1", "acme:o-1"),
    (OPERATOR, "legacy:o-1", "legacy:o-1"),
    (OPERATOR, "o-1", "ops:o-1"),  # its own namespace, where nothing is
    (ORDER_SERVICE, "globex:o-1", "globex:o-1"),
    (ACME_CARRIER, "o-1", "acme:o-1"),  # the one shop it serves is its home
    (ACME_CARRIER, "acme:o-1", "acme:o-1"),
    (ACME_CARRIER, "globex:o-1", f"{NOBODY}:o-1"),
    (TWO_SHOP_CARRIER, "globex:o-1", "globex:o-1"),
    (TWO_SHOP_CARRIER, "o-1", "ups:o-1"),  # two shops: it must say which
    (HARNESS, "o-1", "tests:o-1"),
    (HARNESS, "acme:o-1", "acme:o-1"),
    (ACME, f"{NOBODY}:o-1", f"{NOBODY}:o-1"),
]


@pytest.mark.parametrize(("caller", "reference", "saga"), RESOLVED)
def test_a_reference_names_the_callers_own_order_or_one_it_may_see_else_nobodys(
    caller: Caller, reference: str, saga: str
) -> None:
    assert re.fullmatch(REFERENCE_PATTERN, reference)
    assert resolve(caller, reference) == saga


def test_nobody_is_a_name_no_key_can_have() -> None:
    with pytest.raises(InvalidKeyEntry):
        entry_for(NOBODY, [Scope.SHOP], new_key())


@pytest.mark.parametrize(
    ("caller", "requested", "shown"),
    [
        (ACME, None, {"acme"}),
        (ACME, "acme", {"acme"}),
        (ACME, "globex", set()),  # an empty list, as for a shop with no orders
        (OPERATOR, None, None),  # every shop
        (OPERATOR, "globex", {"globex"}),
        (TWO_SHOP_CARRIER, None, {"ups", "acme", "globex"}),
        (HARNESS, None, None),
    ],
)
def test_a_list_shows_a_shop_only_its_own_and_an_operator_every_shop(
    caller: Caller, requested: str | None, shown: set[str] | None
) -> None:
    assert visible_owners(caller, requested) == (None if shown is None else frozenset(shown))


def test_a_saga_id_splits_into_its_owner_and_the_shops_order_id() -> None:
    assert saga_id("acme", "o-1") == "acme:o-1"
    assert split_saga_id("acme:o-1") == ("acme", "o-1")
    assert (owner_of("a.b-c_d:o_1"), order_id_of("a.b-c_d:o_1")) == ("a.b-c_d", "o_1")


def test_an_id_from_before_owners_is_the_legacy_owners() -> None:
    assert split_saga_id("o-1") == (LEGACY_OWNER, "o-1")
    assert qualified("o-1") == "legacy:o-1"
    assert qualified("acme:o-1") == "acme:o-1"


def test_a_carrier_entry_names_the_shops_it_serves_and_its_caller_carries_them() -> None:
    key = new_key()
    line = entry_for("dhl", [Scope.CARRIER], key, ["acme", "globex"]).line()

    assert line.endswith(" for=acme,globex")
    assert identify(parse_entries(line), key) == Caller(
        "dhl", frozenset({Scope.CARRIER}), frozenset({"acme", "globex"})
    )


@pytest.mark.parametrize(
    ("fourth", "message"),
    [
        ("acme", "the fourth field must be `for=shop,...`"),
        ("for=acme/x", "the name 'acme/x' must be"),
        ("for=", "the name '' must be"),
    ],
)
def test_a_carrier_entry_with_a_bad_shop_list_is_refused(fourth: str, message: str) -> None:
    line = entry_for("dhl", [Scope.CARRIER], new_key()).line() + " " + fourth
    with pytest.raises(InvalidKeyEntry, match=re.escape(message)):
        parse_entries(line)


def test_only_a_carrier_entry_may_name_shops() -> None:
    line = entry_for("acme", [Scope.SHOP], new_key()).line() + " for=globex"
    with pytest.raises(InvalidKeyEntry, match="only a carrier key serves shops"):
        parse_entries(line)
    with pytest.raises(InvalidKeyEntry, match="only a carrier key serves shops"):
        entry_for("acme", [Scope.SHOP], new_key(), ["globex"])


def test_saga_keys_new_makes_a_carrier_key_for_the_shops_it_names() -> None:
    result = CliRunner().invoke(
        app, ["keys", "new", "--name", "dhl", "--scope", "carrier", "--for", "acme", "--for", "globex"]
    )

    assert result.exit_code == 0, result.output
    key = result.stdout.split()[0]
    entry_line = next(line for line in result.stderr.splitlines() if line.startswith("dhl "))
    assert identify(parse_entries(entry_line), key) == Caller(
        "dhl", frozenset({Scope.CARRIER}), frozenset({"acme", "globex"})
    )
    refused = CliRunner().invoke(app, ["keys", "new", "--name", "acme", "--scope", "shop", "--for", "x"])
    assert refused.exit_code == 2 and "only a carrier key serves shops" in refused.output
