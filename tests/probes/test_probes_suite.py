"""run_probe on a scripted backend: errors left out, fallbacks, progress, every scoring kind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tunecheck.errors import BackendError
from tunecheck.models.base import Generation, LoglikelihoodResult, Model
from tunecheck.probes import build_probe, run_probe
from tunecheck.spec import FieldMap, ProbeSpec


class Scripted(Model):
    """Answers from a function of the prompt text; optional log-likelihoods and failures."""

    def __init__(self, answer, *, lls=None, fail_ids=()):
        self.answer = answer
        self.lls = lls
        self.fail_ids = set(fail_ids)
        self.supports_loglikelihood = lls is not None
        self.ll_calls = 0

    @property
    def fingerprint(self) -> str:
        return "scripted"

    def generate(self, requests, progress=None):
        out = []
        for r in requests:
            text = r.prompt[-1]["content"]
            out.append(
                Generation([], error="boom")
                if r.id in self.fail_ids
                else Generation([self.answer(text)])
            )
        if progress:
            progress(len(requests))
        return out

    def loglikelihood(self, requests, progress=None):
        if self.lls is None:
            return super().loglikelihood(requests, progress)
        self.ll_calls += 1
        out = [LoglikelihoodResult(self.lls(r.context, r.continuation)) for r in requests]
        if progress:
            for _ in requests:
                progress(1)
        return out


def _arith():
    return build_probe(ProbeSpec(name="arithmetic", builtin="arithmetic", n=12), seed=3)


def test_number_probe_scores_and_leaves_errors_out():
    probe = _arith()
    refs = {ex.input: ex.reference for ex in probe.examples}
    # right on even items, a wrong number on odd ones, one backend failure
    answers = {
        ex.input: (f"The answer is {ex.reference}." if i % 2 == 0 else "It is 1000")
        for i, ex in enumerate(probe.examples)
    }
    model = Scripted(lambda t: answers[t], fail_ids={probe.examples[0].id})
    out = run_probe(probe, model)
    assert out.n == 11 and out.details["errors"] == 1
    assert out.example_ids == [e.id for e in probe.examples[1:]]
    expected = [float(i % 2 == 0) for i in range(1, 12)]
    np.testing.assert_array_equal(out.per_example, expected)
    assert out.value == pytest.approx(np.mean(expected))
    assert len(refs) == 12


def test_reasoning_probe_with_perfect_and_empty_answers():
    probe = build_probe(ProbeSpec(name="reasoning", builtin="reasoning", n=16), seed=3)
    truth = {}
    for ex in probe.examples:
        ref = ex.reference
        truth[ex.input] = ", ".join(map(str, ref)) if isinstance(ref, list) else f"Answer: {ref}"
    assert run_probe(probe, Scripted(lambda t: truth[t])).value == 1.0
    empty = run_probe(probe, Scripted(lambda t: ""))
    assert empty.value == 0.0 and empty.details["invalid"] == 16


def _mc_probe(tmp_path, mode="auto"):
    rows = [
        {"query": f"Question: q{i}?", "choices": ["alpha", "be", "gammaaaa"], "gold": i % 3}
        for i in range(6)
    ]
    path = tmp_path / "arc_tiny.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return build_probe(ProbeSpec(name="arc", path=str(path), mode=mode), seed=0)


def test_mc_loglikelihood_acc_and_acc_norm_hand_computed(tmp_path):
    probe = _mc_probe(tmp_path)
    # log-probs: alpha -5, be -4, gammaaaa -6 -> acc picks "be" (1); per char: -1, -2, -0.75 -> norm picks 2
    table = {" alpha": -5.0, " be": -4.0, " gammaaaa": -6.0}
    model = Scripted(lambda t: "", lls=lambda ctx, cont: table[cont])
    seen = []
    out = run_probe(probe, model, progress=seen.append)
    assert out.details["mode"] == "loglikelihood" and model.ll_calls == 1
    golds = [i % 3 for i in range(6)]
    np.testing.assert_array_equal(out.per_example, [float(g == 1) for g in golds])
    assert out.details["acc"] == pytest.approx(2 / 6)
    assert out.details["acc_norm"] == pytest.approx(2 / 6)
    assert out.details["per_example_acc_norm"] == [float(g == 2) for g in golds]
    assert out.outputs == ["B"] * 6
    assert sum(seen) == 6  # per question, not per choice


def test_mc_falls_back_to_letters_without_loglikelihood(tmp_path):
    probe = _mc_probe(tmp_path)
    model = Scripted(lambda t: "The answer is (C)")
    out = run_probe(probe, model)
    assert out.details["mode"] == "generate"
    np.testing.assert_array_equal(out.per_example, [float(i % 3 == 2) for i in range(6)])
    forced = _mc_probe(tmp_path, mode="loglikelihood")
    with pytest.raises(BackendError, match="no log-probabilities"):
        run_probe(forced, model)


def test_ifeval_probe_levels(fixture_data):
    probe = build_probe(
        ProbeSpec(
            name="ifeval", path=str(fixture_data / "probes" / "ifeval_input_data.jsonl"), n=20
        ),
        seed=1,
    )
    out = run_probe(probe, Scripted(lambda t: "a short answer without any commas"))
    d = out.details
    for key in (
        "prompt_level_strict_acc",
        "inst_level_strict_acc",
        "prompt_level_loose_acc",
        "inst_level_loose_acc",
    ):
        assert 0.0 <= d[key] <= 1.0
    from tunecheck.metrics.ifeval import sentence_counter

    assert d["sentence_counter"] == sentence_counter()
    assert d["prompt_level_loose_acc"] >= d["prompt_level_strict_acc"]
    assert out.value == d["prompt_level_strict_acc"]
    # every prompt that only asks for no commas is followed by this answer
    for ex, score in zip(probe.examples, out.per_example, strict=True):
        if ex.meta["instruction_id_list"] == ["punctuation:no_comma"]:
            assert score == 1.0


def test_user_task_probe_with_registered_metric(tmp_path):
    path = tmp_path / "capitals.jsonl"
    rows = [("France", "Paris"), ("Italy", "Rome"), ("Spain", "Madrid")]
    path.write_text(
        "\n".join(json.dumps({"id": c, "q": f"Capital of {c}?", "a": a}) for c, a in rows)
    )
    probe = build_probe(
        ProbeSpec(
            name="capitals",
            path=str(path),
            fields=FieldMap(input="q", reference="a"),
            metric="exact_match",
        ),
        seed=0,
    )
    answers = {
        "Capital of France?": "Paris",
        "Capital of Italy?": "Milan",
        "Capital of Spain?": "Madrid",
    }
    out = run_probe(probe, Scripted(lambda t: answers[t]))
    assert out.metric == "exact_match"
    assert dict(zip(out.example_ids, out.per_example, strict=True)) == {
        "France": 1.0,
        "Italy": 0.0,
        "Spain": 1.0,
    }
