"""The console's last line of defence: no widget can draw a control character.

Every line any widget renders passes through the app's line filters on its way
to the terminal (``FarroApp.get_line_filters``). :class:`VisibleFilter` runs
:func:`farro_core.visible.visible` over each segment, so an escape sequence in a
title, a label, a log line, a notification or any view added later reaches the
terminal as text (``\\x1b]52;…``), never as a command to it.

Views still escape their strings themselves before laying them out: control
characters measure zero cells, so escaping here, after layout, can push a line
past its width; such a line is cut back to its width, never wrapped.
"""

from __future__ import annotations

from rich.segment import Segment
from textual.color import Color
from textual.filter import LineFilter

from farro_core.visible import visible


class VisibleFilter(LineFilter):
    """Escape what a view forgot to; lines that hold nothing to escape pass as they are."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        whole = "".join([seg.text for seg in segments])
        if visible(whole) is whole:  # the common case, in one pass: nothing to escape
            return segments
        out: list[Segment] | None = None
        for i, seg in enumerate(segments):
            text = visible(seg.text)
            if text is seg.text:  # visible() returns its argument when nothing changes
                if out is not None:
                    out.append(seg)
                continue
            if out is None:
                out = segments[:i]
            out.append(Segment(text, seg.style, seg.control))
        if out is None:
            return segments
        width = Segment.get_line_length(segments)
        return Segment.adjust_line_length(out, width, pad=True)


#: the one instance every widget of the console draws through
VISIBLE_FILTER = VisibleFilter()
