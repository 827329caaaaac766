"""The footer: the keys of the screen, actions first, and ``? Help`` / ``q Quit`` always.

Textual's footer lists bindings in the order focused widget, screen, app, and
the terminal's edge cuts whatever does not fit: at 80 columns that was Help and
Quit, the two keys an operator looks for. Here the actions come first, whole
keys that do not fit are left out (never half a key), and Help and Quit are
kept however narrow the terminal or long a remapped key.

Under a dialog (a modal screen) the footer lists the dialog's keys: the keys of
the screen below do not reach it (``y`` means yes there, not "Raw JSON").
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.binding import Binding
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: shown first, in this order: what changes or explains a job
FIRST = ("requeue", "kill", "land", "follow_up", "diff", "log", "follow", "batch")
#: always shown, last
PINNED = ("help", "quit_farro")


def action_name(binding: Binding) -> str:
    return binding.action.split("(")[0].rsplit(".", 1)[-1]


def key_width(key_display: str, description: str) -> int:
    """Cells a FooterKey takes: ``␣key␣`` then ``description␣`` (Footer's default CSS)."""
    return cell_len(key_display) + 2 + cell_len(description) + 1


def order(bindings: Iterable[tuple[Binding, bool, str]]) -> list[tuple[Binding, bool, str]]:
    """Actions first (in FIRST's order), then the rest as Textual lists them, pinned last."""
    items = list(bindings)
    rank = {name: n for n, name in enumerate(FIRST)}
    first = sorted(
        (b for b in items if action_name(b[0]) in rank), key=lambda b: rank[action_name(b[0])]
    )
    pinned = [b for name in PINNED for b in items if action_name(b[0]) == name]
    rest = [b for b in items if b not in first and b not in pinned]
    return first + rest + pinned


class FarroFooter(Footer):
    def __init__(self) -> None:
        super().__init__()
        self._width = 0
        self._shown: Screen[object] | None = None  # whose keys are listed (set on mount)

    def on_mount(self) -> None:
        super().on_mount()
        self._shown = self.screen
        self.app.screen_change_signal.subscribe(self, self._screen_changed)

    def on_unmount(self) -> None:
        super().on_unmount()
        self.app.screen_change_signal.unsubscribe(self)

    def keys_of(self) -> Screen[object]:
        """The screen whose keys work now: a dialog over this footer's screen, else that screen.

        Dialogs stack (a confirmation over help): the top one, if only dialogs lie between.
        """
        stack = self.app.screen_stack
        top = stack[-1] if stack else self.screen
        for screen in reversed(stack):
            if screen is self.screen:
                return top
            if not screen.is_modal:
                break
        return self.screen

    def _screen_changed(self, screen: Screen[object]) -> None:
        """A dialog came or went: follow its keys (and its focus, which can change them)."""
        shown = self.keys_of()
        if shown is self._shown:  # a screen over or under this one: nothing to show changed
            return
        self._shown = shown
        if shown is not self.screen:
            shown.bindings_updated_signal.subscribe(self, self.bindings_changed)
        if self.is_attached:
            self.call_after_refresh(self.recompose)

    def bindings_changed(self, screen: Screen[object]) -> None:
        self._bindings_ready = True
        if screen.app.app_focus and self.is_attached and screen is self.keys_of():
            self.call_after_refresh(self.recompose)

    def on_resize(self, event: Resize) -> None:
        if event.size.width != self._width:
            self._width = event.size.width
            self.call_after_refresh(self.recompose)

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        active = self.keys_of().active_bindings
        seen: set[str] = set()
        shown: list[tuple[Binding, bool, str]] = []
        for _, binding, enabled, tooltip in active.values():
            if binding.show and binding.action not in seen:  # one key per action
                seen.add(binding.action)
                shown.append((binding, enabled, tooltip))
        palette = None
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            palette = active.get(self.app.COMMAND_PALETTE_BINDING)
        room = self.size.width or 10_000
        if palette is not None:  # docked right, with a border and a padding cell
            _, binding, _, _ = palette
            room -= key_width(self.app.get_key_display(binding), binding.description) + 2
        items = order(shown)
        widths = [key_width(self.app.get_key_display(b), b.description) for b, _, _ in items]
        pinned = [action_name(b) in PINNED for b, _, _ in items]
        room -= sum(w for w, pin in zip(widths, pinned, strict=True) if pin)
        for (binding, enabled, tooltip), width, pin in zip(items, widths, pinned, strict=True):
            if not pin:
                if width > room:
                    room = -1  # keep the order: nothing after a key left out
                    continue
                room -= width
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        if palette is not None:
            _, binding, enabled, tooltip = palette
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )
