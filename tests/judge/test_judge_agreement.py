"""Judge-human agreement: reproduced on the PandaLM test set and checked against
scikit-learn, statsmodels and PandaLM's own evaluation script's figures."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tunecheck.errors import DataError
from tunecheck.judge.agreement import (
    _kappa_from_cm,
    _weights,
    agreement,
    agreement_file,
    fleiss_from_counts,
    load_rows,
)
from tunecheck.judge.pandalm import convert, write_jsonl

DATA = Path(__file__).resolve().parents[1] / "data" / "judge"
TESTSET = DATA / "pandalm_testset-v1.json"
GPT = DATA / "pandalm_gpt-3.5-turbo-testset-v1.json"
PANDA = DATA / "pandalm_pandalm-7b-testset-v1.json"


def _reference_labels(verdicts: Path, key: str) -> tuple[list[int], list[int]]:
    """Human majority and judge labels straight from the raw files (0 tie, 1, 2)."""
    tests = json.loads(TESTSET.read_text())
    judged = {r["idx"]: r[key] for r in json.loads(verdicts.read_text())}
    human, judge = [], []
    for t in tests:
        votes = Counter(t[f"annotator{k}"] for k in (1, 2, 3)).most_common()
        assert votes[0][1] >= 2  # every item of this set has a majority
        human.append(votes[0][0])
        v = str(judged[t["idx"]])
        judge.append(0 if v in ("Tie", "0", "garbage") else int(v))
    return human, judge


@pytest.mark.parametrize(
    ("verdicts", "key", "acc", "f1"),
    [
        # PandaLM's data/compute_metrics.py prints these for its released verdict files
        (GPT, "gpt_result", 0.7107, 0.5755),
        (PANDA, "pandalm_result", 0.6677, 0.5743),
    ],
)
def test_pandalm_agreement_reproduced(verdicts: Path, key: str, acc: float, f1: float) -> None:
    from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

    result = agreement(convert(TESTSET, verdicts), resamples=500, seed=1)
    human, judge = _reference_labels(verdicts, key)
    assert result.n == result.n_used == 999
    assert result.accuracy.value == pytest.approx(accuracy_score(human, judge), abs=1e-12)
    assert result.accuracy.value == pytest.approx(acc, abs=5e-5)
    assert result.macro_f1.value == pytest.approx(
        f1_score(human, judge, average="macro"), abs=1e-12
    )
    assert result.macro_f1.value == pytest.approx(f1, abs=5e-5)
    assert result.cohen_kappa.value == pytest.approx(cohen_kappa_score(human, judge), abs=1e-12)
    for est in (result.accuracy, result.macro_f1, result.cohen_kappa):
        assert est.ci_low < est.value < est.ci_high
    assert result.label_counts["human"] == {"a": 422, "b": 472, "tie": 105}  # PandaLM README


def test_fleiss_kappa_matches_statsmodels() -> None:
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    tests = json.loads(TESTSET.read_text())
    table = np.array([[t[f"annotator{k}"] for k in (1, 2, 3)] for t in tests])
    expected = fleiss_kappa(aggregate_raters(table)[0], method="fleiss")
    result = agreement(convert(TESTSET, PANDA), resamples=200)
    assert result.fleiss_kappa.value == pytest.approx(expected, abs=1e-12)
    assert result.fleiss_kappa.ci_low < expected < result.fleiss_kappa.ci_high
    # and on a small table with unequal margins
    counts = np.array([[3, 0, 0], [1, 2, 0], [0, 1, 2], [1, 1, 1], [0, 0, 3]])
    assert fleiss_from_counts(counts)[0] == pytest.approx(fleiss_kappa(counts), abs=1e-12)


def test_bootstrap_resamples_are_real_resamples() -> None:
    """The vectorised per-resample kappa equals scikit-learn's on the expanded resample."""
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    h = rng.integers(0, 3, 60)
    j = np.where(rng.random(60) < 0.7, h, rng.integers(0, 3, 60))
    w = _weights(np.random.default_rng(5), 4, 60)
    cells = np.zeros((60, 9))
    cells[np.arange(60), h * 3 + j] = 1
    kappas = _kappa_from_cm((w @ cells).reshape(4, 3, 3))
    for b in range(4):
        idx = np.repeat(np.arange(60), w[b].astype(int))
        assert kappas[b] == pytest.approx(cohen_kappa_score(h[idx], j[idx]), abs=1e-12)


def test_ties_swaps_errors_and_majorities() -> None:
    rows = [
        {"id": "1", "human": ["a", "a", "b"], "judge": "a", "judge_swapped": "a"},  # agree
        {"id": "2", "human": "b", "judge": "a", "judge_swapped": "b"},  # flips -> tie
        {"id": "3", "human": ["tie", "tie"], "judge": "tie", "judge_swapped": "tie"},
        {"id": "4", "human": ["a", "b"], "judge": "a"},  # no majority: left out
        {"id": "5", "human": "a", "judge": None},  # judge error: left out
        {"id": "6", "human": "B", "judge": "B", "judge_swapped": "error"},  # swap failed
    ]
    r = agreement(rows, resamples=200)
    assert (r.n, r.n_used, r.n_no_majority, r.n_judge_errors) == (6, 3, 1, 2)
    assert r.accuracy.value == pytest.approx(2 / 3)  # row 2 became a tie vs human b
    assert r.confusion == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    # consistency over rows judged in both orders with two verdicts: 1, 2, 3
    assert r.position_consistency.value == pytest.approx(2 / 3)
    assert r.position_consistency.n == 3
    assert r.judge_tie_share.value == pytest.approx(2 / 3)


def test_bad_rows_name_the_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "labels.jsonl"
    f.write_text(
        '{"id": 1, "human": "a", "judge": "b"}\n{"id": 2, "human": "maybe", "judge": "b"}\n'
    )
    with pytest.raises(DataError, match=r"labels.jsonl:2: field `human` must be"):
        load_rows(f)
    f.write_text('{"id": 1, "human": "a"}\n')
    with pytest.raises(DataError, match=r"labels.jsonl:1: missing field `judge`"):
        load_rows(f)
    f.write_text("{not json\n")
    with pytest.raises(DataError, match=r"labels.jsonl:1: not valid JSON"):
        load_rows(f)


@pytest.mark.slow
def test_cli_converts_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "gpt.jsonl"
    cmd = [sys.executable, "-m", "tunecheck", "judge"]
    conv = subprocess.run(
        [*cmd, "pandalm", str(TESTSET), str(GPT), "-o", str(out), "--garbage", "error"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert conv.returncode == 0, conv.stderr
    assert len(out.read_text().splitlines()) == 999
    res = subprocess.run(
        [*cmd, "agreement", str(out), "--json", "--resamples", "200"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    # 25 "garbage" GPT answers are judge errors here, not ties
    assert data["n_judge_errors"] == 25 and data["n_used"] == 974
    assert data == agreement_file(out, resamples=200).model_dump(mode="json")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"human": "a", "judge": "c"}\n')
    res = subprocess.run([*cmd, "agreement", str(bad)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "bad.jsonl:1" in res.stderr and "`judge`" in res.stderr


def test_write_and_read_round_trip(tmp_path: Path) -> None:
    rows = convert(TESTSET, PANDA)[:20]
    path = write_jsonl(rows, tmp_path / "r.jsonl")
    assert [r.id for r in load_rows(path)] == [r["id"] for r in rows]
