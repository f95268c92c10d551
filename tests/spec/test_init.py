"""``tunecheck init``: the written spec loads, passes pre-flight, and fits the task type."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tunecheck.data import split_dataset
from tunecheck.errors import SpecError, TunecheckError
from tunecheck.init_spec import write_spec
from tunecheck.metrics import CLASSIFICATION_METRICS, METRICS
from tunecheck.preflight import preflight
from tunecheck.spec import load_spec

INTENTS = ["refund", "greeting", "complaint"]
# 90 rows make a 9-row test split: small on purpose (fast), the split warns about it
pytestmark = pytest.mark.filterwarnings("ignore:only .* examples")


def _rows(kind: str, n: int = 90) -> list[dict]:
    rows = []
    for i in range(n):
        row: dict = {"id": f"r{i:03d}"}
        if kind == "classification":
            row |= {"text": f"message {i} that is a {INTENTS[i % 3]}", "label": INTENTS[i % 3]}
        elif kind == "short-references":  # classification read from a reference column
            row |= {"input": f"message {i}: {INTENTS[i % 3]}", "reference": INTENTS[i % 3]}
        elif kind == "extraction":
            ref = {"name": f"person {i}", "age": 20 + i % 50}
            row |= {"input": f"{ref['name']} is {ref['age']}", "reference": json.dumps(ref)}
        elif kind == "generation":
            row |= {"prompt": f"Summarise note {i}", "output": f"note {i} says thing {i * 7}"}
        elif kind == "code":  # the plain code format: prompt + tests
            row |= {
                "prompt": f"Write f{i}(x) returning x + {i}",
                "reference": f"def f{i}(x):\n    return x + {i}\n",
                "tests": f"assert f{i}(1) == {i + 1}",
            }
        rows.append(row)
    return rows


@pytest.fixture()
def models(tmp_path: Path) -> tuple[Path, Path]:
    """A base model folder and a LoRA adapter folder (contents are never loaded here)."""
    base = tmp_path / "models" / "base"
    base.mkdir(parents=True)
    (base / "config.json").write_text("{}")
    (base / "model.safetensors").write_bytes(b"weights")
    lora = tmp_path / "out" / "lora"
    lora.mkdir(parents=True)
    (lora / "adapter_config.json").write_text("{}")
    return base, lora


def _splits(tmp_path: Path, kind: str) -> Path:
    data = tmp_path / f"{kind}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(kind)))
    split_dataset(data, tmp_path / f"{kind}-splits", seed=1)
    return tmp_path / f"{kind}-splits"


EXPECTED = {
    "classification": ("label", "macro_f1"),
    "short-references": ("label", "macro_f1"),
    "extraction": ("json", "field_accuracy"),
    "generation": ("raw", "chrf"),
    "code": ("raw", None),
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_written_spec_loads_passes_preflight_and_fits_the_task(
    kind: str, tmp_path: Path, models: tuple[Path, Path]
) -> None:
    base, lora = models
    out = tmp_path / "project" / "tunecheck.yaml"
    plan = write_spec(data=_splits(tmp_path, kind), base=str(base), finetuned=str(lora), out=out)
    spec = load_spec(out)
    checked = preflight(spec)
    assert checked.problems == [], [str(p) for p in checked.problems]

    parser_type, primary = EXPECTED[kind]
    task = spec.tasks[0]
    assert task.parser.type == parser_type
    assert all(m in METRICS for m in task.metrics)
    if primary is not None:
        assert task.primary_metric == primary
    if parser_type == "label":
        assert task.parser.labels == sorted(INTENTS)
        assert set(task.metrics) <= CLASSIFICATION_METRICS
    if kind == "code":
        assert plan.task_type == "code"
        assert not CLASSIFICATION_METRICS.intersection(task.metrics)
    # three contenders: zero-shot base, prompted base, the adapter over the same base
    assert [c.name for c in spec.contenders] == ["base", "base+prompt", "finetuned"]
    assert spec.candidate == "finetuned"
    assert spec.contenders[0].model == f"hf:{base}"
    assert spec.contenders[2].model == f"hf:{base}+adapter={lora}"
    prompted = spec.contenders[1].prompt
    assert prompted.system and len(prompted.few_shot) == 3
    assert spec.contenders[0].prompt.system is None
    # the lock and the locked test split, resolved from the spec's folder
    assert task.lock and Path(task.lock).is_file() and Path(task.data).is_file()
    assert [p.builtin for p in spec.probe_specs()] == ["arithmetic", "reasoning", "instructions"]
    # the few-shot demonstrations are training rows, never test rows
    test_inputs = {e.input for e in checked.tasks[0].examples}
    assert not {s.input for s in prompted.few_shot} & test_inputs


def test_task_type_is_read_from_the_data_or_forced(tmp_path: Path, models) -> None:
    base, lora = models
    splits = _splits(tmp_path, "classification")
    assert (
        write_spec(
            data=splits, base=str(base), finetuned=str(lora), out=tmp_path / "a.yaml"
        ).task_type
        == "classification"
    )
    forced = write_spec(
        data=splits, base=str(base), finetuned=str(lora), out=tmp_path / "b.yaml", task_type="generation"
    )  # fmt: skip
    assert forced.task_type == "generation" and forced.parser == {"type": "raw"}
    with pytest.raises(SpecError, match="unknown task type"):
        write_spec(
            data=splits,
            base=str(base),
            finetuned=str(lora),
            out=tmp_path / "c.yaml",
            task_type="qa",
        )


def test_refuses_to_overwrite_without_force(tmp_path: Path, models) -> None:
    base, lora = models
    splits = _splits(tmp_path, "extraction")
    out = tmp_path / "tunecheck.yaml"
    out.write_text("# my edited spec\n")
    with pytest.raises(TunecheckError, match="not overwritten"):
        write_spec(data=splits, base=str(base), finetuned=str(lora), out=out)
    assert out.read_text() == "# my edited spec\n"
    write_spec(data=splits, base=str(base), finetuned=str(lora), out=out, force=True)
    assert "tunecheck init" in out.read_text()


def test_a_data_file_without_a_lock_is_refused(tmp_path: Path, models) -> None:
    base, lora = models
    data = tmp_path / "raw.jsonl"
    data.write_text(json.dumps(_rows("extraction", 3)[0]) + "\n")
    with pytest.raises(SpecError, match="not a locked split") as err:
        write_spec(data=data, base=str(base), finetuned=str(lora), out=tmp_path / "t.yaml")
    assert "tunecheck split" in (err.value.hint or "")
    with pytest.raises(SpecError, match="adapter, which needs a local base"):
        write_spec(
            data=_splits(tmp_path, "extraction"),
            base="openai:m@http://127.0.0.1:9/v1",
            finetuned=str(lora),
            out=tmp_path / "t.yaml",
        )


def test_init_cli_writes_a_spec_that_run_accepts(tmp_path: Path, monkeypatch, capsys) -> None:
    """The CLI end to end on the scripted backend: `init` then `run` exactly as written."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "runner"))
    import scripted_backend  # noqa: F401 - registers the `scripted` backend

    from tunecheck.cli import main

    splits = _splits(tmp_path, "extraction")
    answers = {r["input"]: r["reference"] for r in _rows("extraction")}
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    monkeypatch.setenv("TUNECHECK_SCRIPT", str(tmp_path / "answers.json"))
    monkeypatch.delenv("TUNECHECK_STORE", raising=False)
    monkeypatch.chdir(tmp_path)

    def cli(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["tunecheck", *args])
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    models = ("--base", "scripted:zero", "--finetuned", "scripted:tuned")
    code, out, err = cli("init", "--data", str(splits), *models, "--json")
    assert code == 0, err
    decided = json.loads(out)
    assert decided["task_type"] == "extraction" and decided["problems"] == []
    code, _, err = cli("init", "--data", str(splits), *models)
    assert code == 2 and "--force" in err
    code, out, err = cli("run", "tunecheck.yaml", "--no-probes", "--json", "--quiet")
    assert code == 0, err
    result = json.loads(out)
    task = result["tasks"][0]
    scores = {c["name"]: c["metrics"]["field_accuracy"] for c in task["contenders"]}
    assert sorted(scores) == ["base", "base+prompt", "finetuned"]
    assert task["primary_metric"] == "field_accuracy" and task["n_examples"] == 9
    # the scripted fine-tune answers most references, the scripted base none
    assert scores["base"] == 0.0 and scores["finetuned"] > 0.5
