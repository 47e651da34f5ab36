"""A table over a plain list of rows that renders only the lines on screen.

Textual's DataTable measures every cell of every row it is given (about a second for 5,000
rows here), so filtering a large list by rebuilding it is not smooth. This widget keeps the
rows as they are (any objects), asks ``render`` for the cells of the few rows in view, and
swapping the list is a single refresh: filtering 5,000 configurations costs the filter itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

# Cells of one row and its tone: "" (plain), "warning", "error" or "muted".
RowRender = Callable[[Any], tuple[Sequence[str], str]]


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int


class VirtualTable(ScrollView, can_focus=True):
    """Header line, then one line per row; a row cursor; click a header to ask for a sort."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
        Binding("enter", "select", "Select", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "virtual-table--header",
        "virtual-table--cursor",
        "virtual-table--warning",
        "virtual-table--error",
        "virtual-table--muted",
    }

    DEFAULT_CSS = """
    VirtualTable { height: 1fr; background: $surface; }
    VirtualTable > .virtual-table--header { text-style: bold; background: $panel; }
    VirtualTable > .virtual-table--cursor { background: $block-cursor-blurred-background; }
    VirtualTable:focus > .virtual-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
    }
    VirtualTable > .virtual-table--warning { color: $warning; }
    VirtualTable > .virtual-table--error { color: $error; }
    VirtualTable > .virtual-table--muted { color: $text-muted; }
    """

    cursor: reactive[int] = reactive(0, always_update=True)

    class TableMessage(Message):
        """A message from this table: ``control`` lets `@on(..., "#id")` pick the table."""

        def __init__(self, table: VirtualTable) -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> VirtualTable:
            return self.table

    class Highlighted(TableMessage):
        def __init__(self, table: VirtualTable, row: Any | None) -> None:
            super().__init__(table)
            self.row = row

    class Selected(TableMessage):
        def __init__(self, table: VirtualTable, row: Any) -> None:
            super().__init__(table)
            self.row = row

    class HeaderClicked(TableMessage):
        def __init__(self, table: VirtualTable, column: str) -> None:
            super().__init__(table)
            self.column = column

    def __init__(
        self,
        render: RowRender,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._render_row = render
        self.columns: list[Column] = []
        self.rows: Sequence[Any] = ()

    # --- data --------------------------------------------------------------------------------

    def set_rows(
        self,
        columns: list[Column],
        rows: Sequence[Any],
        *,
        key: Callable[[Any], object] | None = None,
    ) -> None:
        """Show ``rows``; the cursor follows the row it was on (the first of the same ``key``)
        when it is still shown, else stays put."""
        current = self.current
        kept = None if key is None or current is None else key(current)
        self.columns = columns
        self.rows = rows
        width = sum(c.width for c in columns) + max(0, len(columns) - 1)
        self.virtual_size = Size(width, len(rows) + 1)
        target = min(self.cursor, max(0, len(rows) - 1))
        if key is not None and kept is not None:
            for index, row in enumerate(rows):
                if key(row) == kept:
                    target = index
                    break
        self.cursor = target
        self.refresh()

    @property
    def current(self) -> Any | None:
        if 0 <= self.cursor < len(self.rows):
            return self.rows[self.cursor]
        return None

    # --- cursor ------------------------------------------------------------------------------

    def validate_cursor(self, value: int) -> int:
        return max(0, min(value, len(self.rows) - 1)) if self.rows else 0

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()
        self.post_message(self.Highlighted(self, self.current))

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.scrollable_content_region.height - 1)  # less the header
        top = round(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + visible:
            self.scroll_to(y=self.cursor - visible + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.scrollable_content_region.height - 2)

    def action_jump(self, where: int) -> None:
        self.cursor = len(self.rows) - 1 if where < 0 else where

    def action_select(self) -> None:
        if self.current is not None:
            self.post_message(self.Selected(self, self.current))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self._column_at(offset.x + round(self.scroll_x))
            if column is not None:
                self.post_message(self.HeaderClicked(self, column.key))
            return
        index = round(self.scroll_y) + offset.y - 1
        if 0 <= index < len(self.rows):
            if index == self.cursor and event.chain > 1:
                self.action_select()
            self.cursor = index

    def _column_at(self, x: int) -> Column | None:
        start = 0
        for column in self.columns:
            if start <= x < start + column.width + 1:
                return column
            start += column.width + 1
        return None

    # --- rendering ---------------------------------------------------------------------------

    def _line(self, cells: Sequence[str], style: Style) -> list[Segment]:
        parts = [
            set_cell_size(cell, column.width)
            for cell, column in zip(cells, self.columns, strict=False)
        ]
        text = " ".join(parts)
        return [Segment(text, style)]

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = round(self.scroll_x), round(self.scroll_y)
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("virtual-table--header")
            segments = self._line([c.label for c in self.columns], style)
        else:
            index = scroll_y + y - 1
            if index >= len(self.rows):
                return Strip.blank(width, base)
            cells, tone = self._render_row(self.rows[index])
            style = base
            if tone:
                style += self.get_component_rich_style(f"virtual-table--{tone}")
            if index == self.cursor:
                style += self.get_component_rich_style("virtual-table--cursor")
            segments = self._line(cells, style)
        strip = Strip(segments).crop(scroll_x, scroll_x + width)
        return strip.extend_cell_length(width, style)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return sum(c.width for c in self.columns) + max(0, len(self.columns) - 1)


def column_width(label: str, values: Sequence[str], cap: int) -> int:
    """The widest of the label and the values, at most ``cap`` cells."""
    widest = max((cell_len(v) for v in values), default=0)
    return min(cap, max(cell_len(label), widest))


def names_within(names: Sequence[str], width: int) -> str:
    """``names`` joined by commas if they fit ``width`` cells, else the first few whole and a
    count of the rest ("node1 +2"): a narrow column never cuts a name."""
    text = ",".join(names)
    if cell_len(text) <= width:
        return text
    for count in range(len(names) - 1, 0, -1):
        text = f"{','.join(names[:count])} +{len(names) - count}"
        if cell_len(text) <= width:
            return text
    return f"{len(names)} nodes"
