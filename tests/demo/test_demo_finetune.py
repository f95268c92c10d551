"""A tiny real LoRA fine-tune of the embedded model through TRL's SFTTrainer."""

from __future__ import annotations

import json

import pytest

from tunecheck.demo.finetune import (
    FULL,
    QUICK,
    FinetuneConfig,
    chat_pair,
    finetune_lora,
    load_finetune_result,
)
from tunecheck.demo.task import generate_support_tickets
from tunecheck.errors import DataError


def test_chat_pair_puts_the_reference_in_the_assistant_turn():
    row = {"id": "t1", "input": "hello", "reference": '{"category":"billing"}'}
    pair = chat_pair(row, "sys")
    assert pair["prompt"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hello"},
    ]
    assert pair["completion"] == [{"role": "assistant", "content": row["reference"]}]
    assert chat_pair(row, None)["prompt"] == [{"role": "user", "content": "hello"}]


def test_recipes_are_consistent():
    for cfg in (FULL, QUICK):
        assert isinstance(cfg, FinetuneConfig)
        assert cfg.max_steps > 0 and cfg.eval_steps <= cfg.max_steps
        # the training set must be able to fill the requested steps at least once
        assert cfg.n_examples * 0.8 >= cfg.batch_size
    assert QUICK.max_steps < FULL.max_steps and QUICK.n_examples < FULL.n_examples


def test_bad_input_is_rejected_before_loading_anything(tmp_path, embedded_model_dir):
    rows = generate_support_tickets(4, seed=0)
    with pytest.raises(DataError, match=r"no config\.json"):
        finetune_lora(tmp_path, rows, rows, tmp_path / "out")
    with pytest.raises(DataError, match="unknown fine-tuning option"):
        finetune_lora(embedded_model_dir, rows, rows, tmp_path / "out", learning_rate=1e-3)
    broken = [{**rows[0], "reference": ""}]
    with pytest.raises(DataError, match="has no reference"):
        finetune_lora(embedded_model_dir, broken, rows, tmp_path / "out")
    with pytest.raises(DataError, match="val rows are empty"):
        finetune_lora(embedded_model_dir, rows, [], tmp_path / "out")


def test_tiny_finetune_writes_adapter_and_trainer_state(tmp_path, embedded_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, TrainerCallback

    rows = generate_support_tickets(40, seed=7)
    train, val = rows[:32], rows[32:]

    class Recorder(TrainerCallback):
        def __init__(self) -> None:
            self.steps: list[int] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.steps.append(state.global_step)

    recorder = Recorder()
    result = finetune_lora(
        embedded_model_dir,
        train,
        val,
        tmp_path / "run",
        config=QUICK,
        max_steps=4,
        batch_size=4,
        eval_steps=2,
        logging_steps=1,
        lora_r=4,
        lora_alpha=8,
        target_modules=("q_proj", "v_proj"),
        max_seq_len=96,
        callbacks=[recorder],
    )
    assert result.steps == 4
    assert recorder.steps == [1, 2, 3, 4]  # the callback was forwarded to the trainer
    assert result.train_seconds > 0 and result.steps_per_second > 0

    state = json.loads(result.trainer_state.read_text())
    evals = [h for h in state["log_history"] if "eval_loss" in h]
    assert [h["step"] for h in evals] == [2, 4]
    assert all(h["eval_loss"] > 0 for h in evals)
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3, 4]
    assert result.final_eval_loss == evals[-1]["eval_loss"]

    cfg = json.loads((result.adapter_dir / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and set(cfg["target_modules"]) == {"q_proj", "v_proj"}
    assert (result.adapter_dir / "adapter_model.safetensors").stat().st_size > 0
    summary = json.loads((tmp_path / "run" / "finetune.json").read_text())
    assert summary["steps"] == 4 and summary["config"]["max_steps"] == 4

    # a second call with the same recipe and data reuses the saved adapter
    again = finetune_lora(
        embedded_model_dir,
        train,
        val,
        tmp_path / "run",
        config=QUICK,
        max_steps=4,
        batch_size=4,
        eval_steps=2,
        logging_steps=1,
        lora_r=4,
        lora_alpha=8,
        target_modules=("q_proj", "v_proj"),
        max_seq_len=96,
        reuse=True,
    )
    assert again == result
    assert load_finetune_result(tmp_path / "nothing-here") is None

    # the saved adapter really changes the model (LoRA B is trained away from zero)
    base = AutoModelForCausalLM.from_pretrained(embedded_model_dir, dtype=torch.float32)
    tuned = PeftModel.from_pretrained(base, str(result.adapter_dir))
    lora_b = [p for n, p in tuned.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().max()) > 0 for p in lora_b)
