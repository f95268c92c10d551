"""The INCOMPLETE outcome: a run with too many failed requests gets no verdict (issue 19, point 6)."""

from __future__ import annotations

import pytest

from tunecheck.completeness import count_kinds, error_kind
from tunecheck.examples import Example
from tunecheck.pipeline.scoring import evaluate_task
from tunecheck.report import render_markdown
from tunecheck.results import RunResult
from tunecheck.spec import ParserSpec, Thresholds
from tunecheck.verdict import decide, exit_code

LABELS = ["billing", "refund", "card"]


def _task(n: int, failed: dict[str, list[str]], right: dict[str, int]):
    """Contender X is right on its first ``right[X]`` examples and failed (None) on the last
    ``len(failed[X])`` ones, whose error messages are ``failed[X]``."""
    gold = [LABELS[i % 3] for i in range(n)]
    examples = [Example(id=f"t{i}", input="q", label=g) for i, g in enumerate(gold)]
    outputs = {}
    for name, k in right.items():
        errors = failed.get(name, [])
        outs: list[str | None] = [
            g if i < k else LABELS[(LABELS.index(g) + 1) % 3] for i, g in enumerate(gold)
        ]
        for j in range(len(errors)):
            outs[n - 1 - j] = None
        outputs[name] = outs
    task = evaluate_task(
        "intent", examples, outputs, metrics=["accuracy"], primary_metric="accuracy",
        parser=ParserSpec(type="label", labels=LABELS), candidate="finetuned",
        baselines=["base"], n_resamples=500,
    )  # fmt: skip
    for c in task.contenders:
        c.error_kinds = count_kinds(failed.get(c.name, []))
    return task


def test_error_kinds_from_backend_messages() -> None:
    assert error_kind("failed after 6 attempts: timed out after 60 s") == "timeout"
    assert error_kind("failed after 3 attempts: HTTP 503: the engine is overloaded") == (
        "server error (HTTP 5xx)"
    )
    assert error_kind("HTTP 400: maximum context length") == "request refused (HTTP 4xx)"
    assert error_kind("failed after 2 attempts: HTTP 429 (rate limited): slow") == (
        "rate limited (HTTP 429)"
    )
    assert error_kind(
        "failed after 3 attempts: empty answer: the server sent message.content: null"
    ) == ("empty answer (content: null)")
    assert error_kind("malformed answer: choices hold str, not objects") == "malformed answer"
    assert error_kind("connection error (RemoteProtocolError: peer closed)") == "connection dropped"
    assert error_kind("CUDA out of memory") == "other"
    assert count_kinds(["timed out", "HTTP 500", "timed out"]) == {
        "timeout": 2,
        "server error (HTTP 5xx)": 1,
    }


def test_every_request_failed_is_incomplete_not_iterate() -> None:
    task = _task(40, {"finetuned": ["timed out after 60 s"] * 40}, {"base": 10, "finetuned": 0})
    verdict = decide([task], [], Thresholds())
    assert verdict.decision == "INCOMPLETE"
    assert "no verdict" in verdict.summary
    assert verdict.reasons == [
        "task 'intent': finetuned failed on 40 of 40 examples (100.0%, above the 5.0% allowed): "
        "40 timeout"
    ]
    assert "timeout" in verdict.next_steps[0]
    # a gate never passes a run without a verdict
    assert exit_code(verdict, "abandon") == 1 and exit_code(verdict, "iterate") == 1
    assert exit_code(verdict, "never") == 0
    md = render_markdown(RunResult(run_id="r", tasks=[task], verdict=verdict))
    assert "INCOMPLETE" in md and "40 timeout" in md


def test_share_above_the_threshold_lists_errors_by_kind_for_every_contender() -> None:
    # a strong gain that would be DEPLOY, but 6 of 100 candidate answers are missing
    cand_errors = ["HTTP 503: overloaded"] * 4 + ["empty answer: message.content: null"] * 2
    task = _task(
        100, {"finetuned": cand_errors, "base": ["timed out"]}, {"base": 30, "finetuned": 90}
    )
    verdict = decide([task], [], Thresholds())
    assert verdict.decision == "INCOMPLETE"
    assert sorted(verdict.reasons) == [
        "task 'intent': base failed on 1 of 100 examples (1.0%, within the 5.0% allowed): "
        "1 timeout",
        "task 'intent': finetuned failed on 6 of 100 examples (6.0%, above the 5.0% allowed): "
        "4 server error (HTTP 5xx), 2 empty answer (content: null)",
    ]
    # the same run with a looser threshold gets its verdict, and says what was dropped
    loose = decide([task], [], Thresholds(max_error_share=0.10))
    assert loose.decision == "DEPLOY"
    dropped = [r for r in loose.reasons if "dropped" in r]
    # both failed on the last example: 6 examples are missing from the paired comparison
    assert dropped == [
        "task 'intent': 6 of 100 examples dropped from the comparison with base by backend "
        "errors: finetuned failed on 6 of 100 (4 server error (HTTP 5xx), 2 empty answer "
        "(content: null)); base failed on 1 of 100 (1 timeout)"
    ]
    assert task.comparison().n == 94


def test_share_at_or_below_the_threshold_keeps_the_verdict() -> None:
    task = _task(100, {"finetuned": ["timed out"] * 5}, {"base": 30, "finetuned": 90})
    verdict = decide([task], [], Thresholds())
    assert verdict.decision == "DEPLOY"  # 5.0% is not above 5%
    assert any(
        "5 of 100 examples dropped" in r and "finetuned failed on 5" in r for r in verdict.reasons
    )
    clean = _task(100, {}, {"base": 30, "finetuned": 90})
    assert not any("dropped" in r for r in decide([clean], [], Thresholds()).reasons)


def test_max_error_share_is_validated() -> None:
    with pytest.raises(ValueError):
        Thresholds(max_error_share=1.5)
    assert Thresholds().max_error_share == 0.05
