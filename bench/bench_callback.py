"""TunecheckCallback overhead: task-evaluation time / training time in a short LoRA run.

A TRL SFTTrainer run of the embedded SmolLM2-135M (LoRA r=8 on q_proj/v_proj, batch 8)
on the UCI SMS Spam Collection (CC-BY-4.0), with the callback at its default settings
(every_n_steps=50, sample_size=200, max_new_tokens derived from the references, time
budget 10%). Target: evaluation time <= 10% of training time.

``python -m bench.bench_callback [STEPS]`` (default 110: evaluations due at steps 50 and 100).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SYSTEM = "Is this SMS message spam? Answer with one word: ham or spam."
TARGET = 0.10


def _setup(folder: Path, model_dir: Path) -> Path:
    from tunecheck.data import split_dataset

    split_dataset(
        SHARED / "tasks" / "sms_spam_collection.tsv",
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
  data: {SHARED / "tasks" / "sms_spam_collection.tsv"}
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


def main(steps: int = 110) -> bool:
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
        callback = TunecheckCallback(spec, store=f"sqlite:///{folder / 'store.db'}", verbose=True)
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
    per_step = train_s / steps
    per_eval = t.eval_seconds / max(1, t.evaluations)
    schedule_ratio = per_eval / (callback.every_n_steps * per_step)
    measured = callback.eval_fraction
    print(
        f"device: {'cuda' if torch.cuda.is_available() else 'cpu'}, torch threads {torch.get_num_threads()}"
    )
    print(f"{steps} LoRA steps in {train_s:.1f} s ({per_step:.2f} s/step); wall {wall:.1f} s")
    print(
        f"{t.evaluations} task evaluations of {len(callback.examples)} examples, "
        f"max_new_tokens={callback.params.max_new_tokens}: {t.eval_seconds:.1f} s ({per_eval:.1f} s each)"
    )
    if t.postponed:
        print(f"postponed by the 10% time budget at steps {t.postponed[:10]}")
    print(
        f"plain default schedule (one evaluation per 50 steps): eval/train = {schedule_ratio:.1%}"
    )
    print(
        f"measured in this run (defaults, time budget on):     eval/train = {measured:.1%}  (target <= {TARGET:.0%})"
    )
    return measured <= TARGET


if __name__ == "__main__":
    sys.exit(0 if main(*(int(a) for a in sys.argv[1:2])) else 1)
