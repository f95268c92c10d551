"""Probe gating (issue 13): honest relative intervals, floor/ceiling probes, the regression rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import bootstrap

from tunecheck.demo.pipeline import SIZES, _spec_yaml
from tunecheck.metrics import MetricScores
from tunecheck.metrics.base import ClassCodes
from tunecheck.pipeline.scoring import adjust_probes, probe_result
from tunecheck.probe_rules import chance_level, gate, informativeness, relative_interval
from tunecheck.probes import build_probe
from tunecheck.probes.base import outcome
from tunecheck.spec import Thresholds, parse_spec
from tunecheck.verdict import decide

TH = Thresholds()


def _scores(values, kind="binary", name="accuracy") -> MetricScores:
    values = np.asarray(values, dtype=float)
    return MetricScores(
        name=name,
        value=float(values.mean()),
        per_example=values,
        example_ids=[f"e{i}" for i in range(len(values))],
        kind=kind,
    )


def _scipy_ratio_ci(f: np.ndarray, b: np.ndarray, seed: int = 5) -> tuple[float, float]:
    res = bootstrap(
        (f, b),
        lambda x, y, axis: x.mean(axis=axis) / y.mean(axis=axis) - 1,
        paired=True,
        vectorized=True,
        n_resamples=20_000,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@pytest.mark.parametrize("kind", ["binary", "continuous"])
def test_relative_interval_matches_scipy_paired_bootstrap_of_the_ratio(kind):
    rng = np.random.default_rng(3)
    n = 200
    if kind == "binary":
        b = (rng.random(n) < 0.6).astype(float)
        f = np.where(rng.random(n) < 0.8, b, (rng.random(n) < 0.4).astype(float))
    else:
        b = rng.beta(3, 2, n)
        f = np.clip(b - 0.05 + 0.1 * rng.normal(size=n), 0, 1)
    lo, hi = relative_interval(_scores(f, kind), _scores(b, kind), n_resamples=20_000, seed=1)
    ref_lo, ref_hi = _scipy_ratio_ci(f, b)
    # two independent 20k-resample percentile bootstraps: quantiles agree within MC error
    assert lo == pytest.approx(ref_lo, abs=0.01) and hi == pytest.approx(ref_hi, abs=0.01)


def test_relative_interval_never_below_minus_100_percent():
    # the example: 7 correct of 100 before, none after. The old way printed
    # "-100.0% [-171.4, -42.9]": the absolute interval divided by the observed base value
    b = np.zeros(100)
    b[:7] = 1
    f = np.zeros(100)
    lo, hi = relative_interval(_scores(f), _scores(b), seed=0)
    assert lo == -1.0 and hi == -1.0
    b2 = np.zeros(100)
    b2[:3] = 1
    f2 = np.zeros(100)
    f2[3:5] = 1  # base 0.03 -> 0.02, disjoint answers: resampled bases hit 0
    lo2, hi2 = relative_interval(_scores(f2), _scores(b2), seed=0)
    assert lo2 >= -1.0 and hi2 is None  # unbounded above, never below -100%
    result = probe_result("tiny", "accuracy", _scores(b), _scores(f), TH)
    assert result.rel_change == -1.0 and result.rel_ci_low >= -1.0


def test_relative_interval_of_macro_f1_matches_an_index_bootstrap():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    n, k = 80, 3
    gold = rng.integers(0, k, n)
    pb = np.where(rng.random(n) < 0.7, gold, rng.integers(0, k, n))
    pa = np.where(rng.random(n) < 0.6, gold, rng.integers(0, k, n))
    classes = ["a", "b", "c"]
    mk = lambda p: MetricScores(  # noqa: E731
        "macro_f1", 0.0, np.zeros(n), [f"e{i}" for i in range(n)], "corpus",
        corpus=ClassCodes(p, gold, classes),
    )  # fmt: skip
    lo, hi = relative_interval(mk(pa), mk(pb), n_resamples=3000, seed=2)

    def macro(pred, g):  # plain per-class F1 over the classes present (checked vs sklearn below)
        f1s = []
        for c in np.union1d(np.unique(g), np.unique(pred)):
            tp = np.sum((pred == c) & (g == c))
            denom = np.sum(pred == c) + np.sum(g == c)
            f1s.append(2 * tp / denom)
        return float(np.mean(f1s))

    assert macro(pa, gold) == pytest.approx(f1_score(gold, pa, average="macro"))
    # reference: the textbook index bootstrap, resample by resample
    ref = []
    for _ in range(2000):
        idx = rng.integers(0, n, n)
        ref.append(macro(pa[idx], gold[idx]) / macro(pb[idx], gold[idx]) - 1)
    ref_lo, ref_hi = np.quantile(ref, [0.025, 0.975])
    assert lo == pytest.approx(ref_lo, abs=0.04) and hi == pytest.approx(ref_hi, abs=0.04)
    assert lo >= -1


def test_demo_reasoning_probe_is_uninformative_for_a_135m_model(deploy_task):
    # the probe exactly as `tunecheck demo` declares it (its written spec, its seed), and the
    # score SmolLM2-135M gets on it (README, "What the demo shows": 0.067 = 2 of 30 -> 0.000)
    demo = parse_spec(
        _spec_yaml(model_dir=Path("m"), adapter_dir=Path("a"), few_shot=[], system_prompt="S",
                   size=SIZES["full"])
    )  # fmt: skip
    (reasoning,) = [p for p in demo.probe_specs() if p.name == "reasoning"]
    probe = build_probe(reasoning, seed=demo.seed)
    assert len(probe.examples) == 30
    chance = chance_level(probe)
    words = [ex for ex in probe.examples if ex.meta.get("answer_type") == "word"]
    expected = sum(1 / len(ex.meta["candidates"]) for ex in words) / len(probe.examples)
    assert chance == pytest.approx(expected) and 0 < chance < 0.1
    ids = [ex.id for ex in probe.examples]
    base = np.zeros(30)
    base[:2] = 1
    ft = np.zeros(30)  # even losing both right answers cannot show a regression
    b = outcome("reasoning", "accuracy", base, ids, [""] * 30, {"chance": chance})
    f = outcome("reasoning", "accuracy", ft, ids, [""] * 30, {"chance": chance})
    p = probe_result("reasoning", "accuracy", b, f, TH)
    assert p.status == "uninformative" and gate(p) == "uninformative"
    assert "floor" in p.note_uninformative and f"{chance:.3f}" in p.note_uninformative
    assert p.chance == pytest.approx(chance)
    # not FAIL, out of the Holm family, and it blocks nothing: the task's DEPLOY stands
    (adjusted,) = adjust_probes([p], TH.alpha)
    assert adjusted.p_adjusted is None
    v = decide(deploy_task, [adjusted], TH)
    assert v.decision == "DEPLOY"
    assert any(
        r.startswith("reasoning probe accuracy: uninformative for this model (floor:")
        and f"chance level {chance:.3f}" in r
        for r in v.reasons
    ), v.reasons


def test_floor_and_ceiling_rules():
    assert not informativeness(0.25, 0.2, 100, 0.25).informative  # at 4-choice chance
    info = informativeness(0.31, 0.3, 100, 0.25)  # 31/100 vs 0.25: binomial p ~ 0.11
    assert not info.informative and "not above" in info.reason
    # the example: 0.067 on 100 items is above a ~0.03 chance, but only 3.8% of the way
    near = informativeness(0.067, 0.05, 100, 0.03)
    assert not near.informative and "near chance level 0.030" in near.reason
    assert not informativeness(0.05, 0.0, 300, 0.0).informative  # free numbers: chance 0
    assert informativeness(0.05, 0.0, 300, None).informative  # unknown chance: only 0 is a floor
    assert not informativeness(0.0, 0.0, 300, None).informative
    assert informativeness(0.6, 0.5, 300, 0.25).informative
    assert informativeness(0.3, 0.2, 300, 0.0).informative
    # a small probe on a capable model is not uninformative: its drops are inconclusive
    assert informativeness(0.25, 0.0, 12, 0.0).informative
    ceiling = informativeness(0.99, 0.985, 200, 0.0)
    assert not ceiling.informative and "ceiling" in ceiling.reason
    assert informativeness(0.99, 0.80, 200, 0.0).informative  # a drop from the ceiling shows


def _probe(name, base_right, ft_right, n=300, chance=0.0, seed=1):
    rng = np.random.default_rng(seed)
    ids = [f"{name}{i}" for i in range(n)]
    base = np.zeros(n)
    base[rng.choice(n, base_right, replace=False)] = 1
    ft = base.copy()
    right = np.flatnonzero(base == 1)
    wrong = np.flatnonzero(base == 0)
    if ft_right < base_right:
        ft[rng.choice(right, base_right - ft_right, replace=False)] = 0
    else:
        ft[rng.choice(wrong, ft_right - base_right, replace=False)] = 1
    d = {"chance": chance}
    return probe_result(
        name, "accuracy", outcome(name, "accuracy", base, ids, [], d),
        outcome(name, "accuracy", ft, ids, [], d), TH, n_resamples=2000,
    )  # fmt: skip


def test_gate_regression_inconclusive_pass_and_holm_without_uninformative(deploy_task):
    real = _probe("arith", 180, 150)  # -16.7%, 30 discordant one way: beyond noise
    noisy = _probe("instr", 20, 18, n=40)  # -10% on 40 items: cannot be told from noise
    floor = _probe("reason", 4, 0, n=300, chance=0.0)  # 4 right of 300: a collapse can't show
    fine = _probe("mc", 150, 149)
    probes = adjust_probes([real, noisy, floor, fine], TH.alpha)
    gates = {p.name: p.gate for p in probes}
    assert gates == {
        "arith": "regression",
        "instr": "inconclusive",
        "reason": "uninformative",
        "mc": "pass",
    }
    # Holm over the 3 informative probes only (statsmodels as the reference)
    from statsmodels.stats.multitest import multipletests

    informative = [p for p in probes if p.status != "uninformative"]
    ref = multipletests([p.p_value for p in informative], method="holm")[1]
    assert [p.p_adjusted for p in informative] == pytest.approx(list(ref))
    assert next(p for p in probes if p.name == "reason").p_adjusted is None
    v = decide(deploy_task, probes, TH)
    assert v.decision == "ITERATE"
    assert any("arith probe" in r and "regression beyond noise" in r for r in v.reasons)
    assert any("reason probe" in r and "uninformative for this model" in r for r in v.reasons)
    assert any("run the instr probe on about" in s for s in v.next_steps)
    # without the real regression: the floor probe and the noisy drop do not block
    v2 = decide(deploy_task, adjust_probes([noisy, floor, fine], TH.alpha), TH)
    assert v2.decision == "DEPLOY" and "inconclusive" in v2.summary


def test_deploy_with_only_uninformative_probes_is_marked_capabilities_not_checked(deploy_task):
    from tunecheck.evaluate import final_verdict
    from tunecheck.verdict_context import CAPABILITIES_NOT_CHECKED, VerdictContext

    floor = _probe("reason", 4, 0, n=300, chance=0.0)
    ceiling = _probe("easy", 299, 299, n=300)
    only_useless = adjust_probes([floor, ceiling], TH.alpha)
    assert {p.gate for p in only_useless} == {"uninformative"}
    v = final_verdict(deploy_task, only_useless, TH, VerdictContext())
    assert v.decision == "DEPLOY" and v.qualifiers == [CAPABILITIES_NOT_CHECKED]
    assert "all uninformative" in v.summary
    assert any("every probe of this run was uninformative" in s for s in v.next_steps)
    # one probe that can show a drop is a real check: no mark
    useful = adjust_probes([floor, _probe("mc", 150, 149)], TH.alpha)
    assert final_verdict(deploy_task, useful, TH, VerdictContext()).qualifiers == []
    # a classifier candidate is not marked (it cannot be probed by generation)
    clf = VerdictContext(causal_lm=False)
    assert final_verdict(deploy_task, only_useless, TH, clf).qualifiers == []
