"""Fixtures for the model-backend tests: the shared SmolLM2 wrapped as a backend, and
the LoRA adapters are in the top-level conftest."""

from __future__ import annotations

import pytest


def chat(text: str) -> tuple[dict[str, str], ...]:
    return ({"role": "user", "content": text},)


@pytest.fixture(scope="session")
def hf_model(hf_model_and_tokenizer):
    """The session's SmolLM2 behind the ``hf`` backend (no reload, no copy)."""
    from tunecheck.models.hf import HFModel

    model, tok = hf_model_and_tokenizer
    return HFModel.from_loaded(model, tok, name="smollm2", batch_size=4)
