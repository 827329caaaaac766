"""``farro-tui --demo``: seed a root so that every status shows within seconds.

Jobs are for the bundled demo agent, whose prompt markers pick the outcome
(``[fast]``, ``[fail]``, ``[escape]``, ``[hang]``, ``[slow]``). Priorities order
them so that two workers first finish the quick ones (succeeded, failed), then
sit on slow ones (in-progress) while the rest wait (queued). One job is killed
by the seeder, and one is claimed and abandoned without a commit, as a crashed
worker would leave it, so the watchdog marks it stale ("worker gone"). A goal
file in inbox/ shows the manager's planner at work.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from farro_core import fs, job, operations
from farro_core.envelope import parse_spec
from farro_core.errors import BadInput
from farro_core.identity import WorkerIdentity
from farro_core.root import Root

DEMO_TOML = """\
# Written by `farro-tui --demo`: short timings so that every status shows within seconds.
workers = 2
heartbeat_s = 0.5
stale_after_s = 5
watchdog_interval_s = 0.5
rescan_s = 1
retry_backoff_s = 2
retry_backoff_max_s = 10
shutdown_grace_s = 3
"""

GOAL = {
    "goal": (
        "Prepare release 1.2 of the demo project:\n"
        "- [fast] Bump the version number to 1.2.0\n"
        "- [fast] Write the changelog entry for 1.2\n"
        "- Update the installation guide for the new release\n"
    ),
    "defaults": {"priority": 1, "labels": {"release": "1.2"}},
}

_NOTES = {"id": "notes", "description": "NOTES.md was updated", "check": "test -s NOTES.md"}


def _specs() -> list[tuple[str, dict[str, Any]]]:
    """(what it should show, spec) for every job the seeder creates and leaves alone."""
    demo = {"demo": "1"}
    return [
        ("succeeded", {"prompt": "[fast] Fix the typo in the README", "priority": 10,
                       "rubric": [_NOTES], "labels": demo}),
        ("succeeded", {"prompt": "[fast] Add a unit test for the config parser", "priority": 10,
                       "labels": demo}),
        ("failed", {"prompt": "[fast] [fail] Upgrade the build to the new toolchain",
                    "priority": 9, "max_attempts": 1, "labels": demo}),
        ("failed", {"prompt": "[fast] [escape] Rotate the API keys in the config",
                    "priority": 9, "allowed_paths": ["src/**", "NOTES.md"], "labels": demo}),
        ("failed", {"prompt": "[hang] Wait for the flaky integration server", "priority": 8,
                    "timeout_s": 4, "max_attempts": 2, "labels": demo}),
        ("in-progress", {"prompt": "[slow] Refactor the storage layer", "priority": 5,
                         "labels": demo}),
        ("in-progress", {"prompt": "[slow] Port the CLI to the new argument parser",
                         "priority": 5, "labels": demo}),
        *[
            ("queued", {"prompt": f"[slow] {title}", "labels": demo})
            for title in (
                "Add type hints to the utils module",
                "Speed up the test suite",
                "Document the plugin API",
                "Remove the deprecated endpoints",
            )
        ],
    ]  # fmt: skip


def is_demo_root(path: Path) -> bool:
    """Whether ``path`` holds a root an earlier ``--demo`` seeded (its farro.toml is the demo's)."""
    try:  # as settings read it: a FIFO, a symlink or a huge file is no demo's (and never blocks)
        raw = fs.read_file(path / "farro.toml", limit=1 << 20)
    except (OSError, ValueError):
        return False
    return raw.startswith(DEMO_TOML.splitlines()[0].encode())


def refuse_real_root(path: Path) -> None:
    """Refuse to seed a root that is not a demo's: its jobs would run with the real
    ``agent`` and planner (Claude Code on "Rotate the API keys"), at priority 10."""
    if not os.path.isdir(path) or not os.listdir(path):
        return
    if not is_demo_root(path):
        raise BadInput(
            f"--demo {path}: not a demo root (its farro.toml is not the demo's); "
            "give a new directory, or no --root for a temporary one"
        )


def write_settings(root: Root) -> bool:
    """Write the demo farro.toml unless the root has one; True when written."""
    path = root.path / "farro.toml"
    if os.path.lexists(path):
        return False
    fs.write_file(path, DEMO_TOML.encode())
    return True


def seed(root: Root) -> dict[str, list[str]]:
    """Write demo settings (if none) and demo jobs; return the job ids by expected status."""
    write_settings(root)
    root = Root.open(root.path)  # settings are read once per Root: read the new ones
    out: dict[str, list[str]] = {}
    specs = _specs()
    made = job.create_many(root, [parse_spec(s, "demo") for _, s in specs], created_by="demo")
    for (status, _), env in zip(specs, made, strict=True):
        out.setdefault(status, []).append(env.id)

    doomed = job.create(root, parse_spec({"prompt": "Migrate to the old CI (cancelled)",
                                          "labels": {"demo": "1"}}), created_by="demo")  # fmt: skip
    operations.kill(root, doomed.id, by="demo seeder")
    out["killed"] = [doomed.id]

    # A worker that crashes after claiming: claim, then drop the lock without a commit.
    orphan = job.create(root, parse_spec({"prompt": "[slow] Nightly dependency bump",
                                          "labels": {"demo": "1"}}), created_by="demo")  # fmt: skip
    claimed = job.claim(root, WorkerIdentity.current("demo-crashed-worker"), ids=[orphan.id])
    if claimed is not None:
        job.release_claim(claimed)
        out["stale"] = [orphan.id]

    goal = root.inbox / "demo-goal.json"
    if not goal.exists():
        fs.write_json(goal, GOAL, indent=2)
    return out


def refuse_readonly(path: Path | None) -> None:
    """``--demo --readonly`` watches an earlier demo and seeds nothing: a read-only
    console writes nothing, and a new demo root would have nothing to watch."""
    if path is None:
        raise BadInput(
            "--demo --readonly seeds nothing: give --root of an earlier demo to watch it"
        )
    if is_demo_root(path):
        return
    if os.path.isdir(path) and os.listdir(path):
        raise BadInput(
            f"--demo --readonly {path}: not a demo root (its farro.toml is not the demo's); "
            "to watch it read-only, leave out --demo"
        )
    raise BadInput(
        f"--demo --readonly {path}: no demo there, and a read-only console seeds nothing; "
        f"run farro-tui --demo --root {path} first"
    )
