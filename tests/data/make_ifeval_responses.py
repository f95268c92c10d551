"""Maintainer script: generate the real SmolLM2 responses stored in
``tests/data/fixtures/probes/ifeval_smollm2_responses.jsonl`` (run once; the tests only read them).

SmolLM2-135M-Instruct (the embedded default model, fp32 on CPU), its chat template, greedy decoding,
at most 128 new tokens, the first 200 IFEval prompts in file order (200 x 128 tokens is ~6 minutes
on a 2-core CPU). Greedy decoding makes the file
reproducible up to floating-point ties. Run from the repository root under the heavy-job lock:
``flock /tmp/tunecheck-heavy.lock python tests/data/make_ifeval_responses.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunecheck.models.gguf import embedded_model_dir

HERE = Path(__file__).resolve().parent / "fixtures" / "probes"
MAX_NEW_TOKENS = 128
BATCH = 16
LIMIT = 200


def main() -> None:
    torch.manual_seed(0)
    folder = embedded_model_dir()
    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    with (HERE / "ifeval_input_data.jsonl").open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh][:LIMIT]
    out_path = HERE / "ifeval_smollm2_responses.jsonl"
    done = set()
    if out_path.exists():
        done = {json.loads(line)["key"] for line in out_path.open(encoding="utf-8")}
    todo = [r for r in rows if r["key"] not in done]
    with out_path.open("a", encoding="utf-8") as fh:
        for start in range(0, len(todo), BATCH):
            batch = todo[start : start + BATCH]
            texts = [
                tok.apply_chat_template(
                    [{"role": "user", "content": r["prompt"]}],
                    tokenize=False,
                    add_generation_prompt=True,
                )
                for r in batch
            ]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                gen = model.generate(
                    **enc,
                    max_new_tokens=MAX_NEW_TOKENS,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                )
            for r, ids in zip(batch, gen[:, enc["input_ids"].shape[1] :], strict=True):
                response = tok.decode(ids, skip_special_tokens=True)
                fh.write(json.dumps({"key": r["key"], "response": response}) + "\n")
            fh.flush()
            print(f"{start + len(batch)}/{len(todo)}", flush=True)


if __name__ == "__main__":
    main()
