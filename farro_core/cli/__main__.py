"""``python -m farro_core.cli``: the ``farro`` console script."""

from farro_core.cli import run

run()
