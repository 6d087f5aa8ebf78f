"""Which database errors the runner and the HTTP edge retry (transient) and which they do not."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import exc

from common.db import is_transient_database_error


def _wrapped(orig: Exception, cls: type[exc.DBAPIError] = exc.OperationalError) -> exc.DBAPIError:
    return cls("SELECT 1", None, orig)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        # Straight from psycopg: the statements of common.pg.
        pytest.param(psycopg.OperationalError("server closed the connection"), True, id="psycopg-disconnect"),
        pytest.param(psycopg.InterfaceError("the connection is closed"), True, id="psycopg-closed"),
        pytest.param(errors.LockNotAvailable("lock timeout"), True, id="psycopg-lock-timeout"),
        pytest.param(errors.DeadlockDetected("deadlock"), True, id="psycopg-deadlock"),
        pytest.param(errors.UniqueViolation("duplicate key"), False, id="psycopg-constraint"),
        pytest.param(errors.UndefinedTable("no such table"), False, id="psycopg-programming-error"),
        # Wrapped by SQLAlchemy: every other statement.
        pytest.param(_wrapped(psycopg.OperationalError("gone")), True, id="sqlalchemy-operational"),
        pytest.param(
            _wrapped(errors.UniqueViolation("dup"), exc.IntegrityError), False, id="sqlalchemy-integrity"
        ),
        pytest.param(exc.TimeoutError("pool exhausted"), True, id="sqlalchemy-pool-timeout"),
        # No database at all.
        pytest.param(ConnectionRefusedError(), True, id="connection-refused"),
        pytest.param(ValueError("a bug"), False, id="a-bug"),
    ],
)
def test_only_failures_a_later_retry_can_get_past_are_transient(error: Exception, transient: bool) -> None:
    assert is_transient_database_error(error) is transient
