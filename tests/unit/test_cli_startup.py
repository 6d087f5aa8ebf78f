"""`saga` starts without what only some of its commands need: every call of it (an operator's, each of
the suites') paid for Alembic and SQLAlchemy, half of the 2.5 s `saga --help` took."""

from __future__ import annotations

import json
import subprocess
import sys

ONLY_FOR_SOME_COMMANDS = ("alembic", "sqlalchemy", "saga_tools.migrations", "saga_tools.ops.order_rebuild")


def test_the_saga_command_loads_no_migration_or_database_library_until_a_command_needs_one() -> None:
    probe = (
        "import json, sys, saga_tools.cli;"
        f"print(json.dumps([m for m in {list(ONLY_FOR_SOME_COMMANDS)!r} if m in sys.modules]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(loaded.stdout) == []
