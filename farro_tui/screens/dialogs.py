"""Small modal dialogs: confirm an action, choose how to quit, pick a sort column, help."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no, with "no" focused: an accidental enter changes nothing."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n", "answer(False)", "No", id="confirm_no"),
        Binding("escape", "answer(False)", "Cancel", id="confirm_cancel"),
        Binding("left,right,h,l,tab", "app.focus_next", "Switch", show=False),
    ]

    def __init__(self, title: str, body: str, *, yes: str = "Yes") -> None:
        super().__init__()
        self._title = title
        self._body = body
        self._yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Text(self._title, style="bold"), id="dialog-title")
            yield Static(Text(self._body), id="dialog-body")  # text, not markup: it quotes titles
            with Horizontal(id="dialog-buttons"):
                yield Button("No (n)", id="no", variant="primary")
                yield Button(f"{self._yes} (y)", id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class QuitScreen(ModalScreen[str | None]):
    """Quitting with embedded workers busy: let them finish, or release their jobs now."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "choose('finish')", "Let them finish", id="quit_finish"),
        Binding("r", "choose('release')", "Release now", id="quit_release"),
        Binding("escape,n", "choose(None)", "Stay", id="quit_cancel"),
        Binding("left,right,h,l,tab", "app.focus_next", "Switch", show=False),
    ]

    def __init__(self, busy: int) -> None:
        super().__init__()
        self._busy = busy

    def compose(self) -> ComposeResult:
        jobs = "job is" if self._busy == 1 else "jobs are"
        with Vertical(id="dialog"):
            yield Static(Text("Quit FARRO?", style="bold"), id="dialog-title")
            yield Static(
                f"{self._busy} {jobs} running in this console's workers.\n"
                "Let them finish (no new claims), or release them now (back to the queue)?",
                id="dialog-body",
            )
            with Horizontal(id="dialog-buttons"):
                yield Button("Stay (esc)", id="cancel", variant="primary")
                yield Button("Finish (f)", id="finish")
                yield Button("Release (r)", id="release", variant="warning")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


class SortScreen(ModalScreen[str | None]):
    """Pick the sort column; picking the current one again reverses the order."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel", id="sort_cancel"),
    ]

    def __init__(self, columns: tuple[tuple[str, str], ...], current: str, reverse: bool) -> None:
        super().__init__()
        self._columns = columns
        self._current = current
        self._reverse = reverse

    def compose(self) -> ComposeResult:
        options = []
        for col, label in self._columns:
            mark = (" ▼" if self._reverse else " ▲") if col == self._current else ""
            options.append(Option(f"{label.title()}{mark}", id=col))
        with Vertical(id="dialog", classes="narrow-dialog"):
            yield Static(Text("Sort by (again: reverse)", style="bold"), id="dialog-title")
            yield OptionList(*options, id="sort-options")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        ol.highlighted = [c for c, _ in self._columns].index(self._current)
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class HelpScreen(ModalScreen[None]):
    """Every binding of the screen underneath, with the keys as currently mapped."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss(None)", "Close", id="help_close"),
    ]

    def __init__(self, rows: list[tuple[str, str, str]], notes: str = "") -> None:
        super().__init__()
        self._rows = rows
        self._notes = notes

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold yellow", no_wrap=True)
        table.add_column()
        table.add_column(style="bright_black")
        for key, desc, where in self._rows:
            table.add_row(key, desc, where)
        with Vertical(id="dialog", classes="help-dialog"):
            yield Static(Text("Keys  (esc closes)", style="bold"), id="dialog-title")
            with VerticalScroll(id="help-scroll"):
                yield Static(table)
                if self._notes:
                    yield Static(Text(self._notes, style="bright_black"), id="help-notes")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()
