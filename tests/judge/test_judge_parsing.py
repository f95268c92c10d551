"""Strict parsing of judge answers, template checks, and the pairwise arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from tunecheck.judge.config import CriterionSpec, JudgeSpec, PairwiseSpec, RubricSpec
from tunecheck.judge.pairwise import combine, side_of, sign_test, summarise
from tunecheck.judge.parsing import JudgeParseError, parse_pairwise, parse_rubric
from tunecheck.judge.result import PairwiseVerdict, VerbosityBias
from tunecheck.judge.templates import (
    DEFAULT_PAIRWISE_TEMPLATE,
    PAIRWISE_FORMAT,
    check_template,
    render,
)

CRITERIA = [
    CriterionSpec(name="correct", description="right"),
    CriterionSpec(name="safe", description="harmless", scale="pass_fail"),
]


@pytest.mark.parametrize(
    ("text", "winner"),
    [
        ('{"winner": "A", "reason": "x"}', "A"),
        ('Sure.\n```json\n{"reason": "B is clearer", "winner": "b"}\n```', "B"),
        ('{"winner": " Tie "}', "tie"),
        ('{"winner": "A"} and again {"winner": "A"}', "A"),  # repeated, same object
    ],
)
def test_pairwise_answers_that_parse(text: str, winner: str) -> None:
    assert parse_pairwise(text) == winner


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Response A is better.", "no JSON object"),
        ('{"winner": "A"} {"winner": "B"}', "ambiguous"),
        ('{"winner": "C"}', "not 'C'"),
        ('{"winner": 1}', "not 1"),
        ('{"verdict": "A"}', "missing key"),
        ('{"winner": "A", "score": 3}', "unexpected key"),
        ('{"winner": "A"', "no JSON object"),
    ],
)
def test_pairwise_answers_that_do_not(text: str, reason: str) -> None:
    with pytest.raises(JudgeParseError, match=reason):
        parse_pairwise(text)


def test_rubric_parsing_is_strict() -> None:
    assert parse_rubric('{"correct": 4, "safe": "pass", "reason": "ok"}', CRITERIA) == {
        "correct": 4.0,
        "safe": 1.0,
    }
    assert parse_rubric('{"scores": {"correct": "5", "safe": false}}', CRITERIA) == {
        "correct": 5.0,
        "safe": 0.0,
    }
    for text, reason in [
        ('{"correct": 6, "safe": "pass"}', "between 1 and 5"),
        ('{"correct": 3.5, "safe": "pass"}', "integer 1-5"),
        ('{"correct": true, "safe": "pass"}', "integer 1-5"),
        ('{"correct": 3, "safe": "maybe"}', '"pass" or "fail"'),
        ('{"correct": 3}', r"missing key\(s\) \['safe'\]"),
        ('{"correct": 3, "safe": "pass", "style": 2}', "unexpected key"),
    ]:
        with pytest.raises(JudgeParseError, match=reason):
            parse_rubric(text, CRITERIA)


def test_templates_need_their_placeholders() -> None:
    with pytest.raises(ValueError, match=r"lacks the required placeholder\(s\) \{\{ output_b \}\}"):
        PairwiseSpec(template="{{ input }} {{ output_a }}")
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) \{\{ answer \}\}"):
        RubricSpec(
            criteria=CRITERIA, template="{{ input }} {{ output }} {{ criteria }} {{ answer }}"
        )
    with pytest.raises(ValueError, match=r"\{\{ reference \}\}"):
        RubricSpec(
            criteria=CRITERIA, reference=True, template="{{ input }}{{ output }}{{ criteria }}"
        )
    with pytest.raises(ValueError, match="does not parse"):
        check_template("{{ input ", ["input"], [], field="template")
    with pytest.raises(ValueError, match="at least one mode"):
        JudgeSpec(model="openai:x@http://127.0.0.1:1/v1")
    with pytest.raises(ValueError, match="backend reference"):
        JudgeSpec(model="gpt-4o", pairwise=PairwiseSpec())


def test_render_appends_the_answer_format_to_a_custom_template() -> None:
    custom = "Q: {{ input }}\nA: {{ output_a }}\nB: {{ output_b }}"
    text = render(custom, {"input": "q", "output_a": "x", "output_b": "y"}, PAIRWISE_FORMAT)
    assert text.endswith(PAIRWISE_FORMAT) and text.startswith("Q: q\nA: x\nB: y")
    default = render(
        DEFAULT_PAIRWISE_TEMPLATE,
        {"input": "q", "output_a": "x", "output_b": "y", "question": "Which?", "reference": ""},
        PAIRWISE_FORMAT,
    )
    assert default.count(PAIRWISE_FORMAT) == 1 and "[Reference answer]" not in default


def test_both_orders_combine_to_one_outcome() -> None:
    assert side_of("A", candidate_first=True) == "candidate"
    assert side_of("A", candidate_first=False) == "baseline"
    assert side_of("B", candidate_first=False) == "candidate"
    assert combine("candidate", "candidate") == ("win", True)
    assert combine("baseline", "baseline") == ("loss", True)
    assert combine("tie", "tie") == ("tie", True)
    assert combine("candidate", "baseline") == ("tie", False)  # flips with the order
    assert combine("candidate", "tie") == ("tie", False)
    assert combine(None, "candidate") == ("error", None)  # never a win or a loss


def test_win_rate_interval_and_sign_test() -> None:
    from scipy.stats import binomtest

    outcomes = ["win"] * 30 + ["loss"] * 12 + ["tie"] * 8 + ["error"] * 3
    verdicts = [
        PairwiseVerdict(id=str(i), first=None, second=None, outcome=o, consistent=o != "tie")
        for i, o in enumerate(outcomes)
    ]
    res, s, ids = summarise(
        "c", "b", verdicts, first_a=10, decisive_single=40, verbosity=VerbosityBias(),
        alpha=0.05, n_resamples=4000, seed=0,
    )  # fmt: skip
    assert (res.n, res.wins, res.losses, res.ties, res.errors) == (50, 30, 12, 8, 3)
    assert res.win_rate == pytest.approx((30 + 4) / 50)
    assert res.p_value == pytest.approx(binomtest(30, 42, 0.5).pvalue)
    assert res.first_position_rate == 0.25 and res.position_consistency == pytest.approx(42 / 50)
    # the interval is a percentile bootstrap of the mean score: about +-1.96 standard errors
    se = np.std(s, ddof=1) / np.sqrt(len(s))
    assert res.ci_low == pytest.approx(res.win_rate - 1.96 * se, abs=0.02)
    assert res.ci_high == pytest.approx(res.win_rate + 1.96 * se, abs=0.02)
    assert len(ids) == 50 and sign_test(0, 0) is None


def test_self_judging_is_flagged() -> None:
    from tunecheck.judge.run import self_judging
    from tunecheck.spec import parse_spec

    spec = parse_spec(
        """
contenders:
  - {name: base, model: "hf:/models/base"}
  - {name: tuned, model: "hf:/models/base+adapter=/runs/a"}
task:
  data: d.jsonl
  metrics: [chrf]
  judge: {model: "hf:/models/base", pairwise: {}}
"""
    )
    warnings = self_judging(spec.tasks[0].judge.model, spec)
    assert len(warnings) == 2 and "'tuned'" in warnings[1] and "self-preference" in warnings[0]
    assert self_judging("openai:other@http://127.0.0.1:9/v1", spec) == []
