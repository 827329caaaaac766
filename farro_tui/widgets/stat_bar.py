"""The stat bar: the root, its workers, the manager's role, jobs finished a minute.

Workers come and go and throughput moves with the clock, so the bar redraws itself
once a second; the timer is the widget's own and ends with it, so nothing redraws a
bar that a quitting app has already taken down.
"""

from __future__ import annotations

from textual.widgets import Static

from farro_tui.access import FarroAccess

#: how often the bar redraws on its own (between store changes)
TICK_S = 1.0


class StatBar(FarroAccess, Static):
    def on_mount(self) -> None:
        self.set_interval(TICK_S, self.tick)

    def tick(self) -> None:
        """Draw what the app last knew: nothing is read from disk here."""
        self.update(self.farro.stats_text(self.size.width))
