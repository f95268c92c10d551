"""Self-contained results (schema 2): contenders, training configuration, data hashes;
schema-1 reports still load."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import pickle
from pathlib import Path

import pytest

from tunecheck.errors import SpecError
from tunecheck.flips import flips_between
from tunecheck.provenance import contender_info, read_training_args, redact, training_info
from tunecheck.report import load_json, render_json, render_markdown
from tunecheck.results import SCHEMA_VERSION, RunResult
from tunecheck.runner import RunOptions, run
from tunecheck.safe_pickle import UnreadablePickle, plain_values
from tunecheck.spec import ContenderSpec, load_spec

HERE = Path(__file__).parent
DATA = HERE.parent / "data" / "history"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_report_json_alone_says_what_was_compared(project: Path, write_spec) -> None:
    train_dir = project / "train_out"
    train_dir.mkdir()
    state = {"global_step": 40, "log_history": [{"step": 40, "loss": 0.31}], "best_metric": 0.8}
    (train_dir / "trainer_state.json").write_text(json.dumps(state))
    spec_path = write_spec(
        options={"api_key": "sk-abcdefghijkl", "headers": {"Authorization": "Bearer xyz"},
                 "batch_size": 4, "api_key_env": "MY_KEY"},
        extra="training: train_out\n",
    )  # fmt: skip
    outcome = run(load_spec(spec_path), options=RunOptions(show_progress=False))
    text = render_json(outcome.result)
    back = load_json(text)
    data = json.loads(text)
    assert data["schema_version"] == SCHEMA_VERSION == 2

    by_name = {c.name: c for c in back.contenders}
    assert [c.name for c in back.contenders] == ["base", "base+prompt", "finetuned"]
    cand = by_name["finetuned"]
    assert cand.role == "candidate" and by_name["base"].role == "baseline"
    assert cand.model == "scripted:tuned"
    assert cand.fingerprint == hashlib.sha256(b"scripted:tuned").hexdigest()
    # secrets never reach the report; the variable's NAME and harmless options do
    assert cand.options["api_key"] == "***"
    assert cand.options["headers"]["Authorization"] == "***"
    assert cand.options["api_key_env"] == "MY_KEY" and cand.options["batch_size"] == 4
    assert "sk-abcdefghijkl" not in text and "Bearer xyz" not in text
    prompted = by_name["base+prompt"]
    assert prompted.prompt["system"] == "Answer with JSON."
    from tunecheck.spec import PromptSpec

    assert (
        prompted.prompt_fingerprint == PromptSpec(system="Answer with JSON.").build().fingerprint()
    )
    assert cand.generation["max_new_tokens"] == 128 and cand.generation["seed"] == 3
    # the spec's training: path, on the candidate only
    assert back.training is not None and back.training.trainer_state == state
    assert back.training.files == {
        str(train_dir / "trainer_state.json"): _sha(train_dir / "trainer_state.json")
    }
    assert by_name["base"].training is None
    # data and lock hashes
    (d,) = back.data
    lock = project / "splits" / "tunecheck.lock.json"
    assert d.data_sha256 == _sha(project / "splits" / "test.jsonl")
    assert d.lock_sha256 == back.lock_hash == _sha(lock)
    assert d.test_sha256 == json.loads(lock.read_text())["splits"]["test"]["sha256"]
    assert d.n_examples == 100
    assert back.libraries["numpy"] and back.libraries["python"]
    md = render_markdown(back)
    assert "What was compared" in md and "scripted:tuned" in md and "(40 steps)" in md


def test_flips_in_every_report(project: Path, write_spec) -> None:
    from rich.console import Console

    from tunecheck.report import render_terminal

    outcome = run(load_spec(write_spec("tuned")), options=RunOptions(show_progress=False))
    task = outcome.result.tasks[0]
    flips = task.flips
    cand, base, metric = task.candidate, task.strongest_baseline, task.primary_metric
    # independent count from the per-example outcomes
    c = {e.id: e.scores[cand][metric] for e in task.examples}
    b = {e.id: e.scores[base][metric] for e in task.examples}
    assert {f.id for f in flips.broken} == {i for i in c if c[i] < b[i]}
    assert {f.id for f in flips.fixed} == {i for i in c if c[i] > b[i]}
    # the scripted tuned model answers a superset of what the prompted one gets right
    assert not flips.broken and len(flips.fixed) > 10
    assert flips.before == base and flips.after == cand
    # JSON: the full list; Markdown/terminal: capped, with the rest pointed at
    data = json.loads(render_json(outcome.result))
    assert [f["id"] for f in data["tasks"][0]["flips"]["fixed"]] == [f.id for f in flips.fixed]
    md = render_markdown(outcome.result)
    console = Console(record=True, width=200)
    render_terminal(outcome.result, console)
    out = console.export_text()
    shown, hidden = flips.fixed[:10], flips.fixed[10:]
    for text in (md, out):
        assert f"0 example(s) broken and {len(flips.fixed)} fixed" in text
        assert all(f.id in text for f in shown)
        assert not any(f.id in text for f in hidden)
        assert f"{len(hidden)} more in report.json" in text


def test_schema1_report_still_loads() -> None:
    text = (DATA / "report_v1.json").read_text()
    assert json.loads(text)["schema_version"] == 1
    result = load_json(text, source="report_v1.json")
    assert result.schema_version == 2 and result.meta["migrated_from_schema"] == 1
    assert result.contenders == [] and result.data == [] and result.training is None
    task = result.tasks[0]
    # flips rebuilt from the stored per-example outcomes
    raw = json.loads(text)["tasks"][0]
    scores = {e["id"]: e["scores"] for e in raw["examples"]}
    base, cand, m = raw["strongest_baseline"], raw["candidate"], raw["primary_metric"]
    expected = {i for i, s in scores.items() if s[cand][m] > s[base][m]}
    assert {f.id for f in task.flips.fixed} == expected and expected
    # and it renders (the reports do not need the new blocks)
    assert "What was compared" not in render_markdown(result)


def test_newer_schema_refused() -> None:
    from tunecheck.errors import TunecheckError

    data = json.loads((DATA / "report_v1.json").read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(TunecheckError, match="schema_version"):
        load_json(json.dumps(data))
    with pytest.raises(ValueError, match="newer"):
        RunResult.model_validate(data)


@pytest.mark.slow
def test_adapter_training_files(tmp_path: Path) -> None:
    import torch

    out = tmp_path / "out"
    adapter = out / "checkpoint-20"
    adapter.mkdir(parents=True)
    config = {"peft_type": "LORA", "r": 8, "target_modules": ["q_proj", "v_proj"]}
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    (out / "trainer_state.json").write_text(json.dumps({"global_step": 20}))
    # a pickled TrainingArguments (what Trainer writes), hub token included
    from transformers import TrainingArguments

    torch.save(
        TrainingArguments(output_dir=str(out), learning_rate=3e-4, lr_scheduler_type="cosine",
                          hub_token="hf_abcdefghijkl", report_to=[]),
        adapter / "training_args.bin",
    )  # fmt: skip
    spec = ContenderSpec(name="ft", model=f"hf:{tmp_path}/base+adapter={adapter}")
    info = contender_info(spec, role="candidate", fingerprint="f" * 64, seed=1)
    assert info.adapter_path == str(adapter) and info.adapter_config == config
    t = info.training
    assert t.adapter_config == config and t.trainer_state == {"global_step": 20}
    assert t.training_args["sha256"] == _sha(adapter / "training_args.bin")
    args = t.training_args["args"]
    assert args["learning_rate"] == 3e-4 and args["output_dir"] == str(out)
    assert args["lr_scheduler_type"] == "cosine" and args["eval_strategy"] == "no"  # enums
    assert args["hub_token"] == "***" and args["report_to"] == []
    assert not any(k.startswith("_") for k in args)
    # a plain mapping saved with torch.save is readable safely
    torch.save({"learning_rate": 3e-4, "hub_token": "hf_abcdefghijkl"}, out / "args.bin")
    safe = read_training_args(out / "args.bin")
    assert safe["args"] == {"learning_rate": 3e-4, "hub_token": "***"}


class _Opens:
    """Unpickling this with pickle.load would create ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


class _Mode(enum.Enum):
    STEPS = "steps"


@dataclasses.dataclass
class _Args:
    lr: float
    mode: _Mode
    opener: object
    _cached: int = 7


def test_pickled_arguments_are_read_without_running_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "training_args.bin"
    path.write_bytes(pickle.dumps(_Args(lr=2e-4, mode=_Mode.STEPS, opener=_Opens(marker))))
    info = read_training_args(path)
    assert not marker.exists()  # open() named in the pickle was never called
    assert info["args"] == {"lr": 2e-4, "mode": "steps", "opener": [str(marker), "w"]}
    assert info["sha256"] == _sha(path) and "no code from the file ran" in info["read"]
    path.write_bytes(b"not a pickle at all")
    info = read_training_args(path)
    assert "args" not in info and "recorded by hash only" in info["note"]
    with pytest.raises(UnreadablePickle, match="not a readable pickle"):
        plain_values(path)
    loop: list = []
    loop.append(loop)
    path.write_bytes(pickle.dumps(loop))
    with pytest.raises(UnreadablePickle, match="RecursionError"):
        plain_values(path)
    assert "args" not in read_training_args(path)  # and a run does not fail on it


def test_training_path_errors_and_yaml(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="training configuration not found"):
        training_info(None, str(tmp_path / "missing"))
    cfg = tmp_path / "train.yaml"
    cfg.write_text("lr: 0.0002\nepochs: 3\nwandb_api_key: secret123\n")
    info = training_info(None, str(cfg))
    assert info.config == {"lr": 0.0002, "epochs": 3, "wandb_api_key": "***"}


def test_redact_keeps_structure() -> None:
    assert redact({"token": None, "x": [{"password": "p"}], "y": "Bearer abc"}) == {
        "token": None, "x": [{"password": "***"}], "y": "***",
    }  # fmt: skip


def test_flips_missing_score_is_worst() -> None:
    fl = flips_between({"a": 1.0, "b": 0.0, "c": 0.5}, {"a": None, "b": 1.0, "c": 0.5},
                       before_name="base", after_name="ft", metric="m")  # fmt: skip
    assert [f.id for f in fl.broken] == ["a"] and [f.id for f in fl.fixed] == ["b"]
    low = flips_between({"a": 0.2}, {"a": 0.5}, before_name="x", after_name="y", metric="ter",
                        higher_is_better=False)  # fmt: skip
    assert [f.id for f in low.broken] == ["a"] and low.broken[0].change == pytest.approx(-0.3)
