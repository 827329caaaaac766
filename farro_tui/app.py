"""FARRO's operator console: the queue live, steered with single keys.

:class:`FarroApp` is built in layers, one module each: :class:`~farro_tui.view_state.ViewState`
(a :class:`~farro_tui.store.Feeder` thread reads the tree and posts coalesced
:class:`~farro_tui.messages.QueueChanged` messages; the visible ids follow the main
screen's reactive spec), :class:`~farro_tui.hosting.SystemHost` (the System, manager +
embedded workers, unless ``no_workers``; quit and hangup), and
:class:`~farro_tui.steering.Steering` (every change to a job goes through
:mod:`farro_core.operations`, so the transition table decides what is legal, and a
refusal becomes a notification). This module adds what ties them together: settings,
key bindings and their help, navigation between panes, terminal safety.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ScreenStackError, SystemCommand
from textual.binding import Binding, BindingType, Keymap
from textual.filter import LineFilter
from textual.notifications import SeverityLevel
from textual.screen import ModalScreen, Screen
from textual.signal import Signal

from farro_core.errors import FarroError
from farro_core.identity import operator
from farro_core.lru import LRU
from farro_core.root import Root
from farro_core.visible import visible as visible_text
from farro_tui.commands import FarroCommands
from farro_tui.hosting import HostedSystem
from farro_tui.messages import QueueChanged
from farro_tui.safety import VISIBLE_FILTER
from farro_tui.screens.dialogs import HelpScreen
from farro_tui.screens.diff import DiffScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.log import LogScreen
from farro_tui.screens.main import MainScreen
from farro_tui.screens.report import ReportScreen
from farro_tui.screens.workers import WorkersScreen
from farro_tui.steering import STEERING, Steering
from farro_tui.store import Feeder, Store
from farro_tui.view import tilde_path
from farro_tui.widgets.footer import FIRST as FOOTER_FIRST
from farro_tui.widgets.queue_view import QueueView


def system_clock() -> datetime:
    return datetime.now(UTC)


class FarroApp(Steering):
    """The console. ``clock``/``watch``/``system`` exist for tests and screenshots."""

    CSS_PATH = "app.tcss"
    TITLE = "FARRO"
    COMMANDS: ClassVar[set[Any]] = {FarroCommands}
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "requeue", "Requeue", id="requeue"),
        Binding("x", "kill", "Kill", id="kill"),
        Binding("l", "log", "Log", id="log"),
        Binding("w", "workers", "Workers", id="workers"),
        Binding("p", "pause", "Pause", id="pause"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("q", "quit_farro", "Quit", id="quit"),
        # the operator's loop after the agent (issue 13)
        Binding("d", "diff", "Diff", id="diff", show=False),
        Binding("m", "land", "Land", id="land", show=False),
        Binding("u", "follow_up", "Follow up", id="follow_up", show=False),
        Binding("b", "batch", "Batch", id="batch", show=False),
    ]

    def __init__(
        self,
        root: Root,
        workers: int | None = None,
        no_workers: bool = False,
        readonly: bool = False,
        *,
        clock: Callable[[], datetime] | None = None,
        watch: bool = True,
        system: HostedSystem | None = None,
        kill_wait_s: float = 30.0,
        cursor_blink: bool = True,
    ) -> None:
        super().__init__()
        self.root = root
        self.worker_count = workers
        self.no_workers = no_workers
        self.readonly = readonly
        self.clock = clock or system_clock
        self.cursor_blink = cursor_blink
        self.kill_wait_s = kill_wait_s
        self.system = system
        self._owns_system = system is None
        self._system_stopped = False
        self._stop_lock = threading.Lock()
        self.store = Store()
        self.store_updated = Signal[None](self, "store_updated")
        self.feeder = Feeder(root, self._feeder_ready, watch=watch, rescan_s=self._rescan_s())
        self.operator = f"{operator()}@tui"
        self._last_status = LRU(200_000)
        self._view_timer = None
        self._last_view = 0.0
        self._feed_failure = None  # as last told to the operator
        self._snapshot = None
        self._snapshot_at = 0.0
        #: every worker of the root and its manager, from run/ (read off the UI thread)
        self.seen_workers = []
        self.seen_manager = None
        self._looked_once = False
        self.quitting = False
        #: binding id -> keys, as remapped by farro.toml's [keys]
        self.keymap: Keymap = {}
        self._in_run = False
        self._run_returned = False
        #: notifications raised while a dialog asks its question, shown once it is answered
        self._held: list[tuple[str, str, SeverityLevel, float | None]] = []

    # ------------------------------------------------------------ terminal safety

    def get_line_filters(self) -> Sequence[LineFilter]:
        """Every widget draws through these: the last one escapes control characters."""
        return [*super().get_line_filters(), VISIBLE_FILTER]

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Notifications quote job data (refusals, errors): escaped, and never markup,
        whatever a screen's notify() passes (a title holding ``[@click=…]`` stays text).

        While a dialog is open they wait, and show once it closes, for their whole time:
        at 80x24 a few of them covered the dialog's question (toasts stack up the right
        half, over the dialog). What a dialog must say meanwhile, it says in itself."""
        if self._dialog_open():
            self._held.append((message, title, severity, timeout))
            return
        super().notify(
            visible_text(message, lines=True),
            title=visible_text(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def _dialog_open(self) -> bool:
        try:
            return isinstance(self.screen, ModalScreen)
        except ScreenStackError:  # no screen yet: nothing to cover
            return False

    def _show_held(self, _: Screen[Any]) -> None:
        """A screen came or went: once no dialog is open, what waited is shown, in order."""
        if not self._held or self._dialog_open():
            return
        held, self._held = self._held, []
        for message, title, severity, timeout in held:
            self.notify(message, title=title, severity=severity, timeout=timeout)

    def _feeder_ready(self) -> None:
        self.post_message(QueueChanged())

    def _rescan_s(self) -> float:
        try:
            return float(self.root.settings.rescan_s)
        except FarroError:
            return 2.0

    # ------------------------------------------------------------ lifecycle

    def get_default_screen(self) -> Screen[Any]:
        return MainScreen()

    def on_mount(self) -> None:
        try:
            keys = dict(self.root.settings.keys)
        except FarroError as exc:
            keys = {}
            self.notify(f"farro.toml: {exc}", severity="error", timeout=10)
        if keys:
            self.set_keymap(keys)
        self.screen_change_signal.subscribe(self, self._show_held)
        self.feeder.start()
        if self.system is None and not self.no_workers and not self.readonly:
            self._start_system()  # read-only: no workers, no manager role
        self.set_interval(1.0, self._feed_health)
        self.look_at_root()
        self.set_interval(1.0, self.look_at_root)
        self._catch_hangups()

    # ------------------------------------------------------------ the data

    @property
    def ready(self) -> bool:
        """The first listing arrived and the queue shows it, and run/ was looked at once
        (tests and screenshots wait for this)."""
        main = self._main()
        return self.store.loaded and main is not None and self._last_view > 0 and self._looked_once

    # the main screen's, for the palette, tests and the benchmark

    def stats_text(self, width: int) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" FARRO ", "bold reverse")
        path = visible_text(tilde_path(str(self.root.path), os.path.expanduser("~")))
        if width < 100 and len(path) > 24:
            path = "…" + path[-23:]
        t.append(f" {path} ", "bold")
        if self.readonly:
            t.append(" READ-ONLY ", "bold black on yellow")
        snap = self.system_snapshot()
        live = [w for w in self.workers_of_root() if w.live]
        if not live:
            t.append(" │ no workers", "bright_black")
        else:  # the whole root's, as `farro stats` counts them
            states = [w.state for w in live]
            t.append(" │ workers ")
            t.append(f"{states.count('busy')} busy", "yellow")
            t.append(f" {states.count('idle')} idle", "green")
            remote = sum(1 for w in live if not w.local)
            if remote:
                t.append(f" ({remote} remote)", "cyan")
            passed = {p for w in live for p, _ in w.passing}
            if passed:  # queued jobs of these presets wait: their workers lack the config
                none = {p for p in passed if all(p in dict(w.passing) for w in live)}
                t.append(" passed ", "yellow")
                for i, preset in enumerate(sorted(passed)):
                    t.append("," if i else "")
                    t.append(visible_text(preset), "bold red" if preset in none else "yellow")
        if snap is not None and snap.paused:
            t.append(" PAUSED", "bold magenta")
        mgr = snap.manager if snap is not None else self.seen_manager
        if mgr is not None:
            role = mgr.role
            t.append(" │ mgr ")
            t.append(role, {"here": "green", "elsewhere": "cyan"}.get(role, "red"))
        t.append(f" │ {self.store.finished_per_minute()}/min")
        if not self.store.done_loaded and self.store.loaded:
            t.append(" │ reading done/…", "bright_black")
        return t

    # ------------------------------------------------------------ navigation

    def open_job(self, job_id: str) -> None:
        self.push_screen(JobScreen(job_id))

    def current_job(self) -> str | None:
        screen = self.screen
        if isinstance(screen, MainScreen):
            return screen.queue.selected
        if isinstance(screen, JobScreen | LogScreen | DiffScreen):
            return screen.job_id
        if isinstance(screen, ReportScreen):
            return screen.selected
        if isinstance(screen, WorkersScreen):
            return screen.selected_job
        return None

    def no_job(self) -> str:
        """Why ``l`` or ``d`` acts on nothing on this screen."""
        fn = getattr(self.screen, "no_job", None)
        return str(fn()) if fn is not None else "no job under the cursor"

    def action_log(self) -> None:
        job_id = self.current_job()
        if job_id is not None and not isinstance(self.screen, LogScreen):
            self.push_screen(LogScreen(job_id))

    def action_diff(self) -> None:
        job_id = self.current_job()
        if job_id is not None and not isinstance(self.screen, DiffScreen):
            self.push_screen(DiffScreen(job_id))

    def action_batch(self) -> None:
        """The batch of the current job (its ``batch`` label), else every job, live."""
        if isinstance(self.screen, ReportScreen):
            return
        job_id = self.current_job()
        row = self.store.rows.get(job_id) if job_id else None
        batch = row.labels.get("batch") if row is not None else None
        self.push_screen(ReportScreen(("batch", batch) if batch is not None else None))

    def action_workers(self) -> None:
        if not isinstance(self.screen, WorkersScreen):
            self.push_screen(WorkersScreen())

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_rows(), self._help_notes()))

    def _help_notes(self) -> str:
        if self.readonly:
            return "Read-only: actions that change a job, and marking rows for them, are hidden."
        return "Marked rows (space) are what r/x/m act on, even when a filter hides them."

    def help_rows(self) -> list[tuple[str, str, str]]:
        """(keys, what, where) for every binding, as currently mapped: the actions first
        (requeue, kill, log, follow), then moving about."""
        keymap = self.keymap
        out: list[tuple[str, str, str]] = []
        sources: list[tuple[str, list[BindingType]]] = [
            ("queue", list(QueueView.BINDINGS) + list(MainScreen.BINDINGS)),
            ("everywhere", list(self.BINDINGS)),
            ("job", list(JobScreen.BINDINGS)),
            ("log", list(LogScreen.BINDINGS)),
            ("diff", list(DiffScreen.BINDINGS)),
            ("batch", list(ReportScreen.BINDINGS)),
            ("workers", list(WorkersScreen.BINDINGS)),
        ]
        seen: set[tuple[str, str]] = set()
        rank = {name: n for n, name in enumerate(FOOTER_FIRST)}
        ranked: list[int] = []

        def listed(b: Binding) -> tuple[str, str]:
            """(keys as mapped now, action): a pane's binding that repeats an app-wide one
            (``l`` Log in the job pane) is the same key, listed once, as "everywhere"."""
            keys = keymap.get(b.id, b.key) if b.id else b.key
            shown = ", ".join(self.get_key_display(Binding(k.strip(), "")) for k in keys.split(","))
            return shown, b.action.removeprefix("app.")

        everywhere = {listed(b) for b in self.BINDINGS if isinstance(b, Binding)}
        for where, bindings in sources:
            for b in bindings:
                if not isinstance(b, Binding):
                    continue
                action = b.action.split("(")[0].removeprefix("app.")
                if self.readonly and (action in STEERING or action == "mark"):
                    continue
                if action == "pause" and self.system is None:
                    continue
                shown, full_action = listed(b)
                if (shown, where) in seen or (
                    where != "everywhere" and (shown, full_action) in everywhere
                ):
                    continue
                seen.add((shown, where))
                out.append((shown, b.description or action, where))
                ranked.append(rank.get(action, len(rank)))
        # stable: the actions first, everything else in its listed order
        out = [row for _, row in sorted(zip(ranked, out, strict=True), key=lambda r: r[0])]
        out.append((self.get_key_display(Binding("ctrl+p", "")), "command palette", "everywhere"))
        return out

    def set_keymap(self, keymap: Keymap) -> None:
        """Applied, and kept: Textual offers no public read of it, and help lists the keys."""
        super().set_keymap(keymap)
        self.keymap = dict(keymap)

    def update_keymap(self, keymap: Keymap) -> None:
        super().update_keymap(keymap)
        self.keymap = {**self.keymap, **keymap}

    def get_system_commands(self, screen: Screen[Any]) -> Any:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help: every key", "List every binding", self.action_help)
