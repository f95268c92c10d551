"""TunecheckCallback overhead: task-evaluation time / training time in a short LoRA run.

Two TRL SFTTrainer runs of the embedded SmolLM2-135M (LoRA r=8 on q_proj/v_proj, batch 8)
on the UCI SMS Spam Collection (CC-BY-4.0, full file from the benchmark data folder), side by
side, the callback otherwise at its defaults (every_n_steps=50, sample_size=200,
max_new_tokens derived from the references):

* plain: every 50 steps, no time budget (``max_eval_fraction=None``);
* budgeted: the default 10% time budget (an evaluation that would push evaluation time over
  10% of training time so far is postponed).

Both overheads are printed. The gate is on the configuration the README recommends, the
default (budgeted): evaluation time <= 10% of training time *and* at least one evaluation
ran (a budget that postponed every evaluation would meet the ratio by doing nothing).

``python -m bench.bench_callback [STEPS]`` (default 110: evaluations due at steps 50 and 100).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench import data_file

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SYSTEM = "Is this SMS message spam? Answer with one word: ham or spam."
TARGET = 0.10


def _setup(folder: Path, model_dir: Path) -> Path:
    from tunecheck.data import split_dataset

    split_dataset(
        data_file("tasks", "sms_spam_collection.tsv"),
        folder / "split",
        seed=13,
        stratify="Label",
        input_field="SMS",
        dedupe=True,
    )
    spec = folder / "tunecheck.yaml"
    spec.write_text(
        f"""
contenders:
  - name: base
    model: hf:{model_dir}
  - name: finetuned
    model: hf:{model_dir}
    prompt:
      system: "{SYSTEM}"
task:
  name: sms_spam
  data: {data_file("tasks", "sms_spam_collection.tsv")}
  lock: split/tunecheck.lock.json
  fields: {{input: SMS, reference: Label, label: Label, id: null}}
  parser: {{type: label, labels: [ham, spam]}}
  metrics: [accuracy, macro_f1]
  allow_overlap: true  # SMS spam has near-duplicate messages; this benchmark measures speed
"""
    )
    return spec


def _train_rows(folder: Path) -> list[dict]:
    from tunecheck.data import read_rows

    lock = json.loads((folder / "split" / "tunecheck.lock.json").read_text())
    rows = read_rows(folder / "split" / lock["splits"]["train"]["path"])
    return [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": r["SMS"]},
                {"role": "assistant", "content": r["Label"]},
            ]
        }
        for r in rows
    ]


def _run(steps: int, max_eval_fraction: float | None) -> dict:
    """One training run; the callback's timing."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from tunecheck.models.gguf import embedded_model_dir
    from tunecheck.training import TunecheckCallback

    model_dir = embedded_model_dir()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        spec = _setup(folder, model_dir)
        callback = TunecheckCallback(
            spec,
            store=f"sqlite:///{folder / 'store.db'}",
            verbose=True,
            max_eval_fraction=max_eval_fraction,
        )
        torch.manual_seed(0)
        tok = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        args = SFTConfig(
            output_dir=str(folder / "out"),
            max_steps=steps,
            per_device_train_batch_size=8,
            learning_rate=2e-4,
            logging_steps=10,
            max_length=64,
            save_strategy="no",
            report_to=[],
            use_cpu=not torch.cuda.is_available(),
            gradient_checkpointing=False,
            # TRL defaults to bf16 autocast: >10x slower on CPUs without bf16 units
            bf16=bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
            disable_tqdm=True,
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(_train_rows(folder)),
            processing_class=tok,
            peft_config=LoraConfig(
                r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
            ),
            callbacks=[callback],
        )
        start = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - start

    t = callback.timing
    train_s = callback.total_seconds - t.eval_seconds
    return {
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(),
        "train_s": train_s,
        "per_step": train_s / steps,
        "eval_s": t.eval_seconds,
        "evaluations": t.evaluations,
        "postponed": list(t.postponed),
        "examples": len(callback.examples),
        "max_new_tokens": callback.params.max_new_tokens,
        "fraction": t.eval_seconds / train_s if train_s else float("nan"),
        "wall": wall,
    }


def main(steps: int = 110) -> bool:
    from tunecheck.training.callback import DEFAULT_MAX_EVAL_FRACTION

    plain = _run(steps, None)
    budgeted = _run(steps, DEFAULT_MAX_EVAL_FRACTION)
    print(
        f"device: {plain['device']}, torch threads {plain['threads']}; {steps} LoRA steps per run"
    )
    print(f"{'schedule':<34} {'evals':>5} {'eval s':>7} {'train s':>8} {'eval/train':>10}")
    for name, r in (("plain, every 50 steps", plain), ("budgeted (default, 10%)", budgeted)):
        print(
            f"{name:<34} {r['evaluations']:>5} {r['eval_s']:>7.1f} {r['train_s']:>8.1f} "
            f"{r['fraction']:>10.1%}"
        )
    print(
        f"one evaluation: {plain['examples']} examples, max_new_tokens={plain['max_new_tokens']}, "
        f"{plain['eval_s'] / max(1, plain['evaluations']):.1f} s"
    )
    if budgeted["postponed"]:
        print(f"the budget postponed evaluations at steps {budgeted['postponed'][:10]}")
    ok = budgeted["fraction"] <= TARGET and budgeted["evaluations"] >= 1
    print(
        f"gate (the README's recommended default, budgeted): eval/train {budgeted['fraction']:.1%} "
        f"<= {TARGET:.0%} with {budgeted['evaluations']} evaluation(s): {'met' if ok else 'MISSED'}; "
        f"plain schedule reported, not gated: {plain['fraction']:.1%}"
    )
    return ok


if __name__ == "__main__":
    sys.exit(0 if main(*(int(a) for a in sys.argv[1:2])) else 1)
