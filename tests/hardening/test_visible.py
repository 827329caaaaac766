"""farro_core.visible: no control, bidi or separator character survives; printable text
is untouched; columns are laid out in terminal cells."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from farro_core.visible import VisibleDecoder, cells, fit, pad, visible, visible_json

BIDI = {0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)}


def dangerous(ch: str, *, lines: bool = False) -> bool:
    """What must never reach a terminal raw (newline and tab only in lines mode)."""
    if lines and ch in "\n\t":
        return False
    cat = unicodedata.category(ch)
    return cat in ("Cc", "Cs", "Zl", "Zp") or ord(ch) in BIDI


# every character class that matters, much more often than uniform sampling gives
hostile = st.text(
    st.one_of(
        st.characters(codec=None),
        st.sampled_from([chr(c) for c in (*range(0, 0x20), *range(0x7F, 0xA0), *BIDI)]),
        st.sampled_from(["\u2028", "\u2029", "\ud800", "\udcff", "\\", "中", "\u0301"]),
    )
)


@given(hostile)
def test_no_dangerous_character_survives(text: str) -> None:
    out = visible(text)
    assert not any(dangerous(ch) for ch in out), ascii(out)
    assert "\n" not in out and "\t" not in out


@given(hostile)
def test_lines_mode_keeps_only_newlines_and_tabs(text: str) -> None:
    out = visible(text, lines=True)
    assert not any(dangerous(ch, lines=True) for ch in out), ascii(out)
    assert out.count("\n") == text.count("\n")  # \r\n reads as one newline


@given(st.text(st.characters(codec=None)).filter(str.isprintable))
def test_printable_text_is_unchanged(text: str) -> None:
    assert visible(text) == text
    assert visible(text, lines=True) == text


@given(hostile)
def test_escaping_twice_changes_nothing(text: str) -> None:
    once = visible(text)
    assert visible(once) == once
    assert visible(once, lines=True) == once
    lined = visible(text, lines=True)
    assert visible(lined, lines=True) == lined


def test_each_kind_is_spelled_out() -> None:
    assert visible("\x1b]52;c;Y3VybA==\x07") == "\\x1b]52;c;Y3VybA==\\x07"
    assert visible("\x1b]2;pwned\x1b\\") == "\\x1b]2;pwned\\x1b\\"
    assert visible("\x9b2J\x7f\x00") == "\\x9b2J\\x7f\\x00"
    assert visible("exe\u202etxt.\u2066x\u2069") == "exe\\u202etxt.\\u2066x\\u2069"
    assert visible("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert visible("a\r\nb\tc\rd\x1b", lines=True) == "a\nb\tc\\rd\\x1b"
    assert visible("name-\udcff") == "name-\\udcff"  # a non-UTF-8 file name byte


@given(st.recursive(hostile | st.integers() | st.none(), st.lists, max_leaves=8))
def test_json_is_terminal_safe_and_reads_back_the_same(data: object) -> None:
    out = visible_json({"title": data, "labels": {"k\u202e": "v\x9b"}})
    assert not any(dangerous(ch, lines=True) for ch in out), ascii(out)
    assert "\t" not in out
    assert json.loads(out) == {"title": data, "labels": {"k\u202e": "v\x9b"}}


def test_decoder_joins_what_reads_split() -> None:
    d = VisibleDecoder()
    pieces = [b"ok\r", b"\nwide \xe4", b"\xb8\xad bad \xff \x1b[2J", b" end\r"]
    out = "".join(d.feed(p) for p in pieces) + d.feed(b"", final=True)
    assert out == "ok\nwide 中 bad \\xff \\x1b[2J end\\r"


@given(
    st.lists(st.sampled_from(["a", "中", "e\u0301", "🙂", "\x1b", "\u202e"]), max_size=30).map(
        "".join
    )
)
def test_cells_pad_and_fit_measure_terminal_cells(text: str) -> None:
    shown = visible(text)
    assert cells(shown) == cell_len(shown)
    assert cells(pad(shown, 40)) == max(40, cells(shown))
    assert cells(pad(shown, 40, right=True)) == max(40, cells(shown))
    cut = fit(shown, 9)
    assert cells(cut) <= 9
    assert cut == shown or (cut.endswith("…") and cells(cut) >= 8)


def test_wide_and_combining_characters_take_their_cells() -> None:
    assert cells("中文") == 4 and cells("e\u0301") == 1 and cells("abc") == 3
    assert pad("中", 4) == "中  " and pad("e\u0301", 3, right=True) == "  e\u0301"
    assert fit("中文中文", 5) == "中文…"
