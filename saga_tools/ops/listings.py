"""Operator listings that never cut an identifier, at any terminal width.

An operator copies ids from these listings into the next command (`saga order ID`), so an id is never
shortened with an ellipsis or broken across lines while the width allows it whole. When the terminal is
wide enough, a table: the id column keeps its full width and the other columns narrow and fold. When it is
not (a table would squeeze the other columns into slivers), one record per row: the id on a line of its
own, then each field. Only an id longer than the whole width folds, and then nothing of it is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

# Width each other column needs to stay readable in a table: its borders and padding (3) and 9 cells.
COLUMN_ROOM = 12
# The id column's own borders and padding.
ID_COLUMN_FRAME = 4


@dataclass
class Listing:
    """Rows keyed by an identifier, with their other fields under `headers`.

    Columns named in `whole` (short codes such as a status) never wrap either; the rest narrow and fold.
    """

    title: str
    id_header: str
    headers: Sequence[str]
    whole: Sequence[str] = ()
    rows: list[tuple[str, Sequence[str]]] = field(default_factory=list)

    def add(self, identifier: str, *cells: str) -> None:
        self.rows.append((identifier, cells))

    @property
    def widest_id(self) -> int:
        return max((len(identifier) for identifier, _ in self.rows), default=len(self.id_header))

    def widest(self, header: str) -> int:
        """The widest cell of a column (its header included)."""
        column = list(self.headers).index(header)
        return max([len(header), *(Text.from_markup(cells[column]).cell_len for _, cells in self.rows)])


def fits_as_table(listing: Listing, width: int) -> bool:
    """A table when every id and whole cell fits and each other column still has room to be read."""
    whole = sum(listing.widest(header) + 3 for header in listing.whole)
    folding = len(listing.headers) - len(listing.whole)
    return width >= listing.widest_id + ID_COLUMN_FRAME + whole + COLUMN_ROOM * folding


def as_table(listing: Listing) -> Table:
    """The id column (and any whole one) never narrows below its widest cell nor wraps; the others fold."""
    table = Table(title=listing.title)
    table.add_column(listing.id_header, no_wrap=True, overflow="fold", min_width=listing.widest_id)
    for header in listing.headers:
        if header in listing.whole:
            table.add_column(header, no_wrap=True, overflow="fold", min_width=listing.widest(header))
        else:
            table.add_column(header, overflow="fold")
    for identifier, cells in listing.rows:
        table.add_row(identifier, *cells)
    return table


def as_records(listing: Listing) -> Group:
    """One record per row: the id alone on its line (folded only if longer than the width), then its
    fields indented."""
    parts: list[RenderableType] = [Text(listing.title, style="italic")]
    for identifier, cells in listing.rows:
        parts.append(Text(identifier, style="bold", overflow="fold"))
        for header, cell in zip(listing.headers, cells, strict=True):
            if cell:
                field_text = Text(f"{header}: ", style="dim") + Text.from_markup(cell, overflow="fold")
                parts.append(Padding(field_text, (0, 0, 0, 2), expand=False))
    return Group(*parts)


def print_listing(console: Console, listing: Listing) -> None:
    """The listing as a table if it fits the console's width, else as records."""
    console.print(as_table(listing) if fits_as_table(listing, console.width) else as_records(listing))
