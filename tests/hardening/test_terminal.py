"""A hostile job in a REAL terminal: tmux with ``set-clipboard on``, the console and the CLI.

The job's title, labels, prompt, check description, check output and log carry OSC 2,
OSC 52, CSI 2J, RLO and C1 CSI. Listing, opening and tailing it, in farro-tui and with
``farro ls/show/logs/history/stats`` (``--json`` too), must leave the pane title as it
was, write no tmux paste buffer (the clipboard), keep the screen, and show the payloads
as text.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import wait_for

from farro_core.root import Root

from .hostile import escaped, first_dangerous, hostile_job, plant_disk_entries

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

BIN = Path(sys.executable).parent
FARRO, FARRO_TUI = str(BIN / "farro"), str(BIN / "farro-tui")


class Tmux:
    """A private tmux server (its own socket and config), so buffers and titles are ours."""

    def __init__(self, tmp: Path) -> None:
        self.socket = f"farro-esc-{os.getpid()}-{time.monotonic_ns()}"
        self.conf = tmp / "tmux.conf"
        # the clipboard attack works only when tmux accepts OSC 52: let it
        # no client ever attaches: every window has the default size from its start
        self.conf.write_text("set -s set-clipboard on\nset -g default-size 200x60\n")

    def __call__(self, *args: str, check: bool = True) -> str:
        # pytest's plugins export COLUMNS=80 LINES=24; in the panes they would
        # override the terminal's real size
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        out = subprocess.run(
            ["tmux", "-L", self.socket, "-f", str(self.conf), *args],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"tmux {args}: {out.stderr}")
        return out.stdout

    def start(self, name: str, script: str, width: int = 200, height: int = 60) -> None:
        """Run a shell script in a new pane; the pane stays (``sleep``) once it is done, so
        its screen and title can still be read: ``EXIT-<status>`` marks the end."""
        script = f"{script}; printf '\\nEXIT-%s\\n' $?; exec sleep 600"
        cmd = f"sh -c {shlex.quote(script)}"
        self("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), cmd)

    def screen(self, name: str) -> str:
        return self("capture-pane", "-p", "-t", name, check=False)

    def title(self, name: str) -> str:
        return self("display-message", "-p", "-t", name, "#{pane_title}").strip()

    def buffers(self) -> str:
        return self("list-buffers", check=False)

    def keys(self, name: str, *keys: str) -> None:
        self("send-keys", "-t", name, *keys)

    def poll(self, what: str, name: str, cond: Callable[[str], bool], timeout: float = 30) -> str:
        """The pane's screen once ``cond`` holds for it."""
        seen = [""]

        def shown() -> str | None:
            seen[0] = self.screen(name)
            return seen[0] if cond(seen[0]) else None

        return wait_for(shown, what, timeout, diagnose=lambda: f"screen:\n{seen[0]}")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path)
    try:
        yield t
    finally:
        t("kill-server", check=False)


def unharmed(tmux: Tmux, name: str, title: str, where: str) -> None:
    assert tmux.title(name) == title, f"{where}: the pane title changed"
    assert "PWNED" not in tmux.title(name), where
    assert tmux.buffers() == "", f"{where}: a paste buffer was written (OSC 52)"


def test_the_console_shows_a_hostile_job_as_text(root: Root, tmux: Tmux) -> None:
    env = hostile_job(root)
    title = default_title(tmux)
    tmux.start("tui", shlex.join([FARRO_TUI, "--no-workers", "--root", str(root.path)]))
    screen = tmux.poll("the queue", "tui", lambda s: env.id in s and "esc-worker" in s)
    unharmed(tmux, "tui", title, "queue")
    assert escaped("TITLE")[:30] in screen, screen
    assert "FARRO" in screen  # the header is still there: nothing cleared it

    tmux.keys("tui", "Enter")  # the job pane: title, labels, rubric, check output, prompt
    screen = tmux.poll("the job pane", "tui", lambda s: "Prompt" in s and "History (" in s)
    unharmed(tmux, "tui", title, "job pane")
    for tag in ("TITLE", "LABEL", "DESC", "CHECK", "PROMPT"):
        assert escaped(tag)[:30] in screen, (tag, screen)

    tmux.keys("tui", "l")  # the log pane
    screen = tmux.poll(
        "the log pane", "tui", lambda s: f"Log {env.id}" in s and "agent exited 0" in s
    )
    unharmed(tmux, "tui", title, "log pane")
    assert escaped("LOG") in screen, screen

    tmux.keys("tui", "Escape")
    tmux.keys("tui", "Escape")
    tmux.poll("the queue again", "tui", lambda s: "Prompt" not in s and "TITLE" in s)
    tmux.keys("tui", "r")  # the confirmation quotes the title
    screen = tmux.poll("the confirmation", "tui", lambda s: "Requeue 1 job?" in s)
    unharmed(tmux, "tui", title, "confirm dialog")
    assert escaped("TITLE")[:28] in screen, screen
    tmux.keys("tui", "n")
    tmux.keys("tui", "q")
    screen = tmux.poll("the console to exit", "tui", lambda s: "EXIT-" in s)
    assert "EXIT-0" in screen, screen
    unharmed(tmux, "tui", title, "after quitting")


CLI = [
    ("ls", ["ls"], 0, ["TITLE"]),
    ("show", ["show", "{id}"], 0, ["TITLE", "LABEL", "PROMPT", "DESC", "CHECK"]),
    ("logs", ["logs", "{id}"], 0, ["LOG"]),
    ("history", ["history", "{id}"], 0, []),
    ("stats", ["stats"], 0, ["WNAME", "STATE"]),
    ("fsck", ["fsck"], 1, ["FILE"]),
    ("ls-json", ["ls", "--json"], 0, ["TITLE"]),
    ("show-json", ["show", "--json", "{id}"], 0, ["TITLE", "LABEL", "PROMPT", "CHECK"]),
    ("stats-json", ["stats", "--json"], 0, ["WNAME", "HOST"]),
    ("fsck-json", ["fsck", "--json"], 1, ["FILE"]),
]


def json_escaped(tag: str) -> str:
    return f"<{tag}>\\u001b]2;PWNED-{tag}\\u0007"


@pytest.mark.parametrize(("name", "argv", "code", "tags"), CLI, ids=[c[0] for c in CLI])
def test_the_cli_shows_a_hostile_job_as_text(
    root: Root, tmux: Tmux, name: str, argv: list[str], code: int, tags: list[str]
) -> None:
    env = hostile_job(root)
    plant_disk_entries(root)
    title = default_title(tmux)
    args = [a.replace("{id}", env.id) for a in argv]
    cmd = shlex.join([FARRO, *args, "--root", str(root.path)])
    # the marker is printed first: if the output cleared the screen, it is gone
    tmux.start("cli", f"printf 'MARKER-BEFORE\\n'; {cmd}", height=150)
    screen = tmux.poll("the command", "cli", lambda s: "EXIT-" in s)
    unharmed(tmux, "cli", title, name)
    assert "MARKER-BEFORE" in screen, f"the screen was cleared:\n{screen}"
    assert f"EXIT-{code}" in screen, screen
    # RLO and C1 change no title or buffer, but reorder or eat what is shown
    assert first_dangerous(screen) is None, first_dangerous(screen)
    for tag in tags:
        shown = json_escaped(tag) if name.endswith("json") else escaped(tag)[:30]
        assert shown in screen, (tag, screen)
        if name == "show":
            assert "gpj.\\u202eexe\\x9b2J" in screen


def default_title(tmux: Tmux) -> str:
    """The title a pane has when nothing set it (tmux's default: the host name)."""
    tmux.start("ref", "true")  # kept to the end: it also keeps the server up between panes
    return tmux.title("ref")
