"""The queue pane: a virtual list drawn line by line, so 100k jobs cost 30 rows of work.

Like toolong's log view, nothing is a widget per row: :meth:`QueueView.render_line`
formats only the rows on screen, from the store, on demand. A row of done/ that
has not been read yet is drawn as a placeholder and asked for (:attr:`want`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime

from rich.cells import cell_len, get_character_cell_size, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from farro_core.humanize import duration
from farro_core.listing import JobRow
from farro_core.visible import visible
from farro_tui.store import Store
from farro_tui.view import COLUMNS, fmt_age, run_seconds

STATUS_STYLE = {
    "queued": Style(color="cyan"),
    "in-progress": Style(color="yellow", bold=True),
    "stale": Style(color="magenta", bold=True),
    "failed": Style(color="red", bold=True),
    "succeeded": Style(color="green"),
    "killed": Style(color="bright_black"),
    "corrupt": Style(color="red", reverse=True),
}
VERDICT_STYLE = {
    "passed": Style(color="green"),
    "failed": Style(color="red"),
    "ungraded": Style(color="bright_black"),
}
LANDED_STYLE = Style(color="cyan", bold=True)
STATUS_LABEL = {"in-progress": "running"}
DIM = Style(color="bright_black")
NARROW_BELOW = 100
#: how often the rows are redrawn between store changes
TICK_S = 1.0


def layout(width: int) -> list[tuple[str, int]]:
    """Column widths for a pane ``width`` cells wide; the title takes what is left.

    Below 100 columns (narrow) only what decides an action stays; the worker
    column needs 130 (the workers pane shows it anyway).
    """
    if width < NARROW_BELOW:
        fixed = [("mark", 1), ("id", 12), ("status", 9), ("attempt", 4), ("run", 7)]
    else:
        fixed = [
            ("mark", 1),
            ("id", 12 if width < 150 else 26),
            ("status", 9),
            ("attempt", 5),
            *([("worker", 12)] if width >= 130 else []),
            ("age", 4),
            ("run", 17),
            ("verdict", 8),
        ]
    used = sum(w for _, w in fixed) + len(fixed)  # one space after each column
    title = max(8, width - used)
    return [*fixed[:2], ("title", title), *fixed[2:]]


def ellipsized(text: str, width: int) -> str:
    """``text`` in exactly ``width`` terminal cells; one cut short ends in ``…``.

    A wide character that would straddle the cut is left out whole (padding after
    the ``…``), so the columns after it stay where they are.
    """
    if width <= 0:
        return ""
    if text.isascii():  # escaped already: one cell per character (every frame, every row)
        return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    kept: list[str] = []
    used = 0
    for ch in text:
        size = get_character_cell_size(ch)
        if used + size > width - 1:
            break
        kept.append(ch)
        used += size
    return "".join(kept) + "…" + " " * (width - 1 - used)


def short_id(job_id: str, width: int) -> str:
    """The id's tail: a generated id's random part, so two generated ids never clash."""
    return job_id if len(job_id) <= width else "…" + job_id[-(width - 1) :]


def distinct_ids(ids: Iterable[str], width: int) -> dict[str, str]:
    """How to show the ids that :func:`short_id` would show alike, each distinct.

    Custom ids may share a long suffix (``alpha-fix-tests``, ``beta-fix-tests``):
    those keep ``k`` leading characters, ``…``, and the tail, with the smallest
    ``k`` that tells them apart. The ``…`` sits at a different place for each
    ``k``, so forms of different ``k`` never clash. Ids that also share a long
    prefix (``batch-2026-alpha-task-0001``, ``batch-2026-delta-task-0002``)
    differ in the middle, and maybe at the end too: they show ``…``, where they
    part, ``…``, and the tail (``…alpha…-0001``), a form no other kind has.
    Ids absent from the answer show as :func:`short_id`; ids alike in every form
    that fits stay alike.
    """
    groups: dict[str, list[str]] = {}
    for i in set(ids):
        if len(i) > width:
            groups.setdefault(short_id(i, width), []).append(i)
    pending = [i for same in groups.values() if len(same) > 1 for i in same]
    out: dict[str, str] = {}
    for k in range(1, width - 1):
        if not pending:
            break
        forms = {i: i[:k] + "…" + i[-(width - 1 - k) :] for i in pending}
        counts = Counter(forms.values())
        out.update((i, f) for i, f in forms.items() if counts[f] == 1)
        pending = [i for i in pending if i not in out]
    if pending and width >= 4:
        left = set(pending)
        kept = ([i for i in same if i in left] for same in groups.values())
        alike = [same for same in kept if len(same) > 1]
        out.update(_parting_forms(alike, width - 2, set(out.values())))
    return out


def _parting_forms(alike: list[list[str]], size: int, taken: set[str]) -> dict[str, str]:
    """``…`` + where each id parts from those it is shown alike with + ``…`` + its tail.

    ``alike`` holds groups of ids that share their last ``size + 1`` characters,
    so each id is longer than its group's common prefix by more than ``size``:
    the head (from where the group parts) tells it from its group, the tail from
    the other groups. Balanced splits are tried first; no form is given twice.
    """
    rests: dict[str, str] = {}
    for same in alike:
        # one id may begin with another: the head still starts before the shared tail
        lead = len(os.path.commonprefix(same))  # noqa: RUF071 (ids, not paths: by character)
        common = min(lead, min(map(len, same)) - size - 1)
        rests.update((i, i[common:]) for i in same)
    out: dict[str, str] = {}
    for head in sorted(range(1, size), key=lambda h: (abs(2 * h - size), -h)):
        if not rests:
            break
        forms = {i: "…" + r[:head] + "…" + r[-(size - head) :] for i, r in rests.items()}
        counts = Counter(forms.values())
        fresh = {i: f for i, f in forms.items() if counts[f] == 1 and f not in taken}
        out.update(fresh)
        taken.update(fresh.values())
        rests = {i: r for i, r in rests.items() if i not in fresh}
    return out


def bar(fraction: float, width: int) -> str:
    """A progress bar in eighth blocks, readable in any colour depth."""
    fraction = min(1.0, max(0.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if full < width else ""
    return ("█" * full + partial).ljust(width, "·")[:width]


def row_cells(
    job_id: str,
    row: JobRow | None,
    width: int,
    now: datetime,
    marked: bool,
    killing: bool,
    id_text: str | None = None,
) -> list[tuple[str, Style]]:
    """The text and style of each column of one row (no cursor highlight).

    ``id_text``: the id as shown when it must differ from :func:`short_id`'s.
    """
    out: list[tuple[str, Style]] = []
    for col, w in layout(width):
        text, style = "", Style()
        if col == "mark":
            text, style = ("●", Style(color="yellow", bold=True)) if marked else (" ", Style())
        elif col == "id":
            text = id_text if id_text is not None else short_id(job_id, w)
            style = DIM if row is None else Style()
        elif row is None:
            text, style = ("…" if col == "title" else ""), DIM
        elif col == "title":
            text = row.title.replace("\n", " ")
        elif col == "status":
            text = "killing" if killing else STATUS_LABEL.get(row.status, row.status)
            style = STATUS_STYLE.get("failed" if killing else row.status, Style())
        elif col == "attempt":
            # of the current budget, as `farro ls` counts: a requeue or a release
            # gives a fresh budget, and its reason says so
            text = f"{row.attempt - row.attempt_base}/{row.max_attempts}"
        elif col == "worker":
            text, style = row.worker or "", DIM
        elif col == "age":
            text, style = fmt_age(row.created_at, now), DIM
        elif col == "run":
            secs = run_seconds(row, now)
            text = duration(secs)
            if row.status == "in-progress" and secs is not None and row.timeout_s > 0:
                frac = secs / row.timeout_s
                style = Style(color="red" if frac > 0.8 else "yellow")
                if w >= 16:
                    text = f"{text:<7} {bar(frac, w - 8)}"
        elif col == "verdict" and row.landed:
            text, style = "landed", LANDED_STYLE  # the work is in its branch: done with
        elif col == "verdict":
            text = row.verdict or ""
            style = VERDICT_STYLE.get(text, Style())
        # escaped before it is measured: what the job holds, laid out in terminal cells
        out.append((ellipsized(visible(text), w), style))
    return out


def with_arrow(label: str, arrow: str, width: int) -> str:
    """``label`` and the sort arrow in ``width`` cells: the label gives way, never the arrow."""
    if len(label) + 2 <= width:
        return f"{label} {arrow}"
    return label[: max(0, width - 1)] + arrow


class QueueHeader(Widget):
    """Column headings; the sort column carries an arrow. Click one to sort by it."""

    DEFAULT_CSS = "QueueHeader { height: 1; }"

    sort: reactive[str] = reactive("status")
    reverse: reactive[bool] = reactive(False)

    class SortRequested(Message):
        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def render_line(self, y: int) -> Strip:
        names = dict(COLUMNS)
        segs: list[Segment] = []
        style = self.get_component_rich_style("queue-header--label", partial=True)
        cols = layout(self.size.width)
        arrow = "▼" if self.reverse else "▲"
        shown = any(col == self.sort for col, _ in cols)
        for col, w in cols:
            label = "" if col == "mark" else names.get(col, col.upper())
            if col == self.sort:
                label = with_arrow(label, arrow, w)
            elif col == "title" and not shown:  # sorted by a column too wide for here
                label = with_arrow(f"{label} · by {names.get(self.sort, self.sort)}", arrow, w)
            segs.append(Segment(set_cell_size(label, w) + " ", style))
        return Strip(segs).crop(0, self.size.width)

    COMPONENT_CLASSES = {"queue-header--label"}

    def on_click(self, event: events.Click) -> None:
        x = 0
        for col, w in layout(self.size.width):
            if x <= event.x < x + w + 1 and col != "mark":
                self.post_message(self.SortRequested(col))
                return
            x += w + 1


class QueueView(ScrollView, can_focus=True):
    """The job list. Owns the cursor and the marks; the app owns which ids it shows."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False, id="cursor_up"),
        Binding("down,j", "cursor(1)", "Down", show=False, id="cursor_down"),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False, id="page_up"),
        Binding("pagedown,ctrl+f", "page(1)", "Page down", show=False, id="page_down"),
        Binding("g,home", "jump(0)", "Top", show=False, id="top"),
        Binding("G,end", "jump(-1)", "Bottom", show=False, id="bottom"),
        Binding("space", "mark", "Mark", id="mark"),
        Binding("enter", "open", "Open", id="open"),
    ]
    COMPONENT_CLASSES = {"queue-view--cursor", "queue-view--empty"}

    cursor: reactive[int] = reactive(0, always_update=True, repaint=False)

    class Opened(Message):
        def __init__(self, job_id: str) -> None:
            super().__init__()
            self.job_id = job_id

    class Moved(Message):
        def __init__(self, job_id: str | None) -> None:
            super().__init__()
            self.job_id = job_id

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        *,
        want: Callable[[list[str]], None] | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.store = store
        self.clock = clock
        self.ids: list[str] = []
        self.marks: set[str] = set()
        self.killing: set[str] = set()
        self.empty_text = "no jobs"
        self._want = want
        self._wanted: set[str] = set()
        self._want_scheduled = False
        self._ids_version = 0
        self._forms_key: tuple[int, int, int, int] | None = None
        self._forms: dict[str, str] = {}

    # ------------------------------------------------------------ data

    @property
    def selected(self) -> str | None:
        return self.ids[self.cursor] if 0 <= self.cursor < len(self.ids) else None

    def set_ids(self, ids: list[str]) -> None:
        """Show ``ids``, keeping the cursor on the same job when it is still there."""
        current = self.selected
        self.ids = ids
        self._ids_version += 1
        index = -1
        if current is not None:
            try:
                index = ids.index(current)
            except ValueError:
                index = -1
        if index < 0:
            index = self.cursor  # validated against the new ids
        self.virtual_size = Size(self.size.width, len(ids))
        self.cursor = index
        self.refresh()

    def select(self, job_id: str) -> bool:
        try:
            self.cursor = self.ids.index(job_id)
        except ValueError:
            return False
        return True

    # ------------------------------------------------------------ drawing

    def on_mount(self) -> None:
        self.set_interval(TICK_S, self.refresh)  # ages and run times move with the clock

    def on_resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.ids))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        index = int(self.scroll_offset.y) + y
        if not self.ids:
            if y == 0:
                style = self.get_component_rich_style("queue-view--empty")
                text = set_cell_size(f" {visible(self.empty_text)}", width)
                return Strip([Segment(text, style)])
            return Strip.blank(width, self.rich_style)
        if index >= len(self.ids):
            return Strip.blank(width, self.rich_style)
        job_id = self.ids[index]
        row = self.store.rows.get(job_id)
        if row is None and self._want is not None:
            self._wanted.add(job_id)
            if not self._want_scheduled:
                self._want_scheduled = True
                self.call_after_refresh(self._flush_want)
        base = self.rich_style
        if index == self.cursor:
            base = base + self.get_component_rich_style("queue-view--cursor")
        cells = row_cells(
            job_id,
            row,
            width,
            self.clock(),
            job_id in self.marks,
            job_id in self.killing,
            self._id_forms(width).get(job_id),
        )
        segs = [Segment(text + " ", base + style) for text, style in cells]
        return Strip(segs).adjust_cell_length(width, base)

    def _id_forms(self, width: int) -> dict[str, str]:
        """Distinct forms of the ids on screen (not of all 100k: that is per frame)."""
        top = int(self.scroll_offset.y)
        key = (self._ids_version, top, self.size.height, width)
        if key != self._forms_key:
            col = dict(layout(width))["id"]
            self._forms_key = key
            self._forms = distinct_ids(self.ids[top : top + self.size.height], col)
        return self._forms

    def _flush_want(self) -> None:
        self._want_scheduled = False
        wanted, self._wanted = list(self._wanted), set()
        if wanted and self._want is not None:
            self._want(wanted)

    # ------------------------------------------------------------ cursor

    def validate_cursor(self, value: int) -> int:
        """On a row, whatever moves it: past either end stops at that end."""
        return max(0, min(value, len(self.ids) - 1))

    def watch_cursor(self, old: int, new: int) -> None:
        self._refresh_line(old)
        self._refresh_line(new)
        self._scroll_cursor_into_view()
        self.post_message(self.Moved(self.selected))

    def _refresh_line(self, index: int) -> None:
        y = index - int(self.scroll_offset.y)
        if 0 <= y < self.size.height:
            self.refresh_line(y)

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_offset.y)
        height = max(1, self.size.height)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def action_cursor(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.size.height - 1))

    def action_jump(self, where: int) -> None:
        self.cursor = 0 if where == 0 else len(self.ids) - 1

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # marks only choose what r/x/m act on: a read-only console neither offers nor keeps them
        return not (action == "mark" and getattr(self.app, "readonly", False))

    def action_mark(self) -> None:
        job_id = self.selected
        if job_id is None:
            return
        self.marks.symmetric_difference_update({job_id})
        self._refresh_line(self.cursor)
        self.action_cursor(1)
        self.post_message(self.Moved(self.selected))

    def action_open(self) -> None:
        if self.selected is not None:
            self.post_message(self.Opened(self.selected))

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_offset.y) + event.y
        if 0 <= index < len(self.ids):
            if index == self.cursor and event.chain >= 2:
                self.action_open()
            self.cursor = index
