"""A probe and a task go through the same code from request to ``MetricScores``: the same
request builder renders the prompts and ``score_outputs`` scores the answers, so a task built
from a probe's examples gets exactly the probe's per-example scores."""

from __future__ import annotations

import numpy as np
import pytest
from test_probes_suite import Scripted

from tunecheck import requests as request_builder
from tunecheck import task as task_module
from tunecheck.metrics import score_outputs
from tunecheck.models.base import GenerationParams
from tunecheck.probes import build_probe, run_probe
from tunecheck.prompts import Prompt
from tunecheck.spec import ParserSpec, ProbeSpec
from tunecheck.task import Task


def _answerer(probe):
    """Right for every other question (where the reference can be written), a fixed wrong,
    odd or unparseable answer for the rest."""
    by_input = {ex.input: (i, ex.reference) for i, ex in enumerate(probe.examples)}

    def answer(text: str) -> str:
        i, ref = by_input.get(text, (1, None))
        if i % 2 == 0 and ref is not None:
            return f"#### {ref}" if isinstance(ref, int | float) else str(ref).strip("[]")
        return ["The answer is 18.", "I am not sure.", "Sunday", "(C)"][i % 4]

    return answer


@pytest.mark.parametrize("name", ["arithmetic", "reasoning", "instructions"])
def test_probe_outcome_equals_the_task_metric_on_the_same_answers(name, monkeypatch):
    probe = build_probe(ProbeSpec(name=name, builtin=name, n=30), seed=5)
    calls: list[tuple[str, ...]] = []
    built: list[int] = []
    real_score, real_render = score_outputs, request_builder.render_requests

    def spy_score(names, outputs, *args, **kwargs):
        calls.append(tuple(names))
        return real_score(names, outputs, *args, **kwargs)

    def spy_render(prompt, examples, params):
        built.append(len(examples))
        return real_render(prompt, examples, params)

    monkeypatch.setattr(task_module, "score_outputs", spy_score)
    monkeypatch.setattr(task_module, "render_requests", spy_render)
    answerer = _answerer(probe)
    outcome = run_probe(probe, Scripted(answerer))
    assert built == [len(probe.examples)] and len(calls) == 1

    # the same examples as a spec-less Task: rendered by the one request builder, scored by name
    (scorer,) = calls[0]
    task = Task(name, probe.examples, [scorer])
    reqs = request_builder.render_requests(Prompt(), probe.examples, GenerationParams())
    answers = [answerer(r.prompt[-1]["content"]) for r in reqs]
    scores = task.score(answers)[scorer]
    direct = real_score([scorer], answers, probe.examples, ParserSpec())[scorer]
    np.testing.assert_array_equal(scores.per_example, direct.per_example)
    np.testing.assert_array_equal(outcome.per_example, scores.per_example)
    assert outcome.value == pytest.approx(scores.value)
    assert outcome.example_ids == scores.example_ids
    assert 0 < scores.value < 1  # the scripted answers are neither all right nor all wrong
