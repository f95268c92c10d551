"""Parse answers out of generated text: multiple-choice letters, words; numbers come from
:mod:`tunecheck.metrics.numbers`, shared with the task metrics.

Every parser returns ``None`` when it cannot find an answer; the caller scores that as
wrong and counts it as invalid.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tunecheck.metrics.numbers import numbers_match, parse_number, parse_numbers

__all__ = [
    "LETTERS",
    "numbers_match",
    "parse_letter",
    "parse_number",
    "parse_numbers",
    "parse_word",
]

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def parse_letter(text: str, n_choices: int, choices: Sequence[str] | None = None) -> int | None:
    """The 0-based index of the multiple-choice letter chosen in ``text``.

    Accepts "B", "(B)", "B.", "B) Paris", "The answer is B", "Answer: b", "**B**". When no
    letter is found and ``choices`` are given, a response that contains exactly one of the
    choice texts picks that choice. Anything else (no letter, several different letters) is
    ``None``.
    """
    if not text or n_choices < 1:
        return None
    valid = LETTERS[: min(n_choices, len(LETTERS))]
    cls = f"[{valid}{valid.lower()}]"
    stripped = text.strip().lstrip("*_# ").strip()
    # 1) an explicit "answer is X" / "answer: X" / "option X", the last one stated
    explicit = re.findall(
        rf"(?:answer|option|choice)\s*(?:is|would be|:)?\s*[:\-]?\s*[\*\(\[]*\s*({cls})(?![A-Za-z])",
        text,
        flags=re.IGNORECASE,
    )
    if explicit:
        return valid.index(explicit[-1].upper())
    # 2) the response opens with the letter: "B", "B.", "(b)", "B) Paris", "B: ..."
    m = re.match(rf"^[\(\[]?({cls})(?:[\)\]\.:,]|\s*$)", stripped)
    if m is None:
        # an upper-case letter followed by a space, unless it reads as the article "A"
        m = re.match(rf"^([{valid}])\s+(?![a-z])", stripped)
    if m:
        return valid.index(m.group(1).upper())
    # 3) a bracketed letter anywhere: "... is (C)"
    bracketed = {x.upper() for x in re.findall(rf"[\(\[]({cls})[\)\]]", text)}
    if len(bracketed) == 1:
        return valid.index(bracketed.pop())
    # 4) exactly one distinct stand-alone capital letter ("I think C is right"); "A"/"I"
    # followed by a lower-case word are the article and pronoun, not answers
    singles = {
        m.group(1)
        for m in re.finditer(rf"(?<![A-Za-z'])([{valid}])(?![A-Za-z'])", text)
        if not (m.group(1) in "AI" and re.match(r"\s+[a-z]", text[m.end() :]))
    }
    if len(singles) == 1:
        return valid.index(singles.pop())
    # 5) the text of exactly one choice
    if choices:
        low = text.lower()
        hits = [i for i, c in enumerate(choices) if c and c.strip().lower() in low]
        if len(hits) == 1:
            return hits[0]
    return None


def parse_word(text: str, candidates: Sequence[str]) -> str | None:
    """Which of ``candidates`` the response answers with (case-insensitive, whole words).

    "answer is X" / "Answer: X" wins; then a response that starts with a candidate; then the
    only candidate mentioned; when several are mentioned, the first one.
    """
    if not text:
        return None
    by_lower = {c.lower(): c for c in candidates}
    alternation = "|".join(re.escape(c) for c in sorted(by_lower, key=len, reverse=True))
    word = rf"(?<![\w])({alternation})(?![\w])"
    explicit = re.findall(rf"answer\s*(?:is|:)?\s*[:\-]?\s*\**\s*{word}", text, re.IGNORECASE)
    if explicit:
        return by_lower[explicit[-1].lower()]
    found = [m.group(1).lower() for m in re.finditer(word, text, re.IGNORECASE)]
    if not found:
        return None
    start = re.match(rf"^\W*{word}", text.strip(), re.IGNORECASE)
    if start:
        return by_lower[start.group(1).lower()]
    return by_lower[found[0]]
