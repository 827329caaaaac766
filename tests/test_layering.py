"""farro_core must never pull in the console: the CLI and headless workers pay for every import."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import farro_core


def core_modules() -> list[str]:
    return sorted(
        f"farro_core.{m.name}" for m in pkgutil.iter_modules(farro_core.__path__) if not m.ispkg
    )


def test_no_core_module_imports_textual() -> None:
    modules = core_modules()
    assert "farro_core.job" in modules
    code = (
        "import importlib, sys\n"
        f"mods = {modules!r}\n"
        "bad = []\n"
        "for m in mods:\n"
        "    importlib.import_module(m)\n"
        "    if 'textual' in sys.modules:\n"
        "        bad.append(m); break\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"textual imported by {out.stdout.strip()}"


def test_public_api_is_lazy() -> None:
    """`import farro_core` alone loads no submodule: the CLI imports only what it needs."""
    code = (
        "import farro_core, sys\n"
        "print(sorted(m for m in sys.modules if m.startswith('farro_core.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_core_ships_its_type_hints() -> None:
    """`import farro_core` is a documented API: py.typed tells type checkers to read its hints."""
    from importlib.resources import files

    assert files("farro_core").joinpath("py.typed").is_file()
