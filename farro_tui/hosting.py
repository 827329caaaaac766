"""What the console needs of the System it hosts (or is given, by tests and screenshots)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from farro_core.system import SystemSnapshot


class HostedSystem(Protocol):
    """The part of :class:`farro_core.system.System` the console uses: start, stop,
    pause, and a snapshot to draw from."""

    @property
    def paused(self) -> bool: ...

    def start(self) -> None: ...

    def stop(self, *, release: bool = True, grace_s: float | None = None) -> None: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...

    def snapshot(self) -> SystemSnapshot: ...
