"""`saga keys new`: a fresh API key and the entry that lets it in (docs/operators/access.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from common.auth import InvalidKeyEntry, Scope, entry_for, new_key
from saga_tools.ops.command_kit import Exit, console, err, fail


def new(
    name: Annotated[
        str, typer.Option(help="who holds the key, e.g. acme-shop (a rotated key keeps the name)")
    ],
    scope: Annotated[list[Scope], typer.Option(help="what it may do; repeat for several")],
    serves: Annotated[
        list[str] | None,
        typer.Option("--for", help="a carrier's shops (the names of their keys); repeat for several"),
    ] = None,
) -> None:
    """Make an API key: the key goes to standard output (give it to its holder, once), its entry (a
    digest, no secret) to standard error, to add as a line of the services' SAGA_API_KEYS_FILE. A shop's
    key name is the owner of every order it checks out; a carrier moves only the parcels of the shops it
    is `--for`."""
    key = new_key()
    try:
        entry = entry_for(name, scope, key, serves or ())
    except InvalidKeyEntry as exc:
        raise fail(str(exc), Exit.USAGE) from exc
    console.print(key, highlight=False, soft_wrap=True)
    err.print("add this line to the services' keys file (SAGA_API_KEYS_FILE):", highlight=False)
    err.print(entry.line(), highlight=False, soft_wrap=True)
