"""A code spec with the embedded SmolLM2 on a small MBPP slice, through the CLI.

Base, base+prompt and a LoRA fine-tune each draw n = 10 samples at temperature 0.8,
scored with pass@1 and pass@5 in the sandbox. The 135M model writes little working
code: what is tested is the pipeline, the cache (a re-run makes no model call), resume
(a larger --limit generates only the new problems) and the sandbox's record of each sample.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.model

DATA = Path(__file__).resolve().parents[1] / "data" / "code"

SPEC = """\
seed: 11
bootstrap: 1000
guard_examples: 2
contenders:
  - name: base
    model: hf:{model}
    generation: {{n: 10, temperature: 0.8, max_new_tokens: 48}}
  - name: base+prompt
    model: hf:{model}
    prompt:
      system: You are an expert Python programmer. Answer with one ```python code block.
    generation: {{n: 10, temperature: 0.8, max_new_tokens: 48}}
  - name: fine-tuned
    model: hf:{model}+adapter={adapter}
    generation: {{n: 10, temperature: 0.8, max_new_tokens: 48}}
candidate: fine-tuned
task:
  name: mbpp
  data: mbpp.json
  metrics: [pass@1, pass@5]
  code: {{timeout: 5}}
probes: []
"""


@pytest.fixture(scope="module")
def adapter(embedded_model_dir: Path, tmp_path_factory) -> Path:
    """A LoRA adapter with non-zero weights: another model than the base, built in seconds."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(embedded_model_dir, dtype=torch.float32)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(model, config)
    out = tmp_path_factory.mktemp("code-adapter") / "lora"
    peft_model.save_pretrained(out)
    return out


def _run(project: Path, limit: int) -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tunecheck",
            "run",
            "tunecheck.yaml",
            "--limit",
            str(limit),
            "--json",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_code_spec_with_the_embedded_model(
    tmp_path: Path, embedded_model_dir: Path, adapter: Path
) -> None:
    rows = json.loads((DATA / "mbpp_sanitized.json").read_text())[:10]
    (tmp_path / "mbpp.json").write_text(json.dumps(rows))
    (tmp_path / "tunecheck.yaml").write_text(SPEC.format(model=embedded_model_dir, adapter=adapter))

    first = _run(tmp_path, 2)
    assert first["meta"]["model_calls"] > 0
    task = first["tasks"][0]
    assert task["n_examples"] == 2
    for c in task["contenders"]:
        for k in ("pass@1", "pass@5"):
            assert 0.0 <= c["metrics"][k] <= 1.0
        execs = c["details"]["pass@1"]["executions"]
        assert sorted(execs) == sorted(str(r["task_id"]) for r in rows[:2])
        assert all(len(samples) == 10 for samples in execs.values())
        assert all(
            s["status"]
            in {"passed", "failed", "error", "timeout", "memory", "exited", "killed", "cpu"}
            for samples in execs.values()
            for s in samples
        )
        assert c["details"]["pass@1"]["samples"] == 20
    # pass@5 >= pass@1 for every problem, as the estimator guarantees
    for ex in task["examples"]:
        for name, scores in ex["scores"].items():
            assert scores["pass@5"] >= scores["pass@1"] - 1e-12, (ex["id"], name)
    assert {c["metric"] for c in task["comparisons"]} == {"pass@1", "pass@5"}

    resumed = _run(tmp_path, 3)  # one more problem: only its samples are generated
    assert resumed["tasks"][0]["n_examples"] == 3
    assert 0 < resumed["meta"]["model_calls"] <= 3  # one request per contender for the new problem
    cand = lambda r: next(c for c in r["tasks"][0]["contenders"] if c["name"] == "fine-tuned")  # noqa: E731

    again = _run(tmp_path, 3)
    assert again["meta"]["model_calls"] == 0
    assert cand(again)["metrics"] == cand(resumed)["metrics"]
