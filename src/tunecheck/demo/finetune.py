"""LoRA fine-tuning of the embedded model on the demo task, through TRL's ``SFTTrainer``.

Examples are conversational prompt/completion pairs (system + user -> assistant),
so TRL computes the loss on the assistant's JSON only (``completion_only_loss``):
SmolLM2's chat template has no ``{% generation %}`` markers, which
``assistant_only_loss`` would need. An eval split is always given, so the saved
``trainer_state.json`` carries ``eval_loss`` for ``tunecheck diagnose``.

``FULL`` and ``QUICK`` are the measured recipes (see docs/demo-notes.md).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tunecheck.errors import DataError

if TYPE_CHECKING:
    from peft import PeftModel

# The fine-tuned model is trained (and later served) with this short instruction
# rather than the long production prompt: it cuts every training sequence from
# ~450 to ~90 tokens, which is what makes a CPU fine-tune fit in minutes.
FINETUNE_SYSTEM_PROMPT = "Triage this support message into ticket JSON."


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning recipe: data size, schedule and LoRA shape."""

    n_examples: int = 1000  # generated rows in total; 80/10/10 split afterwards
    max_steps: int = 48
    epochs: float = 1.0  # used only when max_steps <= 0
    lr: float = 1e-3
    batch_size: int = 8
    grad_accum: int = 1
    warmup_ratio: float = 0.05
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    max_seq_len: int = 160
    logging_steps: int = 10
    eval_steps: int = 24
    max_eval_rows: int = 48  # eval_loss on a sample keeps each evaluation to a few seconds
    few_shot_k: int = 4  # demonstrations in the prompted baseline
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Measured in `tunecheck demo` (100 test rows, 2 idle cores): the prompted 4-shot base scores
# field accuracy 31.7 / exact match 5.0; FULL (48 steps, 283 s at 5.9 s/step) reaches
# 72.3 / 40.0. LONG (120 steps, ~11 min) reached 97.0 / 91.0 on another split (docs/demo-notes.md).
FULL = FinetuneConfig()
LONG = FinetuneConfig(max_steps=120, eval_steps=40)
# QUICK (for `tunecheck demo --quick`, 30 test rows) checks the plumbing in under 3 minutes:
# 12 steps of 4 examples are far too few to learn the task, and the verdict says so.
QUICK = FinetuneConfig(
    n_examples=300,
    max_steps=12,
    batch_size=4,
    eval_steps=6,
    logging_steps=3,
    max_eval_rows=16,
)


@dataclass(frozen=True)
class FinetuneResult:
    """What a fine-tune produced and how long it took."""

    adapter_dir: Path
    trainer_state: Path
    train_seconds: float
    steps: int
    steps_per_second: float
    final_train_loss: float | None
    final_eval_loss: float | None
    config: dict[str, Any] = field(default_factory=dict)


def chat_pair(row: dict[str, Any], system_prompt: str | None) -> dict[str, list[dict[str, str]]]:
    """A row as a TRL conversational prompt/completion pair (the completion is the reference)."""
    prompt = [{"role": "system", "content": system_prompt}] if system_prompt else []
    prompt.append({"role": "user", "content": str(row["input"])})
    return {
        "prompt": prompt,
        "completion": [{"role": "assistant", "content": str(row["reference"])}],
    }


def _dataset(rows: Sequence[dict[str, Any]], system_prompt: str | None, what: str) -> Any:
    from datasets import Dataset

    if not rows:
        raise DataError(f"the {what} rows are empty", where=f"finetune_lora({what}_rows=...)")
    for i, row in enumerate(rows):
        missing = [k for k in ("input", "reference") if row.get(k) in (None, "")]
        if missing:
            raise DataError(
                f"{what} row {row.get('id', i)!r} has no {' / '.join(missing)}",
                where=f"{what}_rows[{i}]",
                hint="every training row needs `input` (the message) and `reference` (the target)",
            )
    return Dataset.from_list([chat_pair(r, system_prompt) for r in rows])


def finetune_lora(
    model_dir: str | Path,
    train_rows: Sequence[dict[str, Any]],
    val_rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    config: FinetuneConfig = FULL,
    system_prompt: str | None = FINETUNE_SYSTEM_PROMPT,
    callbacks: list[Any] | None = None,
    reuse: bool = False,
    **overrides: Any,
) -> FinetuneResult:
    """Train a LoRA adapter on ``train_rows`` and save it under ``out_dir/adapter``.

    ``model_dir`` is a plain transformers folder (``embedded_model_dir()`` for the
    demo). ``val_rows`` (up to ``config.max_eval_rows`` of them) give ``eval_loss``
    every ``config.eval_steps`` and at the end. ``callbacks`` are passed to the
    trainer unchanged (e.g. ``TunecheckCallback``). Keyword ``overrides`` replace
    fields of ``config`` (``max_steps=20, lr=5e-4, lora_r=8`` ...). Writes ``out_dir/adapter``
    (``save_pretrained``), ``out_dir/trainer_state.json`` and
    ``out_dir/finetune.json`` (the recipe, a hash of the data and the timings).
    With ``reuse=True`` a previous result in ``out_dir`` trained with the same
    recipe, system prompt, model folder and rows is returned without training.
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise DataError(
            "not a transformers model folder (no config.json)",
            where=str(model_dir),
            hint="use tunecheck.models.gguf.embedded_model_dir() or converted_dir(<file.gguf>)",
        )
    out_dir = Path(out_dir)
    unknown = sorted(set(overrides) - set(FinetuneConfig.__dataclass_fields__))
    if unknown:
        raise DataError(
            f"unknown fine-tuning option(s): {', '.join(unknown)}",
            where="finetune_lora(...)",
            hint=f"valid options: {', '.join(FinetuneConfig.__dataclass_fields__)}",
        )
    cfg = replace(config, **overrides)
    # through JSON so it compares equal to the copy read back from finetune.json
    recipe = json.loads(
        json.dumps(
            {
                **cfg.to_dict(),
                "system_prompt": system_prompt,
                "model_dir": str(model_dir.resolve()),
                "data_sha256": _rows_sha256(train_rows, val_rows),
            }
        )
    )
    if reuse:
        previous = load_finetune_result(out_dir)
        if previous is not None and previous.config == recipe:
            return previous

    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    out_dir.mkdir(parents=True, exist_ok=True)
    train_ds = _dataset(train_rows, system_prompt, "train")
    eval_ds = _dataset(list(val_rows)[: cfg.max_eval_rows], system_prompt, "val")

    torch.manual_seed(cfg.seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)

    args = SFTConfig(
        output_dir=str(out_dir / "checkpoints"),
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
        num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr,
        lr_scheduler_type="linear",
        warmup_steps=max(0, round(cfg.warmup_ratio * max(cfg.max_steps, 1))),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=max(cfg.batch_size, 16),
        gradient_accumulation_steps=cfg.grad_accum,
        max_length=cfg.max_seq_len,
        completion_only_loss=True,
        logging_steps=cfg.logging_steps,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        save_strategy="no",
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=True,
        # TRL turns checkpointing on by default; a 135M model needs ~2 GB without it,
        # and recomputing activations costs about a third more time per step
        gradient_checkpointing=False,
        # TRL defaults to bf16, which CPUs here lack; fp32 on CPU, bf16 where a GPU has it
        bf16=bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
    )
    peft_config = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules),
        task_type="CAUSAL_LM",
    )
    from datasets.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )
    from transformers import PrinterCallback

    # quiet: the caller narrates (its callbacks see every log); the logs still land
    # in trainer_state.json
    bars_were_off = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=tok,
            peft_config=peft_config,
            callbacks=list(callbacks or []),
        )
    finally:
        if not bars_were_off:
            enable_progress_bars()
    trainer.remove_callback(PrinterCallback)
    start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - start
    state = trainer.state
    # the last step is not always an eval step; diagnose needs the final eval_loss
    if not any("eval_loss" in h and h.get("step") == state.global_step for h in state.log_history):
        trainer.evaluate()

    adapter_dir = out_dir / "adapter"
    # with peft_config the trainer wrapped the model: a PeftModel saves the adapter only
    cast("PeftModel", trainer.model).save_pretrained(str(adapter_dir))
    tok.save_pretrained(str(adapter_dir))
    state_path = out_dir / "trainer_state.json"
    state.save_to_json(str(state_path))

    train_losses = [h["loss"] for h in state.log_history if "loss" in h]
    eval_losses = [h["eval_loss"] for h in state.log_history if "eval_loss" in h]
    steps = int(state.global_step)
    result = FinetuneResult(
        adapter_dir=adapter_dir,
        trainer_state=state_path,
        train_seconds=train_seconds,
        steps=steps,
        steps_per_second=steps / train_seconds if train_seconds > 0 else 0.0,
        final_train_loss=train_losses[-1] if train_losses else None,
        final_eval_loss=eval_losses[-1] if eval_losses else None,
        config=recipe,
    )
    summary = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(result).items()}
    # written last: its presence means the adapter and trainer state are complete
    (out_dir / "finetune.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return result


def _rows_sha256(*splits: Sequence[dict[str, Any]]) -> str:
    payload = [[(str(r.get("input")), str(r.get("reference"))) for r in rows] for rows in splits]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()


def load_finetune_result(out_dir: str | Path) -> FinetuneResult | None:
    """The result a previous :func:`finetune_lora` left in ``out_dir``, or None if incomplete."""
    out_dir = Path(out_dir)
    summary_path = out_dir / "finetune.json"
    if not summary_path.exists():
        return None
    try:
        data = json.loads(summary_path.read_text(encoding="utf-8"))
        result = FinetuneResult(
            adapter_dir=Path(data["adapter_dir"]),
            trainer_state=Path(data["trainer_state"]),
            train_seconds=float(data["train_seconds"]),
            steps=int(data["steps"]),
            steps_per_second=float(data["steps_per_second"]),
            final_train_loss=data.get("final_train_loss"),
            final_eval_loss=data.get("final_eval_loss"),
            config=dict(data.get("config") or {}),
        )
    except (ValueError, KeyError, TypeError):
        return None  # a damaged summary means: train again
    complete = (
        result.adapter_dir / "adapter_config.json"
    ).exists() and result.trainer_state.exists()
    return result if complete else None
