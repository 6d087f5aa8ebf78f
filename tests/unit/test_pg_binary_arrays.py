"""Which parameters of a plain-SQL statement go to PostgreSQL in binary: the arrays, and only them."""

from __future__ import annotations

from common.pg import binary_arrays


def test_array_parameters_positional_or_named_are_sent_in_binary() -> None:
    sql = "SELECT * FROM unnest(%s::text[], %s::bytea[]) AS e(k, v) WHERE k = ANY(%(keys)s::uuid[])"
    assert binary_arrays(sql) == (
        "SELECT * FROM unnest(%b::text[], %b::bytea[]) AS e(k, v) WHERE k = ANY(%(keys)b::uuid[])"
    )


def test_scalar_parameters_and_the_rest_of_the_text_are_left_as_they_were() -> None:
    sql = "UPDATE t SET n = %s::int, at = %(at)s, tags = '{a}'::text[] WHERE id = %s AND 5 %% 2 = 1"
    assert binary_arrays(sql) == sql
