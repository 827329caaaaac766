"""The real agent CLIs, installed from their registries at pinned versions, cached.

The cache (``$FARRO_AGENTS_CACHE``, else ``~/.cache/farro-agents``) holds one
directory per package and version, so a warm run installs nothing. A CLI that
cannot be installed fails the test that needs it, loudly: never a skip.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: the versions the presets are tested with (README.md, "Agents", says the same)
PINNED = {
    "claude": ("npm", "@anthropic-ai/claude-code", "2.1.332"),
    "codex": ("npm", "@openai/codex", "0.171.0"),
    "aider": ("pip", "aider-chat", "0.86.1"),
    "gemini": ("npm", "@google/gemini-cli", "0.61.0"),
}


def cache_dir() -> Path:
    base = os.environ.get("FARRO_AGENTS_CACHE") or os.path.expanduser("~/.cache/farro-agents")
    return Path(base)


def install(name: str) -> Path:
    """The directory holding the CLI's executable, installing it first if need be."""
    kind, package, version = PINNED[name]
    where = cache_dir() / f"{name}-{version}"
    bin_dir = where / "node_modules" / ".bin" if kind == "npm" else where / "bin"
    where.parent.mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs install once
        if not (where / ".installed").exists():
            shutil.rmtree(where, ignore_errors=True)
            where.mkdir()
            if kind == "npm":
                npm = shutil.which("npm")
                if npm is None:
                    pytest.fail(f"cannot install {package}: npm is not installed")
                cmd = [npm, "install", "--prefix", str(where), "--no-audit", "--no-fund"]
                cmd.append(f"{package}@{version}")
            else:
                cmd = [sys.executable, "-m", "venv", str(where)]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
            if out.returncode == 0 and kind == "pip":
                pip = [str(where / "bin" / "python"), "-m", "pip", "install", "--quiet"]
                out = subprocess.run(
                    [*pip, f"{package}=={version}"],
                    capture_output=True,
                    text=True,
                    timeout=1800,
                    check=False,
                )
            if out.returncode != 0:
                pytest.fail(
                    f"cannot install {package}@{version} ({out.returncode}):\n"
                    f"{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
                )
            (where / ".installed").write_text(version)
    exe = bin_dir / name
    got = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=120)
    if got.returncode != 0 or version not in got.stdout:
        pytest.fail(f"{exe} --version gave {got.returncode}: {got.stdout} {got.stderr}")
    return bin_dir
