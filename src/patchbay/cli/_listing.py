"""Listings that fit the terminal without ever cutting an id.

A listing is a rich table when it fits: id columns never wrap, free-text columns fold. When
the terminal is too narrow for the ids to stay whole, each row becomes a block instead: the
short cells on one line, each free-text cell indented below. Into a pipe or a file the table
is as wide as its content (nothing folds or is cut) and lines carry no trailing padding.
"""

from __future__ import annotations

import click
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

Cell = str | Text
FOLDED_MIN = 16


class Listing:
    def __init__(self, columns: tuple[str, ...], ids: tuple[str, ...], folded: tuple[str, ...]) -> None:
        self.columns = columns
        self.ids = ids
        self.folded = folded
        self.rows: list[tuple[Cell, ...]] = []

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def add_row(self, *cells: Cell) -> None:
        self.rows.append(cells)

    def table(self) -> Table:
        grid = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False, show_edge=False)
        for title in self.columns:
            if title in self.ids:
                grid.add_column(title, no_wrap=True, overflow="ignore")
            elif title in self.folded:
                grid.add_column(title, overflow="fold", ratio=1, min_width=FOLDED_MIN)
            else:
                grid.add_column(title, no_wrap=True)
        for row in self.rows:
            grid.add_row(*row)
        return grid

    def needed_width(self) -> int:
        """The narrowest terminal the table fits whole: every short cell on one line, each
        free-text column at least ``FOLDED_MIN`` wide (two spaces between columns)."""
        widths = []
        for i, title in enumerate(self.columns):
            if title in self.folded:
                widths.append(max(FOLDED_MIN, cell_len(title)))
            else:
                widths.append(max([cell_len(title)] + [cell_len(str(row[i])) for row in self.rows]))
        return sum(widths) + 2 * (len(widths) - 1)

    def render(self, console: Console) -> str:
        """The text to print on ``console``: the table when it fits, else one block per row."""
        with console.capture() as captured:
            if not console.is_terminal or console.width >= self.needed_width():
                console.print(self.table())
            else:
                for row in self.rows:
                    self._block(console, row)
        return "\n".join(line.rstrip() for line in captured.get().splitlines())

    def _block(self, console: Console, row: tuple[Cell, ...]) -> None:
        head = Text()
        for title, cell in zip(self.columns, row, strict=True):
            if title in self.folded or not str(cell):
                continue
            if head:
                head.append("  ")
            head.append_text(cell if isinstance(cell, Text) else Text(cell))
        console.print(head, overflow="fold")
        for title, cell in zip(self.columns, row, strict=True):
            if title in self.folded and str(cell):
                console.print(Text("    ").append_text(cell if isinstance(cell, Text) else Text(cell)),
                              overflow="fold")


def print_listing(console: Console, listing: Listing, empty: str | None) -> None:
    if listing.row_count == 0 and empty is not None:
        console.print(empty, markup=False)
        return
    click.echo(listing.render(console), color=console.is_terminal)
