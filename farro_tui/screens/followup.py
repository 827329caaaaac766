"""The follow-up dialog: a one-line note for ``farro retry``, then the confirmation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, Static

from farro_core.followup import MAX_NOTE_CHARS
from farro_tui.access import FarroAccess


@dataclass(frozen=True)
class FollowUp:
    note: str
    from_work: bool


class NoteScreen(FarroAccess, ModalScreen[FollowUp | None]):
    """``u`` on a finished job: type the note, enter goes on to the confirmation."""

    DEFAULT_CSS = """
    NoteScreen #note { margin: 1 0 0 0; }
    NoteScreen #note-hint { color: $text-muted; }
    NoteScreen #note-hint.-refused { color: $text-warning; text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="note_cancel"),
        Binding("ctrl+t", "toggle_work", "From its work", id="note_from_work"),
    ]

    def __init__(self, job_id: str, title: str, *, has_work: bool) -> None:
        super().__init__()
        self._job_id = job_id
        self._title = title
        self._has_work = has_work

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(f"Follow up {self._job_id}", style="bold"), id="dialog-title")
            yield Static(Text(self._title), id="dialog-body")
            yield Input(
                placeholder="what the agent should do differently",
                max_length=MAX_NOTE_CHARS,
                id="note",
            )
            yield Checkbox(
                "continue from its work commit (ctrl+t)",
                value=False,
                disabled=not self._has_work,
                id="from-work",
            )
            yield Static(
                "enter: on to the confirmation · esc: cancel. The new job's prompt is the "
                "original, then this note, then the failing checks.",
                id="note-hint",
            )

    def on_mount(self) -> None:
        note = self.query_one(Input)
        note.cursor_blink = self.farro.cursor_blink
        note.focus()

    def action_toggle_work(self) -> None:
        box = self.query_one(Checkbox)
        if not box.disabled:
            box.value = not box.value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        note = event.value.strip()
        if not note:  # said in the dialog: notifications wait while a dialog is open
            hint = self.query_one("#note-hint", Static)
            hint.update("the note may not be empty: what should the agent do differently?")
            hint.add_class("-refused")
            return
        self.dismiss(FollowUp(note=note, from_work=self.query_one(Checkbox).value))
