"""on_finish: a real command per finished job; its failures recorded, never the job's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import wait_until

from farro_core import audit, notify
from farro_core.root import Root

from .helpers import FAST, make_worker, pid_alive, sh, submit

FARRO = str(Path(sys.executable).with_name("farro"))


def root_with(tmp_path: Path, toml: str) -> Root:
    Root.init(tmp_path / "root")
    (tmp_path / "root" / "farro.toml").write_text(toml)
    return Root.open(tmp_path / "root", **FAST)


def hook_events(root: Root, job_id: str) -> list[dict[str, object]]:
    return [r for r in audit.read(root, job_id) if r.get("event") == "notify-failed"]


def test_every_terminal_status_runs_the_hook_with_summary_and_env(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    script = (
        f'cat > "{out}/$FARRO_JOB_ID.json"; env | grep ^FARRO_ | sort > "{out}/$FARRO_JOB_ID.env"'
    )
    root = root_with(tmp_path, f"on_finish = {json.dumps(['/bin/sh', '-c', script])}\n")
    ok = submit(root, "fine", agent=sh("exit 0"), max_attempts=1, labels={"batch": "n"})
    bad = submit(root, "broken", agent=sh("exit 4"), max_attempts=1)
    w = make_worker(root)
    assert w.run_once() is not None and w.run_once() is not None
    queued = submit(root, "never run")
    r = subprocess.run(
        [FARRO, "kill", queued.id, "--root", str(root.path)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    # the CLI waited for its hook before exiting: the files are there now
    assert (out / f"{queued.id}.json").exists()
    wait_until(lambda: (out / f"{bad.id}.env").exists(), what="the hooks of the worker's jobs")
    wait_until(lambda: (out / f"{ok.id}.env").exists(), what="the hook of the good job")

    got = json.loads((out / f"{ok.id}.json").read_text())
    assert got["id"] == ok.id and got["status"] == "succeeded" and got["labels"] == {"batch": "n"}
    assert got["attempt"] == 1 and got["verdict"] == "ungraded"
    env = (out / f"{bad.id}.env").read_text()
    assert f"FARRO_JOB_ID={bad.id}\n" in env and "FARRO_JOB_STATUS=failed\n" in env
    assert f"FARRO_ROOT={root.path}\n" in env
    assert json.loads((out / f"{queued.id}.json").read_text())["status"] == "killed"
    assert not any(hook_events(root, j.id) for j in (ok, bad, queued))


def test_a_failing_hook_is_recorded_and_the_job_is_untouched(tmp_path: Path) -> None:
    root = root_with(tmp_path, 'on_finish = "echo boom >&2; exit 3"\n')
    env = submit(root, "fine", agent=sh("exit 0"), max_attempts=1)
    done = make_worker(root).run_once()
    assert done is not None and done.status == "succeeded"
    notify.wait_all()
    wait_until(lambda: hook_events(root, env.id), what="the hook's failure in the history")
    [line] = hook_events(root, env.id)
    assert line["reason"] == "on_finish exited 3: boom" and line["actor"] == "on_finish"
    assert line["from"] == line["to"] == "succeeded" and line["revision"] == done.lifecycle.revision
    again = submit(root, "x").lifecycle  # the root goes on working
    assert again.status == "queued"


def test_a_hook_that_hangs_is_killed_at_its_timeout(tmp_path: Path) -> None:
    pidfile = tmp_path / "hook.pid"
    root = root_with(
        tmp_path,
        f'on_finish = "echo $$ > {pidfile}; exec sleep 60"\non_finish_timeout_s = 0.5\n',
    )
    env = submit(root, "fine", agent=sh("exit 0"), max_attempts=1)
    assert make_worker(root).run_once() is not None
    wait_until(lambda: hook_events(root, env.id), timeout=20, what="the timeout recorded")
    assert "timed out after 0.5s: killed" in str(hook_events(root, env.id)[0]["reason"])
    assert not pid_alive(int(pidfile.read_text()))


def test_a_hook_that_does_not_exist_is_recorded(tmp_path: Path) -> None:
    root = root_with(tmp_path, 'on_finish = ["/nonexistent/hook"]\n')
    env = submit(root, "fine", agent=sh("exit 0"), max_attempts=1)
    assert make_worker(root).run_once() is not None
    wait_until(lambda: hook_events(root, env.id), what="the failure recorded")
    assert str(hook_events(root, env.id)[0]["reason"]).startswith("on_finish could not start")


def test_a_hook_set_or_changed_in_farro_toml_applies_to_the_next_finished_job(
    tmp_path: Path,
) -> None:
    """The settings are kept between commits, but an edit of farro.toml is seen at once."""
    out = tmp_path / "out"
    out.mkdir()
    root = root_with(tmp_path, "")
    w = make_worker(root)
    first = submit(root, "no hook yet", agent=["true"], max_attempts=1)
    assert w.run_once() is not None
    toml = root.path / "farro.toml"
    for tag in ("a", "b"):  # same size each time: the cache must not go by size alone
        hook = ["/bin/sh", "-c", f'echo {tag} > "{out}/$FARRO_JOB_ID"']
        toml.write_text(f"on_finish = {json.dumps(hook)}\n")
        env = submit(root, f"hook {tag}", agent=["true"], max_attempts=1)
        assert w.run_once() is not None
        wait_until(lambda e=env: (out / e.id).exists(), what=f"hook {tag} of {env.id}")
        assert (out / env.id).read_text() == f"{tag}\n"
    assert not (out / first.id).exists()
