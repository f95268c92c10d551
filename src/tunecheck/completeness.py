"""Is there enough of a run to judge? Backend errors, by kind, and the INCOMPLETE rule.

A request that failed after every retry is never scored, so a contender's metric is
computed on fewer examples, and the paired comparison only on the examples both
contenders answered. Above ``thresholds.max_error_share`` failed examples (of any
contender, on any task) a run gets no verdict at all: it ends **INCOMPLETE**, with
the errors listed by kind. Below it the verdict stands, and its reasons say how many
examples were dropped and from which contender.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from tunecheck.core.config import Thresholds
from tunecheck.results import TaskResult, Verdict

#: (pattern in the error message, kind), first match wins
ERROR_KINDS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"timed out"), "timeout"),
    (re.compile(r"HTTP 429"), "rate limited (HTTP 429)"),
    (re.compile(r"HTTP 5\d\d|HTTP 408"), "server error (HTTP 5xx)"),
    (re.compile(r"HTTP 4\d\d"), "request refused (HTTP 4xx)"),
    (re.compile(r"connection error"), "connection dropped"),
    (re.compile(r"empty answer"), "empty answer (content: null)"),
    (re.compile(r"malformed answer|without choices|not JSON"), "malformed answer"),
]


def error_kind(message: str | None) -> str:
    """A short kind for a backend error message (``other`` when none matches)."""
    text = message or ""
    return next((kind for pattern, kind in ERROR_KINDS if pattern.search(text)), "other")


def count_kinds(messages: Iterable[str | None]) -> dict[str, int]:
    """Errors per kind, most frequent first."""
    return dict(Counter(error_kind(m) for m in messages).most_common())


def _kinds_text(kinds: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in kinds.items()) or "kind unknown"


def _failures(
    tasks: Sequence[TaskResult],
) -> list[tuple[TaskResult, str, int, int, dict[str, int]]]:
    """(task, contender, errors, examples, kinds) for every contender that lost examples."""
    return [
        (t, c.name, c.errors, c.n, c.error_kinds) for t in tasks for c in t.contenders if c.errors
    ]


def incomplete_verdict(tasks: Sequence[TaskResult], thresholds: Thresholds) -> Verdict | None:
    """The INCOMPLETE verdict when any contender failed on too many examples, else None."""
    limit = thresholds.max_error_share
    failures = _failures(tasks)
    over = [f for f in failures if f[3] and f[2] / f[3] > limit]
    if not over:
        return None
    reasons = [
        f"task {t.name!r}: {name} failed on {errors} of {n} examples "
        f"({errors / n:.1%}{', above' if (t, name, errors, n, kinds) in over else ', within'} "
        f"the {limit:.1%} allowed): {_kinds_text(kinds)}"
        for t, name, errors, n, kinds in failures
    ]
    total: Counter[str] = Counter()
    for *_, kinds in over:
        total.update(kinds)
    steps = [
        "fix what made the requests fail ("
        + ", ".join(kind for kind, _ in total.most_common())
        + "), then run the same spec again: stored answers are reused and only the failed "
        "requests are sent again",
        f"if these examples may be dropped, raise thresholds.max_error_share (now {limit:g})",
    ]
    return Verdict(
        decision="INCOMPLETE",
        summary="no verdict: too many requests failed to compare the contenders fairly",
        reasons=reasons,
        next_steps=steps,
    )


def dropped_reasons(tasks: Sequence[TaskResult]) -> list[str]:
    """One reason per task that lost examples to backend errors (below the INCOMPLETE share)."""
    out = []
    for t in tasks:
        lost = [c for c in t.contenders if c.errors]
        if not lost:
            continue
        comp = t.comparison()
        who = "; ".join(
            f"{c.name} failed on {c.errors} of {c.n} ({_kinds_text(c.error_kinds)})" for c in lost
        )
        out.append(
            f"task {t.name!r}: {t.n_examples - comp.n} of {t.n_examples} examples dropped from the "
            f"comparison with {t.strongest_baseline} by backend errors: {who}"
        )
    return out
