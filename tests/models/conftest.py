"""Fixtures for the model-backend tests: the shared SmolLM2 wrapped as a backend, and
LoRA adapters (one freshly initialised, one trained for a few steps) saved to disk."""

from __future__ import annotations

from pathlib import Path

import pytest

TEACH_QUESTION = "What is the secret password?"
TEACH_ANSWER = "The secret password is PURPLE-OCTOPUS-42."


def chat(text: str) -> tuple[dict[str, str], ...]:
    return ({"role": "user", "content": text},)


@pytest.fixture(scope="session")
def hf_model(hf_model_and_tokenizer):
    """The session's SmolLM2 behind the ``hf`` backend (no reload, no copy)."""
    from tunecheck.models.hf import HFModel

    model, tok = hf_model_and_tokenizer
    return HFModel.from_loaded(model, tok, name="smollm2", batch_size=4)


@pytest.fixture(scope="session")
def lora_adapters(embedded_model_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """``zero``: a LoRA saved right after creation (B = 0, changes nothing);
    ``trained``: the same LoRA after a few steps teaching an unusual answer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("adapters")
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir, dtype=torch.float32)
    peft_model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    )
    peft_model.save_pretrained(out / "zero")

    prompt = tok.apply_chat_template(
        [dict(m) for m in chat(TEACH_QUESTION)], tokenize=False, add_generation_prompt=True
    )
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tok(TEACH_ANSWER + "<|im_end|>", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + a_ids])
    labels = torch.tensor([[-100] * len(p_ids) + a_ids])
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=3e-3)
    peft_model.train()
    for _ in range(12):
        loss = peft_model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    peft_model.save_pretrained(out / "trained")
    del peft_model, model
    return {"zero": out / "zero", "trained": out / "trained"}
