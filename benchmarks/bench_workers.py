"""Worker throughput and pickup latency (filled in once the workers exist)."""

from __future__ import annotations

import sys

from _util import Row, print_table


def run() -> list[Row]:
    return [Row("worker throughput", ">= 2x nq", "not run", None, "workers not built yet")]


def main() -> int:
    print_table(run(), "FARRO worker benchmarks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
