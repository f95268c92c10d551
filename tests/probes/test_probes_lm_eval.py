"""lm-eval bridge on real lm-evaluation-harness output, and MC scoring vs lm-eval and transformers.

lm-eval 0.4 runs a tiny local task (12 ARC-Easy rows copied to tmp_path at test time) on the
embedded SmolLM2 and on a perturbed copy; its own EvaluationTracker writes the result
folders, which ``import_lm_eval`` pairs per document.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from tunecheck.errors import TunecheckError
from tunecheck.models.hf import HFModel
from tunecheck.probes import build_probe, import_lm_eval, run_probe
from tunecheck.spec import ProbeSpec

N_DOCS = 12
TASK_YAML = """\
task: tc_arc_easy
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
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


@pytest.fixture(scope="module")
def lm_eval_runs(tmp_path_factory, fixture_data, hf_model_and_tokenizer):
    """(task folder, base output dir, perturbed output dir, arc rows) from two real lm-eval runs."""
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    root = tmp_path_factory.mktemp("lm_eval")
    rows = [json.loads(line) for line in (fixture_data / "probes" / "arc_easy_test.jsonl").open()][
        :N_DOCS
    ]
    data = root / "arc_small.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / "tc_arc_easy.yaml").write_text(TASK_YAML.format(data=data))

    model, tok = hf_model_and_tokenizer
    perturbed = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in perturbed.named_parameters():
            if "mlp" in name:
                p.add_(torch.randn(p.shape, generator=gen) * 0.03)
    outs = {}
    for label, m in (("base", model), ("perturbed", perturbed)):
        tracker = EvaluationTracker(output_path=str(root / label))
        results = simple_evaluate(
            model=HFLM(pretrained=m, tokenizer=tok, batch_size=8),
            tasks=["tc_arc_easy"],
            task_manager=TaskManager(include_path=str(tasks)),
            log_samples=True,
            evaluation_tracker=tracker,
            bootstrap_iters=0,
        )
        samples = results.pop("samples")
        tracker.save_results_aggregated(results=results, samples=samples)
        for task_name in results["configs"]:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])
        outs[label] = root / label
    del perturbed
    return data, outs["base"], outs["perturbed"], rows


def test_import_pairs_real_lm_eval_runs_per_document(lm_eval_runs):
    _, base_dir, ft_dir, rows = lm_eval_runs
    assert list(base_dir.rglob("samples_tc_arc_easy_*.jsonl")) and list(
        base_dir.rglob("results_*.json")
    )
    (paired,) = import_lm_eval(base_dir, ft_dir)
    assert paired.name == "tc_arc_easy" and paired.metric == "acc"
    for side, folder in ((paired.base, base_dir), (paired.finetuned, ft_dir)):
        assert side.example_ids == [f"tc_arc_easy:{i}" for i in range(N_DOCS)]
        # independent: recompute acc / acc_norm from the logged log-likelihoods
        recs = {
            r["doc_id"]: r for r in map(json.loads, next(folder.rglob("samples_*.jsonl")).open())
        }
        for i, row in enumerate(rows):
            lls = np.array([float(x[0]) for x in recs[i]["filtered_resps"]])
            assert side.per_example[i] == float(np.argmax(lls) == row["gold"])
            norm = lls / np.array([len(c) for c in row["choices"]], dtype=float)
            assert side.details["per_example_acc_norm"][i] == float(np.argmax(norm) == row["gold"])
        results = json.loads(next(folder.rglob("results_*.json")).read_text())["results"][
            "tc_arc_easy"
        ]
        assert side.value == pytest.approx(results["acc,none"])
        assert side.details["acc_norm"] == pytest.approx(results["acc_norm,none"])
        assert side.details["kind"] == "binary"
    # the perturbation changed the model: its log-likelihoods differ
    b = json.loads(next(base_dir.rglob("samples_*.jsonl")).open().readline())
    f = json.loads(next(ft_dir.rglob("samples_*.jsonl")).open().readline())
    assert b["filtered_resps"] != f["filtered_resps"]


def test_import_feeds_the_regression_table(lm_eval_runs):
    from tunecheck.pipeline.scoring import probe_result
    from tunecheck.spec import Thresholds

    _, base_dir, ft_dir, _ = lm_eval_runs
    (paired,) = import_lm_eval(base_dir, ft_dir, metric="acc_norm")
    row = probe_result(
        paired.name, paired.metric, paired.base, paired.finetuned, Thresholds(), n_resamples=500
    )
    assert row.n == N_DOCS
    assert row.base == pytest.approx(paired.base.value)
    assert row.finetuned == pytest.approx(paired.finetuned.value)
    # the documented rule: a relative drop of 15% or more fails, over 5% warns
    drop = (row.base - row.finetuned) / row.base if row.base else 0.0
    assert row.status == ("FAIL" if drop >= 0.15 else "warning" if drop > 0.05 else "ok")


def test_import_errors(lm_eval_runs, tmp_path):
    _, base_dir, ft_dir, _ = lm_eval_runs
    with pytest.raises(TunecheckError, match="metric 'f1' is not in the samples"):
        import_lm_eval(base_dir, ft_dir, metric="f1")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TunecheckError, match=r"no samples_<task>_<date>\.jsonl files"):
        import_lm_eval(base_dir, empty)
    with pytest.raises(TunecheckError, match="not in both runs"):
        import_lm_eval(base_dir, ft_dir, tasks=["mmlu"])
    # a run over different documents under the same doc ids is refused
    other = tmp_path / "other" / "model"
    other.mkdir(parents=True)
    src = next(ft_dir.rglob("samples_*.jsonl"))
    recs = [json.loads(line) for line in src.open()]
    recs[0]["doc_hash"] = "0" * 64
    (other / src.name).write_text("\n".join(json.dumps(r) for r in recs))
    with pytest.raises(TunecheckError, match="evaluated different documents"):
        import_lm_eval(base_dir, tmp_path / "other")


def test_tunecheck_mc_scoring_agrees_with_lm_eval(lm_eval_runs, hf_model_and_tokenizer):
    """Same context/continuations as the lm-eval task: the chosen answers must agree."""
    data, base_dir, _, _ = lm_eval_runs
    model, tok = hf_model_and_tokenizer
    probe = build_probe(ProbeSpec(name="arc", path=str(data), n=N_DOCS), seed=0)
    assert probe.scoring == "multiple_choice"
    result = run_probe(probe, HFModel.from_loaded(model, tok, fingerprint="base", batch_size=8))
    assert result.details["mode"] == "loglikelihood"
    (paired,) = import_lm_eval(base_dir, base_dir)
    lm_choice = [int(c) for c in paired.base.outputs]
    ours = ["ABCD".index(a) for a in result.outputs]
    agree = np.mean(np.array(lm_choice) == np.array(ours))
    assert agree >= 11 / 12, (lm_choice, ours)
    assert result.details["acc_norm"] == pytest.approx(
        paired.base.details["acc_norm"], abs=1 / 12 + 1e-9
    )
