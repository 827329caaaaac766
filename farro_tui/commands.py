"""The command palette (ctrl+p): every console action, and "go to job" by id."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from farro_core.visible import visible
from farro_tui.access import FarroAccess
from farro_tui.view import TABS

#: most ids offered for one query: the palette is for jumping, not listing
MAX_ID_HITS = 20


class FarroCommands(FarroAccess, Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.farro
        cmds: list[tuple[str, str, Callable[[], object]]] = []
        if not app.readonly:
            cmds += [
                ("Requeue selected/marked jobs", "r", app.action_requeue),
                ("Kill selected/marked jobs", "x", app.action_kill),
            ]
        cmds += [
            ("Open selected job", "enter", self._open_selected),
            ("Log of selected job", "l", app.action_log),
            ("Workers and manager", "w", app.action_workers),
            ("Help: every key", "?", app.action_help),
            ("Filter jobs", "/", partial(self._main_action, "filter")),
            ("Sort by column", "s", partial(self._main_action, "sort")),
            ("Quit", "q", app.action_quit_farro),
        ]
        if app.system is not None:
            cmds.append(("Pause/resume embedded workers", "p", app.action_pause))
        for n, (label, _) in enumerate(TABS):
            cmds.append((f"Show tab: {label}", str(n + 1), partial(app.set_tab, n)))
        return cmds

    def _open_selected(self) -> None:
        job_id = self.farro.current_job()
        if job_id:
            self.farro.open_job(job_id)

    def _main_action(self, name: str) -> None:
        main = self.farro._main()
        if main is not None:
            self.farro.pop_screen() if self.farro.screen is not main else None
            getattr(main, f"action_{name}")()

    async def discover(self) -> Hits:
        for name, key, fn in self._commands():
            yield DiscoveryHit(name, fn, help=f"key: {key}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, key, fn in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), fn, help=f"key: {key}")
        needle = query.strip().upper()
        if len(needle) >= 3:
            found = 0
            for job_id in self.farro.store.queue_of:
                if needle in job_id.upper():
                    row = self.farro.store.rows.get(job_id)
                    title = f"  {visible(row.title)[:50]}" if row else ""
                    yield Hit(
                        1.0 if job_id.upper().startswith(needle) else 0.9,
                        Text(f"Go to job {job_id}{title}"),  # a str prompt is read as markup
                        partial(self.farro.open_job, job_id),
                        help=row.status if row else "done",
                    )
                    found += 1
                    if found >= MAX_ID_HITS:
                        break
