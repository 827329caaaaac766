"""The docs say what the code does: docs/spec.md is the contract, and every part of it
that mirrors code is checked against that code (or generated from it).

Each failure says which file and section to update, and how.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Literal, get_args, get_origin

import pytest

import farro_core
from farro_core import audit, crash, errors
from farro_core.envelope import (
    Claim,
    JobSpec,
    Landing,
    Lifecycle,
    Prompt,
    Result,
    RubricItem,
    RubricVerdict,
)
from farro_core.fsck import Finding
from farro_core.listing import JobRow
from farro_core.settings import Settings
from farro_core.transitions import QUEUE_DIR, TABLE
from farro_tui import docgen


def test_every_setting_is_described_in_code() -> None:
    missing = [n for n, f in Settings.model_fields.items() if not (f.description or "").strip()]
    assert not missing, (
        f"settings without a description: {missing}; give each a "
        "Field(description=...) in farro_core/settings.py, then run "
        f"`{docgen.COMMAND}` to regenerate README.md's settings table"
    )


def test_generated_blocks_match_the_code() -> None:
    """README.md's settings table (and every other generated block) is what the code says."""
    problems = docgen.problems()
    assert not problems, "\n\n".join(problems)


def test_readme_settings_table_lists_every_setting_with_its_default_and_description() -> None:
    """Read back from README.md itself, so a hand edit inside the block is caught too."""
    text = (docgen.REPO / "README.md").read_text()
    begin = text.index("<!-- generated: settings ")
    block = text[begin : text.index("<!-- end generated: settings -->", begin)]
    rows = {}
    for line in block.splitlines()[3:]:
        key, default, meaning = (c.strip() for c in line.strip("|").split(" | "))
        rows[key.strip("`[]")] = (default, meaning)
    assert list(rows) == list(Settings.model_fields), (
        "README.md's settings table must list exactly the fields of farro_core/settings.py "
        f"Settings, in order: run `{docgen.COMMAND}`"
    )
    defaults = Settings()
    for name, info in Settings.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        default = str(extra.get("default_text", docgen._value(getattr(defaults, name))))
        assert rows[name] == (default, info.description), (
            f"README.md says {name} defaults to {rows[name][0]!r} and is {rows[name][1]!r}; "
            f"the code says {default!r} and {info.description!r}: run `{docgen.COMMAND}`"
        )
    assert rows["log_max_bytes"][0] == "10 MiB" and defaults.log_max_bytes == 10 << 20


# ---------------------------------------------------------------- docs/spec.md

SPEC = docgen.REPO / "docs" / "spec.md"
#: the old contract's name, spelled so that this file does not mention it
OLD_NAME = "SPEC" + ".md"
OLD_REF = re.compile(r"\bSPEC(?:\.md|\s+(?:section\s+)?\d)")
SECTION_REF = re.compile(r"§\s*(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{2,4} (\d+(?:\.\d+)*)\.? ", re.MULTILINE)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".tcss", ".txt", ".cfg", ".ini", ".sh", ".json", ".yml"}
SKIP_DIRS = {"__pycache__", "__snapshots__", "screenshots", "node_modules", "build", "dist"}


def repo_files() -> list[Path]:
    """The repository's own text files (not .venv, caches, snapshots or build output)."""
    out = []
    for top, dirs, files in os.walk(docgen.REPO):
        dirs[:] = sorted(
            d for d in dirs if not (d.startswith(".") or d in SKIP_DIRS or d.endswith(".egg-info"))
        )
        for name in sorted(files):
            path = Path(top, name)
            if path.suffix in TEXT_SUFFIXES or name == "Makefile":
                out.append(path)
    return out


def spec_sections() -> set[str]:
    return set(HEADING.findall(SPEC.read_text()))


def table_after(marker: str, text: str | None = None) -> list[list[str]]:
    """The body rows of the first markdown table after ``marker`` in docs/spec.md."""
    text = SPEC.read_text() if text is None else text
    assert marker in text, f"docs/spec.md has no {marker!r}; the test looks for the table after it"
    lines = [line.strip() for line in text[text.index(marker) :].splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))])
    return rows


def names(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell) or [cell]


def test_every_section_reference_resolves_to_a_heading_of_docs_spec() -> None:
    sections = spec_sections()
    assert {"1", "4", "4.1", "5", "5.7", "7.2", "8"} <= sections
    bad = []
    for path in repo_files():
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            rel = path.relative_to(docgen.REPO)
            bad += [f"{rel}:{n}: §{s}" for s in SECTION_REF.findall(line) if s not in sections]
    assert not bad, (
        "these § references name no heading of docs/spec.md (headings are "
        f"'## N. Title' / '### N.M Title'; existing: {sorted(sections, key=_num)}): "
        "point them at the right section, or add it (never renumber):\n" + "\n".join(bad)
    )


def _num(section: str) -> tuple[int, ...]:
    return tuple(int(p) for p in section.split("."))


def test_no_file_cites_the_old_contract() -> None:
    bad = []
    for path in repo_files():
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OLD_REF.search(line):
                bad.append(f"{path.relative_to(docgen.REPO)}:{n}: {line.strip()}")
    assert not bad, (
        f"{OLD_NAME} is not in this repository: cite the contract as 'docs/spec.md §N' "
        "(the section that says what the code does):\n" + "\n".join(bad)
    )


def test_transition_table_in_spec_matches_transitions_py() -> None:
    rows = table_after("### 4.1 ")
    documented = {(frm, to): {a.strip() for a in actors.split(",")} for frm, to, actors, *_ in rows}
    code = {(f.value, t.value): {a.value for a in actors} for (f, t), actors in TABLE.items()}
    fix = "docs/spec.md §4.1 must match farro_core/transitions.py TABLE: "
    for key in code.keys() - documented.keys():
        pytest.fail(fix + f"add the row | {key[0]} | {key[1]} | {', '.join(sorted(code[key]))} |")
    for key in documented.keys() - code.keys():
        pytest.fail(fix + f"the row {key[0]} -> {key[1]} is in no TABLE entry: remove it")
    for key, actors in code.items():
        assert documented[key] == actors, (
            fix + f"{key[0]} -> {key[1]} is allowed to {', '.join(sorted(actors))}, "
            f"the doc says {', '.join(sorted(documented[key]))}"
        )
    assert len(rows) == len(documented), fix + "a (from, to) row appears twice"


def test_queue_directories_in_spec_match_the_code() -> None:
    rows = table_after("### 4.2 ")
    assert {status: q for status, q in rows} == {s.value: q for s, q in QUEUE_DIR.items()}, (
        "docs/spec.md §4.2 must list farro_core/transitions.py QUEUE_DIR, one row per status"
    )


def _errors() -> dict[str, int]:
    return {
        name: cls.exit_code
        for name, cls in vars(errors).items()
        if isinstance(cls, type) and issubclass(cls, errors.FarroError)
    }


MODELS: dict[str, set[str]] = {
    "Prompt": set(Prompt.model_fields),
    "RubricItem": set(RubricItem.model_fields),
    "Lifecycle": set(Lifecycle.model_fields),
    "Claim": set(Claim.model_fields),
    "Result": set(Result.model_fields),
    "RubricVerdict": set(RubricVerdict.model_fields),
    "Landing": set(Landing.model_fields),
    "audit": set(
        audit.record(
            job="x", frm=None, to=None, actor="a", worker=None, attempt=0, revision=1, reason=""
        )
    ),
    "JobRow": {f.name for f in dataclasses.fields(JobRow)},
    "Finding": {f.name for f in dataclasses.fields(Finding)},
    "errors": set(_errors()),
    "api": set(farro_core.__all__),
}


@pytest.mark.parametrize("model", MODELS)
def test_schema_tables_in_spec_list_every_field(model: str) -> None:
    rows = table_after(f"<!-- fields: {model} -->")
    documented = [n for row in rows for n in names(row[0])]
    missing = sorted(MODELS[model] - set(documented))
    extra = sorted(set(documented) - MODELS[model])
    assert not missing and not extra, (
        f"docs/spec.md §3, the table after '<!-- fields: {model} -->', is out of step with "
        f"the code: document {missing}, remove {extra}"
    )
    assert len(documented) == len(set(documented)), f"a field of {model} is listed twice"


def test_exit_codes_in_spec_are_the_errors_exit_codes() -> None:
    documented = {names(row[0])[0]: int(row[1]) for row in table_after("<!-- fields: errors -->")}
    assert documented == _errors(), (
        "docs/spec.md §7.1: the errors table must give each error class of "
        f"farro_core/errors.py its exit_code: {_errors()}"
    )


def test_result_verdicts_in_spec_are_the_code_s() -> None:
    row = next(r for r in table_after("<!-- fields: Result -->") if r[0] == "`verdict`")
    union = get_args(Result.model_fields["verdict"].annotation)
    verdicts = {v for arm in union if get_origin(arm) is Literal for v in get_args(arm)}
    assert set(names(row[1])) == verdicts, (
        "docs/spec.md §3.5: the verdict row of the Result table must name every value of "
        f"farro_core/envelope.py Result.verdict {sorted(verdicts)} (and say what each means "
        "in §6.4)"
    )


def test_spec_fields_are_the_prompt_fields_marked_in_a_spec() -> None:
    rows = table_after("<!-- fields: Prompt -->")
    in_spec = {names(row[0])[0] for row in rows if row[3] == "yes"}
    assert in_spec == set(JobSpec.model_fields), (
        "docs/spec.md §3.3: the 'in a spec' column must say yes exactly for the fields of "
        f"farro_core/envelope.py JobSpec: {sorted(JobSpec.model_fields)}"
    )


def test_crash_points_in_spec_are_crash_points() -> None:
    rows = table_after("### 5.7 ")
    documented = [names(row[0])[0] for row in rows]
    assert sorted(documented) == sorted(crash.POINTS), (
        "docs/spec.md §5.7 must list every name of farro_core/crash.py POINTS once, with "
        f"the step it is at and what a crash there leaves: missing "
        f"{sorted(set(crash.POINTS) - set(documented))}, not points "
        f"{sorted(set(documented) - set(crash.POINTS))}"
    )


def test_cli_reference_in_spec_lists_every_command() -> None:
    import typer

    from farro_core.cli import app

    commands = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    documented = re.findall(r"^#### `farro ([\w-]+)`$", SPEC.read_text(), re.MULTILINE)
    assert documented == commands, (
        f"docs/spec.md §7.2 lists {documented}, the typer app has {commands}: "
        f"run `{docgen.COMMAND}`"
    )


# ---------------------------------------------------------------- docs/architecture.md


def test_the_layer_list_in_architecture_names_every_module() -> None:
    """A newcomer finds every module, and every subpackage, in docs/architecture.md."""
    text = (docgen.REPO / "docs" / "architecture.md").read_text()
    start = text.index("## The layers")
    begin = text.index("```\n", start) + 4
    block = text[begin : text.index("\n```", begin)]
    listed = set(re.findall(r"[\w/]+\.py|\w+/", block))
    missing = []
    for package in ("farro_core", "farro_tui"):
        top = docgen.REPO / package
        for path in sorted(top.iterdir()):
            if path.name.startswith(("_", ".")):
                continue
            name = path.name + "/" if path.is_dir() else path.name
            if (path.is_dir() or path.suffix == ".py") and name not in listed:
                missing.append(f"{package}/{name}")
    assert not missing, (
        "docs/architecture.md's layer list ('## The layers') does not name "
        f"{missing}: add a line saying what each holds"
    )


def test_readme_synopsis_names_every_command() -> None:
    import typer

    from farro_core.cli import app

    text = (docgen.REPO / "README.md").read_text()
    start = text.index("## The `farro` command")
    synopsis = text[
        text.index("```\n", start) : text.index("\n```", text.index("```\n", start) + 4)
    ]
    listed = re.findall(r"^farro ([\w-]+)", synopsis, re.MULTILINE)
    commands = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert sorted(listed) == sorted(commands), (
        "README.md's synopsis under 'The `farro` command' must show each command of "
        f"farro_core/cli.py once: it shows {listed}, the app has {commands}"
    )


def test_readme_synopsis_shows_each_commands_options() -> None:
    """Every option of a command is in its lines of the synopsis, and every option there
    is the command's: `--no-agent-check` was missing from submit's."""
    import typer

    from farro_core.cli import app

    text = (docgen.REPO / "README.md").read_text()
    start = text.index("```\n", text.index("## The `farro` command")) + 4
    lines: dict[str, str] = {}
    command = ""
    for line in text[start : text.index("\n```", start)].splitlines():
        found = re.match(r"farro ([\w-]+)", line)
        command = found.group(1) if found else command
        lines[command] = lines.get(command, "") + line + "\n"
    for name, cmd in typer.main.get_command(app).commands.items():  # type: ignore[attr-defined]
        shown = set(re.findall(r"(?<![\w-])--?[a-z][a-z-]*", lines[name])) - {"--root"}
        options = [p.opts for p in cmd.params if p.param_type_name == "option"]
        missing = [o[0] for o in options if not set(o) & shown and "--root" not in o]
        every = {opt for o in options for opt in o}
        unknown = {s for s in shown if s.startswith("--") and s not in every}
        assert not missing and not unknown, (
            f"README.md's synopsis of `farro {name}` lacks {missing} and shows {unknown}"
        )
