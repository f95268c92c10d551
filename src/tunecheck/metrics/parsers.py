"""Turn generated text into a prediction: a label, a number, a JSON value or a string.

Configured by :class:`tunecheck.core.Parser` (``type``: raw, label, json,
number, regex). Every parser returns ``None`` when the text yields no valid
prediction; the metrics score that as wrong and count it as *invalid*.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from tunecheck.core.config import ParserLike
from tunecheck.errors import SpecError
from tunecheck.metrics.numbers import parse_number
from tunecheck.registry import Registry

_WS = re.compile(r"\s+")
# what may wrap an answer without changing it: quotes, brackets, trailing full stops...
_EDGE = "\"'`“”‘’«»()[]{}<>.,;:!?*_ \t\n"
_FENCE = re.compile(r"^```[ \t]*(?:json)?[ \t]*\n?(.*?)\n?[ \t]*```$", re.DOTALL | re.IGNORECASE)


def normalize_text(text: str, *, case_sensitive: bool = False) -> str:
    """Collapse whitespace, strip surrounding quotes/punctuation, fold case unless told not to."""
    text = _WS.sub(" ", str(text)).strip(_EDGE)
    return text if case_sensitive else text.casefold()


def parse_json(text: str) -> tuple[bool, Any]:
    """Parse an output as JSON, tolerating one code fence around it and nothing else.

    Returns ``(ok, value)``. Prose before or after the JSON, trailing commas and
    single quotes are malformed: the model was asked for JSON and did not give it.
    """
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        return True, json.loads(body)
    except (json.JSONDecodeError, ValueError):
        return False, None


@lru_cache(maxsize=256)
def _label_regex(labels: tuple[str, ...], case_sensitive: bool) -> re.Pattern[str]:
    # longest first so "not spam" wins over "spam" at the same position
    alts = sorted(
        (re.escape(normalize_text(lab, case_sensitive=True)) for lab in labels),
        key=len,
        reverse=True,
    )
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.compile(r"(?<!\w)(?:" + "|".join(alts) + r")(?!\w)", flags)


def parse_label(
    text: str, labels: Sequence[str], *, mode: str = "first", case_sensitive: bool = False
) -> str | None:
    """Map text to one of ``labels``.

    ``exact``: the whole (normalised) text must be a label. ``first``: an exact
    match if there is one, else the first label mentioned as a whole word.
    """
    norm = normalize_text(text, case_sensitive=case_sensitive)
    lookup = {normalize_text(lab, case_sensitive=case_sensitive): lab for lab in labels}
    if norm in lookup:
        return lookup[norm]
    if mode == "exact" or not labels:
        return None
    found = _label_regex(tuple(labels), case_sensitive).search(_WS.sub(" ", str(text)))
    if found is None:
        return None
    return lookup.get(normalize_text(found.group(0), case_sensitive=case_sensitive))


@lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.DOTALL)
    except re.error as err:
        raise SpecError(
            f"parser pattern {pattern!r} is not a valid regular expression: {err}",
            where="task.parser.pattern",
        ) from None


def apply_regex(text: str, pattern: str) -> str | None:
    """The first match's first capture group (or the whole match when there is no group)."""
    found = _compile(pattern).search(text)
    if found is None:
        return None
    return found.group(1) if found.re.groups else found.group(0)


ParseFn = Callable[[str, ParserLike, Sequence[str] | None], Any]
#: parser types by name (``task.parser.type``): built-ins below; a module in the spec's
#: ``plugins:`` or an installed ``tunecheck.parsers`` entry point adds more
PARSERS: Registry[ParseFn] = Registry("parser type", "tunecheck.parsers")


def parser(name: str) -> Callable[[ParseFn], ParseFn]:
    """Register ``fn(text, parser, labels) -> prediction | None`` as parser type ``name``
    (``None``: no valid prediction, scored wrong and counted invalid)."""
    return PARSERS.register(name)


@parser("raw")
def _raw(text: str, p: ParserLike, labels: Sequence[str] | None) -> Any:
    return text


@parser("number")
def _number(text: str, p: ParserLike, labels: Sequence[str] | None) -> Any:
    return parse_number(text)


@parser("json")
def _json(text: str, p: ParserLike, labels: Sequence[str] | None) -> Any:
    ok, value = parse_json(text)
    return value if ok else None


@parser("regex")
def _regex(text: str, p: ParserLike, labels: Sequence[str] | None) -> Any:
    if not p.pattern:
        raise SpecError("a regex parser needs `pattern`", where="task.parser.pattern")
    captured = apply_regex(text, p.pattern)
    if captured is None or not p.labels:
        return captured
    return parse_label(captured, p.labels, mode="exact", case_sensitive=p.case_sensitive)


@parser("label")
def _label(text: str, p: ParserLike, labels: Sequence[str] | None) -> Any:
    if not labels:
        raise SpecError(
            "a label parser needs labels: set `parser.labels` or map a label column",
            where="task.parser.labels",
        )
    return parse_label(text, labels, mode=p.mode, case_sensitive=p.case_sensitive)


def parse_output(text: str, parser: ParserLike, labels: Sequence[str] | None = None) -> Any:
    """Apply ``parser`` to one output; ``None`` means invalid (no prediction).

    raw → the text; label → one of ``labels`` (``parser.labels`` wins over the task's);
    regex → the capture, then mapped to a label when labels are known; number →
    :func:`tunecheck.metrics.numbers.parse_number`; json → the parsed value; any other type
    → the function registered under that name (:data:`PARSERS`).
    """
    fn = PARSERS.get(parser.type, where="task.parser.type")
    return fn(text, parser, parser.labels or labels)
