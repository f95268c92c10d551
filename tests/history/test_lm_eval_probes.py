"""lm-eval tasks as spec probes, offline: tasks built from local files, answered by the
scripted backend through lm-evaluation-harness itself (no real model); the
``lm_eval_samples`` import path end to end through ``tunecheck run``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scripted_backend import ACCURACY, _frac

from tunecheck.errors import SpecError
from tunecheck.runner import RunOptions, run
from tunecheck.spec import load_spec

pytest.importorskip("lm_eval", reason="the lm-eval extra is needed")

N_MC, N_GEN = 24, 16
MC_YAML = """\
task: tc_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{query}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{gold}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
GEN_YAML = """\
task: tc_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 16
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
"""
GROUP_YAML = """\
group: tc_group
task: [tc_mc, tc_gen]
"""


@pytest.fixture()
def lm_tasks(project: Path) -> Path:
    """Two local lm-eval tasks (multiple choice, generation) and a group of both."""
    folder = project / "lm_tasks"
    folder.mkdir()
    mc = [
        {"query": f"Which number follows {i}?", "choices": [str(i + 1), str(i + 2), str(i - 1)],
         "gold": 0}
        for i in range(N_MC)
    ]  # fmt: skip
    gen = [{"question": f"Spell the number {i}.", "answer": f"number-{i}"} for i in range(N_GEN)]
    (folder / "mc.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mc))
    (folder / "gen.jsonl").write_text("".join(json.dumps(r) + "\n" for r in gen))
    (folder / "tc_mc.yaml").write_text(MC_YAML.format(data=folder / "mc.jsonl"))
    (folder / "tc_gen.yaml").write_text(GEN_YAML.format(data=folder / "gen.jsonl"))
    (folder / "tc_group.yaml").write_text(GROUP_YAML)
    # the scripted backend answers these prompts correctly for a share of them
    answers = json.loads(Path(project / "answers.json").read_text())
    answers.update({r["question"]: r["answer"] for r in gen})
    (project / "answers.json").write_text(json.dumps(answers))
    return folder


def _mc_reference(mode: str) -> np.ndarray:
    """acc per document recomputed from the scripted log-likelihoods, without lm-eval."""
    out = []
    for i in range(N_MC):
        context = f"Which number follows {i}?\nAnswer:"
        lls = [-_frac(context + " " + c + mode) for c in (str(i + 1), str(i + 2), str(i - 1))]
        out.append(float(int(np.argmax(lls)) == 0))
    return np.array(out)


def _gen_reference(mode: str) -> np.ndarray:
    return np.array([float(_frac(f"Spell the number {i}.") < ACCURACY[mode]) for i in range(N_GEN)])


def _probe_extra(body: str) -> str:
    return "probes:\n" + body


@pytest.mark.slow
def test_lm_eval_tasks_run_in_the_spec(project: Path, write_spec, lm_tasks: Path) -> None:
    spec = write_spec(extra=_probe_extra(
        f"  - {{name: mc, lm_eval: tc_mc, n: {N_MC}, lm_eval_include: {lm_tasks}}}\n"
        f"  - {{name: both, lm_eval: tc_group, lm_eval_include: {lm_tasks}, metric: acc}}\n"
        f"  - {{name: gen, lm_eval: tc_gen, n: 10, lm_eval_include: {lm_tasks}}}\n"
    )).read_text().replace("probes: []\n", "")  # fmt: skip
    (project / "tunecheck.yaml").write_text(spec)
    outcome = run(load_spec(project / "tunecheck.yaml"), options=RunOptions(show_progress=False))
    probes = {p.name: p for p in outcome.result.probes}
    mc = probes["mc"]
    # probes compare the candidate with the first baseline on other weights: `base`
    base_ref, ft_ref = _mc_reference("zero"), _mc_reference("tuned")
    assert mc.metric == "acc" and mc.n == N_MC
    assert mc.base == pytest.approx(base_ref.mean())
    assert mc.finetuned == pytest.approx(ft_ref.mean())
    from tunecheck.stats import mcnemar_exact

    b = int(((ft_ref == 1) & (base_ref == 0)).sum())
    c = int(((ft_ref == 0) & (base_ref == 1)).sum())
    assert mc.p_value == pytest.approx(mcnemar_exact(b, c))
    # generation through generate_until: the candidate's share of right answers
    gen = probes["gen"]
    assert gen.metric == "exact_match" and gen.n == 10
    assert gen.finetuned == pytest.approx(_gen_reference("tuned")[:10].mean())
    assert gen.base == pytest.approx(_gen_reference("zero")[:10].mean()) == 0.0
    # a group is one probe over its sub-tasks' documents (the acc ones here)
    assert probes["both"].n == N_MC and probes["both"].finetuned == pytest.approx(ft_ref.mean())
    # the probes feed the verdict like any other (a large gain, nothing regressed)
    assert outcome.result.verdict.decision == "DEPLOY"


@pytest.mark.slow
def test_lm_eval_samples_import_end_to_end(project: Path, write_spec, lm_tasks: Path) -> None:
    from typer.testing import CliRunner

    from tunecheck.cli import app
    from tunecheck.models import load_model
    from tunecheck.probes.lm_eval_spec import lm_eval_outcomes
    from tunecheck.spec import ProbeSpec

    # --log_samples folders, written by lm-eval's own EvaluationTracker
    probe = ProbeSpec(name="mc", lm_eval="tc_mc", lm_eval_include=str(lm_tasks), n=N_MC)
    work = project / "lm_out"
    lm_eval_outcomes(probe, load_model("scripted:zero"), load_model("scripted:tuned"), seed=3,
                     workdir=work)  # fmt: skip
    for side in ("base", "finetuned"):
        assert list((work / side).rglob("samples_tc_mc_*.jsonl"))
        assert list((work / side).rglob("results_*.json"))
    spec = write_spec(extra=_probe_extra(
        f"  - name: mmlu-like\n    lm_eval: tc_mc\n"
        f"    lm_eval_samples: {{base: {work / 'base'}, finetuned: {work / 'finetuned'}}}\n"
    )).read_text().replace("probes: []\n", "")  # fmt: skip
    (project / "tunecheck.yaml").write_text(spec)
    res = CliRunner().invoke(app, ["run", str(project / "tunecheck.yaml"), "--quiet", "--json",
                                   "--out", str(project / "out")])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads((project / "out" / "report.json").read_text())
    (p,) = data["probes"]
    assert p["name"] == "mmlu-like" and p["n"] == N_MC
    assert p["base"] == pytest.approx(_mc_reference("zero").mean())
    assert p["finetuned"] == pytest.approx(_mc_reference("tuned").mean())
    assert "mmlu-like" in (project / "out" / "report.md").read_text()


@pytest.mark.slow
def test_unknown_lm_eval_task_fails_before_any_model_call(
    project: Path, write_spec, lm_tasks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = project / "calls.log"
    monkeypatch.setenv("TUNECHECK_SCRIPT_CALLS", str(calls))
    spec = write_spec(extra=_probe_extra(
        f"  - {{name: x, lm_eval: tc_mcq, lm_eval_include: {lm_tasks}}}\n"
    )).read_text().replace("probes: []\n", "")  # fmt: skip
    (project / "tunecheck.yaml").write_text(spec)
    with pytest.raises(SpecError) as err:
        run(load_spec(project / "tunecheck.yaml"), options=RunOptions(show_progress=False))
    assert err.value.exit_code == 2
    assert "no task or group named 'tc_mcq'" in str(err.value) and "'tc_mc'" in str(err.value)
    assert "probes.x.lm_eval" in str(err.value)
    assert not calls.exists() and not Path(str(calls) + ".loads").exists()
    missing = write_spec(extra=_probe_extra(
        f"  - name: y\n    lm_eval: tc_mc\n"
        f"    lm_eval_samples: {{base: {project / 'nope'}, finetuned: {project / 'nope'}}}\n"
    )).read_text().replace("probes: []\n", "")  # fmt: skip
    (project / "tunecheck.yaml").write_text(missing)
    with pytest.raises(SpecError, match="samples folder for base not found"):
        run(load_spec(project / "tunecheck.yaml"), options=RunOptions(show_progress=False))
    assert not calls.exists()


@pytest.mark.model
def test_lm_eval_through_a_tunecheck_backend_matches_lm_eval_hflm(
    hf_model_and_tokenizer, tmp_path: Path, lm_tasks: Path
) -> None:
    """The real model, answered once through lm-eval's own HFLM and once through the
    tunecheck `hf` backend (TunecheckLM): the same log-likelihoods, the same acc per doc."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from tunecheck.models.hf import HFModel
    from tunecheck.probes.lm_eval_spec import task_manager, tunecheck_lm

    model, tok = hf_model_and_tokenizer
    manager = task_manager(str(lm_tasks))
    ref = simple_evaluate(model=HFLM(pretrained=model, tokenizer=tok, batch_size=8),
                          tasks=["tc_mc"], limit=12, log_samples=True, task_manager=manager,
                          bootstrap_iters=0)  # fmt: skip
    ours = simple_evaluate(model=tunecheck_lm(HFModel.from_loaded(model, tok, batch_size=8)),
                           tasks=["tc_mc"], limit=12, log_samples=True, task_manager=manager,
                           bootstrap_iters=0)  # fmt: skip
    a = sorted(ref["samples"]["tc_mc"], key=lambda r: r["doc_id"])
    b = sorted(ours["samples"]["tc_mc"], key=lambda r: r["doc_id"])
    assert [r["acc"] for r in a] == [r["acc"] for r in b]
    for ra, rb in zip(a, b, strict=True):
        la = [x[0] for x in ra["filtered_resps"]]
        lb = [x[0] for x in rb["filtered_resps"]]
        assert lb == pytest.approx(la, abs=1e-3)
