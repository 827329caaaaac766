"""Messages that cross from background threads into the UI."""

from __future__ import annotations

from textual.message import Message


class QueueChanged(Message):
    """The feeder has a delta waiting (take it with ``Feeder.take``).

    Carries no data: at most one is in flight, and the handler takes everything
    accumulated since, so a burst of file events becomes one redraw.
    """


class ActionDone(Message):
    """An operator action finished in a thread worker: say so, and refresh."""

    def __init__(self, verb: str, done: list[str], refused: list[tuple[str, str]]) -> None:
        super().__init__()
        self.verb = verb
        self.done = done
        self.refused = refused
