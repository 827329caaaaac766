"""The bundled demo planner: one job per bullet line of the goal.

Reads the goal on stdin and prints a JSON list of job specs: every line that
starts with ``- `` or ``* `` becomes a job whose prompt is the bullet's text.
A goal without bullets is an error (exit 1, reason on stderr), which the
manager reports in ``inbox/rejected/NAME.error.txt``. Replace it with any
command that speaks the same protocol (``planner`` in farro.toml).
"""

from __future__ import annotations

import json
import sys
from typing import Any

TITLE_MAX = 80


def plan(goal: str) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    for line in goal.splitlines():
        text = line.strip()
        if text[:2] in ("- ", "* ") and text[2:].strip():
            bullet = text[2:].strip()
            title = bullet if len(bullet) <= TITLE_MAX else bullet[: TITLE_MAX - 3] + "..."
            jobs.append({"title": title, "prompt": bullet})
    return jobs


def main() -> int:
    goal = sys.stdin.read()
    jobs = plan(goal)
    if not jobs:
        print(
            "demo planner: the goal has no bullet lines ('- ' or '* '); write one bullet per job",
            file=sys.stderr,
        )
        return 1
    json.dump(jobs, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
