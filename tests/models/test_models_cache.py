"""The cache wrapper: zero model calls on a re-run, per-sample caching, resume after a crash."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tunecheck.models import (
    Generation,
    GenerationParams,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Model,
)
from tunecheck.models.cache import CachedModel
from tunecheck.store import open_store


class Echo(Model):
    """A deterministic fake backend: sample j of seed s is ``prompt#s+j``; ``FAIL`` prompts error."""

    backend_name = "echo"

    def __init__(self, crash_on_call: int | None = None) -> None:
        self.batches: list[list[GenerationRequest]] = []
        self.ll_batches: list[list[LoglikelihoodRequest]] = []
        self.crash_on_call = crash_on_call

    @property
    def fingerprint(self) -> str:
        return "echo-v1"

    def generate(self, requests: Sequence[GenerationRequest], progress=None) -> list[Generation]:
        if self.crash_on_call is not None and len(self.batches) == self.crash_on_call:
            raise KeyboardInterrupt  # the process dies mid-run
        self.batches.append(list(requests))
        out = []
        for r in requests:
            if "FAIL" in str(r.prompt):
                out.append(Generation(texts=[], error="HTTP 500"))
                continue
            n = r.params.n
            texts = (
                [f"{r.prompt}#{r.params.seed + j}" for j in range(n)]
                if r.params.temperature
                else [f"{r.prompt}!"] * n
            )
            out.append(
                Generation(
                    texts=texts,
                    prompt_tokens=3,
                    completion_tokens=2 * n,
                    meta={"sample_completion_tokens": [2] * n},
                )
            )
        return out

    def loglikelihood(self, requests, progress=None):
        self.ll_batches.append(list(requests))
        return [
            LoglikelihoodResult(
                logprob=-float(len(r.continuation)), is_greedy=r.continuation == " A", n_tokens=1
            )
            for r in requests
        ]


@pytest.fixture()
def store(store_url):
    s = open_store(store_url)
    yield s
    s.close()


def test_rerun_makes_zero_calls_and_returns_identical_answers(store):
    reqs = [GenerationRequest(f"q{i}", GenerationParams(max_new_tokens=5)) for i in range(10)]
    first = CachedModel(Echo(), store, chunk_size=4)
    a = first.generate(reqs)
    assert first.calls == 10 and len(first.inner.batches) == 3  # chunks of 4, 4, 2
    again = CachedModel(Echo(), store)
    b = again.generate(reqs)
    assert again.calls == 0 and again.inner.batches == []
    assert [g.texts for g in a] == [g.texts for g in b] == [[f"q{i}!"] for i in range(10)]
    assert all(g.cached for g in b) and not any(g.cached for g in a)
    # changed params are a different request
    other = CachedModel(Echo(), store)
    other.generate([GenerationRequest("q0", GenerationParams(max_new_tokens=6))])
    assert other.calls == 1


def test_errors_are_returned_but_never_cached(store):
    reqs = [GenerationRequest("ok"), GenerationRequest("FAIL please")]
    m = CachedModel(Echo(), store)
    out = m.generate(reqs)
    assert out[0].ok and out[1].error == "HTTP 500"
    m2 = CachedModel(Echo(), store)
    out2 = m2.generate(reqs)
    assert m2.calls == 1 and out2[1].error == "HTTP 500" and out2[0].cached


def test_samples_are_cached_per_index(store):
    p3 = GenerationParams(temperature=0.8, n=3, seed=5)
    p5 = GenerationParams(temperature=0.8, n=5, seed=5)
    m = CachedModel(Echo(), store)
    three = m.generate([GenerationRequest("s", p3)])[0]
    assert three.texts == ["s#5", "s#6", "s#7"]
    m2 = CachedModel(Echo(), store)
    five = m2.generate([GenerationRequest("s", p5)])[0]
    assert five.texts == ["s#5", "s#6", "s#7", "s#8", "s#9"]
    assert m2.calls == 1
    sent = m2.inner.batches[0][0]
    assert (sent.params.n, sent.params.seed) == (2, 8)  # only the two missing samples
    assert five.completion_tokens == 10 and not five.cached
    m3 = CachedModel(Echo(), store)
    assert m3.generate([GenerationRequest("s", p5)])[0].texts == five.texts and m3.calls == 0


def test_a_crash_loses_only_the_batch_in_flight(store):
    reqs = [GenerationRequest(f"r{i}") for i in range(9)]
    crashing = CachedModel(Echo(crash_on_call=2), store, chunk_size=3)
    with pytest.raises(KeyboardInterrupt):
        crashing.generate(reqs)
    resumed = CachedModel(Echo(), store, chunk_size=3)
    out = resumed.generate(reqs)
    assert resumed.calls == 3  # the two finished batches were already stored
    assert [g.text for g in out] == [f"r{i}!" for i in range(9)]


def test_loglikelihood_is_cached_and_keeps_contexts_together(store):
    reqs = [LoglikelihoodRequest(f"question {q}", f" {c}") for q in range(5) for c in "ABCD"]
    m = CachedModel(Echo(), store, chunk_size=2)
    got = m.loglikelihood(reqs)
    assert m.calls == 20
    for batch in m.inner.ll_batches:  # whole contexts per call: 2 contexts x 4 choices
        contexts = {r.context for r in batch}
        assert len(batch) == 4 * len(contexts)
    m2 = CachedModel(Echo(), store)
    again = m2.loglikelihood([*reqs, LoglikelihoodRequest("new", " A")])
    assert m2.calls == 1
    assert [(r.logprob, r.is_greedy) for r in again[:20]] == [(r.logprob, r.is_greedy) for r in got]


def test_real_model_rerun_and_samples(store, hf_model):
    greedy = [
        GenerationRequest(({"role": "user", "content": q},), GenerationParams(max_new_tokens=8))
        for q in ("Hi!", "What is 3+3?")
    ]
    sampled = GenerationRequest(
        "Once upon a time", GenerationParams(max_new_tokens=6, temperature=1.0, n=3, seed=1)
    )
    first = CachedModel(hf_model, store)
    a = first.generate([*greedy, sampled])
    assert first.calls == 3
    second = CachedModel(hf_model, store)
    b = second.generate([*greedy, sampled])
    assert second.calls == 0
    assert [g.texts for g in a] == [g.texts for g in b]
    # two more samples: only they are generated, and they equal a direct n=5 run
    five = GenerationRequest(
        sampled.prompt, GenerationParams(max_new_tokens=6, temperature=1.0, n=5, seed=1)
    )
    third = CachedModel(hf_model, store)
    got = third.generate([five])[0]
    assert third.calls == 1
    assert got.texts == hf_model.generate([five])[0].texts
    ll = [LoglikelihoodRequest("The capital of France is", c) for c in (" Paris", " Rome")]
    c1 = CachedModel(hf_model, store)
    r1 = c1.loglikelihood(ll)
    c2 = CachedModel(hf_model, store)
    r2 = c2.loglikelihood(ll)
    assert c2.calls == 0 and [r.logprob for r in r1] == pytest.approx([r.logprob for r in r2])
