"""One load submitter: JOBS jobs in batches, alternating `farro submit` and inbox files.

    python submitter.py ROOT SUBMITTER JOBS BATCH STAGING_DIR

Every job is labelled ``sub=SUBMITTER`` and ``seq=K`` so the test can prove each
was accepted exactly once. Inbox files are written under STAGING_DIR (same file
system) and renamed into inbox/ whole. Prints ``cli N`` / ``inbox N`` per batch.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FARRO = str(Path(sys.executable).parent / "farro")


def main() -> int:
    root, sub, jobs, batch, staging = (
        Path(sys.argv[1]),
        sys.argv[2],
        int(sys.argv[3]),
        int(sys.argv[4]),
        Path(sys.argv[5]),
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARRO_")}
    for b, start in enumerate(range(0, jobs, batch)):
        specs = [
            {"prompt": f"load job {sub}/{k}", "labels": {"sub": sub, "seq": str(k)}}
            for k in range(start, min(start + batch, jobs))
        ]
        body = json.dumps({"jobs": specs})
        if b % 2 == 0:
            proc = subprocess.run(
                [FARRO, "submit", "--root", str(root), "-"],
                input=body.encode(),
                capture_output=True,
                env=env,
                timeout=120,
            )
            if proc.returncode != 0:
                print(f"submit failed: {proc.stderr.decode().strip()}", flush=True)
                return 1
            print(f"cli {len(proc.stdout.split())}", flush=True)
        else:
            tmp = staging / f"{sub}-{b}.json"
            tmp.write_text(body)
            os.rename(tmp, root / "inbox" / f"{sub}-{b}.json")
            print(f"inbox {len(specs)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
