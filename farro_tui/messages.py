"""Messages that cross from background threads into the UI."""

from __future__ import annotations

from textual.message import Message


class QueueChanged(Message):
    """The feeder has a delta waiting (take it with ``Feeder.take``).

    Carries no data: the handler takes everything accumulated since, so of several
    waiting in the app's queue the last stands for them all (a burst, one redraw).
    """

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, QueueChanged)


class ActionDone(Message):
    """An operator action finished in a thread worker: say so, and refresh."""

    def __init__(self, verb: str, done: list[str], refused: list[tuple[str, str]]) -> None:
        super().__init__()
        self.verb = verb
        self.done = done
        self.refused = refused
