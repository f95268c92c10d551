"""Pre-flight: a broken spec fails before any backend is built, with every problem at once;
read-only verbs never create a store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import scripted_backend  # noqa: F401 - registers the `scripted` backend

from tunecheck.data import split_dataset
from tunecheck.preflight import PreflightError, preflight
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec

CATEGORIES = ["billing", "shipping", "technical", "account"]

SPEC = """\
seed: 3
bootstrap: 200
store: sqlite:///store/tunecheck.db
contenders:
  - name: base
    model: scripted:zero
  - name: base+prompt
    model: scripted:prompted
    prompt:
      system: Answer with JSON.
  - name: finetuned
    model: scripted:tuned
task:
  name: tickets
  data: splits/test.jsonl
  lock: splits/tunecheck.lock.json
  metrics: [field_accuracy, json_exact_match]
probes: []
"""


def _rows(n: int) -> list[dict]:
    return [
        {
            "id": f"t{i:03d}",
            "input": f"ticket {i} about {CATEGORIES[i % 4]}",
            "reference": json.dumps({"category": CATEGORIES[i % 4]}),
            "category": CATEGORIES[i % 4],
        }
        for i in range(n)
    ]


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows = _rows(200)
    data = tmp_path / "tickets.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    split_dataset(data, tmp_path / "splits", seed=5)
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps({r["input"]: r["reference"] for r in rows}))
    monkeypatch.setenv("TUNECHECK_SCRIPT", str(answers))
    monkeypatch.setenv("TUNECHECK_SCRIPT_CALLS", str(tmp_path / "calls.log"))
    (tmp_path / "tunecheck.yaml").write_text(SPEC)
    return tmp_path


def _no_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a backend was constructed before the spec was checked")

    monkeypatch.setattr("tunecheck.models.load_model", refuse)


def test_misspelt_metric_fails_before_any_backend_is_built(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec_file = project / "tunecheck.yaml"
    spec_file.write_text(SPEC.replace("json_exact_match]", "macro_f2]"))
    _no_backend(monkeypatch)
    with pytest.raises(PreflightError) as err:
        run(load_spec(spec_file), options=RunOptions(show_progress=False))
    text = str(err.value)
    assert "1 problem found before any model was loaded" in text
    assert f"{spec_file}:17: tasks.0.metrics.1: unknown metric 'macro_f2'" in text
    assert "did you mean 'macro_f1'?" in text
    # nothing was called, loaded or stored
    assert not (project / "calls.log").exists() and not (project / "calls.log.loads").exists()
    assert not (project / "store").exists()


def test_good_spec_passes_and_runs_with_the_loaded_tasks(project: Path) -> None:
    spec = load_spec(project / "tunecheck.yaml")
    checked = preflight(spec)
    assert checked.problems == []
    assert [len(t.examples) for t in checked.tasks] == [20]
    assert checked.tasks[0].lock_hash  # the lock was verified along the way
    outcome = run(spec, options=RunOptions(show_progress=False, probes=False))
    assert outcome.result.verdict is not None


def test_every_problem_is_reported_at_once(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # three rows of the test split lose their reference, one gets a non-JSON reference
    test = project / "splits" / "test.jsonl"
    rows = [json.loads(line) for line in test.read_text().splitlines()]
    for i in (2, 5, 9):
        del rows[i]["reference"]
    rows[11]["reference"] = "not json"
    test.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = SPEC.replace("scripted:tuned", "hf:missing/model/folder+adapter=nowhere")
    spec = spec.replace(
        "    model: scripted:zero\n",
        "    model: scripted:zero\n    prompt: {template: '{{ inptu }}'}\n",
    )
    spec = spec.replace(
        "[field_accuracy, json_exact_match]", "[field_accuracy, macro_f2, accuracy]"
    )
    spec = spec.replace("probes: []", "probes:\n  - {name: math, builtin: arithmetik}\n"
                        "  - {name: mine, path: probes/nope.jsonl}")  # fmt: skip
    (project / "tunecheck.yaml").write_text(spec)
    _no_backend(monkeypatch)
    checked = preflight(load_spec(project / "tunecheck.yaml"))
    got = [str(p) for p in checked.problems]
    joined = "\n".join(got)
    assert "unknown metric 'macro_f2'" in joined
    assert "contender 'finetuned'" in joined and "not a PEFT adapter" in joined
    assert "contender 'base' on task 0" in joined and "'inptu' is undefined" in joined
    assert "probe 'math'" in joined and "arithmetik" in joined
    assert "probe 'mine'" in joined and "nope.jsonl" in joined
    assert "3 of 20 rows have no reference field 'reference'" in joined
    assert "lines 3, 6, 10" in joined
    assert "1 references are not valid JSON (line 12)" in joined
    assert len(got) == 7, joined
    # each problem names the spec line or the data file line it is about
    assert all(
        p.where.startswith((str(project / "tunecheck.yaml"), str(test))) for p in checked.problems
    )


def test_tasks_with_good_rows_still_check_the_lock_prompts_and_references(project: Path) -> None:
    spec = SPEC.replace(
        "    model: scripted:zero\n",
        "    model: scripted:zero\n    prompt: {template: '{{ inptu }}'}\n",
    )
    spec = spec.replace(
        "  metrics: [field_accuracy, json_exact_match]",
        "  fields: {label: category}\n  parser: {type: label, labels: [billing, shipping]}\n"
        "  metrics: [accuracy, json_schema_valid]",
    )
    (project / "tunecheck.yaml").write_text(spec)
    got = "\n".join(str(p) for p in preflight(load_spec(project / "tunecheck.yaml")).problems)
    assert "contender 'base' on task 0" in got and "inptu" in got
    assert "metric json_schema_valid needs a schema" in got
    # the dry run of accuracy over the gold labels finds labels the parser does not list
    assert "metric 'accuracy'" in got and "is not one of the task labels" in got


def test_a_changed_test_split_is_a_lock_problem(project: Path) -> None:
    test = project / "splits" / "test.jsonl"
    test.write_text(test.read_text().replace("ticket", "Ticket", 1))
    got = [str(p) for p in preflight(load_spec(project / "tunecheck.yaml")).problems]
    assert len(got) == 1 and "tasks.0.lock" in got[0]


def test_classification_metrics_with_a_json_parser_are_refused(project: Path) -> None:
    spec = SPEC.replace(
        "  metrics: [field_accuracy, json_exact_match]",
        "  parser: {type: json}\n  metrics: [macro_f1]",
    )
    (project / "tunecheck.yaml").write_text(spec)
    got = "\n".join(str(p) for p in preflight(load_spec(project / "tunecheck.yaml")).problems)
    assert "tasks.0.parser.type" in got and "need a label, raw or regex parser" in got


def test_an_unknown_parser_type_is_named_with_a_suggestion(project: Path) -> None:
    spec = SPEC.replace(
        "  metrics: [field_accuracy, json_exact_match]",
        "  parser: {type: jsn}\n  metrics: [field_accuracy]",
    )
    (project / "tunecheck.yaml").write_text(spec)
    got = "\n".join(str(p) for p in preflight(load_spec(project / "tunecheck.yaml")).problems)
    assert "unknown parser type 'jsn' (did you mean 'json'?)" in got
    assert "tasks.0.parser.type" in got and "known parser types: json, label, number" in got


# --------------------------------------------------------------------------- CLI


def _cli(*args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str, str]:
    """``tunecheck ARGS`` in this process (the console entry point: errors exit 2)."""
    from tunecheck.cli import main

    monkeypatch.chdir(cwd)
    monkeypatch.delenv("TUNECHECK_STORE", raising=False)
    monkeypatch.setattr(sys, "argv", ["tunecheck", *args])
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_verb_lists_problems_and_exits_2(project: Path, monkeypatch, capsys) -> None:
    (project / "base").mkdir()
    (project / "base" / "config.json").write_text("{}")
    (project / "lora").mkdir()
    (project / "lora" / "adapter_config.json").write_text("{}")
    spec = SPEC.replace("scripted:zero", "hf:base").replace("scripted:prompted", "hf:base")
    spec = spec.replace("scripted:tuned", "hf:base+adapter=lora")
    (project / "tunecheck.yaml").write_text(spec)
    code, out, err = _cli(
        "check", "tunecheck.yaml", cwd=project, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 0 and "ok" in out, err
    (project / "tunecheck.yaml").write_text(spec.replace("json_exact_match]", "macro_f2]"))
    code, out, _ = _cli(
        "check", "tunecheck.yaml", "--json", cwd=project, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 2
    report = json.loads(out)
    assert report["ok"] is False
    assert [p["field"] for p in report["problems"]] == ["tasks.0.metrics.1"]


def test_read_only_verbs_never_create_a_store(tmp_path: Path, monkeypatch, capsys) -> None:
    def cli(*args: str) -> tuple[int, str, str]:
        return _cli(*args, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)

    db = tmp_path / "nowhere" / "tunecheck.db"
    for args in (("runs",), ("show", "abc"), ("report", "abc")):
        code, _, err = cli(*args, "--store", f"sqlite:///{db}")
        assert code == 2, err
        assert "no run store here" in err
    # the default store (.tunecheck/ of the current folder) is not created either
    code, _, err = cli("runs")
    assert code == 2 and "no run store here" in err
    assert not db.parent.exists() and not (tmp_path / ".tunecheck").exists()
    # an existing store is read as before
    from tunecheck.store import open_store

    open_store(f"sqlite:///{tmp_path / 'real.db'}")
    code, out, err = cli("runs", "--store", f"sqlite:///{tmp_path / 'real.db'}", "--json")
    assert code == 0 and json.loads(out) == [], err
    # a database without tunecheck's tables is named, not migrated into a store
    import sqlite3

    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    code, _, err = cli("runs", "--store", f"sqlite:///{other}")
    assert code == 2 and "no tunecheck run store in this database" in err
    with sqlite3.connect(other) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["notes"]


@pytest.mark.slow
def test_training_helpers_refuse_a_misspelt_metric_before_training(project: Path) -> None:
    from tunecheck.training import TunecheckCallback
    from tunecheck.training.checkpoints import rank_checkpoints

    spec_file = project / "tunecheck.yaml"
    spec_file.write_text(SPEC.replace("json_exact_match]", "macro_f2]"))
    with pytest.raises(PreflightError, match="unknown metric 'macro_f2'"):
        TunecheckCallback(spec_file, every_n_steps=10)
    # the output folder does not even exist: the spec is refused before it is looked at
    with pytest.raises(PreflightError, match="unknown metric 'macro_f2'"):
        rank_checkpoints(project / "no-such-run", spec_file)


def test_backend_options_are_checked_without_contacting_anything(project: Path) -> None:
    spec = SPEC.replace(
        "    model: scripted:prompted\n",
        "    model: openai:m@http://127.0.0.1:9/v1\n    options: {extra_bdy: {top_k: 1}}\n",
    ).replace(
        "    model: scripted:tuned\n",
        "    model: hf:base\n    options: {dtype: float8, batch_size: 0}\n",
    )
    (project / "base").mkdir()
    (project / "base" / "config.json").write_text("{}")
    (project / "tunecheck.yaml").write_text(spec)
    got = [str(p) for p in preflight(load_spec(project / "tunecheck.yaml")).problems]
    assert len(got) == 2, got
    assert (
        "contenders.1.model" in got[0]
        and "unknown option(s) for the openai backend: extra_bdy" in got[0]
    )
    assert "contenders.2.model" in got[1] and "unknown dtype 'float8'" in got[1]
