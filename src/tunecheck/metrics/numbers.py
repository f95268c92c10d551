"""Numbers in generated text: the one ``parse_number`` and the one ``numbers_match``.

Tasks (the ``number`` parser, ``exact_match`` on numbers, ``numeric_match``) and probes
(arithmetic, GSM8K-style word problems, number lists) read and compare numbers here, so a
probe and a task never disagree about what "the answer 18" is.
"""

from __future__ import annotations

import math
import re
from typing import Any

# 1,234.5  12  .5  1.5e3: thousands separators, decimals, an exponent
_DIGITS = r"(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"
# A sign counts only where it cannot be a hyphen or a minus between two numbers ("3-4" ends
# with 4, not -4); a currency sign may sit between the sign and the digits ("-$5").
_NUMBER_RE = re.compile(
    rf"(?:(?<![\w.])(?P<sign>[-−+]))?(?:[$€£¥]\s?)?(?<![\w.])(?P<num>{_DIGITS})"
)
_FRACTION_RE = re.compile(r"(?<![\w.])([-−]?\d+)\s*/\s*(\d+)(?![\d.])")
_SIGNED = rf"[-−+]?{_DIGITS}"
# an explicit final answer wins over the last number (the last marker, if several)
_FINAL_MARKERS = (
    re.compile(rf"####\s*\$?\s*({_SIGNED})"),
    re.compile(rf"\\boxed\{{\s*\$?({_SIGNED})"),
    re.compile(rf"answer\s*(?:is|:|=)?\s*[:=]?\s*\**\s*\$?\s*({_SIGNED})", re.IGNORECASE),
)


def _to_float(sign: str | None, digits: str) -> float | None:
    try:
        value = float(digits.replace(",", ""))
    except ValueError:
        return None
    return -value if sign in ("-", "−") else value


def _signed_token(token: str) -> float | None:
    token = token.replace("−", "-")
    return _to_float(token[0], token[1:]) if token[0] in "-+" else _to_float(None, token)


def _matches(text: str) -> list[tuple[int, float]]:
    """(end position, value) of every number in ``text``."""
    found = []
    for m in _NUMBER_RE.finditer(text):
        value = _to_float(m["sign"], m["num"])
        if value is not None:
            found.append((m.end(), value))
    return found


def parse_number(text: Any) -> float | None:
    """The final numeric answer in ``text``, or ``None`` if there is none.

    An explicit marker wins (``#### 18``, ``\\boxed{18}``, ``answer is 18``; the last one);
    otherwise the last number. Thousands separators, currency signs, exponents and trailing
    units ("$1,234.50", "18 dollars", "45%", "1.5e3 m") are tolerated; a plain fraction
    ``3/4`` counts as 0.75 when it is the last number. A number (not a bool) is returned as
    a float.
    """
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, int | float):
        return float(text)
    text = str(text)
    if not text:
        return None
    for marker in _FINAL_MARKERS:
        hits = marker.findall(text)
        if hits:
            return _signed_token(hits[-1])
    numbers = _matches(text)
    fractions = list(_FRACTION_RE.finditer(text))
    if fractions and (not numbers or fractions[-1].end() >= numbers[-1][0]):
        num, den = fractions[-1].groups()
        if int(den) != 0:
            return int(num.replace("−", "-")) / int(den)
    return numbers[-1][1] if numbers else None


def parse_numbers(text: str) -> list[float]:
    """Every number in ``text``, in order (list answers such as a sorted sequence)."""
    return [value for _, value in _matches(text or "")]


def numbers_match(predicted: float | None, reference: Any) -> bool:
    """Equal up to float noise: a relative tolerance of 1e-6 (``18 == 18.0``,
    ``0.1 + 0.2 == 0.3``, ``1234.50 == "1,234.5"``; ``1234.5 != 1234.6``). A string reference
    is parsed with :func:`parse_number`."""
    if predicted is None or reference is None:
        return False
    ref = parse_number(reference)
    if ref is None:
        return False
    return math.isclose(predicted, ref, rel_tol=1e-6, abs_tol=1e-9)
