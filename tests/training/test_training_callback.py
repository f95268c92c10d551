"""TunecheckCallback in real TRL SFTTrainer runs of the embedded SmolLM2 with LoRA,
and ``tunecheck checkpoints`` on the checkpoints those runs save."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tunecheck.errors import TunecheckError
from tunecheck.metrics import METRICS, MetricScores, metric

POSITIVE = [
    "I loved this film",
    "What a great day",
    "The food was wonderful",
    "Fantastic service",
    "A brilliant, happy ending",
    "I am very pleased",
    "Superb acting",
    "Lovely weather today",
    "This made me smile",
    "Best purchase ever",
    "Delightful and fun",
    "An excellent book",
]
NEGATIVE = [
    "I hated this film",
    "What a terrible day",
    "The food was awful",
    "Horrible service",
    "A sad, boring ending",
    "I am very upset",
    "Dreadful acting",
    "Miserable weather today",
    "This made me cry",
    "Worst purchase ever",
    "Tedious and dull",
    "A dreadful book",
]
SYSTEM = "Classify the sentiment. Answer with one word: positive or negative."

if "tc_test_constant" not in METRICS:

    @metric("tc_test_constant")
    def _constant(outputs, examples, ctx) -> MetricScores:
        """A metric that cannot change: a plateau by construction (for early stopping)."""
        return MetricScores(
            name="tc_test_constant",
            value=0.5,
            per_example=np.full(len(examples), 0.5),
            example_ids=[e.id for e in examples],
            kind="continuous",
        )


def _write_task(folder: Path, model_dir: Path, metrics: list[str]) -> Path:
    from tunecheck.data import split_dataset

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "sentiment.jsonl"
    if not data.exists():
        rows = [
            {"id": f"p{i}", "input": t, "reference": "positive"} for i, t in enumerate(POSITIVE)
        ]
        rows += [
            {"id": f"n{i}", "input": t, "reference": "negative"} for i, t in enumerate(NEGATIVE)
        ]
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        split_dataset(
            data, folder / "split", ratios=[0.5, 0.25, 0.25], seed=3, stratify="reference"
        )
    spec = folder / f"tunecheck-{'-'.join(metrics)}.yaml"
    spec.write_text(
        f"""
contenders:
  - name: base
    model: hf:{model_dir}
  - name: finetuned
    model: hf:{model_dir}
    prompt:
      system: "{SYSTEM}"
    generation:
      max_new_tokens: 16
task:
  name: sentiment
  data: sentiment.jsonl
  lock: split/tunecheck.lock.json
  metrics: {json.dumps(metrics)}
"""
    )
    return spec


def _train_rows(folder: Path) -> list[dict]:
    rows = [
        json.loads(line) for line in (folder / "split" / "train.jsonl").read_text().splitlines()
    ]
    return [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": r["input"]},
                {"role": "assistant", "content": r["reference"]},
            ]
        }
        for r in rows
    ]


def _trainer(model_dir: Path, folder: Path, out: Path, callbacks: list, **config):
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)  # our own copy
    rows = _train_rows(folder)
    args = SFTConfig(
        output_dir=str(out),
        per_device_train_batch_size=4,
        learning_rate=5e-4,
        logging_steps=1,
        max_length=64,
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        gradient_checkpointing=False,  # TRL turns it on by default: ~30% slower on this tiny model
        bf16=False,  # TRL's default bf16 autocast: >10x slower on CPUs without bf16 units
        **config,
    )
    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(rows[:4]),
        processing_class=tok,
        peft_config=LoraConfig(
            r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
        ),
        callbacks=callbacks,
    )


class _ModeProbe:
    """Records the model's train/eval mode right after TunecheckCallback's on_step_end."""

    def __init__(self) -> None:
        self.modes: list[bool] = []

    def __getattr__(self, name):  # every other event is a no-op
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.modes.append(model.training)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, embedded_model_dir):
    """One 4-step SFTTrainer run with the callback every 2 steps, Trainer evals and saves at 2 and 4."""
    from tunecheck.store import open_store
    from tunecheck.training import TunecheckCallback

    folder = tmp_path_factory.mktemp("task")
    spec = _write_task(folder, embedded_model_dir, ["exact_match"])
    store_url = f"sqlite:///{folder / 'store.db'}"
    callback = TunecheckCallback(
        spec,
        every_n_steps=2,
        sample_size=4,
        store=store_url,
        run_name="sft-test",
        select_best=True,
        max_eval_fraction=None,
        max_new_tokens=16,  # as the spec's contender: `tunecheck checkpoints` must reproduce these scores
    )
    probe = _ModeProbe()
    trainer = _trainer(
        embedded_model_dir,
        folder,
        folder / "out",
        [callback, probe],
        max_steps=4,
        eval_strategy="steps",
        eval_steps=2,
        save_steps=2,
        load_best_model_at_end=True,
        metric_for_best_model="eval_task/exact_match",
    )
    trainer.train()
    return {
        "trainer": trainer,
        "callback": callback,
        "probe": probe,
        "store": open_store(store_url),
        "folder": folder,
        "spec": spec,
    }


def test_task_metric_in_log_history_and_store(trained) -> None:
    trainer, callback = trained["trainer"], trained["callback"]
    points = [e for e in trainer.state.log_history if "eval_task/exact_match" in e]
    assert [e["step"] for e in points] == [2, 4]
    assert all(0.0 <= e["eval_task/exact_match"] <= 1.0 for e in points)
    # the same values the callback measured, and the Trainer's own eval ran at the same steps
    assert [e["eval_task/exact_match"] for e in points] == [
        p.metrics["exact_match"] for p in callback.history
    ]
    assert [e["step"] for e in trainer.state.log_history if "eval_loss" in e] == [2, 4]

    stored = trained["store"].training_points("sft-test")
    assert [(p["step"], p["checkpoint"]) for p in stored] == [
        (2, "checkpoint-2"),
        (4, "checkpoint-4"),
    ]
    assert [p["metrics"]["exact_match"] for p in stored] == [
        p.metrics["exact_match"] for p in callback.history
    ]

    # trainer_state.json on disk carries the task metric too
    saved = json.loads(
        (trained["folder"] / "out" / "checkpoint-4" / "trainer_state.json").read_text()
    )
    assert any("eval_task/exact_match" in e for e in saved["log_history"])


def test_model_used_in_place_and_train_mode_restored(trained) -> None:
    trainer, callback = trained["trainer"], trained["callback"]
    assert callback._hf_model.model is trainer.model  # no copy, no reload
    # found on the call stack: metrics go through Trainer.log, so report_to integrations see them
    assert callback._trainer is trainer
    assert trained["probe"].modes == [True, True, True, True]
    assert len(callback.examples) == 4
    assert callback.timing.evaluations == 2 and callback.timing.eval_seconds > 0
    assert "of training time" in callback.timing_summary()


def test_best_checkpoint_by_task_metric(trained) -> None:
    trainer, callback = trained["trainer"], trained["callback"]
    values = [p.metrics["exact_match"] for p in callback.history]
    best_step = [2, 4][int(np.argmax(values))]  # first best on ties
    assert callback.best.step == best_step
    assert callback.best_checkpoint == str(trained["folder"] / "out" / f"checkpoint-{best_step}")
    assert trainer.state.best_model_checkpoint == callback.best_checkpoint


def test_early_stopping_on_a_plateau(tmp_path: Path, embedded_model_dir: Path) -> None:
    from tunecheck.training import TunecheckCallback

    spec = _write_task(tmp_path, embedded_model_dir, ["tc_test_constant"])
    callback = TunecheckCallback(
        spec,
        every_n_steps=1,
        sample_size=2,
        early_stopping_patience=2,
        store=False,
        max_new_tokens=2,
        max_eval_fraction=None,
    )
    trainer = _trainer(
        embedded_model_dir, tmp_path, tmp_path / "out", [callback], max_steps=20, save_strategy="no"
    )
    trainer.train()
    # step 1 sets the best; steps 2 and 3 do not improve -> stop after step 3
    assert callback.stopped_early_at == 3
    assert trainer.state.global_step == 3
    assert [p.metrics["tc_test_constant"] for p in callback.history] == [0.5, 0.5, 0.5]


def test_test_split_is_refused(tmp_path: Path, embedded_model_dir: Path) -> None:
    from tunecheck.spec import load_spec
    from tunecheck.training import TunecheckCallback

    spec = _write_task(tmp_path, embedded_model_dir, ["exact_match"])
    with pytest.raises(TunecheckError, match="test set must be touched by no"):
        TunecheckCallback(spec, split="test")
    # also when the spec evaluates on a split with another name
    loaded = load_spec(spec)
    loaded.tasks[0].split = "val"
    with pytest.raises(TunecheckError, match="refusing to evaluate on the 'val' split"):
        TunecheckCallback(loaded, split="val")
    # the default generation budget: the longest reference in tokens + a margin, capped by the spec
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(embedded_model_dir)
    cb = TunecheckCallback(spec, store=False)
    longest = max(len(tok(e.reference, add_special_tokens=False)["input_ids"]) for e in cb.examples)
    assert cb._derived_max_new_tokens(tok) == min(16, longest + 8)
    # a task without a lock has no validation split
    loaded = load_spec(spec)
    loaded.tasks[0].lock = None
    with pytest.raises(TunecheckError, match="has no lock"):
        TunecheckCallback(loaded)


def test_time_budget_postpones_evaluations(tmp_path: Path, embedded_model_dir: Path) -> None:
    from tunecheck.training import TunecheckCallback

    spec = _write_task(tmp_path, embedded_model_dir, ["exact_match"])
    cb = TunecheckCallback(spec, store=False, max_eval_fraction=0.1)
    assert cb._due(50)  # the first evaluation always runs
    cb.timing.start = 0.0
    cb.timing.evaluations, cb.timing.eval_seconds = 1, 10.0
    import time

    cb.timing.start = time.perf_counter() - 50  # 40 s training, 10 s evaluating: 25%
    assert not cb._due(100)
    cb.timing.start = time.perf_counter() - 190  # (10 + 10) > 0.1 * 180
    assert not cb._due(100)
    cb.timing.start = time.perf_counter() - 215  # (10 + 10) <= 0.1 * 205
    assert cb._due(100)
    cb.max_eval_fraction = None
    cb.timing.start = time.perf_counter() - 11
    assert cb._due(100)


def test_import_tunecheck_does_not_import_transformers() -> None:
    import subprocess
    import sys

    code = "import sys, tunecheck, tunecheck.training, tunecheck.cli; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_checkpoints_ranked_by_task_metric(trained) -> None:
    """`tunecheck checkpoints` on the two LoRA checkpoints saved by the SFTTrainer run."""
    from typer.testing import CliRunner

    from tunecheck.cli import app
    from tunecheck.training.checkpoints import rank_checkpoints

    folder, callback = trained["folder"], trained["callback"]
    store_url = f"sqlite:///{folder / 'cache.db'}"
    result = CliRunner().invoke(
        app,
        [
            "checkpoints",
            str(folder / "out"),
            "--spec",
            str(trained["spec"]),
            "--limit",
            "4",
            "--store",
            store_url,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stderr carries transformers' loading bars
    by_step = {c["step"]: c for c in data["checkpoints"]}
    assert sorted(by_step) == [2, 4]
    assert all(c["kind"] == "adapter" and "+adapter=" in c["model"] for c in by_step.values())
    # the same validation sample, the same weights and decoding as the callback measured in training
    for point in callback.history:
        assert by_step[point.step]["metrics"]["exact_match"] == point.metrics["exact_match"]
    values = {s: c["metrics"]["exact_match"] for s, c in by_step.items()}
    expected_best = max(sorted(values), key=lambda s: values[s])  # ties: earlier step
    assert data["best"].endswith(f"checkpoint-{expected_best}")
    assert [c["rank"] for c in data["checkpoints"]] == [1, 2]
    assert all(c["eval_loss"] is not None for c in data["checkpoints"])

    # a second ranking is answered from the generation cache: nothing is generated again
    again = rank_checkpoints(folder / "out", trained["spec"], sample_size=4, store=store_url)
    assert [s.generated for s in again.scores] == [0, 0]
    assert [s.metrics for s in again.scores] == [c["metrics"] for c in data["checkpoints"]]

    # the test split is refused here too
    result = CliRunner().invoke(
        app, ["checkpoints", str(folder / "out"), "--spec", str(trained["spec"]), "--split", "test"]
    )
    assert result.exit_code != 0


def test_bf16_autocast_on_cpu_is_warned_about(tmp_path: Path, embedded_model_dir: Path) -> None:
    import warnings
    from types import SimpleNamespace

    import torch

    from tunecheck.training import TunecheckCallback

    cb = TunecheckCallback(_write_task(tmp_path, embedded_model_dir, ["exact_match"]), store=False)
    cpu_model = torch.nn.Linear(2, 2)
    with pytest.warns(RuntimeWarning, match="bf16=False"):
        cb.on_train_begin(SimpleNamespace(bf16=True), None, None, model=cpu_model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cb.on_train_begin(SimpleNamespace(bf16=False), None, None, model=cpu_model)
