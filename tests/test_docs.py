"""The docs say what the code does: generated tables are current, settings are described.

Each failure says which file and section to update, and how.
"""

from __future__ import annotations

from farro_core.settings import Settings
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
