"""The diff pane: a job's change, file by file, one attempt at a time."""

from __future__ import annotations

from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Static

from farro_core import diff as core_diff
from farro_core.diff import Diff, Source
from farro_core.errors import FarroError
from farro_core.job import load
from farro_core.visible import visible
from farro_core.work import change_line
from farro_tui.access import FarroAccess
from farro_tui.widgets.diff_view import DiffView, FileList, warm
from farro_tui.widgets.footer import FarroFooter


def paths_as_diff(src: Source) -> Diff:
    """A plain directory's changed paths, shown where a git diff would be."""
    lines = [change_line(c) for c in src.changes]
    if src.changed_count > len(src.changes):
        lines.append(f"… {src.changed_count - len(src.changes)} more paths (farro show --json)")
    return Diff(lines=lines, files=[], kinds=bytearray(b"o" * len(lines)))


class DiffScreen(FarroAccess, Screen[None]):
    """``d`` on a job; ``n``/``p`` next and previous file, ``[``/``]`` earlier/later attempt."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="back"),
        Binding("n", "file(1)", "Next file", id="file_next"),
        Binding("p", "file(-1)", "Prev file", id="file_prev"),
        Binding("left_square_bracket", "attempt(-1)", "Earlier", id="attempt_prev"),
        Binding("right_square_bracket", "attempt(1)", "Later", id="attempt_next"),
        Binding("h", "sideways(-8)", "Left", show=False),
        Binding("l", "sideways(8)", "Right", show=False),
        Binding("up,k", "scroll(-1)", "Up", show=False),
        Binding("down,j", "scroll(1)", "Down", show=False),
        Binding("pageup,ctrl+b", "page(-1)", "Page up", show=False),
        Binding("pagedown,ctrl+f,space", "page(1)", "Page down", show=False),
        Binding("g,home", "edge(0)", "Top", show=False),
        Binding("G,end", "edge(1)", "Bottom", show=False),
    ]

    def __init__(self, job_id: str, attempt: int | None = None) -> None:
        super().__init__()
        self.job_id = job_id
        self.attempt = attempt
        self.source: Source | None = None
        self.error: str | None = None
        self.loaded = False  # tests and the bench wait for this

    def compose(self) -> ComposeResult:
        yield Static(f" Diff {self.job_id} · loading…", id="pane-title")
        with Horizontal(id="diff-body"):
            yield FileList(id="diff-files")
            yield DiffView(id="diff-view")
        yield FarroFooter()

    def on_mount(self) -> None:
        self.query_one(DiffView).focus()
        self.reload()

    def targets(self) -> list[str]:
        return [self.job_id]

    @work(thread=True, exclusive=True, group="diff-load")
    def reload(self) -> None:
        try:
            env = load(self.farro.root, self.job_id)
            src = core_diff.source(env, self.attempt)
            parsed = core_diff.parse(core_diff.unified(src)) if src.is_git else paths_as_diff(src)
            warm(parsed)
        except FarroError as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self._loaded, src, parsed)

    def _failed(self, why: str) -> None:
        self.error = why
        self.loaded = True
        self.query_one(DiffView).show(Diff(lines=[], files=[]), empty_text=visible(why))
        files = self.query_one(FileList)
        files.show(Diff(lines=[], files=[]))
        files.display = False
        self.query_one("#pane-title", Static).update(f" Diff {self.job_id}")

    def _loaded(self, src: Source, parsed: Diff) -> None:
        self.source = src
        self.attempt = src.attempt
        self.error = None
        empty = f"attempt {src.attempt} left nothing to commit" if src.is_git else "no path changed"
        self.query_one(DiffView).show(parsed, empty_text=empty)
        files = self.query_one(FileList)
        files.show(parsed)
        files.display = src.is_git
        self._title(parsed)
        self.loaded = True
        self.farro.refresh_bindings()  # [ and ] are enabled where there is an attempt to go to

    def _title(self, parsed: Diff) -> None:
        src = self.source
        if src is None:
            return
        # as the log pane says it: of the last attempt ([ and ] step through those with work)
        where = f"attempt {src.attempt} of {src.attempts[-1]}"
        if src.is_git:
            ins = sum(f.insertions for f in parsed.files)
            dels = sum(f.deletions for f in parsed.files)
            n = len(parsed.files)
            base = (src.base or "")[:12]
            work_commit = (src.commit or "none")[:12]
            what = f"{n} file{'s' * (n != 1)} +{ins} -{dels} · {base}..{work_commit}"
        else:
            what = "changed paths (a plain directory: no line diff)"
        self.query_one("#pane-title", Static).update(f" Diff {self.job_id} · {where} · {what}")

    # ------------------------------------------------------------ moving

    @on(DiffView.FileChanged)
    def _file_changed(self, msg: DiffView.FileChanged) -> None:
        self.query_one(FileList).current = msg.index

    @on(FileList.Picked)
    def _picked(self, msg: FileList.Picked) -> None:
        self._goto_file(msg.index)

    def _goto_file(self, index: int) -> None:
        view = self.query_one(DiffView)
        files = view.diff.files
        if not files:
            return
        index = max(0, min(index, len(files) - 1))
        view.goto_line(files[index].start)
        self.query_one(FileList).current = index

    def action_file(self, delta: int) -> None:
        """n / p; at the last (first) file, says so rather than doing nothing."""
        view = self.query_one(DiffView)
        files = view.diff.files
        if not files:
            self.notify("no file to go to", title="Diff", severity="warning")
            return
        # the file list's: at the diff's end the last file may be current yet not at the top
        current = max(0, self.query_one(FileList).current)
        if delta < 0 and view.top > files[current].start:
            self._goto_file(current)  # p first goes to the top of the file being read
        elif 0 <= current + delta < len(files):
            self._goto_file(current + delta)
        else:
            which = "last" if delta > 0 else "first"
            self.notify(f"this is the {which} file", title="Diff", severity="warning")

    def _step(self, delta: int) -> int | None:
        """The index in ``source.attempts`` that ``[`` / ``]`` go to (None: nowhere)."""
        src = self.source
        if src is None or len(src.attempts) < 2:
            return None
        i = src.attempts.index(src.attempt) if src.attempt in src.attempts else 0
        j = max(0, min(i + delta, len(src.attempts) - 1))
        return j if j != i else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "attempt" and self.source is not None:
            delta = parameters[0] if parameters and isinstance(parameters[0], int) else 0
            return self._step(delta) is not None or None  # disabled; pressed, says why
        return True

    def explain(self, action: str, parameters: tuple[object, ...]) -> None:
        src = self.source
        if src is None or len(src.attempts) < 2:
            why = "only one attempt has work to show"
        elif parameters and isinstance(parameters[0], int) and parameters[0] < 0:
            why = f"attempt {src.attempt} is the first with work"
        else:
            why = f"attempt {src.attempt} is the latest with work"
        self.notify(why, title="Diff", severity="warning")

    def action_attempt(self, delta: int) -> None:
        src = self.source
        if src is None:
            return
        j = self._step(delta)
        if j is not None:
            self.attempt = src.attempts[j]
            self.loaded = False
            self.reload()

    def action_scroll(self, delta: int) -> None:
        self.query_one(DiffView).scroll_relative(y=delta, animate=False, immediate=True)

    def action_sideways(self, delta: int) -> None:
        self.query_one(DiffView).scroll_relative(x=delta, animate=False, immediate=True)

    def action_page(self, direction: int) -> None:
        view = self.query_one(DiffView)
        view.scroll_relative(y=direction * max(1, view.size.height - 1), animate=False)

    def action_edge(self, end: int) -> None:
        view = self.query_one(DiffView)
        (view.scroll_end if end else view.scroll_home)(animate=False, immediate=True)
