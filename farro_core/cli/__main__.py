"""``python -m farro_core.cli``: the ``farro`` console script."""

import sys

from farro_core.cli import main

sys.exit(main())
