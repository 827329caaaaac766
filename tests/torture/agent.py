"""The torture agent: sleep 0-200 ms, leave a marker, exit 0 or 1 at random.

    python agent.py MARKERS_DIR

The marker ``MARKERS_DIR/<job>.<attempt>.<exit code>`` proves that an attempt
FARRO recorded really ran and ended as recorded.
"""

import os
import random
import sys
import time

time.sleep(random.uniform(0.0, 0.2))
code = random.choice((0, 1))
name = f"{os.environ['FARRO_JOB_ID']}.{os.environ['FARRO_ATTEMPT']}.{code}"
with open(os.path.join(sys.argv[1], name), "w") as fh:
    fh.write(f"{os.getpid()}\n")
sys.exit(code)
