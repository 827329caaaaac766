"""The console's picture of the queue, fed by one background thread.

The feeder thread owns every read of the tree: at start it lists the three queue
directories (names only) and reads the rows of incoming/ and active/; done/ rows
are read afterwards in the background, newest first, or sooner when a row is
drawn (:meth:`Feeder.want`). Then watchfiles events (recursive on incoming/ and
active/, names only on done/, so 100k finished jobs cost no inotify watches)
drive re-reads of just the jobs that changed, with a light rescan of incoming/
and active/ as the fallback. The thread never touches widgets: it accumulates a
:class:`Delta` and posts a :class:`~farro_tui.messages.QueueChanged` for each change;
one waiting in the app's queue replaces those before it (``Message.can_replace``),
so a burst of events becomes one update on the UI thread.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from farro_core.listing import JobRow, corrupt_row, read_row
from farro_core.lru import LRU
from farro_core.root import QUEUES, Root

#: rows of done/ read per background step: small enough to keep latency low
DONE_CHUNK = 200
#: per-job entries the view keeps (filter haystacks, title sort keys): a 100k queue fits
ROW_CACHE = 250_000
#: whole-queue orders the view keeps, one per sort column at the current generation
ORDER_CACHE = 8


@dataclass
class Delta:
    """What changed since the UI last looked: whole name sets of rescanned queues, rows."""

    names: dict[str, set[str]] = field(default_factory=dict)
    rows: dict[str, JobRow | None] = field(default_factory=dict)
    done_loaded: bool = False

    def merge(self, other: Delta) -> None:
        self.names.update(other.names)
        self.rows.update(other.rows)
        self.done_loaded = self.done_loaded or other.done_loaded

    def __bool__(self) -> bool:
        return bool(self.names or self.rows or self.done_loaded)


class Store:
    """Ids by queue, rows by id: owned by the UI thread, changed only by :meth:`apply`."""

    def __init__(self) -> None:
        self.queue_of: dict[str, str] = {}
        self.by_queue: dict[str, set[str]] = {q: set() for q in QUEUES}
        self._counts: dict[str, int] = {}
        self._done_sorted: list[str] | None = None
        self.rows: dict[str, JobRow] = {}
        self.loaded = False
        self.done_loaded = False
        self.names_generation = 0
        self.rows_generation = 0
        #: monotonic times at which jobs arrived in done/ (for the finished-per-minute rate)
        self.finished_at: list[float] = []
        # what farro_tui.view derives from this store, kept here so that no two stores
        # share it: (row, haystack, its lower case), (row, title key), orders by column
        self.hays: LRU[str, tuple[JobRow | None, str, str]] = LRU(ROW_CACHE)
        self.title_keys: LRU[str, tuple[JobRow | None, str]] = LRU(ROW_CACHE)
        self.orders: LRU[tuple[str, int, int], list[str]] = LRU(ORDER_CACHE)

    def apply(self, delta: Delta) -> tuple[bool, bool]:
        """Fold a delta in; return (names changed, rows changed). Counts stay current."""
        names_changed = False
        now = time.monotonic()
        for q, ids in delta.names.items():
            old = self.by_queue[q]
            for gone in old - ids:
                if self.queue_of.get(gone) == q:
                    self._uncount(gone)
                    del self.queue_of[gone]
                    row = self.rows.get(gone)
                    if row is not None and row.queue == q:
                        del self.rows[gone]
                names_changed = True
            fresh = ids - old
            if not old and not any(i in self.queue_of or i in self.rows for i in fresh):
                # the first listing of a queue (99k names in done/): in bulk
                self.queue_of.update(dict.fromkeys(fresh, q))
                key = "done?" if q == "done" else "queued"
                self._counts[key] = self._counts.get(key, 0) + len(fresh)
                self.by_queue[q] = set(fresh)
                names_changed = names_changed or bool(fresh)
                continue
            for new in fresh:
                if q == "done" and self.loaded:
                    self.finished_at.append(now)
                self._uncount(new)
                self._place(new, q)
                self._count(new)
                names_changed = True
            # a listing can be older than a move seen in another queue's listing
            self.by_queue[q] = {i for i in ids if self.queue_of.get(i) == q}
        for job_id, row in delta.rows.items():
            if row is None:
                continue
            self._uncount(job_id)
            if self.queue_of.get(job_id) != row.queue:
                self._place(job_id, row.queue)
                names_changed = True
            self.rows[job_id] = row
            self._count(job_id)
        if delta.names:
            self.loaded = True
        if delta.done_loaded:
            self.done_loaded = True
        if names_changed:
            self.names_generation += 1
            self._done_sorted = None
        if delta.rows:
            self.rows_generation += 1
        return names_changed, bool(delta.rows)

    def _key(self, job_id: str) -> str:
        row = self.rows.get(job_id)
        if row is not None:
            return row.status
        return "done?" if self.queue_of.get(job_id) == "done" else "queued"

    def _uncount(self, job_id: str) -> None:
        if job_id in self.queue_of:
            key = self._key(job_id)
            self._counts[key] = self._counts.get(key, 0) - 1

    def _count(self, job_id: str) -> None:
        if job_id in self.queue_of:
            key = self._key(job_id)
            self._counts[key] = self._counts.get(key, 0) + 1

    def _place(self, job_id: str, q: str) -> None:
        prev = self.queue_of.get(job_id)
        if prev is not None and prev != q:
            self.by_queue[prev].discard(job_id)
        self.queue_of[job_id] = q
        self.by_queue[q].add(job_id)

    def done_newest_first(self) -> list[str]:
        """done/ ids, newest first; sorted again only when done/ changes."""
        if self._done_sorted is None:
            self._done_sorted = sorted(self.by_queue["done"], reverse=True)
        return self._done_sorted

    def finished_per_minute(self) -> int:
        cutoff = time.monotonic() - 60
        self.finished_at = [t for t in self.finished_at if t >= cutoff]
        return len(self.finished_at)

    def status_of(self, job_id: str) -> str | None:
        row = self.rows.get(job_id)
        return row.status if row is not None else None

    def counts(self) -> dict[str, int]:
        """Jobs per status; done/ jobs whose row is not read yet count as ``done?``."""
        return {k: v for k, v in self._counts.items() if v}


class Feeder:
    """The one thread that reads the tree; see the module docstring."""

    def __init__(
        self,
        root: Root,
        notify: Callable[[], None],
        *,
        watch: bool = True,
        rescan_s: float = 2.0,
    ) -> None:
        self.root = root
        self._notify = notify
        self._watch = watch
        self._rescan_s = rescan_s
        self._events: queue.Queue[tuple[str, set[Path]]] = queue.Queue()
        self._lock = threading.Lock()
        self._pending = Delta()
        self._stop = threading.Event()
        self._wanted: list[str] = []
        self._done_todo: list[str] = []
        self._known_done: set[str] = set()
        self._done_read: set[str] = set()
        self._done_mtime = 0
        self._threads: list[threading.Thread] = []
        self._background = threading.Event()
        #: the last few errors the thread survived (for the workers pane and tests)
        self.errors: list[str] = []
        #: why the last round failed, None once a round succeeds again (the app says so)
        self.failure: str | None = None
        self._mtimes: dict[str, int] = {}
        self._corrupt: dict[str, str] = {}  # id -> queue of rows shown as corrupt: re-read
        #: jobs a pane shows (how many panes): job.json looked at in done/ too (:meth:`follow`)
        self._followed: dict[str, int] = {}
        self._followed_mtimes: dict[str, int] = {}  # the feeder thread's own

    # ------------------------------------------------------------ UI side

    def start(self) -> None:
        self._start_feeder()
        if self._watch:
            for name, paths, recursive in (
                ("farro-watch-live", [self.root.incoming, self.root.active], True),
                ("farro-watch-done", [self.root.done], False),
            ):
                w = threading.Thread(
                    target=self._watch_loop, args=(paths, recursive), name=name, daemon=True
                )
                self._threads.append(w)
                w.start()

    def _start_feeder(self) -> None:
        t = threading.Thread(target=self._run, name="farro-feeder", daemon=True)
        self._feeder: threading.Thread | None = t
        self._threads.append(t)
        t.start()

    def check(self) -> str | None:
        """Why the feed is not current (None when it is); restarts a thread that died.

        Called by the UI's clock: the feed can fail (an unreadable queue directory, a
        bug), but never silently, and it recovers on its own once the cause is gone.
        """
        feeder = getattr(self, "_feeder", None)
        if feeder is not None and not feeder.is_alive() and not self._stop.is_set():
            self.failure = self.failure or "the feed thread stopped"
            self._start_feeder()
        return self.failure

    def stop(self) -> None:
        self._stop.set()
        self._events.put(("stop", set()))

    def take(self) -> Delta:
        """Everything accumulated since the last take."""
        with self._lock:
            delta, self._pending = self._pending, Delta()
        return delta

    def want(self, ids: Iterable[str]) -> None:
        """Read these done/ rows before the rest (they are on screen)."""
        ids = [i for i in ids if i in self._known_done]
        if ids:
            with self._lock:
                self._wanted.extend(ids)
            self._events.put(("want", set()))

    def follow(self, job_id: str) -> None:
        """Look at this job's job.json at every rescan, in done/ too, until :meth:`unfollow`.

        done/ is watched by names only (100k finished jobs cost no watches), so a
        record written in place there from outside (``farro land``, ``farro keep``)
        makes no event: one stat per rescan finds it for the job a pane shows.
        """
        with self._lock:
            self._followed[job_id] = self._followed.get(job_id, 0) + 1

    def unfollow(self, job_id: str) -> None:
        with self._lock:
            left = self._followed.get(job_id, 0) - 1
            if left > 0:
                self._followed[job_id] = left
            else:
                self._followed.pop(job_id, None)

    def first_screen_drawn(self) -> None:
        """Start reading done/ rows: not before, so the first screen has the GIL to itself."""
        self._background.set()
        self._events.put(("want", set()))

    def poke(self) -> None:
        """Ask for an immediate light rescan (after an action of ours)."""
        self._events.put(("rescan", set()))

    # ------------------------------------------------------------ thread side

    def _post(self, delta: Delta) -> None:
        if not delta:
            return
        with self._lock:
            self._pending.merge(delta)
        self._notify()  # QueueChanged.can_replace: a burst becomes one update

    def _watch_loop(self, paths: list[Path], recursive: bool) -> None:
        try:
            from watchfiles import watch
        except ImportError:  # pragma: no cover - watchfiles is a dependency
            return
        try:
            for changes in watch(
                *paths,
                recursive=recursive,
                stop_event=self._stop,
                debounce=150,
                step=30,
                rust_timeout=500,
                yield_on_timeout=False,
                watch_filter=None,
            ):
                self._events.put(("changes", {Path(p) for _, p in changes}))
        except Exception as exc:  # the fallback rescan keeps the console live without events
            self.errors.append(f"watch {paths[0].name}: {exc!r}")

    def _failed(self, exc: BaseException) -> None:
        why = " ".join(str(exc).split()) or type(exc).__name__
        self.failure = f"{type(exc).__name__}: {why}"[:300]
        self.errors.append(repr(exc))
        del self.errors[:-20]
        self._notify_failure()

    def _notify_failure(self) -> None:
        self._notify()  # wake the UI even with nothing to take

    def _run(self) -> None:
        """Feed until stopped; a failed start is retried every rescan interval."""
        while not self._stop.is_set():
            try:
                self._feed()
                return
            except Exception as exc:
                self._failed(exc)
                self._stop.wait(self._rescan_s)

    def _feed(self) -> None:
        root = self.root
        names = {q: set(root.ids(q)) for q in QUEUES}
        rows: dict[str, JobRow | None] = {}
        for q in ("incoming", "active"):
            for job_id in names[q]:
                rows[job_id] = self._read_live(q, job_id)
        self._known_done = set(names["done"])
        self._done_todo = sorted(names["done"])  # popped from the end: newest first
        self._done_mtime = self._mtime(root.done)
        self._post(Delta(names=names, rows=rows, done_loaded=not self._done_todo))
        if self.failure is not None:
            self.failure = None
            self._notify_failure()
        last_rescan = time.monotonic()
        while not self._stop.is_set():
            busy = bool(self._wanted or (self._done_todo and self._background.is_set()))
            timeout = 0.0 if busy else max(0.05, self._rescan_s - (time.monotonic() - last_rescan))
            paths: set[Path] = set()
            rescan = False
            try:
                kind, got = self._events.get(timeout=timeout)
                paths |= got
                rescan = kind == "rescan"
                while True:  # drain whatever else arrived: one update for a burst
                    kind, got = self._events.get_nowait()
                    paths |= got
                    rescan = rescan or kind == "rescan"
            except queue.Empty:
                pass
            if self._stop.is_set():
                return
            delta = Delta()
            try:
                if paths:
                    self._changed(paths, delta)
                if rescan or time.monotonic() - last_rescan >= self._rescan_s:
                    self._rescan(delta)
                    last_rescan = time.monotonic()
                self._load_done(delta)
            except Exception as exc:  # e.g. a queue dir unreadable: said, and retried
                self._failed(exc)
                last_rescan = 0.0
                self._stop.wait(min(1.0, self._rescan_s))
                continue
            self._post(delta)
            if self.failure is not None:
                self.failure = None
                self._notify_failure()

    @staticmethod
    def _mtime(path: Path) -> int:
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return 0

    def _stat(self, q: str, job_id: str) -> int:
        try:
            return os.stat(self.root.path / q / job_id / "job.json").st_mtime_ns
        except OSError:
            return -1

    def _read_live(self, q: str, job_id: str) -> JobRow | None:
        """Read a row of incoming/ or active/, remembering job.json's mtime for rescans."""
        self._mtimes[f"{q}/{job_id}"] = self._stat(q, job_id)
        return self._read(q, job_id)

    def _read(self, q: str, job_id: str) -> JobRow | None:
        """One job's row; whatever is wrong with it makes it a corrupt row, never a failed
        feed. Corrupt rows are read again at every rescan, so a fixed job shows up."""
        try:
            row = read_row(self.root, q, job_id)
        except Exception as exc:
            row = corrupt_row(q, job_id, " ".join(str(exc).split()) or type(exc).__name__)
        if row is not None and row.status == "corrupt":
            self._corrupt[job_id] = q
        else:
            self._corrupt.pop(job_id, None)
        return row

    def _changed(self, paths: set[Path], delta: Delta) -> None:
        root = self.root.path
        queues: set[str] = set()
        jobs: set[tuple[str, str]] = set()
        for p in paths:
            try:
                rel = p.relative_to(root).parts
            except ValueError:
                continue
            if len(rel) < 2 or rel[0] not in QUEUES:
                continue
            if len(rel) == 2:
                queues.add(rel[0])
            if len(rel) >= 2 and (len(rel) == 2 or rel[2] == "job.json" or rel[2] == "control"):
                jobs.add((rel[0], rel[1]))
        for q in queues:
            self._rescan_names(q, delta)
        for q, job_id in jobs:
            if job_id.startswith("."):
                continue
            row = self._read(q, job_id) if q == "done" else self._read_live(q, job_id)
            # None: it left q (moved); the row read from its new queue, if any, stands
            if row is not None:
                delta.rows[job_id] = row

    def _rescan_names(self, q: str, delta: Delta) -> None:
        ids = set(self.root.ids(q))
        delta.names[q] = ids
        if q == "done":
            new = ids - self._known_done
            self._known_done = ids
            for job_id in new:  # freshly finished: read now, they are what operators watch
                self._done_read.add(job_id)
                delta.rows[job_id] = self._read("done", job_id)
            self._done_mtime = self._mtime(self.root.done)
        else:
            for job_id in list(ids):  # only jobs whose job.json changed (one stat each)
                if job_id not in delta.rows and self._mtimes.get(f"{q}/{job_id}") != self._stat(
                    q, job_id
                ):
                    row = self._read_live(q, job_id)
                    if row is None:  # it left q since the listing: its new queue has it
                        ids.discard(job_id)
                        continue
                    delta.rows[job_id] = row
            live = {f"{q}/{i}" for i in ids}
            for key in [k for k in self._mtimes if k.startswith(q + "/") and k not in live]:
                del self._mtimes[key]

    def _rescan(self, delta: Delta) -> None:
        """The fallback: incoming/ and active/ in full (they are small), done/ by mtime."""
        for q in ("incoming", "active"):
            self._rescan_names(q, delta)
        if self._mtime(self.root.done) != self._done_mtime:
            self._rescan_names("done", delta)
        with self._lock:
            followed = set(self._followed)
        seen = self._followed_mtimes
        for job_id in [i for i in seen if i not in followed]:
            del seen[job_id]
        for job_id in followed & self._known_done:  # a record written in place (see follow)
            now = self._stat("done", job_id)
            # read when first followed too: what the pane loaded may predate a write
            if seen.get(job_id) != now and job_id not in delta.rows:
                row = self._read("done", job_id)
                if row is not None:
                    delta.rows[job_id] = row
            seen[job_id] = now
        for job_id, q in list(self._corrupt.items()):  # fixed meanwhile? (few, usually none)
            if job_id not in delta.rows:
                delta.rows[job_id] = self._read(q, job_id)
        for job_id in [k for k, v in delta.rows.items() if v is None]:
            del delta.rows[job_id]

    def _load_done(self, delta: Delta) -> None:
        if not (self._done_todo or self._wanted):
            return
        with self._lock:
            wanted, self._wanted = self._wanted[-DONE_CHUNK:], []
        # wanted rows are on screen without data: read them even if read before
        batch = [w for w in wanted if w in self._known_done]
        while self._done_todo and len(batch) < DONE_CHUNK and self._background.is_set():
            job_id = self._done_todo.pop()
            if job_id not in self._done_read:
                batch.append(job_id)
        for job_id in batch:
            self._done_read.add(job_id)
            if job_id in delta.rows:
                continue
            row = self._read("done", job_id)
            if row is not None:
                delta.rows[job_id] = row
        if batch:
            time.sleep(0.002)  # let the UI thread have the GIL between chunks
        if not self._done_todo:
            delta.done_loaded = True
