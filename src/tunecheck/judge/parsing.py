"""Strict parsing of judge answers: one JSON object with exactly the expected keys and values.

Anything else (prose, two conflicting objects, a missing criterion, a score of 7) is a
:class:`JudgeParseError` with a reason; the judge stage retries once with
:func:`repair_message` and otherwise records a judge error, never a win or a loss.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Literal

Winner = Literal["A", "B", "tie"]


class JudgeParseError(ValueError):
    """The judge's answer is not the JSON object the prompt asked for."""


def extract_json_object(text: str) -> dict[str, Any]:
    """The single top-level JSON object in ``text`` (code fences and surrounding words allowed).

    Several *different* objects are ambiguous and refused; none is refused.
    """
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    pos = 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            break
        try:
            obj, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            pos = start + 1
            continue
        if isinstance(obj, dict):
            found.append(obj)
        pos = end
    if not found:
        raise JudgeParseError("no JSON object found in the answer")
    first = found[0]
    if any(o != first for o in found[1:]):
        raise JudgeParseError(f"{len(found)} different JSON objects in the answer (ambiguous)")
    return first


def _check_keys(obj: dict[str, Any], expected: Sequence[str], optional: Sequence[str]) -> None:
    missing = [k for k in expected if k not in obj]
    extra = sorted(set(obj) - set(expected) - set(optional))
    if missing:
        raise JudgeParseError(f"missing key(s) {missing}")
    if extra:
        raise JudgeParseError(f"unexpected key(s) {extra}")


def parse_pairwise(text: str) -> Winner:
    """``"A"``, ``"B"`` or ``"tie"`` from ``{"winner": ..., "reason": ...}``."""
    obj = extract_json_object(text)
    _check_keys(obj, ["winner"], ["reason"])
    value = obj["winner"]
    if not isinstance(value, str):
        raise JudgeParseError(f'winner must be "A", "B" or "tie", not {value!r}')
    norm = value.strip().lower()
    if norm == "a":
        return "A"
    if norm == "b":
        return "B"
    if norm == "tie":
        return "tie"
    raise JudgeParseError(f'winner must be "A", "B" or "tie", not {value!r}')


def _scale_value(name: str, value: Any, scale: str) -> float:
    if scale == "pass_fail":
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, str) and value.strip().lower() in ("pass", "fail"):
            return 1.0 if value.strip().lower() == "pass" else 0.0
        raise JudgeParseError(f'{name} must be "pass" or "fail", not {value!r}')
    if isinstance(value, bool):
        raise JudgeParseError(f"{name} must be an integer 1-5, not {value!r}")
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number != int(number):
        raise JudgeParseError(f"{name} must be an integer 1-5, not {value!r}")
    if not 1 <= number <= 5:
        raise JudgeParseError(f"{name} must be between 1 and 5, not {value!r}")
    return number


def parse_rubric(text: str, criteria: Sequence[Any]) -> dict[str, float]:
    """Criterion name -> score (1-5, or 1.0 / 0.0 for pass / fail); every criterion required."""
    obj = extract_json_object(text)
    if isinstance(obj.get("scores"), dict):  # {"scores": {...}} is a common, harmless variant
        obj = {**obj["scores"], **({"reason": obj["reason"]} if "reason" in obj else {})}
    _check_keys(obj, [c.name for c in criteria], ["reason"])
    return {c.name: _scale_value(c.name, obj[c.name], c.scale) for c in criteria}


def repair_message(reason: str, format_instructions: str) -> str:
    """The follow-up turn sent once after an unparsable answer."""
    return (
        f"Your answer could not be read: {reason}. {format_instructions} "
        "Do not write anything before or after the JSON object."
    )
