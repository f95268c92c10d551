"""The length confound: lengths in every report, the paired length regression vs statsmodels,
and a verdict that refuses to DEPLOY on a gain that only longer outputs explain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from tunecheck.examples import Example
from tunecheck.length import count_tokens, length_stats, ols_hc3
from tunecheck.pipeline.scoring import evaluate_task
from tunecheck.report import render_json, render_markdown, render_terminal
from tunecheck.results import RunResult
from tunecheck.spec import ParserSpec, Thresholds
from tunecheck.verdict import decide

DATA = Path(__file__).resolve().parents[1] / "data" / "text"


def test_ols_hc3_equals_statsmodels():
    import statsmodels.api as sm  # seconds to import: not at collection

    rng = np.random.default_rng(11)
    for n, hetero in ((40, 0.0), (200, 1.5), (25, 3.0)):
        x = rng.normal(3, 4, n)
        y = 0.02 + 0.01 * x + rng.normal(0, 0.05 + hetero * 0.01 * np.abs(x), n)
        ours = ols_hc3(y, x)
        fit = sm.OLS(y, sm.add_constant(x)).fit(cov_type="HC3")
        assert ours is not None
        np.testing.assert_allclose([ours.intercept, ours.slope], fit.params, rtol=1e-10)
        np.testing.assert_allclose([ours.intercept_se, ours.slope_se], fit.bse, rtol=1e-10)
        np.testing.assert_allclose(
            [ours.intercept_p, ours.slope_p], fit.pvalues, rtol=1e-8, atol=1e-300
        )
    assert ols_hc3(np.ones(10), np.full(10, 2.0)) is None  # no length variation: nothing to fit


def test_length_stats_prefers_model_tokens():
    outputs = ["one two three.", None, "four five"]
    with_model = length_stats("a", outputs, [4, None, 2])
    assert with_model.n == 2 and with_model.mean_words == 2.5
    assert with_model.mean_tokens == 3.0 and with_model.tokens_from == "model tokenizer"
    fallback = length_stats("a", outputs, None)
    assert fallback.mean_tokens == (count_tokens("one two three.") + 2) / 2 == 3.0
    assert fallback.tokens_from.startswith("regex")


def _summaries(n: int = 150):
    rows = [json.loads(x) for x in (DATA / "scitldr_300.jsonl").read_text().splitlines()[:n]]
    examples = [Example(id=r["id"], input=r["lead2"], reference=r["summaries"]) for r in rows]
    return rows, examples


def _ref_words_missing(output: str, refs: list[str]) -> list[str]:
    have = set(output.lower().split())
    return [w for w in refs[0].split() if w.lower() not in have]


def _evaluate(examples, base, cand, metrics, **kw):
    return evaluate_task(
        "summaries", examples, {"base": base, "finetuned": cand}, metrics=metrics,
        primary_metric=metrics[0], parser=ParserSpec(), candidate="finetuned",
        baselines=["base"], n_resamples=1000, **kw,
    )  # fmt: skip


def test_gain_from_padding_is_explained_by_longer_outputs():
    rows, examples = _summaries()
    base = [r["lead2"].split("\n")[0] for r in rows]
    # the "fine-tune" only appends 0..11 words of the reference: recall rises with length alone
    cand = [
        b + " " + " ".join(_ref_words_missing(b, r["summaries"])[: i % 12])
        for i, (b, r) in enumerate(zip(base, rows, strict=True))
    ]
    result = _evaluate(
        examples, base, cand, ["rouge1", "rouge_l"],
        metric_options={"rouge1": {"measure": "recall"}},
        completion_tokens={"base": [len(b.split()) + 1 for b in base], "finetuned": None},
    )  # fmt: skip
    comp = result.comparison()
    assert comp.significant and comp.delta > 0  # the raw gain looks real
    adj = result.length_adjustment()
    assert adj is not None and adj.explained_by_length
    assert adj.mean_length_diff_words == pytest.approx(
        np.mean([len(c.split()) - len(b.split()) for b, c in zip(base, cand, strict=True)])
    )
    assert adj.adjusted_p >= 0.05 and adj.per_word > 0 and adj.per_word_p < 0.05
    verdict = decide(result, [], Thresholds())
    assert verdict.decision == "ITERATE"
    assert verdict.summary == "promising but not ready: the gain is explained by longer outputs"
    assert "the gain is explained by longer outputs" in verdict.reasons[0]

    lengths = {s.contender: s for s in result.lengths}
    assert lengths["finetuned"].mean_words > lengths["base"].mean_words
    assert lengths["base"].tokens_from == "model tokenizer"  # reported by the backend
    assert lengths["finetuned"].tokens_from.startswith(
        "regex"
    )  # none reported: documented fallback

    report = RunResult(run_id="r1", candidate="finetuned", tasks=[result], verdict=verdict)
    md = render_markdown(report)
    assert "Mean output length: finetuned" in md and "Δ at equal length" in md
    assert "explained by longer outputs" in md
    console = Console(record=True, width=200)
    render_terminal(report, console)
    text = console.export_text()
    assert "mean output length:" in text and "length-adjusted" in text
    data = json.loads(render_json(report))
    assert data["tasks"][0]["lengths"][0]["mean_words"] > 0
    assert data["tasks"][0]["length_adjusted"][0]["explained_by_length"] is True


def test_gain_at_equal_length_still_deploys():
    rows, examples = _summaries()
    base = [r["lead2"].split("\n")[0] for r in rows]
    cand = []
    for b, r in zip(base, rows, strict=True):
        words = b.split()
        new = _ref_words_missing(b, r["summaries"])[:4]
        # swap the last words for reference words: same length, better content
        cand.append(" ".join(words[: len(words) - len(new)] + new))
    assert [len(c.split()) for c in cand] == [len(b.split()) for b in base]
    result = _evaluate(examples, base, cand, ["rouge1"])
    assert result.comparison().significant
    adj = result.length_adjustment()
    assert adj.explained_by_length is False and adj.adjusted_delta is None
    assert "equal output lengths" in adj.note
    assert decide(result, [], Thresholds()).decision == "DEPLOY"


def test_real_gain_with_longer_outputs_is_not_blamed_on_length():
    rows, examples = _summaries()
    base = [r["lead2"].split("\n")[0] for r in rows]
    # better content (reference words swapped in) AND a few unrelated extra words
    cand = []
    for i, (b, r) in enumerate(zip(base, rows, strict=True)):
        words = b.split()
        new = _ref_words_missing(b, r["summaries"])[:4]
        cand.append(" ".join(words[: len(words) - len(new)] + new + ["indeed"] * (i % 4)))
    result = _evaluate(examples, base, cand, ["rouge1"])
    adj = result.length_adjustment()
    assert result.comparison().significant and adj.adjusted_p < 0.05
    assert not adj.explained_by_length and adj.note == "the gain holds at equal output length"
    assert decide(result, [], Thresholds()).decision == "DEPLOY"


def test_parsed_answer_metrics_report_but_do_not_gate():
    # a classifier that answers "The category is X." when right and "Y" when wrong: longer
    # outputs go with correct answers, but the label, not the length, is what is scored
    labels = ["a", "b"]
    examples = [Example(id=str(i), input="q", label=labels[i % 2]) for i in range(200)]
    rng = np.random.default_rng(0)
    right = rng.random(200) < 0.8
    cand = [
        f"The category is {e.label}." if r else labels[1 - i % 2]
        for i, (e, r) in enumerate(zip(examples, right, strict=True))
    ]
    base = [labels[i % 2] if rng.random() < 0.5 else labels[1 - i % 2] for i in range(200)]
    result = evaluate_task(
        "intent", examples, {"base": base, "finetuned": cand}, metrics=["accuracy"],
        primary_metric="accuracy", parser=ParserSpec(type="label", labels=labels),
        candidate="finetuned", baselines=["base"], n_resamples=500,
    )  # fmt: skip
    adj = result.length_adjustment()
    assert adj is not None and not adj.explained_by_length
    # the rule WOULD fire (no gain at equal length) were accuracy length-sensitive
    assert adj.raw_significant and (adj.adjusted_delta <= 0 or adj.adjusted_p >= 0.05)
    assert "reported only" in adj.note
    assert decide(result, [], Thresholds()).decision == "DEPLOY"


def test_a_judge_score_gain_from_length_alone_does_not_deploy():
    """Judge scores are length-sensitive: a verbosity-biased judge's gain is refused too."""
    import tunecheck.judge.config  # noqa: F401  (registers the judge metrics' metadata)
    from tunecheck.metrics import MetricScores

    rows, examples = _summaries()
    base = [r["lead2"].split("\n")[0] for r in rows]
    extra = [i % 12 for i in range(len(rows))]
    cand = [b + " indeed" * k for b, k in zip(base, extra, strict=True)]
    ids = [e.id for e in examples]
    # the judge's 0-1 rubric score grows with every extra word and with nothing else
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, len(rows))
    score_base = np.clip(0.4 + noise, 0, 1)
    score_cand = np.clip(
        0.4 + noise + 0.03 * np.array(extra) + rng.normal(0, 0.05, len(rows)), 0, 1
    )

    def judged(s):
        return {"judge_score": MetricScores("judge_score", float(s.mean()), s, ids, "continuous")}

    result = _evaluate(
        examples, base, cand, ["judge_score"],
        extra_scores={"base": judged(score_base), "finetuned": judged(score_cand)},
    )  # fmt: skip
    assert result.comparison().significant and result.comparison().delta > 0
    adj = result.length_adjustment()
    assert adj.explained_by_length and adj.per_word > 0
    verdict = decide(result, [], Thresholds())
    assert verdict.decision == "ITERATE"
    assert "explained by longer outputs" in verdict.summary
