"""The one way a string from a job, an agent, a check or the disk reaches a terminal.

A title holding ``ESC ] 52 ; c ; … BEL`` writes the operator's clipboard when
merely listed; ``ESC [ 2 J`` clears the screen; U+202E makes
``photo<U+202E>gpj.exe`` read ``photoexe.jpg``. :func:`visible` spells every such character out as a
backslash escape (``\\x1b``, ``\\x9b``, ``\\u202e``), so what the operator sees
is what the string holds and nothing else reaches the terminal. Escaping ESC
itself defuses every sequence it would start (CSI, OSC, DCS, …): their
remaining bytes are plain text.

The CLI prints only through it (its ``_out`` and ``_err``; JSON through
:func:`visible_json`), and the console applies it to every line any widget
draws (``farro_tui.safety``). Printable text, backslashes included, passes
unchanged, so applying it twice changes nothing.
"""

from __future__ import annotations

import codecs
import functools
import re
from typing import Any

# C0 and DEL and C1 (what terminals act on); bidi embeddings, overrides, isolates
# and marks (what reorders text as shown); line and paragraph separators (line
# breaks to some renderers); lone surrogates (file names read with surrogateescape:
# unprintable, and fatal to a strict UTF-8 stream).
_DANGER = r"\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_SOURCES = {
    "line": rf"[\x00-\x1f{_DANGER}]",
    # as above, but newline and tab are kept (prompts, logs, check output)
    "lines": rf"[\x00-\x08\x0b-\x1f{_DANGER}]",
    # what json.dumps leaves unescaped with ensure_ascii=False (it escapes C0 itself)
    "json": rf"[{_DANGER}]",
}


@functools.cache
def _pattern(kind: str) -> re.Pattern[str]:
    # compiled on first use: each takes ~0.5 ms, and `farro submit` starts in a hurry
    return re.compile(_SOURCES[kind])


_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    o = ord(ch)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def visible(text: str, *, lines: bool = False) -> str:
    """``text`` with every control, bidi and separator character written out as an escape.

    ``lines=True`` keeps newlines and tabs (a prompt, a log), and reads ``\\r\\n``
    as a newline; a lone ``\\r`` is escaped, since it lets a later part of a line
    hide an earlier one.
    """
    if text.isascii() and text.isprintable():  # the common case: nothing to do
        return text
    if lines and "\r" in text:
        text = text.replace("\r\n", "\n")
    pattern = _pattern("lines" if lines else "line")
    if pattern.search(text) is None:
        return text
    return pattern.sub(_escape, text)


def visible_json(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON that is safe on a terminal and still reads back the same.

    ``json.dumps`` escapes C0 but passes DEL, C1, bidi controls and lone
    surrogates raw; those are written as ``\\u`` escapes (``\\u202e``) here. Outside
    strings JSON is ASCII, so every such character is inside a string.
    """
    import json  # not at the top: most CLI commands print no JSON

    text = json.dumps(data, indent=indent, ensure_ascii=False, default=str)
    return _pattern("json").sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class VisibleDecoder:
    """A log's bytes, read piece by piece, as :func:`visible` text (newlines, tabs kept).

    A UTF-8 character or a ``\\r\\n`` split between two reads is joined; bytes
    that are not UTF-8 are shown as ``\\xNN``.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="backslashreplace")
        self._held = ""

    def feed(self, data: bytes, *, final: bool = False) -> str:
        text = self._held + self._decoder.decode(data, final)
        self._held = ""
        if text.endswith("\r") and not final:  # maybe the first half of \r\n
            text, self._held = text[:-1], "\r"
        return visible(text, lines=True)


# Column layout by terminal cells, not code points: 中 takes two cells, e + U+0301
# one. rich (a dependency already) keeps the width tables; it is imported on first
# use so that commands printing no table do not pay for it.


def cells(text: str) -> int:
    """How many terminal cells ``text`` takes."""
    if text.isascii() and text.isprintable():  # the common case: one cell each
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


def pad(text: str, width: int, *, right: bool = False) -> str:
    """``text`` padded with spaces to ``width`` cells (on the left when ``right``)."""
    fill = " " * max(0, width - cells(text))
    return fill + text if right else text + fill


def fit(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` cells, ending in ``…`` when cut."""
    if cells(text) <= width:
        return text
    from rich.cells import set_cell_size

    return set_cell_size(text, width - 1) + "…" if width > 0 else ""
