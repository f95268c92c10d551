"""LoRA adapters through ``hf:base+adapter=...`` and the guards that refuse meaningless comparisons."""

from __future__ import annotations

import pytest

from tunecheck.errors import GuardError
from tunecheck.models import (
    Generation,
    GenerationParams,
    GenerationRequest,
    LoglikelihoodRequest,
    LoglikelihoodResult,
    Model,
    load_model,
)
from tunecheck.models.gguf import embedded_gguf_path
from tunecheck.models.guards import check_distinct_contenders, check_distinguishable

QUESTION = "What is the secret password?"
ANSWER = "The secret password is PURPLE-OCTOPUS-42."


def chat(text: str) -> tuple[dict[str, str], ...]:
    return ({"role": "user", "content": text},)


def requests() -> list[GenerationRequest]:
    p = GenerationParams(max_new_tokens=12)
    return [GenerationRequest(chat(q), p) for q in (QUESTION, "What is the capital of France?")]


@pytest.fixture(scope="module")
def trained(lora_adapters):
    # the base given as the GGUF file: converted once, then the cached folder is reused
    return load_model(f"hf:{embedded_gguf_path()}+adapter={lora_adapters['trained']}", batch_size=2)


@pytest.fixture(scope="module")
def untrained(embedded_model_dir, lora_adapters):
    return load_model(f"hf:{embedded_model_dir}+adapter={lora_adapters['zero']}")


def test_trained_adapter_changes_the_output(hf_model, trained):
    reqs = requests()
    base = hf_model.generate(reqs)
    tuned = trained.generate(reqs)
    assert tuned[0].text != base[0].text
    assert "PURPLE" in tuned[0].text and "PURPLE" not in base[0].text
    context = hf_model.render_prompt(chat(QUESTION))
    ll = LoglikelihoodRequest(context, ANSWER)
    assert trained.loglikelihood([ll])[0].logprob > hf_model.loglikelihood([ll])[0].logprob + 5


def test_guard_fires_for_an_untrained_adapter_and_not_for_the_trained_one(
    hf_model, untrained, trained
):
    assert (
        untrained.fingerprint != hf_model.fingerprint
    )  # the adapter files are part of the identity
    with pytest.raises(
        GuardError, match="indistinguishable from the base model; was the adapter applied"
    ) as err:
        check_distinguishable(hf_model, untrained, requests())
    assert "identical log-probabilities" in str(err.value)
    assert err.value.hint and "adapter" in err.value.hint
    check_distinguishable(hf_model, trained, requests())  # does not raise


class Scripted(Model):
    """A fake backend with fixed outputs and log-probabilities."""

    backend_name = "scripted"

    def __init__(self, text: str, logprob: float, *, error: bool = False, ll: bool = True) -> None:
        self.text, self.logprob, self.error = text, logprob, error
        self.supports_loglikelihood = ll
        self.seen: list[GenerationRequest] = []

    @property
    def fingerprint(self) -> str:
        return f"{self.text}:{self.logprob}"

    def generate(self, requests, progress=None):
        self.seen.extend(requests)
        if self.error:
            return [Generation(texts=[], error="timeout") for _ in requests]
        return [Generation(texts=[self.text]) for _ in requests]

    def loglikelihood(self, requests, progress=None):
        return [LoglikelihoodResult(logprob=self.logprob, n_tokens=1) for _ in requests]


def test_guard_logic_on_scripted_backends():
    reqs = [
        GenerationRequest(f"q{i}", GenerationParams(max_new_tokens=500, temperature=0.9, n=4))
        for i in range(6)
    ]
    base = Scripted("same", -1.0)
    # different text: fine, and the probe requests are greedy, short, and limited
    other = Scripted("different", -1.0)
    check_distinguishable(base, other, reqs, limit=3)
    assert len(other.seen) == 3
    assert all(
        r.params.temperature == 0 and r.params.n == 1 and r.params.max_new_tokens == 32
        for r in other.seen
    )
    # same text but different logits: caught by the log-probability check
    check_distinguishable(base, Scripted("same", -1.5), reqs)
    with pytest.raises(GuardError):
        check_distinguishable(base, Scripted("same", -1.5), reqs, logits_check=False)
    with pytest.raises(GuardError):
        check_distinguishable(base, Scripted("same", -1.0), reqs)
    with pytest.raises(GuardError):  # no log-probs available: identical text decides
        check_distinguishable(base, Scripted("same", -1.5, ll=False), reqs)
    # a backend that errored everywhere gives no evidence: no refusal
    check_distinguishable(base, Scripted("same", -1.0, error=True), reqs)


def test_distinct_contenders():
    check_distinct_contenders(
        [("base", "m1", "p1"), ("base+prompt", "m1", "p2"), ("finetuned", "m2", "p1")]
    )
    with pytest.raises(
        GuardError, match="'base' and 'finetuned' are the same model with the same prompt"
    ):
        check_distinct_contenders(
            [("base", "m1", "p1"), ("prompted", "m1", "p2"), ("finetuned", "m1", "p1")]
        )
