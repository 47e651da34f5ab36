"""Fill a DataTable with as many of its columns as fit the terminal, most important first.

A DataTable wider than its screen scrolls sideways and the last visible column is cut
mid-word; an operator on an 80-column SSH session should instead see the columns that matter,
whole. Columns are given most important first; the ones that do not fit are left out.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text
CELL_PADDING = 2  # DataTable's cell_padding (1) on each side of a cell


def fitting(widths: Sequence[int], room: int) -> int:
    """How many leading columns of ``widths`` fit in ``room`` cells (at least one)."""
    used = 0
    for count, width in enumerate(widths):
        used += width + CELL_PADDING
        if used > room:
            return max(1, count)
    return len(widths)


def fill_table(
    table: DataTable[Cell],
    labels: Sequence[str],
    rows: Sequence[tuple[Hashable, Sequence[Cell]]],
    room: int,
) -> None:
    """Replace ``table``'s columns and rows: the leading columns that fit ``room``, whole."""
    widths = [
        max([cell_len(label)] + [cell_len(str(cells[i])) for _key, cells in rows])
        for i, label in enumerate(labels)
    ]
    count = fitting(widths, room)
    cursor = table.cursor_row
    table.clear(columns=True)
    for label, width in zip(labels[:count], widths, strict=False):
        table.add_column(label, width=width)  # measured here: the table measures lazily
    for key, cells in rows:
        table.add_row(*cells[:count], key=str(key))
    if rows:
        table.move_cursor(row=min(cursor, len(rows) - 1), animate=False)


def words_within(text: str, width: int) -> str:
    """``text`` if it fits ``width`` cells, else its first whole words and "…": a cell too
    narrow for the whole text never ends mid-word (the full text is in the log)."""
    if cell_len(text) <= width:
        return text
    kept = ""
    for word in text.split(" "):
        longer = f"{kept} {word}" if kept else word
        if cell_len(longer) + 1 > width:
            break
        kept = longer
    return f"{kept}…" if kept else "…"
