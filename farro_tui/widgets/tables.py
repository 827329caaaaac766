"""What the panes built on Textual's DataTable share."""

from __future__ import annotations

from typing import Any

from textual.coordinate import Coordinate
from textual.widgets import DataTable


def cursor_key(table: DataTable[Any]) -> str | None:
    """The key of the row under the cursor (None: an empty table): the panes key their
    rows by job id or worker name, so this is what their keys act on."""
    if not table.row_count:
        return None
    key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key.value
    return None if key is None else str(key)
