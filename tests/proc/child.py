"""A tiny FARRO client run as a real child process by the tests in tests/proc/.

Usage: ``python child.py ROOT COMMAND [ARGS...]``. Every command talks on stdout
in whole, flushed lines (``ready``, ``claimed {json}``, ``result {json}`` ...) so
the test can synchronise on them, and reports its outcome in its exit code.

Commands:

``create N``            wait for ``go`` on stdin, then create N jobs one by one, printing each id.
``create-ids TAG ID...`` wait for ``go``, then create each given id (prompt names TAG);
                        prints ``won ID`` or ``lost ID`` (AlreadyExists) for each.
``create-until N``      wait for ``go``, then try N creates, printing ``ok ID`` or ``full``
                        (QueueFull: backpressure) for each.
``create-batch ID...``  create_many of one job per id (for batch crash points).
``create-id ID``        create one job with this id (for crash points).
``claim-loop NAME``     wait for ``go``, then claim / commit / release until nothing is
                        left. A job labelled ``retry=1`` goes back to the queue (agent
                        retry) on its first attempt. Prints ``claimed ID ATTEMPT``.
``claim ID``            claim that job and exit (the kernel frees the claim lock).
``succeed ID``          claim that job and commit succeeded.
``retry ID``            claim that job and commit it back to queued (agent retry).
``requeue ID``          requeue a stale job as the operator.
``lock-commit ID``      take the queued job's ``.commit.lock``, print ``locked``, hold it
                        until stdin closes (a committer caught mid-commit, e.g. by SIGSTOP).
``fsck``                wait for ``go``, run ``fsck --repair``, print ``finding {json}`` lines.
``hold ID [NAME [wait]]`` claim that job (with ``wait``: after ``ready`` and ``go``), print
                        ``claimed {json}``, keep the claim and obey stdin: ``commit STATUS``
                        prints ``result {json}``; ``quit`` (or EOF) exits with the code of
                        the last commit (0 ok, 10 conflict, 11 other).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from farro_core.envelope import Envelope
    from farro_core.root import Root

EXIT_OK = 0
EXIT_ALREADY_EXISTS = 3
EXIT_NOTHING_CLAIMED = 4
EXIT_CONFLICT = 10
EXIT_OTHER_ERROR = 11
EXIT_USAGE = 64


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def wait_for_go() -> None:
    """A start barrier: the test releases every child at once, after all are ready."""
    say("ready")
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(EXIT_USAGE)


def any_queued(root: Root) -> bool:
    """Whether incoming/ still holds a queued job (an orphan left in-progress is not)."""
    from farro_core import fs, job
    from farro_core.errors import Corrupt

    for job_id in root.ids("incoming"):
        try:
            dfd = fs.open_dir(root.incoming / job_id)
        except OSError:
            continue  # claimed and moved meanwhile
        try:
            if job.read_lifecycle(dfd, job_id).status == "queued":
                return True
        except Corrupt:
            continue
        finally:
            os.close(dfd)
    return False


def main(argv: list[str]) -> int:
    from farro_core import job, operations
    from farro_core.envelope import JobSpec
    from farro_core.errors import AlreadyExists, Conflict, FarroError
    from farro_core.identity import WorkerIdentity
    from farro_core.root import Root
    from farro_core.transitions import Actor, Status

    if len(argv) < 2:
        return EXIT_USAGE
    root = Root.open(Path(argv[0]))
    cmd, args = argv[1], argv[2:]

    def claim_one(job_id: str, name: str = "child") -> Envelope:
        env = job.claim(root, WorkerIdentity.current(name), ids=[job_id])
        if env is None:
            say("nothing")
            raise SystemExit(EXIT_NOTHING_CLAIMED)
        info = {"id": env.id, "attempt": env.lifecycle.attempt, "revision": env.lifecycle.revision}
        say("claimed " + json.dumps(info))
        return env

    if cmd == "create":
        wait_for_go()
        for i in range(int(args[0])):
            env = job.create(root, JobSpec(prompt=f"job {i} of a concurrent creator"))
            say(env.id)
        return EXIT_OK

    if cmd == "create-ids":
        tag, ids = args[0], args[1:]
        wait_for_go()
        for job_id in ids:
            try:
                job.create(root, JobSpec(id=job_id, prompt=f"created by {tag}"))
                say(f"won {job_id}")
            except AlreadyExists:
                say(f"lost {job_id}")
        return EXIT_OK

    if cmd == "create-until":
        from farro_core.errors import QueueFull

        wait_for_go()
        for i in range(int(args[0])):
            try:
                say("ok " + job.create(root, JobSpec(prompt=f"job {i}")).id)
            except QueueFull:
                say("full")
        return EXIT_OK

    if cmd == "create-batch":
        job.create_many(root, [JobSpec(id=i, prompt=f"batch job {i}") for i in args])
        return EXIT_OK

    if cmd == "create-id":
        try:
            job.create(root, JobSpec(id=args[0], prompt=f"crash test job {args[0]}"))
        except AlreadyExists:
            return EXIT_ALREADY_EXISTS
        return EXIT_OK

    if cmd == "claim-loop":
        sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/, for support
        from support import wait_until

        worker = WorkerIdentity.current(args[0])
        wait_for_go()
        while True:
            # None from a claim: others hold the remaining candidates' locks right now
            got = wait_until(
                lambda: job.claim(root, worker) or not any_queued(root),
                "a claim, or no queued job left",
            )
            if got is True:
                return EXIT_OK
            assert got is not False
            env = got
            say(f"claimed {env.id} {env.lifecycle.attempt}")
            if env.prompt.labels.get("retry") == "1" and env.lifecycle.attempt == 1:
                done = job.commit(
                    env, Status.QUEUED, Actor.AGENT, "retry", worker=worker.name, claim=None
                )
            else:
                done = job.commit(env, Status.SUCCEEDED, Actor.AGENT, "ok", worker=worker.name)
            job.release_claim(done)

    if cmd == "claim":
        claim_one(args[0])
        return EXIT_OK

    if cmd == "succeed":
        env = claim_one(args[0])
        job.commit(env, Status.SUCCEEDED, Actor.AGENT, "agent succeeded", worker="child")
        return EXIT_OK

    if cmd == "retry":
        env = claim_one(args[0])
        job.commit(env, Status.QUEUED, Actor.AGENT, "retry", worker="child", claim=None)
        return EXIT_OK

    if cmd == "requeue":
        operations.requeue(root, args[0], by="child")
        return EXIT_OK

    if cmd == "lock-commit":
        from farro_core import fs, locks

        dfd = fs.open_dir(root.incoming / args[0])
        held = locks.lock(dfd, locks.COMMIT_LOCK)
        say("locked")
        sys.stdin.read()
        held.release()
        return EXIT_OK

    if cmd == "fsck":
        from dataclasses import asdict

        from farro_core.fsck import fsck

        wait_for_go()
        for finding in fsck(root, repair=True):
            say("finding " + json.dumps(asdict(finding)))
        return EXIT_OK

    if cmd == "hold":
        name = args[1] if len(args) > 1 else "holder"
        if args[2:] == ["wait"]:
            wait_for_go()
        env = claim_one(args[0], name)
        code = EXIT_OK
        for line in sys.stdin:
            words = line.split()
            if words == ["quit"]:
                break
            if len(words) == 2 and words[0] == "commit":
                try:
                    new = job.commit(env, words[1], Actor.AGENT, "holder commits", worker=name)
                    out = {"outcome": "ok", "revision": new.lifecycle.revision}
                    code = EXIT_OK
                except Conflict as exc:
                    out = {"outcome": "conflict", "error": str(exc)}
                    code = EXIT_CONFLICT
                except FarroError as exc:
                    out = {"outcome": "error", "error": f"{type(exc).__name__}: {exc}"}
                    code = EXIT_OTHER_ERROR
                say("result " + json.dumps(out))
        return code

    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
