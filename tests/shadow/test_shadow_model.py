"""End to end with a real model: the embedded SmolLM2, served by the OpenAI-compatible
test server of the backend tests, is the candidate; a stub is production."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest
from shadow_procs import chat_body, rows, wait_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))


@pytest.mark.model
def test_mirror_to_the_embedded_model(hf_model_and_tokenizer, stubs, proxies, tmp_path) -> None:
    from openai_servers import UvicornThread, real_model_app

    from tunecheck.shadow.log import load_requests
    from tunecheck.shadow.report import build_report

    model, tok = hf_model_and_tokenizer
    prod = stubs("ok")
    with UvicornThread(real_model_app(model, tok, served_name="smollm2")) as server:
        proxy = proxies(prod.url, server.url, "--candidate-model", "smollm2")
        questions = ["What is the capital of France?", "Say hello.", "Name a colour."]
        with httpx.Client(timeout=120) as client:
            for q in questions:
                body = {**chat_body(q), "max_tokens": 8, "temperature": 0}
                r = client.post(proxy.url + "/chat/completions", json=body)
                assert r.json()["choices"][0]["message"]["content"] == f"echo: {q}"
        db = tmp_path / "shadow.db"
        assert wait_rows(db, "cand_status = 200", 3, timeout=300) == 3
        proxy.stop()
    log = rows(db)
    for row in log:
        assert row["cand_error"] is None and row["cand_text"]
        assert 1 <= row["cand_completion_tokens"] <= 8
        assert row["cand_prompt_tokens"] > 5  # the chat template was applied
    paris = next(r for r in log if "France" in r["request"]["messages"][0]["content"])
    assert "Paris" in paris["cand_text"]
    sessions, all_rows = load_requests(str(db))
    rep = build_report(sessions, all_rows)
    assert rep.pairs == 3 and rep.errors.candidate == 0 and rep.identical == 0
