"""``tunecheck ab analyze`` / ``ab plan``: end to end on real files, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from shadow_procs import env

from tunecheck.errors import DataError
from tunecheck.shadow.ab import analyze, newcombe_interval


def _tunecheck(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tunecheck", *args],
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
    )


def _events(n_c: int, n_t: int, p_c: float, p_t: float, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = [
        {"unit_id": f"u{i}", "variant": "control", "outcome": int(x)}
        for i, x in enumerate(rng.random(n_c) < p_c)
    ]
    rows += [
        {"unit_id": f"v{i}", "variant": "treatment", "outcome": int(x)}
        for i, x in enumerate(rng.random(n_t) < p_t)
    ]
    order = rng.permutation(len(rows))
    return [rows[i] for i in order]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_binary_analysis_numbers(tmp_path: Path) -> None:
    rows = _events(3000, 3000, 0.30, 0.36)
    res = analyze(_write_jsonl(tmp_path / "e.jsonl", rows))
    c = [r["outcome"] for r in rows if r["variant"] == "control"]
    t = [r["outcome"] for r in rows if r["variant"] == "treatment"]
    assert res.outcome == "binary" and res.units_control == 3000 == res.units_treatment
    assert res.difference == pytest.approx(np.mean(t) - np.mean(c))
    assert (res.ci_low, res.ci_high) == pytest.approx(newcombe_interval(sum(t), 3000, sum(c), 3000))
    assert res.seq_ci_low < res.ci_low < res.difference < res.ci_high < res.seq_ci_high
    assert res.seq_p_value < 0.05 and res.decision == "TREATMENT BETTER"
    assert not res.srm.mismatch
    path = tmp_path / "e.jsonl"
    # a higher rate of errors or edits is a worse candidate (--lower-is-better)
    assert analyze(path, higher_is_better=False).decision == "TREATMENT WORSE"
    # naming the variants explicitly swaps which one is the treatment
    swapped = analyze(path, control="treatment", treatment="control")
    assert swapped.difference == pytest.approx(-res.difference)
    assert swapped.seq_p_value == pytest.approx(res.seq_p_value)
    assert swapped.decision == "CONTROL WORSE"


def test_continuous_parquet_and_repeated_events(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from scipy import stats

    rng = np.random.default_rng(5)
    units = [f"u{i}" for i in range(400)]
    rows = []
    for i, u in enumerate(units):
        variant = "B" if i % 2 else "A"
        for _ in range(2):  # two sessions per user: averaged per unit
            rows.append({"unit_id": u, "variant": variant, "outcome": float(rng.normal(10, 3))})
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "e.parquet")
    res = analyze(tmp_path / "e.parquet")
    assert res.control == "A" and res.outcome == "continuous" and res.events == 800
    per_unit = {}
    for r in rows:
        per_unit.setdefault((r["unit_id"], r["variant"]), []).append(r["outcome"])
    a = [np.mean(v) for (u, var), v in per_unit.items() if var == "A"]
    b = [np.mean(v) for (u, var), v in per_unit.items() if var == "B"]
    ref = stats.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert (res.ci_low, res.ci_high) == pytest.approx((ref.low, ref.high))
    assert res.decision == "KEEP RUNNING"


def test_csv_events_enter_the_sequential_test_in_timestamp_order(tmp_path: Path) -> None:
    import csv

    rows = _events(800, 800, 0.3, 0.3, seed=4)
    in_order = analyze(_write_jsonl(tmp_path / "ordered.jsonl", rows))
    # the same events as CSV, shuffled, with numeric timestamps (9 must come before 10)
    shuffled = [rows[i] | {"timestamp": i} for i in np.random.default_rng(9).permutation(len(rows))]
    with open(tmp_path / "shuffled.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["timestamp", "unit_id", "variant", "outcome"])
        writer.writeheader()
        writer.writerows(shuffled)
    by_time = analyze(tmp_path / "shuffled.csv")
    assert by_time.outcome == "binary" and by_time.events == 1600
    for field in ("difference", "ci_low", "ci_high", "seq_p_value", "seq_ci_low", "seq_ci_high"):
        assert getattr(by_time, field) == pytest.approx(getattr(in_order, field), rel=1e-12)
    # without the timestamps the file order is the arrival order: a different path
    _write_jsonl(
        tmp_path / "no_time.jsonl", [{k: r[k] for k in r if k != "timestamp"} for r in shuffled]
    )
    by_file = analyze(tmp_path / "no_time.jsonl")
    assert by_file.difference == pytest.approx(in_order.difference)
    assert by_file.seq_p_value != pytest.approx(in_order.seq_p_value, rel=1e-6)


@pytest.mark.slow
def test_unit_in_both_variants_is_reported_excluded_counted(tmp_path: Path) -> None:
    rows = _events(500, 500, 0.3, 0.3)
    rows += [
        {"unit_id": "u1", "variant": "treatment", "outcome": 1},
        {"unit_id": "v7", "variant": "control", "outcome": 0},
    ]
    res = analyze(_write_jsonl(tmp_path / "e.jsonl", rows))
    assert res.both_variants == 2 and res.both_variants_examples == ["u1", "v7"]
    assert res.units_control == 499 and res.units_treatment == 499
    r = _tunecheck("ab", "analyze", str(tmp_path / "e.jsonl"))
    assert r.returncode == 0, r.stderr
    assert "2 unit(s) appear in both variants and were excluded" in r.stdout


@pytest.mark.slow
def test_broken_split_refuses_to_conclude(tmp_path: Path) -> None:
    rows = _events(4800, 5200, 0.30, 0.40)  # a huge effect, but a 48/52 split
    path = _write_jsonl(tmp_path / "e.jsonl", rows)
    r = _tunecheck("ab", "analyze", str(path), "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["srm"]["mismatch"] and out["decision"] == "NO CONCLUSION"
    assert "sample ratio mismatch" in out["reason"]
    # the same counts on a design that sends 52% to the treatment are fine
    assert analyze(path, expected_share=0.52).decision == "TREATMENT BETTER"


@pytest.mark.parametrize(
    ("name", "content", "where", "message"),
    [
        (
            "e.jsonl",
            '{"unit_id": "a", "variant": "control", "outcome": 1}\n'
            '{"unit_id": "b", "variant": "treatment", "outcome": 0}\n{"unit_id": "c", "variant"\n',
            "e.jsonl:3",
            "not valid JSON",
        ),
        (
            "e.csv",
            "unit_id,variant,outcome\na,control,1\nb,treatment,0\nc,treatment,maybe\n",
            "e.csv:4",
            "not a number or true/false",
        ),
        (
            "e.csv",
            "unit_id,variant,outcome\na,control,1\n,treatment,0\n",
            "e.csv:3",
            "empty unit_id",
        ),
        ("e.csv", "unit_id,group,outcome\na,control,1\n", "e.csv", "no 'variant' column"),
        (
            "e.csv",
            "unit_id,variant,outcome\na,x,1\nb,y,0\nc,z,1\n",
            "e.csv",
            "exactly two variants",
        ),
    ],
)
def test_malformed_events_name_the_line(tmp_path, name, content, where, message) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as err:
        analyze(path)
    assert str(err.value).startswith(str(tmp_path / where)) and message in str(err.value)


@pytest.mark.slow
def test_cli_bad_input_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"unit_id": "a", "variant": "control", "outcome": 1}\nnot json\n')
    r = _tunecheck("ab", "analyze", str(path))
    assert r.returncode == 2 and f"{path}:2" in r.stderr
    r = _tunecheck("ab", "plan", "--baseline-rate", "0.3", "--mde", "0.02", "--split", "1.2")
    assert r.returncode == 2 and "--split must be strictly between 0 and 1" in r.stderr


@pytest.mark.slow
def test_cli_plan_json() -> None:
    r = _tunecheck("ab", "plan", "--baseline-rate", "0.3", "--mde", "0.02", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["fixed_n_control"] == 8393 and plan["sequential_n_total"] > 16786
