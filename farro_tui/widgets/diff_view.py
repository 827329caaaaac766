"""The diff pane's two lists, drawn line by line like the queue.

:class:`DiffView` formats only the lines on screen: a 50,000-line diff costs
the same as a 50-line one. Each added, removed or context line is highlighted
alone by the file's pygments lexer (a multi-line string may lose its colour;
what a reviewer needs, + and - on a tinted background, never does). Every
string is from an agent: tabs are expanded and control characters shown as
``\\xNN`` before drawing.
"""

from __future__ import annotations

import fnmatch
import importlib
import os
from collections import OrderedDict
from functools import lru_cache
from typing import cast

from pygments.lexer import Lexer
from pygments.lexers._mapping import LEXERS
from pygments.lexers.special import TextLexer
from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from farro_core.diff import ADDED, CONTEXT, HEADER, HUNK, REMOVED, Diff
from farro_core.visible import visible

THEME = Syntax.get_theme("ansi_dark")
LINE_STYLE = {
    HEADER: Style(bold=True),
    HUNK: Style(color="cyan"),
    ADDED: Style(bgcolor="#12361b"),
    REMOVED: Style(bgcolor="#4b1818"),
    CONTEXT: Style(),
}
MARKER_STYLE = {ADDED: Style(color="green", bold=True), REMOVED: Style(color="red", bold=True)}
DIM = Style(color="bright_black")
#: lines kept drawn; scrolling back and forth draws nothing twice
CACHE_LINES = 2000


@lru_cache(maxsize=1)
def _by_suffix() -> tuple[dict[str, tuple[str, str]], list[tuple[str, str, str]]]:
    """pygments' file name patterns: ``*.ext`` ones by suffix, the rest to match in turn.

    pygments' own lookup tries every pattern of every lexer and scans plugin entry
    points, a quarter of a second: more than the whole first screen may take.
    """
    suffix: dict[str, tuple[str, str]] = {}
    other: list[tuple[str, str, str]] = []
    for cls, (module, _name, _aliases, patterns, _mimes) in LEXERS.items():
        for pat in patterns:
            if pat.startswith("*.") and not any(c in pat[2:] for c in "*?["):
                suffix.setdefault(pat[1:].lower(), (module, cls))
            else:
                other.append((pat, module, cls))
    return suffix, other


@lru_cache(maxsize=256)
def lexer_for(path: str) -> Lexer:
    """The file's lexer by its name (plain text when pygments knows none)."""
    name = path.rsplit("/", 1)[-1]
    suffix, other = _by_suffix()
    found = suffix.get(os.path.splitext(name)[1].lower())
    if found is None:
        found = next(((m, c) for pat, m, c in other if fnmatch.fnmatch(name, pat)), None)
    if found is not None:
        try:
            cls = getattr(importlib.import_module(found[0]), found[1])
            return cast(Lexer, cls(stripnl=False, ensurenl=False))
        except (ImportError, AttributeError):
            pass
    return TextLexer(stripnl=False, ensurenl=False)


def warm(diff: Diff, lines: int = 200) -> None:
    """Find and compile the lexers of the files in the first ``lines`` (off the UI thread:
    a lexer's first use compiles its regular expressions, tens of milliseconds)."""
    for f in diff.files:
        if f.start >= lines:
            break
        for _ in lexer_for(f.path).get_tokens("x"):
            pass


def safe(text: str) -> str:
    return visible(text.expandtabs(4))


def highlight(code: str, path: str, base: Style) -> list[Segment]:
    """``code`` (one line) as segments coloured by token, over ``base`` (the line's tint)."""
    segs: list[Segment] = []
    for token, value in lexer_for(path).get_tokens(code):
        if value:
            segs.append(Segment(safe(value), base + THEME.get_style_for_token(token)))
    return segs


class FileMessage(Message):
    """Names one of the diff's files by its index in ``Diff.files``."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index


class DiffView(ScrollView, can_focus=True):
    """The unified diff of one attempt. The file at the top line is the current one."""

    DEFAULT_CSS = """
    DiffView { height: 1fr; width: 1fr; scrollbar-size-vertical: 1; }
    """

    class FileChanged(FileMessage):
        """The file at the top line is now another one."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.diff = Diff(lines=[], files=[])
        self.empty_text = "loading…"
        self._cache: OrderedDict[int, Strip] = OrderedDict()
        self._file = -1

    def show(self, diff: Diff, empty_text: str = "no change") -> None:
        self.diff = diff
        self.empty_text = empty_text
        self._cache.clear()
        self._file = -1
        self._fit_virtual_size()
        self.scroll_to(x=0, y=0, animate=False, immediate=True)
        self.refresh()

    def _fit_virtual_size(self) -> None:
        # tabs and escaped control characters widen a line a little: some room for them
        wide = self.diff.width + 8 if self.diff.width > self.size.width else 0
        self.virtual_size = Size(max(self.size.width, wide), len(self.diff.lines))

    def on_resize(self) -> None:
        self._fit_virtual_size()

    @property
    def top(self) -> int:
        return int(self.scroll_offset.y)

    def current_file(self) -> int:
        return self.diff.file_at(self.top)

    def goto_line(self, line: int) -> None:
        self.scroll_to(y=line, animate=False, immediate=True)
        if self.top != line and self.max_scroll_y < line < len(self.diff.lines):
            # a diff shown a moment ago: its height is not laid out yet, so the scroll
            # was clamped; go there once it is
            self.call_after_refresh(self.scroll_to, y=line, animate=False, immediate=True)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        index = self.current_file()
        if index != self._file:
            self._file = index
            self.post_message(self.FileChanged(index))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        index = self.top + y
        lines = self.diff.lines
        if not lines:
            text = f" {self.empty_text}" if y == 0 else ""
            return Strip([Segment(set_cell_size(text, width), DIM)])
        if index >= len(lines):
            return Strip.blank(width, self.rich_style)
        strip = self._cache.get(index)
        if strip is None:
            strip = self._draw(index)
            self._cache[index] = strip
            if len(self._cache) > CACHE_LINES:
                self._cache.popitem(last=False)
        x = int(self.scroll_offset.x)
        kind = self.diff.kinds[index] if index < len(self.diff.kinds) else CONTEXT
        base = self.rich_style + LINE_STYLE.get(kind, Style())
        return strip.adjust_cell_length(x + width, base).crop(x, x + width)

    def _draw(self, index: int) -> Strip:
        """The whole line (the pane crops it to what is scrolled into view)."""
        line = self.diff.lines[index]
        kind = self.diff.kinds[index] if index < len(self.diff.kinds) else CONTEXT
        base = self.rich_style + LINE_STYLE.get(kind, Style())
        if kind in (ADDED, REMOVED, CONTEXT) and line[:1] != "\\":
            f = self.diff.file_at(index)
            path = self.diff.files[f].path if f >= 0 else ""
            segs = [
                Segment(line[:1], base + MARKER_STYLE.get(kind, Style())),
                *highlight(line[1:], path, base),
            ]
        else:
            style = base if kind != CONTEXT else base + DIM  # "\ No newline at end of file"
            segs = [Segment(safe(line), style)]
        return Strip(segs)


class FileList(ScrollView, can_focus=False):
    """The diff's files with their counts; the current one highlighted. Click one to go."""

    DEFAULT_CSS = """
    FileList {
        width: 30%; max-width: 40; min-width: 20; height: 1fr;
        border-right: vkey $panel; scrollbar-size-vertical: 1;
    }
    FileList > .file-list--current { background: $primary 40%; text-style: bold; }
    """
    COMPONENT_CLASSES = {"file-list--current"}

    current: reactive[int] = reactive(-1, repaint=False)

    class Picked(FileMessage):
        """A click on a file: go to it."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.diff = Diff(lines=[], files=[])

    def show(self, diff: Diff) -> None:
        self.diff = diff
        self.virtual_size = Size(self.size.width, len(diff.files))
        self.current = 0 if diff.files else -1
        self.refresh()

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.diff.files))

    def watch_current(self, old: int, new: int) -> None:
        top = int(self.scroll_offset.y)
        height = max(1, self.size.height)
        if new >= 0 and new < top:
            self.scroll_to(y=new, animate=False, immediate=True)
        elif new >= top + height:
            self.scroll_to(y=new - height + 1, animate=False, immediate=True)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        index = int(self.scroll_offset.y) + y
        files = self.diff.files
        if index >= len(files):
            return Strip.blank(width, self.rich_style)
        f = files[index]
        base = self.rich_style
        if index == self.current:
            base = base + self.get_component_rich_style("file-list--current")
        if f.binary:
            counts = [Segment("   binary ", base + DIM)]
        else:
            counts = [
                Segment(f"{'+' + str(f.insertions):>5}", base + Style(color="green")),
                Segment(f"{'-' + str(f.deletions):>5} ", base + Style(color="red")),
            ]
        name = safe(f.path) or "?"
        room = max(1, width - 11)
        if len(name) > room:
            name = "…" + name[-(room - 1) :]
        return Strip([*counts, Segment(name, base)]).crop(0, width).adjust_cell_length(width, base)

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_offset.y) + event.y
        if 0 <= index < len(self.diff.files):
            self.post_message(self.Picked(index))
