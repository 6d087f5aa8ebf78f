"""Row-by-row comparison of two copies of a table (the live database and a rebuild). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Row = Mapping[str, Any]


@dataclass(frozen=True)
class RowDiff:
    key: str
    changes: dict[str, tuple[Any, Any]]  # column → (live, rebuilt)


@dataclass(frozen=True)
class TableDiff:
    only_live: list[str] = field(default_factory=list)
    only_rebuilt: list[str] = field(default_factory=list)
    different: list[RowDiff] = field(default_factory=list)
    same: int = 0

    @property
    def clean(self) -> bool:
        return not (self.only_live or self.only_rebuilt or self.different)


def diff_tables(live: Mapping[str, Row], rebuilt: Mapping[str, Row], columns: tuple[str, ...]) -> TableDiff:
    """Rows keyed alike in both copies, compared on `columns` only (e.g. not on timestamps)."""
    only_live = sorted(set(live) - set(rebuilt))
    only_rebuilt = sorted(set(rebuilt) - set(live))
    different = []
    same = 0
    for key in sorted(set(live) & set(rebuilt)):
        changes = {
            column: (live[key].get(column), rebuilt[key].get(column))
            for column in columns
            if live[key].get(column) != rebuilt[key].get(column)
        }
        if changes:
            different.append(RowDiff(key, changes))
        else:
            same += 1
    return TableDiff(only_live, only_rebuilt, different, same)
