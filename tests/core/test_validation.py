"""nul_at: one NUL finder for every parser of outside input (specs, request files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from farro_core.validation import nul_at


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("a\0b", ("", False)),
        ({"prompt": "ok", "labels": {"k": "v\0"}}, ("labels.k", False)),
        ({"agent": ["echo", "a\0"]}, ("agent.1", False)),
        ({"labels": {"k\0": "v"}}, ("labels", True)),
        ({"k\0": 1}, ("", True)),
        ({"jobs": ({"title": "\0"},)}, ("jobs.0.title", False)),
    ],
)
def test_names_where_the_nul_is(value: object, where: tuple[str, bool]) -> None:
    assert nul_at(value) == where


def test_none_in_clean_data() -> None:
    assert nul_at({"prompt": "x", "n": 3, "list": [1, "two", {"k": None}]}) is None


def test_has_nul_looks_into_keys_nested_values_and_models() -> None:
    from farro_core.envelope import RubricItem
    from farro_core.validation import has_nul

    assert not has_nul({"prompt": "x", "n": 3, "f": 1.5, "list": [None, True, ("a", {"k": "v"})]})
    assert has_nul({"list": [1, ("a", {"k": "v\0"})]})
    assert has_nul({"labels": {"k\0": "v"}})
    assert has_nul([RubricItem(id="r1", check="make\0")])
    assert not has_nul([RubricItem(id="r1", check="make")])


def test_a_nul_inside_a_nested_model_is_refused_when_a_job_is_built() -> None:
    """The model check walks the fields themselves (no dump): a rubric item made in Python too."""
    from pydantic import ValidationError

    from farro_core.envelope import JobSpec, RubricItem

    with pytest.raises(ValidationError, match="NUL"):
        JobSpec(prompt="x", rubric=[RubricItem(id="r1", check="make\0")])


# without_plugins: FARRO's models are built at import without pydantic's plugin scan,
# and the variable that turns it off reaches no child process. A real plugin, found
# through a distribution's entry point as pydantic looks for them, tells when the
# scan ran: its module is imported then.
PROBE = """
class _Plugin:
    def new_schema_validator(self, *args, **kwargs):
        return None, None, None


plugin = _Plugin()
"""

CHILD = """
import json, os, subprocess, sys, threading
gate = threading.Event()
if sys.argv[1] == "thread":
    threading.Thread(target=gate.wait).start()
import farro_core.envelope, farro_core.settings
at_import = "farro_probe" in sys.modules
gate.set()
env = os.environ.get("PYDANTIC_DISABLE_PLUGINS")
child = subprocess.run(
    ["sh", "-c", "echo ${PYDANTIC_DISABLE_PLUGINS-unset}"], capture_output=True, text=True
).stdout.strip()
farro_core.envelope.Lifecycle.model_json_schema()  # built now, on first use
print(json.dumps([at_import, "farro_probe" in sys.modules, env, child]))
"""


def probe_path(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    info = site / "farro_probe-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: farro-probe\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[pydantic]\nprobe = farro_probe:plugin\n")
    (site / "farro_probe.py").write_text(PROBE)
    return site


def run_child(tmp_path: Path, mode: str, **env: str) -> list[object]:
    environ = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    environ |= {"PYTHONPATH": str(probe_path(tmp_path)), **env}
    p = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=True,
    )
    return list(json.loads(p.stdout))


def test_models_are_built_at_import_without_the_plugin_scan_and_nothing_leaks(
    tmp_path: Path,
) -> None:
    # not looked for at import; the variable gone at once, for this process and its
    # children; a model built later finds the plugin as usual
    assert run_child(tmp_path, "alone") == [False, True, None, "unset"]


def test_with_another_thread_running_the_environment_is_not_touched(tmp_path: Path) -> None:
    assert run_child(tmp_path, "thread") == [True, True, None, "unset"]


def test_a_value_the_user_set_is_kept(tmp_path: Path) -> None:
    # "probe" disables that plugin by name: pydantic reads it, FARRO leaves it be
    got = run_child(tmp_path, "alone", PYDANTIC_DISABLE_PLUGINS="probe")
    assert got == [False, False, "probe", "probe"]
