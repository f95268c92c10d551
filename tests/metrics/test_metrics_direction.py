"""Metric direction: a lower-is-better metric must never invert the verdict."""

from __future__ import annotations

import numpy as np
import pytest

from tunecheck.examples import Example
from tunecheck.metrics import METRIC_INFO, MetricScores, higher_is_better, metric, score_outputs
from tunecheck.pipeline.scoring import evaluate_task, probe_result, probe_status
from tunecheck.spec import ParserSpec, Thresholds
from tunecheck.training.curves import _direction
from tunecheck.verdict import decide

TH = Thresholds()


@metric("test_words_lower_better", higher_is_better=False, kind="continuous")
def _words(outputs, examples, ctx):
    per = np.array([len(o.split()) for o in outputs], dtype=float)
    return MetricScores(
        "test_words_lower_better", per.mean(), per, [e.id for e in examples], "continuous"
    )


def test_registry_metadata():
    assert METRIC_INFO["ter"].higher_is_better is False
    assert METRIC_INFO["ter"].kind == "corpus" and METRIC_INFO["ter"].reference
    assert METRIC_INFO["rouge_l"].higher_is_better and METRIC_INFO["bleu"].higher_is_better
    assert higher_is_better("test_words_lower_better") is False
    assert higher_is_better("accuracy") is True
    # the score objects carry it too, so the statistics never need the registry
    ex = [Example(id="a", input="x", reference="b")]
    scores = score_outputs(["ter", "chrf", "test_words_lower_better"], ["b c"], ex, ParserSpec())
    assert not scores["ter"].higher_is_better and scores["chrf"].higher_is_better
    assert not scores["test_words_lower_better"].higher_is_better


def _translation(n: int = 60):
    rng = np.random.default_rng(3)
    words = [
        "the",
        "a",
        "cat",
        "dog",
        "sat",
        "ran",
        "on",
        "under",
        "mat",
        "house",
        "quickly",
        "slowly",
        "red",
        "big",
    ]
    refs = [" ".join(rng.choice(words, size=8)) for _ in range(n)]
    examples = [Example(id=f"s{i}", input="translate", reference=r) for i, r in enumerate(refs)]

    def noisy(ref: str, k: int) -> str:
        toks = ref.split()
        for j in rng.choice(len(toks), size=k, replace=False):
            toks[j] = "xyz"
        return " ".join(toks)

    good = [noisy(r, 1) for r in refs]  # one wrong word in eight
    bad = [noisy(r, 5) for r in refs]  # five wrong words in eight
    return examples, good, bad


@pytest.mark.parametrize("metric_name", ["ter", "test_words_lower_better"])
def test_lower_is_better_metric_deploys_the_better_candidate(metric_name):
    examples, good, bad = _translation()
    if metric_name == "test_words_lower_better":  # the candidate is terser, same content
        good = [" ".join(g.split()[:4]) for g in good]
        bad = [b + " and so on and so forth" for b in bad]
    # the candidate is better: lower TER / fewer words, i.e. a NEGATIVE delta
    result = evaluate_task(
        "mt", examples, {"base": bad, "finetuned": good}, metrics=[metric_name],
        primary_metric=metric_name, parser=ParserSpec(), candidate="finetuned",
        baselines=["base"], n_resamples=1000,
    )  # fmt: skip
    comp = result.comparison()
    assert comp.higher_is_better is False
    assert comp.delta < 0 and comp.significant
    gain, lo, hi = comp.improvement()
    assert gain == -comp.delta and lo == -comp.ci_high and hi == -comp.ci_low and lo > 0
    verdict = decide(result, [], TH)
    assert verdict.decision == "DEPLOY", verdict.reasons
    assert "lower is better" in verdict.reasons[0]

    # swap the roles: now the candidate is worse (higher TER), which must ABANDON
    swapped = evaluate_task(
        "mt", examples, {"base": good, "finetuned": bad}, metrics=[metric_name],
        primary_metric=metric_name, parser=ParserSpec(), candidate="finetuned",
        baselines=["base"], n_resamples=1000,
    )  # fmt: skip
    assert swapped.comparison().delta > 0
    assert decide(swapped, [], TH).decision == "ABANDON"


def test_strongest_baseline_is_the_lowest_ter():
    examples, good, bad = _translation()
    result = evaluate_task(
        "mt", examples, {"weak": bad, "strong": good, "finetuned": good}, metrics=["ter", "chrf"],
        primary_metric="ter", parser=ParserSpec(), candidate="finetuned",
        baselines=["weak", "strong"], n_resamples=500,
    )  # fmt: skip
    assert result.strongest_baseline == "strong"
    by_chrf = evaluate_task(
        "mt", examples, {"weak": bad, "strong": good, "finetuned": good}, metrics=["chrf", "ter"],
        primary_metric="chrf", parser=ParserSpec(), candidate="finetuned",
        baselines=["weak", "strong"], n_resamples=500,
    )  # fmt: skip
    assert by_chrf.strongest_baseline == "strong"


def test_probe_regression_of_a_lower_is_better_metric():
    # a 20% relative INCREASE of an error rate is a regression; a decrease is not
    assert probe_status(0.20, TH, higher_is_better=False) == "FAIL"
    assert probe_status(-0.20, TH, higher_is_better=False) == "ok"
    assert probe_status(-0.20, TH) == "FAIL"
    ids = [f"p{i}" for i in range(200)]
    base = MetricScores("test_words_lower_better", 10.0, np.full(200, 10.0), ids, "continuous")
    worse = MetricScores("test_words_lower_better", 13.0, np.full(200, 13.0), ids, "continuous")
    base.higher_is_better = worse.higher_is_better = False
    probe = probe_result("length", "test_words_lower_better", base, worse, TH, n_resamples=500)
    assert probe.rel_change == pytest.approx(0.3) and probe.status == "FAIL"
    better = probe_result("length", "test_words_lower_better", worse, base, TH, n_resamples=500)
    assert better.status == "ok"


def test_training_curves_use_the_registered_direction():
    assert _direction("eval_task/ter") is False
    assert _direction("eval_task/test_words_lower_better") is False
    assert _direction("eval_task/rouge_l") is True
    assert _direction("eval_loss") is False  # unregistered: by name, as before
    from tunecheck.training.curves import Curve, _summary

    summary = _summary(Curve(np.array([1, 2, 3]), np.array([0.5, 0.3, 0.4])), _direction("ter"))
    assert summary.best == 0.3 and summary.best_step == 2


def test_lm_eval_direction_reaches_the_probe_status(tmp_path):
    """A perplexity-like lm-eval metric (higher_is_better: false in results_*.json) that
    rises is a regression; the same rise of a higher-is-better metric is not."""
    import json

    from tunecheck.probes.lm_eval_bridge import import_lm_eval

    def write(folder, values, higher):
        folder.mkdir()
        date = "2026-01-01T00-00-00.000000"
        recs = [{"doc_id": i, "filter": "none", "doc_hash": str(i), "word_ppl": v}
                for i, v in enumerate(values)]  # fmt: skip
        (folder / f"samples_wiki_{date}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in recs)
        )
        (folder / f"results_{date}.json").write_text(json.dumps({
            "results": {"wiki": {"word_ppl,none": float(np.mean(values))}},
            "higher_is_better": {"wiki": {"word_ppl": higher}},
        }))  # fmt: skip

    rng = np.random.default_rng(0)
    base = rng.uniform(10, 12, 200)
    for higher, expected in ((False, "FAIL"), (True, "ok")):
        root = tmp_path / str(higher)
        root.mkdir()
        write(root / "base", base, higher)
        write(root / "ft", base * 1.3, higher)  # 30% higher
        (pair,) = import_lm_eval(root / "base", root / "ft")
        assert pair.base.details["higher_is_better"] is higher
        probe = probe_result("wiki", pair.metric, pair.base, pair.finetuned, TH, n_resamples=500)
        assert probe.rel_change == pytest.approx(0.3) and probe.status == expected
