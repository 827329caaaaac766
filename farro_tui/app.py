"""FARRO's operator console: the queue live, steered with single keys.

The app hosts the System (manager + embedded workers) unless ``no_workers``; a
:class:`~farro_tui.store.Feeder` thread reads the tree and posts coalesced
:class:`~farro_tui.messages.QueueChanged` messages. Every change to a job goes
through :mod:`farro_core.operations`, so the transition table decides what is
legal, and a refusal becomes a notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.actions import ActionParseResult
from textual.actions import parse as parse_action
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType, Keymap
from textual.dom import DOMNode
from textual.filter import LineFilter
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.signal import Signal

from farro_core import operations
from farro_core.errors import FarroError
from farro_core.manager import ManagerStatus, current_manager
from farro_core.operations import phrase
from farro_core.root import Root
from farro_core.status_files import WorkerSeen, live_first, workers_seen
from farro_core.transitions import Status, operator_can_kill, operator_can_requeue
from farro_core.visible import visible as visible_text
from farro_tui.commands import FarroCommands
from farro_tui.hosting import HostedSystem
from farro_tui.messages import ActionDone, QueueChanged
from farro_tui.safety import VISIBLE_FILTER
from farro_tui.screens.dialogs import ConfirmScreen, HelpScreen, QuitScreen
from farro_tui.screens.job import JobScreen
from farro_tui.screens.log import LogScreen
from farro_tui.screens.main import MainScreen
from farro_tui.screens.workers import WorkersScreen
from farro_tui.store import Feeder, Store
from farro_tui.view import TABS, ViewSpec, tilde_path, visible
from farro_tui.widgets.footer import FIRST as FOOTER_FIRST
from farro_tui.widgets.queue_view import STATUS_LABEL, QueueView

if TYPE_CHECKING:
    from farro_core.system import SystemSnapshot

#: actions that change a job; ``--readonly`` hides them all
STEERING = frozenset({"requeue", "kill"})
#: how long a hangup waits for a clean exit before leaving anyway
HANGUP_EXIT_S = 3.0
VERBS = {"requeue": ("Requeue", "requeued"), "kill": ("Kill", "killed")}
#: actions shown disabled where they cannot act; pressing their key says why
EXPLAINED = STEERING | {"log"}


def can(verb: str, status: str | None) -> bool:
    """Ask the transition table, never a hard-coded list."""
    if status is None or status not in Status.__members__.values():
        return False
    s = Status(status)
    return operator_can_requeue(s) if verb == "requeue" else operator_can_kill(s)


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def refusal(verb: str, status: dict[str, str | None]) -> str:
    """Why ``verb`` acts on none of these jobs, in the core's words (for the notification)."""
    allowed = [STATUS_LABEL.get(s.value, s.value) for s in Status if can(verb, s.value)]
    rule = f"only {_either(allowed)} jobs can be {VERBS[verb][1]}"
    if not status:
        return f"no job under the cursor; {rule}"
    if len(status) == 1:
        ((job_id, st),) = status.items()
        if st is None:
            known = "is not read yet"
        else:
            known = phrase(Status(st)) if st in Status.__members__.values() else f"is {st}"
        return f"job {job_id} {known}; {rule}"
    counts = Counter(STATUS_LABEL.get(st, st) if st else "unread" for st in status.values())
    which = ", ".join(f"{n} {st}" for st, n in sorted(counts.items()))
    return f"none of the {len(status)} marked jobs can be ({which}); {rule}"


def system_clock() -> datetime:
    return datetime.now(UTC)


class FarroApp(App[None]):
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
        self.system: HostedSystem | None = system
        self._owns_system = system is None
        self._system_stopped = False
        self._stop_lock = threading.Lock()
        self.store = Store()
        #: published after each change the store takes in; panes showing a job subscribe
        self.store_updated: Signal[None] = Signal(self, "store_updated")
        self.feeder = Feeder(root, self._feeder_ready, watch=watch, rescan_s=self._rescan_s())
        self.operator = f"{_user()}@tui"
        self._view_timer: Any = None
        self._last_view = 0.0
        self._feed_failure: str | None = None  # as last told to the operator
        self._snapshot: SystemSnapshot | None = None
        self._snapshot_at = 0.0
        #: every worker of the root and its manager, from run/ (read off the UI thread)
        self.seen_workers: list[WorkerSeen] = []
        self.seen_manager: ManagerStatus | None = None
        self._looked_once = False
        self.quitting = False
        #: binding id -> keys, as remapped by farro.toml's [keys]
        self.keymap: Keymap = {}
        self._in_run = False
        self._run_returned = False

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
        whatever a screen's notify() passes (a title holding ``[@click=…]`` stays text)."""
        super().notify(
            visible_text(message, lines=True),
            title=visible_text(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

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
        self.feeder.start()
        if self.system is None and not self.no_workers and not self.readonly:
            self._start_system()  # read-only: no workers, no manager role
        self.set_interval(1.0, self._feed_health)
        self.look_at_root()
        self.set_interval(1.0, self.look_at_root)
        if threading.current_thread() is threading.main_thread() and not self.is_headless:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                with contextlib.suppress(RuntimeError, ValueError):  # Unix only, as flock is
                    loop.add_signal_handler(sig, self._hangup)

    def _start_system(self) -> None:
        try:
            from farro_core.system import System
        except ImportError:
            self.notify("embedded workers are not available in this build", severity="warning")
            return
        try:
            self.system = System(self.root, workers=self.worker_count, manager=True)
            self.system.start()
        except FarroError as exc:
            self.system = None
            self.notify(f"workers not started: {exc}", severity="error", timeout=10)

    def _hangup(self) -> None:
        """The terminal is gone (SSH drop) or we were told to stop: release jobs, exit."""
        self.quitting = True
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=self._stop_and_exit, args=(loop,), name="farro-hangup", daemon=True
        ).start()

    def _stop_and_exit(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stop_system(release=True)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.exit)
        if not self._in_run:
            return  # under run_test: the test's event loop ends the app
        # With the terminal gone, Textual's exit can block for ever writing to it
        # (seen: stop_application_mode stuck on its writer queue). The jobs are
        # released by now, so leave for real unless run() returned meanwhile.
        deadline = time.monotonic() + HANGUP_EXIT_S
        while time.monotonic() < deadline:
            if self._run_returned:
                return
            time.sleep(0.05)
        os._exit(129)

    def stop_system(self, *, release: bool = True) -> None:
        """Stop the embedded System once, whoever asks first (quit, hangup, exit)."""
        with self._stop_lock:
            if self._system_stopped or self.system is None:
                self._system_stopped = True
                return
            self._system_stopped = True
        try:
            self.system.stop(release=release)
        except Exception as exc:  # a failing stop must not hide the console's exit
            self.log.error(f"System.stop failed: {exc!r}")

    def on_unmount(self) -> None:
        self.feeder.stop()
        if self._owns_system:
            self.stop_system(release=True)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        self._in_run = True
        try:
            return super().run(*args, **kwargs)
        finally:  # however the app ends, embedded workers release their jobs
            self.feeder.stop()
            if self._owns_system:
                self.stop_system(release=True)
            self._run_returned = True

    # ------------------------------------------------------------ the data

    @on(QueueChanged)
    def _queue_changed(self) -> None:
        self._feed_health()
        delta = self.feeder.take()
        if not delta and self._last_view > 0:
            return  # a feed failure said above, or taken with an earlier message
        names_changed, rows_changed = self.store.apply(delta)
        spec = self.spec
        default = spec.tab == 0 and not spec.filter and spec.sort == "status"
        outside_done = any(r is not None and r.queue != "done" for r in delta.rows.values())
        first = self._last_view == 0
        if first or names_changed or (rows_changed and (outside_done or not default)):
            self.schedule_view()
        else:
            self._redraw()
        self.store_updated.publish(None)

    def schedule_view(self) -> None:
        """Recompute the visible ids now, or soon: at most ~8 times a second."""
        wait = 0.12 - (time.monotonic() - self._last_view)
        if wait <= 0:
            self.recompute_view()
        elif self._view_timer is None:
            self._view_timer = self.set_timer(wait, self.recompute_view)

    def recompute_view(self) -> None:
        self._view_timer = None
        if self._last_view == 0:
            self.call_after_refresh(self.feeder.first_screen_drawn)
        self._last_view = time.monotonic()
        ids = visible(self.store, self.spec, self.clock())
        main = self._main()
        if main is None:
            return
        q = main.queue
        if not ids:
            q.empty_text = self._empty_text()
        q.set_ids(ids)
        main.update_bars()
        self.refresh_bindings()

    def _empty_text(self) -> str:
        if not self.store.loaded:
            return "loading…"
        if self.spec.filter:
            return f"no job matches /{visible_text(self.spec.filter)} (esc clears)"
        if self.spec.tab and not self.store.done_loaded:
            return f"no {TABS[self.spec.tab][0]} jobs yet (still reading done/…)"
        return "no jobs" + (f" in {TABS[self.spec.tab][0]}" if self.spec.tab else "")

    def _redraw(self) -> None:
        main = self._main()
        if main is not None:
            main.queue.refresh()
            main.update_bars()

    def _feed_health(self) -> None:
        """Say when the queue view stops being current, and when it is again."""
        failure = self.feeder.check()
        if failure == self._feed_failure:
            return
        if failure is not None:
            self.notify(
                f"the queue view is not updating: {failure}; retrying",
                title="feed failed",
                severity="error",
                timeout=30,
                markup=False,  # the reason may hold brackets from a path or a file
            )
        else:
            self.notify("the queue view is updating again", title="feed recovered")
        self._feed_failure = failure

    def _main(self) -> MainScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                return screen
        return None

    @property
    def ready(self) -> bool:
        """The first listing arrived and the queue shows it, and run/ was looked at once
        (tests and screenshots wait for this)."""
        main = self._main()
        return self.store.loaded and main is not None and self._last_view > 0 and self._looked_once

    @property
    def spec(self) -> ViewSpec:
        """The main screen's view state (reactive there); the default before it exists."""
        main = self._main()
        return main.spec if main is not None else ViewSpec()

    # the main screen's, for the palette, tests and the benchmark
    def set_tab(self, n: int) -> None:
        if (main := self._main()) is not None:
            main.set_tab(n)

    def set_filter(self, text: str) -> None:
        if (main := self._main()) is not None:
            main.set_filter(text)

    def set_sort(self, column: str) -> None:
        if (main := self._main()) is not None:
            main.set_sort(column)

    def system_snapshot(self) -> SystemSnapshot | None:
        if self.system is None:
            return None
        now = time.monotonic()
        if now - self._snapshot_at > 0.25:
            try:
                self._snapshot = self.system.snapshot()
            except Exception:
                self._snapshot = None
            self._snapshot_at = now
        return self._snapshot

    @work(thread=True, exclusive=True, group="look-at-root", exit_on_error=False)
    def look_at_root(self) -> None:
        """run/workers/ and the manager lock: every worker on the root, local or remote."""
        seen: list[WorkerSeen] = []
        mgr: ManagerStatus | None = None
        try:
            seen = workers_seen(self.root)
            holder = current_manager(self.root)
        except OSError:  # run/ unreadable for a moment: the next look tells
            pass
        else:
            if holder is None:
                mgr = ManagerStatus("none", None, None, None, None)
            else:
                mgr = ManagerStatus("elsewhere", str(holder), holder.since, None, None)
        with contextlib.suppress(RuntimeError):  # the app is gone meanwhile
            self.call_from_thread(self._looked, seen, mgr)

    def _looked(self, seen: list[WorkerSeen], mgr: ManagerStatus | None) -> None:
        self.seen_workers, self.seen_manager = seen, mgr
        if not self._looked_once:
            self._looked_once = True
            self._redraw()

    def workers_of_root(self) -> list[WorkerSeen]:
        """Every worker on the root (live first); this console's own from its System, which
        knows them before their status files say so."""
        by_name = {w.name: w for w in self.seen_workers}
        snap = self.system_snapshot() if not self._system_stopped else None
        for w in snap.workers if snap is not None else ():
            by_name[w.name] = WorkerSeen(
                w.name, w.state, True, w.job, w.attempt, w.since, w.jobs_done
            )
        return live_first(list(by_name.values()))

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
        if isinstance(screen, JobScreen | LogScreen):
            return screen.job_id
        return None

    def action_log(self) -> None:
        job_id = self.current_job()
        if job_id is not None:
            self.push_screen(LogScreen(job_id))

    def action_workers(self) -> None:
        if not isinstance(self.screen, WorkersScreen):
            self.push_screen(WorkersScreen())

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_rows(), self._help_notes()))

    def _help_notes(self) -> str:
        notes = "Marked rows (space) are what r/x act on, even when a filter hides them."
        if self.readonly:
            notes += "\nRead-only: actions that change a job are hidden."
        return notes

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
            ("workers", list(WorkersScreen.BINDINGS)),
        ]
        seen: set[tuple[str, str]] = set()
        rank = {name: n for n, name in enumerate(FOOTER_FIRST)}
        ranked: list[int] = []
        for where, bindings in sources:
            for b in bindings:
                if not isinstance(b, Binding):
                    continue
                action = b.action.split("(")[0].removeprefix("app.")
                if self.readonly and action in STEERING:
                    continue
                if action == "pause" and self.system is None:
                    continue
                keys = keymap.get(b.id, b.key) if b.id else b.key
                shown = ", ".join(
                    self.get_key_display(Binding(k.strip(), "")) for k in keys.split(",")
                )
                if (shown, where) in seen:
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

    # ------------------------------------------------------------ steering

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in STEERING:
            if self.readonly:
                return False
            if not isinstance(self.screen, MainScreen | JobScreen | LogScreen):
                return False
            ids = self.targets()
            if not any(
                can(action, self.store.status_of(i) or self._status_on_screen()) for i in ids
            ):
                return None  # shown disabled: the table allows it for no target
            return True
        if action == "pause":
            return self.system is not None
        if action == "log":
            return self.current_job() is not None or None
        return True

    async def run_action(
        self,
        action: str | ActionParseResult,
        default_namespace: DOMNode | None = None,
        namespaces: Mapping[str, DOMNode] | None = None,
    ) -> bool:
        """A key whose action is disabled here says why, instead of doing nothing."""
        if isinstance(action, str):
            dest, name, params = parse_action(action)
            on_app = dest == "app" or (not dest and default_namespace in (None, self))
            if on_app and name in STEERING and self.readonly:
                self.notify("read-only console: it changes no job", title=VERBS[name][0])
                return True
            if on_app and name in EXPLAINED and self.check_action(name, params) is None:
                self.explain(name)
                return True
        return await super().run_action(action, default_namespace, namespaces)

    def explain(self, name: str) -> None:
        if name == "log":
            self.notify("no job under the cursor", title="Log", severity="warning")
            return
        ids = self.targets()
        status = {i: self.store.status_of(i) or self._status_on_screen() for i in ids}
        self.notify(refusal(name, status), title=f"Cannot {name}", severity="warning")

    def _status_on_screen(self) -> str | None:
        """The status the open job screen shows (its one target), for a job the store lacks."""
        screen = self.screen
        if isinstance(screen, JobScreen) and screen.env is not None:
            return str(screen.env.status)
        return None

    def targets(self) -> list[str]:
        fn = getattr(self.screen, "targets", None)
        return list(fn()) if fn is not None else []

    def action_requeue(self) -> None:
        self.steer("requeue")

    def action_kill(self) -> None:
        self.steer("kill")

    def steer(self, verb: str) -> None:
        """Confirm, then act on every target the table allows; say what was skipped."""
        if self.readonly:
            return
        ids = self.targets()
        status = {i: self.store.status_of(i) or self._status_on_screen() for i in ids}
        legal = [i for i in ids if can(verb, status[i])]
        skipped = [i for i in ids if i not in legal]
        if not legal:
            self.notify(refusal(verb, status), title=f"Cannot {verb}", severity="warning")
            return
        title, _ = VERBS[verb]
        noun = "job" if len(legal) == 1 else "jobs"
        lines = [f"{title} {len(legal)} {noun}?"]
        for i in legal[:4]:
            row = self.store.rows.get(i)
            label = f" {visible_text(row.title)[:28]}" if row else ""
            lines.append(f"  {i}{label} ({status[i]})")
        if len(legal) > 4:
            lines.append(f"  … and {len(legal) - 4} more")
        screen = self.screen
        hidden = screen.hidden_marks() if isinstance(screen, MainScreen) else 0
        if hidden:
            are = "job is" if hidden == 1 else "jobs are"
            lines.append(f"{hidden} marked {are} hidden by the filter or tab.")
        if skipped:
            their = "its" if len(skipped) == 1 else "their"
            lines.append(f"{len(skipped)} skipped: {verb} is not allowed for {their} status.")
        running = [i for i in legal if status[i] == "in-progress"]
        if verb == "kill" and running:
            whose = (
                "its worker is asked to stop it"
                if len(running) == 1
                else ("their workers are asked to stop them")
            )
            lines.append(f"{len(running)} running: {whose}.")

        def answered(ok: bool | None) -> None:
            if ok:
                self.run_steer(verb, legal)

        self.push_screen(ConfirmScreen(f"{title}?", "\n".join(lines), yes=title), answered)

    @work(thread=True, group="steer")
    def run_steer(self, verb: str, ids: list[str]) -> None:
        """Off the UI thread: a kill of running jobs waits for their workers, all at once."""
        done: list[str] = []
        refused: list[tuple[str, str]] = []
        if verb == "requeue":
            for job_id in ids:
                try:
                    operations.requeue(self.root, job_id, by=self.operator)
                    done.append(job_id)
                except FarroError as exc:
                    refused.append((job_id, str(exc)))
            self.post_message(ActionDone(verb, done, refused))
            return
        waiting: list[str] = []

        def asked(running: list[str]) -> None:
            waiting.extend(running)
            self.call_from_thread(self._killing, running, True)

        try:
            results = operations.kill_many(
                self.root, ids, by=self.operator, wait_s=self.kill_wait_s, on_requested=asked
            )
        finally:
            if waiting:
                self.call_from_thread(self._killing, waiting, False)
        for res in results:
            if res.outcome == "refused":
                refused.append((res.job_id, str(res.error)))
            else:
                done.append(res.job_id)
        self.post_message(ActionDone(verb, done, refused))

    def _killing(self, ids: list[str], on: bool) -> None:
        main = self._main()
        if main is not None:
            (main.queue.killing.update if on else main.queue.killing.difference_update)(ids)
            main.queue.refresh()
        if on:
            n = len(ids)
            self.notify(
                f"kill requested for {n} running job{'s' * (n != 1)}; waiting for the worker…",
                title="Kill",
            )

    @on(ActionDone)
    def _action_done(self, msg: ActionDone) -> None:
        _, past = VERBS[msg.verb]
        if msg.done:
            n = len(msg.done)
            what = msg.done[0] if n == 1 else f"{n} jobs"
            self.notify(f"{past} {what}", title=VERBS[msg.verb][0])
        for job_id, why in msg.refused[:3]:
            self.notify(why, title=f"{msg.verb} refused: {job_id}", severity="warning", timeout=8)
        if len(msg.refused) > 3:
            self.notify(f"… and {len(msg.refused) - 3} more refused", severity="warning")
        main = self._main()
        if main is not None:
            main.queue.marks.difference_update(msg.done)
        self.feeder.poke()
        for screen in self.screen_stack:
            if isinstance(screen, JobScreen):
                screen.reload()

    # ------------------------------------------------------------ workers

    def action_pause(self) -> None:
        if self.system is None:
            return
        if self.system.paused:
            self.system.resume()
            self.notify("workers resumed: claiming jobs again")
        else:
            self.system.pause()
            self.notify("workers paused: running jobs go on, nothing new is claimed")
        self._snapshot_at = 0.0
        self._redraw()

    def busy_workers(self) -> int:
        snap = self.system_snapshot() if not self._system_stopped else None
        if snap is None:
            return 0
        return sum(1 for w in snap.workers if w.state == "busy")

    def action_quit_farro(self) -> None:
        if self.system is None or self._system_stopped:
            self.exit()
            return
        self._snapshot_at = 0.0
        busy = self.busy_workers()
        if busy == 0:
            self.quit_with(release=True)
            return

        def chosen(choice: str | None) -> None:
            if choice == "finish":
                self.notify("waiting for running jobs to finish…", timeout=60)
                self.quit_with(release=False)
            elif choice == "release":
                self.notify("releasing running jobs…")
                self.quit_with(release=True)

        self.push_screen(QuitScreen(busy), chosen)

    @work(thread=True, group="quit")
    def quit_with(self, *, release: bool) -> None:
        self.quitting = True
        self.stop_system(release=release)
        self.call_from_thread(self.exit)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
