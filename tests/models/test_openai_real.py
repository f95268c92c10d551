"""The ``openai`` backend over real HTTP against a server running the real embedded SmolLM2.

References are computed directly with transformers on the same loaded model.
"""

from __future__ import annotations

import pytest
from openai_servers import UvicornThread, real_model_app

from tunecheck.errors import BackendError
from tunecheck.models import (
    GenerationParams,
    GenerationRequest,
    LoglikelihoodRequest,
    load_model,
)

CHATS = [
    "What is the capital of France?",
    "Is this review positive or negative? 'The food was cold and the waiter rude.'",
]
MAX_NEW = 8


@pytest.fixture(scope="module")
def server(hf_model_and_tokenizer):
    model, tok = hf_model_and_tokenizer
    with UvicornThread(real_model_app(model, tok, root="/models/smollm2")) as srv:
        yield srv


def greedy(model, tok, ids: list[int], max_new: int) -> tuple[str, int]:
    import torch  # not at collection: every test here is a model test

    input_ids = torch.tensor([ids])
    with torch.no_grad():
        out = model.generate(
            input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new,
            do_sample=False,
            pad_token_id=tok.eos_token_id,
        )
    new = out[0, len(ids) :]
    return tok.decode(new, skip_special_tokens=True), len(new)


def test_chat_greedy_matches_transformers(server, hf_model_and_tokenizer) -> None:
    model, tok = hf_model_and_tokenizer
    client = load_model(f"openai:smollm2@{server.url}", concurrency=2, timeout=120)
    params = GenerationParams(max_new_tokens=MAX_NEW)
    prompts = [({"role": "user", "content": c},) for c in CHATS]
    out = client.generate([GenerationRequest(prompt=p, params=params) for p in prompts])

    for prompt, gen in zip(prompts, out, strict=True):
        ids = tok.apply_chat_template([dict(m) for m in prompt], add_generation_prompt=True)
        ids = ids["input_ids"] if not isinstance(ids, list) else ids
        text, n_new = greedy(model, tok, list(ids), MAX_NEW)
        assert gen.ok and gen.texts == [text]
        assert gen.prompt_tokens == len(ids) and gen.completion_tokens == n_new
    assert "Paris" in out[0].text
    assert client.stats.ok == 2 and client.stats.retries == 0


def test_completion_greedy_matches_transformers(server, hf_model_and_tokenizer) -> None:
    model, tok = hf_model_and_tokenizer
    client = load_model(f"openai:smollm2@{server.url}", timeout=120)
    prompt = "The three primary colours are"
    out = client.generate(
        [GenerationRequest(prompt=prompt, params=GenerationParams(max_new_tokens=8))]
    )
    text, _ = greedy(model, tok, tok(prompt).input_ids, 8)
    assert out[0].texts == [text]


LL_CASES = [
    ("The capital of France is", " Paris"),
    ("The capital of France is", " Berlin"),
    ("Question: What is 2 + 2?\nAnswer:", " 4"),
    ("Question: What is 2 + 2?\nAnswer:", " five hundred"),
    ("The opposite of hot is", " cold."),
]


def test_loglikelihood_matches_transformers(server, hf_model_and_tokenizer) -> None:
    model, tok = hf_model_and_tokenizer
    client = load_model(f"openai:smollm2@{server.url}", timeout=120)
    out = client.loglikelihood([LoglikelihoodRequest(c, x) for c, x in LL_CASES], purpose="test")

    for (context, continuation), got in zip(LL_CASES, out, strict=True):
        # lm-eval style reference: context and continuation encoded separately
        ctx = tok(context).input_ids
        cont = tok(continuation, add_special_tokens=False).input_ids
        assert tok(context + continuation).input_ids == ctx + cont  # same tokens either way
        import torch

        ids = torch.tensor([ctx + cont])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
        positions = range(len(ctx), len(ctx) + len(cont))
        expected = sum(float(logp[p - 1, ids[0, p]]) for p in positions)
        greedy_ok = all(int(logp[p - 1].argmax()) == int(ids[0, p]) for p in positions)
        assert got.error is None
        assert got.logprob == pytest.approx(expected, abs=1e-4)
        assert got.n_tokens == len(cont) and got.is_greedy == greedy_ok
    assert out[0].logprob > out[1].logprob  # Paris beats Berlin
    assert client.supports_loglikelihood is True


def test_unknown_model_name_raises(server) -> None:
    client = load_model(f"openai:gpt-9@{server.url}")
    with pytest.raises(BackendError) as err:
        client.generate([GenerationRequest(prompt="hi")])
    text = str(err.value)
    assert "gpt-9" in text and server.url in text


def test_fingerprint_uses_served_id_and_root(server) -> None:
    a = load_model(f"openai:smollm2@{server.url}")
    b = load_model(f"openai:smollm2@{server.url}", concurrency=3)
    assert a.fingerprint == b.fingerprint and len(a.fingerprint) == 64
    assert load_model(f"openai:other@{server.url}").fingerprint != a.fingerprint


def test_server_without_prompt_logprobs_raises_naming_the_probe(hf_model_and_tokenizer) -> None:
    model, tok = hf_model_and_tokenizer
    app = real_model_app(model, tok, prompt_logprobs=False)  # like Ollama / llama.cpp server
    with UvicornThread(app) as srv:
        client = load_model(f"openai:smollm2@{srv.url}", timeout=120)
        with pytest.raises(BackendError) as err:
            client.loglikelihood(
                [LoglikelihoodRequest("2+2=", f" {d}") for d in "3456"], purpose="probe 'arith-mc'"
            )
    text = str(err.value)
    assert "probe 'arith-mc'" in text and "no prompt log-probabilities" in text
    assert "mode: generate" in text
    assert client.supports_loglikelihood is False
