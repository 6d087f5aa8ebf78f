"""The operator commands of `saga`: order, orders, tail, replay, dead-letters, rebuild, keys, webhooks.

Each reads the same settings as the services (completed from the local stack's record) and talks to the
services through their HTTP APIs and to Kafka as a client; none reads another service's database, except
`rebuild`, which compares the order service's own database with its rebuild.
"""

from __future__ import annotations

import typer

from common.ops.commands import keys, webhooks
from common.ops.commands.dead_letters import dead_letters
from common.ops.commands.orders import order, orders
from common.ops.commands.rebuild import rebuild
from common.ops.commands.replay import replay
from common.ops.commands.tail import tail


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
    keys_app.command("new")(keys.new)
    app.add_typer(keys_app, name="keys")
    app.add_typer(webhooks.app, name="webhooks")
