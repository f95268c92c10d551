"""Shared fixtures. The real embedded model is loaded once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FIXTURE_DATA = Path(__file__).resolve().parent / "data" / "fixtures"


# Fixtures that load a real model (or train one): SmolLM2, its adapters, MiniLM. A test using
# any of them, directly or through another fixture, is marked `model`, so
# `pytest -m "not model"` leaves out every real model load.
MODEL_FIXTURES = frozenset(
    {
        "embedded_model_dir",
        "hf_model_and_tokenizer",
        "hf_model",
        "lora_adapters",
        "lora_tuned",
        "classifiers",
        "demo_dir",
        "trained",
        "lm_eval_runs",
        "minilm_encoder",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if MODEL_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


# Property tests draw the same examples on every run (CI must not pass or fail by the luck of
# the draw); a new draw is a deliberate change of the seed or the strategies.
settings.register_profile("tunecheck", derandomize=True, deadline=None)
settings.load_profile("tunecheck")


@pytest.fixture(scope="session")
def fixture_data() -> Path:
    """``tests/data/fixtures``: small subsets of real public data sets, committed with the tests
    (origin, licence and how each was sampled: ``tests/data/SOURCES.md``)."""
    return FIXTURE_DATA


@pytest.fixture(scope="session")
def embedded_model_dir() -> Path:
    """SmolLM2-135M-Instruct as a plain transformers folder (converted once per machine)."""
    from tunecheck.models.gguf import embedded_model_dir as _dir

    return _dir()


@pytest.fixture(scope="session")
def hf_model_and_tokenizer(embedded_model_dir: Path):
    """One loaded (model, tokenizer) pair shared by every test that needs the real model.

    Tests must not train or modify it in place; training tests load their own copy.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir, dtype=torch.float32)
    model.eval()
    return model, tok


@pytest.fixture()
def store_url(tmp_path: Path) -> str:
    """A fresh SQLite run store for one test."""
    return f"sqlite:///{tmp_path / 'tunecheck.db'}"


TEACH_QUESTION = "What is the secret password?"
TEACH_ANSWER = "The secret password is PURPLE-OCTOPUS-42."


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
        [dict(m) for m in ({"role": "user", "content": TEACH_QUESTION},)],
        tokenize=False,
        add_generation_prompt=True,
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
