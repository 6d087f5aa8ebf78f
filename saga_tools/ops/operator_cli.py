"""The operator commands of `saga`: order, orders, tail, replay, dead-letters, rebuild, keys, webhooks.

Each reads the same settings as the services (completed from the local stack's record) and talks to the
services through their HTTP APIs and to Kafka as a client; none reads another service's database, except
`rebuild`, which compares the order service's own database with its rebuild.
"""

from __future__ import annotations

import typer

from saga_tools.ops.commands import keys_command, webhooks_command
from saga_tools.ops.commands.dead_letters_command import dead_letters
from saga_tools.ops.commands.orders_command import order, orders
from saga_tools.ops.commands.rebuild_command import rebuild
from saga_tools.ops.commands.replay_command import replay
from saga_tools.ops.commands.tail_command import tail


def register(app: typer.Typer) -> None:
    """Add the operator commands to the `saga` application."""
    app.command("order")(order)
    app.command("orders")(orders)
    app.command("tail")(tail)
    app.command("replay")(replay)
    app.command("dead-letters")(dead_letters)
    app.command("rebuild")(rebuild)
    keys_app = typer.Typer(
        help="API keys: make one for a shop, a carrier or an operator.", no_args_is_help=True
    )
    keys_app.command("new")(keys_command.new)
    app.add_typer(keys_app, name="keys")
    app.add_typer(webhooks_command.app, name="webhooks")
