"""`farro diff`: a real job's change read back from its real git repository.

Attempt 1 writes one file and fails; attempt 2 edits a tracked file and adds one
whose name and content hold a terminal escape. Every byte printed is escaped;
colour appears only on a terminal (a real pty here).
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from farro_core import diff as d
from farro_core import operations
from farro_core.envelope import Envelope
from farro_core.root import Root

from .helpers import git, make_plain, make_repo, make_worker, sh, submit

FARRO = str(Path(sys.executable).with_name("farro"))
AGENT = (
    'if [ "$FARRO_ATTEMPT" = 1 ]; then echo half > src/half.py; exit 1; fi; '
    "printf 'A = 2\\n' > src/a.py; "
    "printf 'evil = \"\\033[31m\"\\n' > \"src/b$(printf '\\033')[31m.py\""
)


def two_attempts(root: Root, tmp_path: Path) -> tuple[Envelope, Path]:
    repo = make_repo(tmp_path / "repo")
    submit(root, "x", agent=sh(AGENT), workspace=str(repo), max_attempts=2)
    w = make_worker(root, retry_backoff_s=0)
    first = w.run_once()
    assert first is not None and first.status == "queued"
    out = w.run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    return out, repo


def farro(root: Root, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FARRO, *args, "--root", str(root.path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_diff_prints_the_last_attempts_change_escaped(wroot: Root, tmp_path: Path) -> None:
    env, repo = two_attempts(wroot, tmp_path)
    r = farro(wroot, "diff", env.id)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "\x1b" not in out  # not from git's colour, not from the file's name or content
    assert "diff --git a/src/a.py b/src/a.py" in out
    assert "-A = 1\n+A = 2\n" in out
    assert '+evil = "\\x1b[31m"' in out
    assert "src/half.py" not in out  # attempt 1's work is not attempt 2's
    base = git(repo, "rev-parse", "HEAD")
    work = git(repo, "rev-parse", f"refs/farro/{env.id}/attempt-2")
    plain = subprocess.run(
        ["git", "-C", str(repo), "diff", "--no-renames", base, work],
        capture_output=True,
        timeout=30,
    ).stdout
    # the same change as git's own diff, byte for byte but the escape
    assert out == plain.decode().replace("\x1b", "\\x1b")


def test_diff_of_an_earlier_attempt_stat_and_names(wroot: Root, tmp_path: Path) -> None:
    env, _repo = two_attempts(wroot, tmp_path)
    r = farro(wroot, "diff", env.id, "--attempt", "1")
    assert r.returncode == 0, r.stderr
    assert "+half\n" in r.stdout and "src/a.py" not in r.stdout

    r = farro(wroot, "diff", env.id, "--name-only")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["src/a.py", "src/b\\x1b[31m.py"]

    r = farro(wroot, "diff", env.id, "--stat")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(ln.startswith("src/a.py") and ln.endswith("+1 -1") for ln in lines), lines
    assert any("src/b\\x1b[31m.py" in ln and ln.endswith("+1 -0") for ln in lines), lines
    assert lines[-1] == "2 files changed, +2 -1"
    assert "\x1b" not in r.stdout


def test_diff_refusals(wroot: Root, tmp_path: Path) -> None:
    env, _repo = two_attempts(wroot, tmp_path)
    r = farro(wroot, "diff", env.id, "--attempt", "3")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"farro: job {env.id} has no attempt 3 with work (attempts: 1, 2)\n"
    r = farro(wroot, "diff", env.id, "--stat", "--name-only")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    queued = submit(wroot, "not run")
    r = farro(wroot, "diff", queued.id)
    assert r.returncode == 1 and "has not finished an attempt yet" in r.stderr
    operations.kill(wroot, queued.id)  # it never will: no "yet"
    r = farro(wroot, "diff", queued.id)
    assert r.returncode == 1 and r.stderr == (
        f"farro: job {queued.id} is killed without a finished attempt: there is no change to show\n"
    )
    r = farro(wroot, "diff", "nosuchjob123")
    assert r.returncode == 1 and r.stderr.startswith("farro: ")


def test_diff_of_a_plain_directory_lists_the_changed_paths(wroot: Root, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    make_plain(plain)
    submit(wroot, "x", agent=sh("echo new > src/n.py; rm docs/guide.md"), workspace=str(plain))
    out = make_worker(wroot).run_once()
    assert out is not None and out.status == "succeeded", out.lifecycle.reason
    r = farro(wroot, "diff", out.id)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["D  docs/guide.md", "A  src/n.py"]
    r = farro(wroot, "diff", out.id, "--name-only")
    assert r.stdout.splitlines() == ["docs/guide.md", "src/n.py"]


def test_diff_is_coloured_on_a_terminal_only(wroot: Root, tmp_path: Path) -> None:
    env, _repo = two_attempts(wroot, tmp_path)
    master, slave = pty.openpty()
    env_vars = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    proc = subprocess.Popen(
        [FARRO, "diff", env.id, "--root", str(wroot.path)],
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env_vars,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    assert proc.stderr is not None
    proc.stderr.close()
    out = b"".join(chunks).decode()
    assert "\x1b[32m+A = 2\x1b[0m" in out
    assert "\x1b[31m-A = 1\x1b[0m" in out
    # the file's own escape is still shown, not obeyed, inside the colour
    assert '\x1b[32m+evil = "\\x1b[31m"\x1b[0m' in out


def test_parse_counts_files_and_lines() -> None:
    text = (
        "diff --git a/x.py b/x.py\nindex 1..2 100644\n--- a/x.py\n+++ b/x.py\n"
        "@@ -1,2 +1,2 @@\n-a\n+b\n c\n"
        'diff --git "a/\\303\\251 q" "b/\\303\\251 q"\nnew file mode 100644\n'
        '--- /dev/null\n+++ "b/\\303\\251 q"\n@@ -0,0 +1 @@\n+--- not a header\n'
        "diff --git a/gone b/gone\ndeleted file mode 100644\n--- a/gone\n+++ /dev/null\n"
        "@@ -1 +0,0 @@\n-x\n"
    )
    parsed = d.parse(text)
    assert [(f.path, f.insertions, f.deletions) for f in parsed.files] == [
        ("x.py", 1, 1),
        ("é q", 1, 0),
        ("gone", 0, 1),
    ]
    assert [f.start for f in parsed.files] == [0, 8, 14]
    assert parsed.file_at(0) == 0 and parsed.file_at(9) == 1 and parsed.file_at(100) == 2


def test_parse_tells_a_header_from_an_added_line_that_looks_like_one() -> None:
    text = (
        "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1,2 @@\n-a\n+++ b\n+--- c\n"
        "\\ No newline at end of file\n"
    )
    parsed = d.parse(text)
    assert bytes(parsed.kinds) == b"hhh@-++ "
    assert (parsed.files[0].insertions, parsed.files[0].deletions) == (2, 1)


def test_a_commit_id_that_is_not_one_never_reaches_git(wroot: Root, tmp_path: Path) -> None:
    env, _repo = two_attempts(wroot, tmp_path)
    res = env.lifecycle.result
    assert res is not None and res.work is not None
    work = res.work.commits[-1].commit
    assert work is not None
    planted = tmp_path / "planted"
    job_json = env.path / "job.json"
    job_json.write_text(job_json.read_text().replace(work, f"--output={planted}"))
    for args in (("diff", env.id), ("diff", env.id, "--stat"), ("land", env.id)):
        r = farro(wroot, *args)
        assert r.returncode == 1 and "not a commit id" in r.stderr, (args, r.stderr)
    assert not planted.exists()
