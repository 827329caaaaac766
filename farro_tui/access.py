"""The one typed way from a screen, widget or palette provider to the :class:`FarroApp`.

Textual types ``self.app`` as any ``App``; the console's panes need FarroApp's own
attributes (the store, the root, steering). One checked accessor instead of a cast
and a ``type: ignore`` in every pane.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from textual.app import App

    from farro_tui.app import FarroApp


class _HasApp(Protocol):
    @property
    def app(self) -> App[Any]: ...


def farro_app(app: App[Any]) -> FarroApp:
    """``app`` as the console it must be (a pane mounted in any other app is a bug)."""
    from farro_tui.app import FarroApp  # the app imports the panes: not at module level

    if not isinstance(app, FarroApp):
        raise TypeError(f"a FARRO pane runs inside FarroApp, not {type(app).__name__}")
    return app


class FarroAccess:
    """Mixed into the console's panes: ``self.farro`` is the app, typed."""

    @property
    def farro(self: _HasApp) -> FarroApp:
        return farro_app(self.app)
