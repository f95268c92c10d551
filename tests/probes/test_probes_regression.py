"""End to end: the regression table on the real embedded model vs a LoRA-tuned copy.

The copy is fine-tuned (a few LoRA steps) to answer every question with a refusal, which
destroys arithmetic; the probes must show the base model scoring above zero and the tuned
copy failing the regression thresholds. Multiple-choice scoring by log-likelihood is
checked against a direct transformers computation.
"""

from __future__ import annotations

import numpy as np
import pytest

from tunecheck.models.base import GenerationParams
from tunecheck.models.hf import HFModel
from tunecheck.pipeline.scoring import probe_result
from tunecheck.probes import build_probe, run_probe
from tunecheck.spec import ProbeSpec, Thresholds

REFUSAL = "Sorry, I cannot help with that."


@pytest.fixture(scope="module")
def lora_tuned(embedded_model_dir):
    """A LoRA copy of SmolLM2 trained for a few steps to refuse everything (own model copy)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir, dtype=torch.float32)
    model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])
    )
    questions = [f"What is {a} plus {b}?" for a, b in zip(range(3, 19), range(7, 23), strict=True)]
    texts = []
    for q in questions:
        prompt = tok.apply_chat_template(
            [{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True
        )
        texts.append((prompt, REFUSAL + tok.eos_token))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for step in range(12):
        batch = texts[(step * 4) % len(texts) : (step * 4) % len(texts) + 4]
        enc = tok([p + a for p, a in batch], return_tensors="pt", padding=True)
        labels = enc["input_ids"].clone()
        for i, (p, _) in enumerate(batch):
            labels[i, : len(tok(p)["input_ids"])] = -100
        labels[enc["attention_mask"] == 0] = -100
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    model.eval()
    return HFModel.from_loaded(model, tok, fingerprint="lora-refuser", batch_size=8)


def _expected_status(base: float, finetuned: float) -> str:
    """The documented rule (README, probes): a relative drop of 15% or more fails, over 5% warns."""
    drop = (base - finetuned) / base if base else 0.0
    return "FAIL" if drop >= 0.15 else "warning" if drop > 0.05 else "ok"


def test_regression_table_base_vs_lora_tuned(hf_model_and_tokenizer, lora_tuned):
    model, tok = hf_model_and_tokenizer
    base = HFModel.from_loaded(model, tok, fingerprint="base", batch_size=8)
    params = GenerationParams(max_new_tokens=40)
    rows = []
    for name in ("arithmetic", "reasoning"):
        probe = build_probe(ProbeSpec(name=name, builtin=name, n=12), seed=13)
        b = run_probe(probe, base, params=params)
        f = run_probe(probe, lora_tuned, params=params)
        assert b.example_ids == f.example_ids == [e.id for e in probe.examples]
        assert set(np.unique(b.per_example)) <= {0.0, 1.0}
        assert any(REFUSAL.split(",")[0] in t for t in f.outputs)
        rows.append(probe_result(name, b.metric, b, f, Thresholds(), n_resamples=500))
        print(f"{name}: base {b.value:.3f} lora {f.value:.3f} -> {rows[-1].status}")
    arithmetic = rows[0]
    assert arithmetic.base > 0
    assert arithmetic.finetuned < arithmetic.base
    assert arithmetic.status == "FAIL"
    for row in rows:
        assert row.n == 12
        assert row.status == _expected_status(row.base, row.finetuned)


def test_mc_loglikelihood_matches_direct_transformers(hf_model_and_tokenizer, fixture_data):
    """acc/acc_norm choices vs an independent full-sequence log-prob computation."""
    import torch

    model, tok = hf_model_and_tokenizer
    probe = build_probe(
        ProbeSpec(name="boolq", path=str(fixture_data / "probes" / "boolq_val.jsonl"), n=6), seed=2
    )
    arc = build_probe(
        ProbeSpec(name="arc", path=str(fixture_data / "probes" / "arc_easy_test.jsonl"), n=6),
        seed=2,
    )
    probe.examples += arc.examples
    out = run_probe(probe, HFModel.from_loaded(model, tok, fingerprint="base", batch_size=8))
    assert out.details["mode"] == "loglikelihood" and out.n == 12

    def logprob(context: str, continuation: str) -> float:
        ctx = tok(context, add_special_tokens=False)["input_ids"]
        whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
        # continuation tokens = what the whole adds beyond the context (lm-eval's split)
        n_ctx = len(ctx)
        while n_ctx > 0 and whole[:n_ctx] != ctx[:n_ctx]:
            n_ctx -= 1
        ids = torch.tensor([whole])
        with torch.no_grad():
            logits = model(ids).logits.log_softmax(-1)[0]
        return float(sum(logits[i - 1, whole[i]] for i in range(n_ctx, len(whole))))

    expected_acc, expected_norm = [], []
    for ex in probe.examples:
        lls = np.array([logprob(ex.meta["context"], c) for c in ex.meta["continuations"]])
        lengths = np.array([len(t) for t in ex.meta["choices"]], dtype=float)
        expected_acc.append("ABCD"[int(np.argmax(lls))])
        expected_norm.append(float(int(np.argmax(lls / lengths)) == ex.meta["gold"]))
    assert out.outputs == expected_acc
    assert out.details["acc_norm"] == pytest.approx(np.mean(expected_norm))


def test_generate_mode_scores_letters(hf_model_and_tokenizer, fixture_data):
    model, tok = hf_model_and_tokenizer
    probe = build_probe(
        ProbeSpec(
            name="arc",
            path=str(fixture_data / "probes" / "arc_easy_test.jsonl"),
            n=4,
            mode="generate",
        ),
        seed=5,
    )
    out = run_probe(probe, HFModel.from_loaded(model, tok, fingerprint="base", batch_size=8))
    assert out.details["mode"] == "generate"
    assert out.n == 4
    for ans, score, ex in zip(out.outputs, out.per_example, probe.examples, strict=True):
        assert score == float(ans == ex.reference)
