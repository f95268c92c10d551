"""Word-level differences between two outputs, as escaped HTML with the changes marked."""

from __future__ import annotations

import difflib
import re

from markupsafe import Markup, escape

_TOKEN = re.compile(r"\s+|[^\s]+")


def _words(text: str) -> list[str]:
    return _TOKEN.findall(text)


def word_diff(old: str | None, new: str | None) -> tuple[Markup, Markup]:
    """(old, new) as HTML: words only in ``old`` in ``<del>``, only in ``new`` in ``<ins>``.

    Whitespace runs are tokens of their own, so the texts keep their layout; every
    piece is HTML-escaped before it is wrapped.
    """
    a, b = _words(old or ""), _words(new or "")
    left: list[str] = []
    right: list[str] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old_part = escape("".join(a[i1:i2]))
        new_part = escape("".join(b[j1:j2]))
        if op == "equal":
            left.append(old_part)
            right.append(new_part)
            continue
        if i2 > i1:
            left.append(Markup("<del>%s</del>") % old_part)
        if j2 > j1:
            right.append(Markup("<ins>%s</ins>") % new_part)
    return Markup("").join(left), Markup("").join(right)
