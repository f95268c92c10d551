"""``tunecheck init``: a commented ``tunecheck.yaml`` from a locked split and two models.

The spec has the three contenders every honest comparison needs (the base model zero-shot,
the base model with a prompt to replace by your best one, the fine-tune), the parser and
metrics that fit the task type, the lock, and the default capability probes. The task
type is read from the data when not given: a ``label`` column or a short list of distinct
references is classification, JSON-object references are extraction, rows with tests are
code, anything else is free generation. The written spec loads and passes pre-flight as
it is (models aside, which are checked when they exist).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tunecheck.errors import SpecError, TunecheckError

TaskType = Literal["classification", "extraction", "generation", "code"]
TASK_TYPES: tuple[str, ...] = ("classification", "extraction", "generation", "code")

_REFERENCE_NAMES = ("reference", "output", "target", "answer", "completion", "response")
_LABEL_NAMES = ("label", "labels", "category", "class", "intent")
_TEST_NAMES = ("test", "tests", "test_list", "test_code")
# classification: at most this many distinct short references
_MAX_CLASSES = 50
_FEW_SHOT = 3


@dataclass
class InitPlan:
    """What ``init`` decided, and the spec text it wrote."""

    task_type: str
    fields: dict[str, str]
    parser: dict[str, Any]
    metrics: list[str]
    contenders: list[dict[str, Any]]
    text: str
    notes: list[str] = field(default_factory=list)


def _local(value: str, spec_dir: Path | None) -> str:
    """A path that exists here, rewritten relative to the spec (which resolves it so)."""
    path = Path(value).expanduser()
    if spec_dir is None or not path.exists() or path.is_absolute():
        return value
    return _rel(path, spec_dir)


def _model_ref(ref: str, spec_dir: Path | None = None) -> str:
    from tunecheck.models import split_model_ref

    name, target = split_model_ref(ref)
    if name in ("hf", "hf-classifier"):
        base, plus, rest = target.partition("+")
        target = _local(base, spec_dir) + plus + rest
    return f"{name}:{target}"


def finetuned_ref(base: str, finetuned: str, spec_dir: Path | None = None) -> str:
    """``finetuned`` as a model reference: a PEFT adapter folder goes over ``base``."""
    path = Path(finetuned).expanduser()
    if (path / "adapter_config.json").is_file():
        base_ref = _model_ref(base, spec_dir)
        backend, _, target = base_ref.partition(":")
        if backend not in ("hf", "hf-classifier"):
            raise SpecError(
                f"{finetuned} is a LoRA adapter, which needs a local base model, not {base_ref!r}",
                where="--finetuned",
                hint="pass the base as a transformers folder or hub id (hf:...)",
            )
        return f"{backend}:{target}+adapter={_local(finetuned, spec_dir)}"
    return _model_ref(finetuned, spec_dir)


def _find_lock(data: Path) -> Path:
    from tunecheck.data.lock import LOCK_NAME

    if data.is_dir():
        lock = data / LOCK_NAME
        if lock.is_file():
            return lock
        raise SpecError(
            f"no {LOCK_NAME} in this folder",
            where=str(data),
            hint=f"split and lock the data first: tunecheck split DATA --out {data}",
        )
    if data.is_file() and data.name.endswith(".lock.json"):
        return data
    if data.is_file():
        raise SpecError(
            "this is a data file, not a locked split",
            where=str(data),
            hint=f"split and lock it first: tunecheck split {data} --out splits/ "
            "then tunecheck init --data splits/ ...",
        )
    raise SpecError("not found", where=str(data), hint="pass the folder written by tunecheck split")


def _pick(columns: list[str], names: tuple[str, ...], exclude: set[str]) -> str | None:
    lowered = {c.lower(): c for c in columns if c not in exclude}
    return next((lowered[n] for n in names if n in lowered), None)


def _json_object(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _infer_type(rows: list[dict[str, Any]], label: str | None, reference: str | None) -> str:
    tests = _pick(list(rows[0]) if rows else [], _TEST_NAMES, set())
    if tests is not None:
        return "code"
    if label is not None:
        return "classification"
    if reference is None:
        raise SpecError(
            "the test split has neither a reference nor a label column",
            where="--data",
            hint=f"name the expected answer column one of {', '.join(_REFERENCE_NAMES)}, "
            "or pass --task-type and edit `fields:` in the written spec",
        )
    refs = [r.get(reference) for r in rows if r.get(reference) is not None]
    if refs and all(_json_object(v) for v in refs):
        return "extraction"
    texts = [str(v) for v in refs]
    distinct = set(texts)
    if (
        texts
        and len(distinct) <= _MAX_CLASSES
        and len(distinct) < max(2, len(texts) // 2)
        and all(len(t.split()) <= 4 for t in distinct)
    ):
        return "classification"
    return "generation"


def _token_budget(refs: list[str]) -> int:
    # about 4 characters a token; room for a slightly longer answer, never a runaway
    longest = max((len(r) for r in refs), default=64)
    return int(min(1024, max(16, longest // 3 + 16)))


def _code_format(columns: list[str]) -> str | None:
    """The code format the runner would read these columns as, or ``None``."""
    from tunecheck.code.problems import detect_format
    from tunecheck.errors import DataError

    try:
        return detect_format(columns, "data")
    except DataError:
        return None


def _metrics_for(
    task_type: str, columns: list[str] | None = None
) -> tuple[list[str], dict[str, Any], list[str]]:
    """Metrics (primary first), parser and notes for a task type, from registered metrics."""
    from tunecheck.metrics import METRICS

    notes: list[str] = []
    if task_type == "classification":
        return ["macro_f1", "accuracy"], {"type": "label"}, notes
    if task_type == "extraction":
        return ["field_accuracy", "json_exact_match"], {"type": "json"}, notes
    if task_type == "code":
        runnable = [m for m in ("pass_at_1", "pass@1", "pass_at_k", "execution") if m in METRICS]
        if runnable and _code_format(columns or []) is not None:
            return [runnable[0]], {"type": "raw"}, notes
        if runnable:
            notes.append(
                "the rows are not in a format the code runner reads (HumanEval: prompt, test, "
                "entry_point; MBPP: text or prompt, test_list; plain: prompt, tests): the "
                "code is scored as text (chrf, exact_match) until they are"
            )
            return ["chrf", "exact_match"], {"type": "raw"}, notes
        notes.append(
            "no code-execution metric is registered in this install: the code is scored "
            "as text (chrf, exact_match) until one is"
        )
        return ["chrf", "exact_match"], {"type": "raw"}, notes
    extra = [m for m in ("rouge_l", "rougeL", "bleu") if m in METRICS]
    return ["chrf", *extra[:1]], {"type": "raw"}, notes


def _default_prompt(
    task_type: str, labels: list[str], keys: list[str], few_shot: list[dict[str, str]]
) -> dict[str, Any]:
    if task_type == "classification":
        system = "Classify the text. Answer with exactly one of: " + ", ".join(labels) + "."
    elif task_type == "extraction":
        system = (
            "Extract the information as one JSON object with the keys "
            + ", ".join(keys)
            + ". Answer with the JSON object only."
        )
    elif task_type == "code":
        system = "Write the code that solves the task. Answer with the code only."
    else:
        system = "Answer the request directly and concisely."
    prompt: dict[str, Any] = {"system": system}
    if few_shot:
        prompt["few_shot"] = few_shot
    return prompt


def _rel(path: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return str(path.resolve())


def plan_spec(
    *,
    data: str | Path,
    base: str,
    finetuned: str,
    task_type: str | None = None,
    out: str | Path = "tunecheck.yaml",
) -> InitPlan:
    """Decide the spec for ``data`` (a folder from ``tunecheck split``) and two models."""
    from tunecheck.data.formats import read_table
    from tunecheck.data.load import guess_input_field
    from tunecheck.data.lock import read_lock
    from tunecheck.spec import DEFAULT_PROBES
    from tunecheck.spec_yaml import prompt_yaml

    if task_type is not None and task_type not in TASK_TYPES:
        raise SpecError(
            f"unknown task type {task_type!r}",
            where="--task-type",
            hint=f"one of {', '.join(TASK_TYPES)}",
        )
    out = Path(out)
    lock_path = _find_lock(Path(data))
    lock = read_lock(lock_path)
    test = read_table(lock.split_path("test"))
    if not test.rows:
        raise SpecError("the test split is empty", where=str(lock.split_path("test")))
    columns = list(test.columns)
    id_field = lock.id_field
    exclude: set[str] = {id_field} if id_field else set()
    label = _pick(columns, ("label", "labels"), exclude)
    reference = _pick(columns, _REFERENCE_NAMES, exclude)
    input_field = lock.input_field or guess_input_field(test, {*exclude, label, reference})
    if input_field is None:
        raise SpecError(
            f"cannot tell which column holds the model input (columns: {', '.join(columns)})",
            where=str(lock.split_path("test")),
            hint="re-split with --input-field NAME",
        )
    kind = task_type or _infer_type(test.rows, label, reference)
    if kind == "classification" and label is None:
        label = _pick(columns, _LABEL_NAMES, exclude | {input_field}) if reference is None else None
    if kind != "classification" and reference is None and label is not None:
        reference, label = label, None  # the answer column, scored as text
    if kind != "classification" and reference is None:
        raise SpecError(
            f"a {kind} task needs a reference column (one of {', '.join(_REFERENCE_NAMES)})",
            where=str(lock.split_path("test")),
            hint="rename the expected-answer column, or edit `fields:` in the spec by hand",
        )
    gold = label or reference
    assert gold is not None
    metrics, parser, notes = _metrics_for(kind, columns)

    train_rows: list[dict[str, Any]] = []
    if "train" in lock.splits:
        train_rows = read_table(lock.split_path("train")).rows
    labels: list[str] = []
    if kind == "classification":
        seen = Counter(
            str(r[gold]) for r in [*train_rows, *test.rows] if r.get(gold) not in (None, "")
        )
        labels = sorted(seen)
        parser = {"type": "label", "labels": labels}
    keys: list[str] = []
    if kind == "extraction":
        for r in test.rows:
            obj = _json_object(r.get(gold)) or {}
            keys += [k for k in obj if k not in keys]
    shots = _few_shot(train_rows, input_field, gold)
    budget = (
        16
        if kind == "classification"
        else _token_budget([_as_text(r.get(gold)) for r in test.rows if r.get(gold) is not None])
    )

    spec_dir = out.resolve().parent
    fields: dict[str, str] = {"input": input_field}
    if label is not None:
        fields["label"] = label
    if reference is not None and not (kind == "classification" and label is not None):
        fields["reference"] = reference
    if id_field:
        fields["id"] = id_field
    base_ref = _model_ref(base, spec_dir)
    ft_ref = finetuned_ref(base, finetuned, spec_dir)
    gen = json.dumps({"max_new_tokens": budget})
    prompted = _default_prompt(kind, labels, keys, shots)
    contenders: list[dict[str, Any]] = [
        {"name": "base", "model": base_ref},
        {"name": "base+prompt", "model": base_ref, "prompt": prompted},
        {"name": "finetuned", "model": ft_ref},
    ]
    probes = "\n".join(
        f"  - {{name: {p['name']}, builtin: {p['builtin']}, n: 100}}" for p in DEFAULT_PROBES
    )
    note_lines = "".join(f"# note: {n}\n" for n in notes)
    text = f"""\
# tunecheck eval spec written by `tunecheck init` ({kind} task). Check it, then:
#   tunecheck check {out.name}     # every problem findable without running a model
#   tunecheck run {out.name}       # evaluate, compare, decide
# Relative paths are relative to this file.
{note_lines}seed: 13
store: sqlite:///.tunecheck/tunecheck.db
candidate: finetuned
contenders:
  # 1. the base model as it is: no instructions, no examples
  - name: base
    model: {base_ref}
    generation: {gen}
  # 2. the base model with the best prompt you could ship without fine-tuning. REPLACE this
  #    placeholder with your production prompt: a weak baseline makes any fine-tune look good
  - name: base+prompt
    model: {base_ref}
    prompt:
{prompt_yaml(prompted, 6)}
    generation: {gen}
  # 3. the fine-tuned model; give it the prompt format it was trained with (`prompt:`)
  - name: finetuned
    model: {ft_ref}
    generation: {gen}
task:
  name: {_yaml_scalar(_task_name(lock))}
  # the locked test split: every run verifies these files against the lock first
  data: {_yaml_scalar(_rel(lock.split_path("test"), spec_dir))}
  lock: {_yaml_scalar(_rel(lock_path, spec_dir))}
  split: test
  fields:
{prompt_yaml(fields, 4)}
  parser:
{prompt_yaml(parser, 4)}
  # the first metric decides the verdict (primary_metric)
  metrics: {json.dumps(metrics)}
# capability probes: what the fine-tune must not forget (relative drop: warn 5%, fail 15%)
probes:
{probes}
thresholds: {{warn: 0.05, fail: 0.15, alpha: 0.05}}
"""
    return InitPlan(
        task_type=kind,
        fields=fields,
        parser=parser,
        metrics=metrics,
        contenders=contenders,
        text=text,
        notes=notes,
    )


def _few_shot(rows: list[dict[str, Any]], input_field: str, gold: str) -> list[dict[str, str]]:
    """Up to three training demonstrations, covering as many distinct answers as possible."""
    usable = [
        r for r in rows if isinstance(r.get(input_field), str) and r.get(gold) not in (None, "")
    ]
    picked: list[dict[str, Any]] = []
    seen: set[str] = set()
    for r in usable:  # first pass: one per distinct answer
        if len(picked) < _FEW_SHOT and _as_text(r[gold]) not in seen:
            picked.append(r)
            seen.add(_as_text(r[gold]))
    picked += [r for r in usable if r not in picked][: _FEW_SHOT - len(picked)]
    return [{"input": str(r[input_field]), "output": _as_text(r[gold])} for r in picked]


def _task_name(lock: Any) -> str:
    """The source file's stem (``tickets.jsonl`` -> ``tickets``), else ``task``."""
    source = str((lock.source or {}).get("path") or "")
    return Path(source).name.split(".")[0] or "task"


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _yaml_scalar(value: str) -> str:
    import yaml

    return (
        yaml.safe_dump(value, default_flow_style=True, width=10**6)
        .strip()
        .removesuffix("...")
        .strip()
    )


def write_spec(
    *,
    data: str | Path,
    base: str,
    finetuned: str,
    task_type: str | None = None,
    out: str | Path = "tunecheck.yaml",
    force: bool = False,
) -> InitPlan:
    """Plan the spec and write it to ``out`` (refusing to overwrite unless ``force``).

    The text is parsed back before writing: ``init`` never writes a spec ``run`` rejects.
    """
    from tunecheck.spec import parse_spec

    out = Path(out)
    if out.exists() and not force:
        raise TunecheckError(
            "a spec already exists here; not overwritten",
            where=str(out),
            hint="pass --force to replace it, or --out OTHER.yaml",
        )
    plan = plan_spec(data=data, base=base, finetuned=finetuned, task_type=task_type, out=out)
    parse_spec(plan.text, source=str(out), base_dir=out.resolve().parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(plan.text, encoding="utf-8")
    return plan
