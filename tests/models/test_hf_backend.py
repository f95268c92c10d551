"""The ``hf`` backend on the real embedded SmolLM2-135M-Instruct."""

from __future__ import annotations

import math

import pytest

from tunecheck.errors import BackendError
from tunecheck.models import GenerationParams, GenerationRequest, LoglikelihoodRequest, load_model
from tunecheck.models.hf import HFModel, folder_digest, parse_ref

GREEDY = GenerationParams(max_new_tokens=16)


def chat(text: str) -> tuple[dict[str, str], ...]:
    return ({"role": "user", "content": text},)


def test_greedy_answers_and_is_independent_of_batch_size(hf_model_and_tokenizer, hf_model):
    model, tok = hf_model_and_tokenizer
    questions = [
        "What is the capital of France?",
        "Name a primary color.",
        "Say hello in Spanish.",
        "What is the largest planet in the solar system? Answer briefly.",
    ]
    reqs = [GenerationRequest(chat(q), GREEDY) for q in questions]
    one = HFModel.from_loaded(model, tok, batch_size=1, fingerprint="x").generate(reqs)
    four = hf_model.generate(reqs)
    assert [g.texts for g in one] == [g.texts for g in four]
    assert "Paris" in four[0].text
    assert all(g.ok and g.completion_tokens and g.prompt_tokens for g in four)

    # an independent reference: plain transformers generate on one prompt
    text = tok.apply_chat_template(
        [dict(m) for m in chat(questions[0])], tokenize=False, add_generation_prompt=True
    )
    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    ref = model.generate(**ids, max_new_tokens=16, do_sample=False)
    assert tok.decode(ref[0, ids["input_ids"].shape[1] :], skip_special_tokens=True) == four[0].text


def test_results_come_back_in_input_order_and_raw_text_is_used_as_is(hf_model):
    reqs = [
        GenerationRequest("The capital of Italy is", GenerationParams(max_new_tokens=4)),
        GenerationRequest(chat("What is the capital of France?"), GREEDY),
    ]
    both = hf_model.generate(reqs)
    alone = [hf_model.generate([r])[0] for r in reqs]
    assert [g.texts for g in both] == [g.texts for g in alone]
    assert both[0].prompt_tokens == 5  # no chat template around raw text
    assert both[0].completion_tokens == 4


def test_stop_sequences_cut_the_text_and_stop_early(hf_model):
    req = GenerationRequest(
        chat("Describe the sea in two sentences."), GenerationParams(max_new_tokens=24)
    )
    full = hf_model.generate([req])[0]
    word = full.text.split()[4]  # a stop string the model will surely produce
    stop = GenerationParams(max_new_tokens=24, stop=("never-produced", word))
    stopped = hf_model.generate([GenerationRequest(req.prompt, stop)])[0]
    assert stopped.text == full.text[: full.text.index(word)]
    assert stopped.completion_tokens < full.completion_tokens


def test_sampling_is_seeded_and_independent_of_the_batch(hf_model):
    p = GenerationParams(max_new_tokens=12, temperature=1.0, top_p=0.95, n=3, seed=7)
    a = GenerationRequest(chat("Tell me a story about a dragon."), p)
    b = GenerationRequest(chat("Name an animal."), p)
    alone = hf_model.generate([a])[0]
    together = hf_model.generate([b, a])[1]
    assert alone.texts == together.texts
    assert len(set(alone.texts)) > 1  # different samples differ
    # sample i of seed s is sample 0 of seed s+i: the cache relies on it
    single = hf_model.generate(
        [
            GenerationRequest(
                a.prompt,
                GenerationParams(max_new_tokens=12, temperature=1.0, top_p=0.95, n=1, seed=8),
            )
        ]
    )[0]
    assert single.texts == alone.texts[1:2]
    assert (
        alone.meta["sample_completion_tokens"]
        and sum(alone.meta["sample_completion_tokens"]) == alone.completion_tokens
    )
    other_seed = hf_model.generate(
        [
            GenerationRequest(
                a.prompt, GenerationParams(max_new_tokens=12, temperature=1.0, n=3, seed=99)
            )
        ]
    )[0]
    assert other_seed.texts != alone.texts


def test_near_zero_temperature_sampling_equals_greedy(hf_model):
    prompt = chat("What is the capital of France?")
    greedy = hf_model.generate([GenerationRequest(prompt, GREEDY)])[0]
    cold = hf_model.generate(
        [GenerationRequest(prompt, GenerationParams(max_new_tokens=16, temperature=1e-4, n=2))]
    )[0]
    assert cold.texts == [greedy.text, greedy.text]


def _reference_logprob(model, tok, context: str, continuation: str) -> tuple[float, bool]:
    """Plain transformers: one unpadded forward over context+continuation."""
    import torch

    ctx = tok(context, add_special_tokens=False)["input_ids"]
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    cont = whole[len(ctx) :]
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logits = model(ids).logits[0, len(ctx) - 1 : -1].float()
    logp = torch.log_softmax(logits, -1)
    target = torch.tensor(cont)
    total = float(logp.gather(-1, target[:, None]).sum())
    return total, bool((logp.argmax(-1) == target).all())


def test_loglikelihood_matches_a_plain_forward(hf_model_and_tokenizer, hf_model):
    model, tok = hf_model_and_tokenizer
    q = "Question: Which planet is known as the Red Planet?\nA. Venus\nB. Mars\nC. Jupiter\nD. Saturn\nAnswer:"
    reqs = [LoglikelihoodRequest(q, f" {c}") for c in "ABCD"]
    reqs += [
        LoglikelihoodRequest("The capital of France is", " Paris, a city on the Seine."),
        LoglikelihoodRequest("The capital of France is", " Paris"),
        LoglikelihoodRequest(
            "Once upon a time, ", "there was a small village."
        ),  # trailing space moves
        LoglikelihoodRequest("2 + 2 =", " 4"),
    ]
    got = hf_model.loglikelihood(reqs)
    for req, res in zip(reqs, got, strict=True):
        ctx, cont = req.context, req.continuation
        stripped = ctx.rstrip()
        ref, greedy = _reference_logprob(model, tok, stripped, ctx[len(stripped) :] + cont)
        assert res.logprob == pytest.approx(ref, abs=1e-4)
        assert res.is_greedy == greedy
        assert res.n_tokens >= 1
    assert got[5].is_greedy  # " Paris" is the greedy continuation


def test_shared_context_path_equals_one_by_one(hf_model):
    contexts = ["The weather today is", "My favourite food is", "In 1492, Columbus"]
    conts = [" sunny and warm", " pizza", " sailed across the ocean blue", " x"]
    reqs = [LoglikelihoodRequest(c, k) for c in contexts for k in conts]
    together = hf_model.loglikelihood(reqs)
    alone = [hf_model.loglikelihood([r])[0] for r in reqs]
    for a, b in zip(together, alone, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
        assert (a.is_greedy, a.n_tokens) == (b.is_greedy, b.n_tokens)
    assert all(math.isfinite(r.logprob) and r.logprob < 0 for r in together)


def test_from_loaded_restores_train_mode(hf_model_and_tokenizer):
    model, tok = hf_model_and_tokenizer
    wrapped = HFModel.from_loaded(model, tok)
    fp = wrapped.fingerprint
    assert fp == wrapped.fingerprint  # stable while the weights are unchanged
    model.train()
    try:
        wrapped.generate([GenerationRequest("Hi", GenerationParams(max_new_tokens=2))])
        assert model.training  # restored after the call
        wrapped.loglikelihood([LoglikelihoodRequest("Hi", " there")])
        assert model.training
    finally:
        model.eval()
    wrapped.generate([GenerationRequest("Hi", GenerationParams(max_new_tokens=2))])
    assert not model.training


@pytest.mark.slow
def test_tensor_fingerprint_follows_training_steps():
    import torch

    from tunecheck.models.hf import TensorFingerprint

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 2))
    net[0].requires_grad_(False)  # frozen, like a LoRA base
    fp = TensorFingerprint(net)
    before = fp()
    assert fp() == before
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net(torch.randn(4, 8)).sum().backward()
    opt.step()
    after = fp()
    assert after != before
    # an independent full hash of the same values agrees: the incremental cache is exact
    assert TensorFingerprint(net)() == after
    with torch.no_grad():
        net[0].weight[0, 0] += 1  # frozen weights changed in place are noticed too
    assert fp() != after


def test_from_ref_fingerprint_is_a_content_hash(embedded_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNECHECK_CACHE", str(tmp_path / "cache"))
    d1 = folder_digest(embedded_model_dir)
    assert (tmp_path / "cache" / "file-digests.json").exists()
    assert folder_digest(embedded_model_dir) == d1  # second time comes from the digest cache
    # a copy with one changed byte in the config gets another digest
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in embedded_model_dir.iterdir():
        (copy / f.name).symlink_to(f)
    (copy / "config.json").unlink()
    (copy / "config.json").write_text((embedded_model_dir / "config.json").read_text() + " ")
    assert folder_digest(copy) != d1


def test_bad_references_and_options_are_clear_errors(embedded_model_dir, tmp_path):
    with pytest.raises(BackendError, match="model not found"):
        parse_ref(str(tmp_path / "nope"))
    with pytest.raises(BackendError, match="not a PEFT adapter"):
        parse_ref(f"{embedded_model_dir}+adapter={tmp_path}")
    with pytest.raises(BackendError, match="unknown model option 'adaptor'"):
        parse_ref(f"{embedded_model_dir}+adaptor={tmp_path}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendError, match=r"no config\.json"):
        parse_ref(str(tmp_path / "empty"))
    with pytest.raises(BackendError, match="unknown backend option"):
        load_model(f"hf:{embedded_model_dir}", batchsize=4)
    with pytest.raises(BackendError, match="invalid batch_size"):
        load_model(f"hf:{embedded_model_dir}", batch_size=0)
    with pytest.raises(BackendError, match="unknown dtype"):
        load_model(f"hf:{embedded_model_dir}", dtype="float8")


def test_chat_prompt_without_template_is_refused(hf_model_and_tokenizer):
    model, tok = hf_model_and_tokenizer
    import copy

    bare = copy.copy(tok)
    bare.chat_template = None
    wrapped = HFModel.from_loaded(model, bare, fingerprint="x")
    with pytest.raises(BackendError, match="chat: false"):
        wrapped.generate([GenerationRequest(chat("hi"), GREEDY)])


def _prompted(messages: list[str]) -> list[GenerationRequest]:
    from tunecheck.demo.task import SYSTEM_PROMPT

    shots = (
        {"role": "user", "content": "My Pulse Watch stopped syncing, no rush."},
        {"role": "assistant", "content": '{"category":"technical","priority":"low"}'},
    )
    return [
        GenerationRequest(
            ({"role": "system", "content": SYSTEM_PROMPT}, *shots, {"role": "user", "content": m}),
            GenerationParams(max_new_tokens=20),
            id=f"r{i}",
        )
        for i, m in enumerate(messages)
    ]


MESSAGES = [
    "I was charged twice for my router.",
    "Where is my parcel? It has been three weeks and nobody answers.",
    "Please close my account.",
    "The TV will not turn on after the update, I need it fixed today.",
    "Refund please.",
]


def test_shared_prefix_cache_gives_the_same_answers_as_full_prompts(hf_model_and_tokenizer):
    model, tok = hf_model_and_tokenizer
    reqs = _prompted(MESSAGES)
    cached = HFModel.from_loaded(model, tok, batch_size=8, fingerprint="x")
    plain = HFModel.from_loaded(model, tok, batch_size=1, fingerprint="x", prefix_cache=False)
    with_prefix = cached.generate(reqs)
    # the prefix path was really taken: the system prompt and the shots were cached once
    assert cached._prefix is not None and len(cached._prefix[0]) > 300
    assert [g.texts for g in with_prefix] == [g.texts for g in plain.generate(reqs)]
    assert [g.prompt_tokens for g in with_prefix] == [g.prompt_tokens for g in plain.generate(reqs)]

    # the kept prefix is reused by the next batch (same object), answers unchanged
    kept = cached._prefix
    again = cached.generate(list(reversed(reqs)))
    assert cached._prefix is kept
    assert [g.texts for g in again] == [g.texts for g in reversed(with_prefix)]

    # independent reference: plain transformers generate on the longest prompt alone
    text = tok.apply_chat_template(
        [dict(m) for m in reqs[1].prompt], tokenize=False, add_generation_prompt=True
    )
    ids = tok(text, return_tensors="pt", add_special_tokens=False)
    ref = model.generate(**ids, max_new_tokens=20, do_sample=False)
    assert tok.decode(ref[0, ids["input_ids"].shape[1] :], skip_special_tokens=True) == (
        with_prefix[1].text
    )


def test_shared_prefix_cache_keeps_seeded_sampling_per_row(hf_model_and_tokenizer):
    model, tok = hf_model_and_tokenizer
    params = GenerationParams(max_new_tokens=12, temperature=0.9, n=2, seed=5)
    reqs = [GenerationRequest(r.prompt, params, id=r.id) for r in _prompted(MESSAGES[:3])]
    cached = HFModel.from_loaded(model, tok, batch_size=8, fingerprint="x")
    plain = HFModel.from_loaded(model, tok, batch_size=1, fingerprint="x", prefix_cache=False)
    assert [g.texts for g in cached.generate(reqs)] == [g.texts for g in plain.generate(reqs)]


def test_cpu_auto_batches_are_capped_by_the_key_value_budget(hf_model_and_tokenizer):
    from tunecheck.models import hf as hf_mod

    model, tok = hf_model_and_tokenizer
    auto = HFModel.from_loaded(model, tok, fingerprint="x")
    cfg = model.config
    per_token = (
        2
        * cfg.num_hidden_layers
        * cfg.num_key_value_heads
        * (cfg.hidden_size // cfg.num_attention_heads)
        * 4
    )
    assert auto._kv_bytes_per_token() == per_token
    assert auto.rows_that_fit(100) == auto.current_batch_size == hf_mod._AUTO_START["cpu"]
    long = hf_mod._CPU_KV_BUDGET // (per_token * 3)  # three rows of this length fit
    assert auto.rows_that_fit(long) == 3
    assert auto.rows_that_fit(10**9) == 1
    # an explicit batch_size is taken as given
    assert (
        HFModel.from_loaded(model, tok, batch_size=16, fingerprint="x").rows_that_fit(10**9) == 16
    )


def test_prefix_cache_of_a_model_that_trains_between_calls_is_not_reused(hf_model_and_tokenizer):
    """An in-memory model without a fixed fingerprint (the callback's case) may change between
    calls; a prefix cached before the change must not be served after it."""
    import torch

    model, tok = hf_model_and_tokenizer
    reqs = _prompted(MESSAGES[:3])
    training = HFModel.from_loaded(model, tok, batch_size=8)  # identity from the tensors
    training.generate(reqs)
    assert training._prefix is not None
    v_projs = [layer.self_attn.v_proj.weight for layer in model.model.layers[:3]]
    saved = [w.detach().clone() for w in v_projs]
    try:
        with torch.no_grad():
            for w in v_projs:
                w.mul_(-1.0)  # a "training step" that changes every prefix key/value
        after = training.generate(reqs)
        plain = HFModel.from_loaded(model, tok, batch_size=1, fingerprint="y", prefix_cache=False)
        assert [g.texts for g in after] == [g.texts for g in plain.generate(reqs)]
    finally:
        with torch.no_grad():
            for w, s in zip(v_projs, saved, strict=True):
                w.copy_(s)
