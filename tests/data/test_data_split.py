"""Splits: deterministic, disjoint, covering, stratified within one example per split."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunecheck import __version__
from tunecheck.data import SplitWarning, read_lock, read_rows, split_dataset
from tunecheck.data.split import assign, check_ratios
from tunecheck.errors import DataError

RATIOS = st.sampled_from(
    [(0.8, 0.1, 0.1), (0.7, 0.15, 0.15), (0.6, 0.2, 0.2), (0.5, 0.0, 0.5)]
) | st.tuples(st.integers(1, 20), st.integers(0, 20), st.integers(1, 20)).map(
    lambda t: tuple(x / sum(t) for x in t)
)


def _dataset(draw_labels: list[int]) -> tuple[list[str], list[str]]:
    ids = [f"row-{i:04d}" for i in range(len(draw_labels))]
    return ids, [f"class{c}" for c in draw_labels]


@settings(max_examples=300, deadline=None)
@given(
    labels=st.lists(st.integers(0, 6), min_size=1, max_size=400),
    ratios=RATIOS,
    seed=st.integers(0, 2**32 - 1),
    stratified=st.booleans(),
)
def test_assign_partitions_and_stratifies(
    labels: list[int], ratios: tuple[float, ...], seed: int, stratified: bool
) -> None:
    ids, classes = _dataset(labels)
    parts = assign(ids, classes if stratified else None, ratios, seed)
    flat = [i for p in parts for i in p]
    # disjoint and covering
    assert sorted(flat) == list(range(len(ids)))
    # deterministic
    assert parts == assign(ids, classes if stratified else None, ratios, seed)
    n = len(ids)
    if stratified:
        totals = Counter(classes)
        for s, part in enumerate(parts):
            got = Counter(classes[i] for i in part)
            for c, n_c in totals.items():
                # class proportions kept to within one example per split
                assert abs(got[c] - n_c * ratios[s]) < 1 + 1e-9, (c, s, got[c], n_c * ratios[s])
    else:
        for s, part in enumerate(parts):
            assert abs(len(part) - n * ratios[s]) < 1 + 1e-9


@settings(max_examples=100, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=2, max_size=300),
    k=st.integers(2, 10),
    seed=st.integers(0, 1000),
)
def test_folds_partition_and_stratify(labels: list[int], k: int, seed: int) -> None:
    ids, classes = _dataset(labels)
    parts = assign(ids, classes, [1 / k] * k, seed)
    assert sorted(i for p in parts for i in p) == list(range(len(ids)))
    totals = Counter(classes)
    for part in parts:
        got = Counter(classes[i] for i in part)
        for c, n_c in totals.items():
            assert abs(got[c] - n_c / k) < 1 + 1e-9


@settings(max_examples=50, deadline=None)
@given(n=st.integers(10, 120), seed=st.integers(0, 10_000), shuffle_seed=st.integers(0, 100))
def test_split_does_not_depend_on_input_order(n: int, seed: int, shuffle_seed: int) -> None:
    import random

    ids = [f"id{i}" for i in range(n)]
    labels = [f"c{i % 3}" for i in range(n)]
    order = list(range(n))
    random.Random(shuffle_seed).shuffle(order)
    a = assign(ids, labels, (0.8, 0.1, 0.1), seed)
    b = assign([ids[i] for i in order], [labels[i] for i in order], (0.8, 0.1, 0.1), seed)
    assert [sorted(ids[i] for i in p) for p in a] == [sorted(ids[order[i]] for i in p) for p in b]


def test_different_seeds_give_different_splits() -> None:
    ids = [str(i) for i in range(500)]
    assert assign(ids, None, (0.8, 0.1, 0.1), 1)[2] != assign(ids, None, (0.8, 0.1, 0.1), 2)[2]


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(20, 250),
    seed=st.integers(0, 99),
    fmt=st.sampled_from(["jsonl", "csv", "parquet"]),
)
def test_split_files_are_deterministic(
    tmp_path_factory: pytest.TempPathFactory, n: int, seed: int, fmt: str
) -> None:
    from tunecheck.data import write_rows

    base = tmp_path_factory.mktemp("det")
    rows = [
        {"text": f"example number {i} " + "word " * (i % 7), "label": f"l{i % 4}"} for i in range(n)
    ]
    src = write_rows(rows, base / f"src.{fmt}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        a = split_dataset(src, base / "a", seed=seed, stratify="label")
        b = split_dataset(src, base / "b", seed=seed, stratify="label")
    for name in a.splits:
        assert (base / "a" / a.splits[name].path).read_bytes() == (
            base / "b" / b.splits[name].path
        ).read_bytes()
    assert a.to_dict() == b.to_dict()
    assert (base / "a" / "tunecheck.lock.json").read_bytes() == (
        base / "b" / "tunecheck.lock.json"
    ).read_bytes()
    got = [
        r
        for name in ("train", "val", "test")
        if name in a.splits
        for r in read_rows(base / "a" / a.splits[name].path)
    ]
    assert sorted(map(json.dumps, got)) == sorted(map(json.dumps, read_rows(src)))


def test_stratified_split_of_banking77(tmp_path: Path, fixture_data: Path) -> None:
    src = fixture_data / "tasks" / "banking77_train.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        lock = split_dataset(src, tmp_path, stratify="category", seed=13)
    sizes = {k: v.rows for k, v in lock.splits.items()}
    assert sizes == {"train": 407, "val": 51, "test": 51}  # 509 rows
    totals = Counter(r["category"] for r in read_rows(src))
    assert len(totals) == 77
    for name, ratio in zip(("train", "val", "test"), (0.8, 0.1, 0.1), strict=True):
        got = Counter(r["category"] for r in read_rows(tmp_path / lock.splits[name].path))
        assert all(abs(got[c] - n * ratio) < 1 + 1e-9 for c, n in totals.items())
    # the lock: hashes, ids, seed, ratios, version, relative paths
    data = json.loads((tmp_path / "tunecheck.lock.json").read_text())
    assert data["source"]["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert (
        data["seed"] == 13 and data["ratios"] == [0.8, 0.1, 0.1] and data["stratify"] == "category"
    )
    assert data["tool_version"] == __version__
    assert {k: v["path"] for k, v in data["splits"].items()} == {
        "train": "train.csv",
        "val": "val.csv",
        "test": "test.csv",
    }
    assert all(len(v["ids"]) == v["rows"] == len(set(v["ids"])) for v in data["splits"].values())
    assert not set(data["splits"]["test"]["ids"]) & set(data["splits"]["train"]["ids"])
    assert data["input_field"] == "text"
    assert read_lock(tmp_path / "tunecheck.lock.json").to_dict() == data


def test_small_dataset_warns_and_recommends_folds(tmp_path: Path) -> None:
    src = _write_jsonl(
        tmp_path / "small.jsonl",
        [{"id": str(i), "input": f"q {i}", "label": "ab"[i % 2]} for i in range(50)],
    )
    with pytest.warns(SplitWarning, match=r"only 50 examples.*--folds"):
        lock = split_dataset(src, tmp_path / "out", stratify="label")
    assert any("--folds" in w for w in lock.warnings)
    assert lock.id_field == "id"  # the `id` column is used when every row has one
    # the warning quotes the test split's real size, not n x ratio (3 x 0.5 rounds to 2)
    tiny = _write_jsonl(
        tmp_path / "tiny.jsonl", [{"id": str(i), "input": f"q {i}"} for i in range(3)]
    )
    with pytest.warns(SplitWarning, match=r"a 50% test split \(1 example\)"):
        lock = split_dataset(tiny, tmp_path / "tiny", ratios=(0.5, 0.0, 0.5))
    assert lock.splits["test"].rows == 1


def test_kfold_writes_one_lock_per_fold(tmp_path: Path) -> None:
    from tunecheck.data import verify_lock

    rows = [
        {"id": f"r{i}", "input": f"question number {i}", "label": "xyz"[i % 3]} for i in range(40)
    ]
    src = _write_jsonl(tmp_path / "d.jsonl", rows)
    index = split_dataset(src, tmp_path / "cv", folds=4, stratify="label")
    assert index.folds == [f"fold_{k}/tunecheck.lock.json" for k in range(1, 5)]
    tests = []
    for f in index.folds:
        fold = read_lock(tmp_path / "cv" / f)
        assert set(fold.splits) == {"train", "test"} and fold.n_folds == 4
        assert fold.splits["test"].rows == 10 and fold.splits["train"].rows == 30
        assert not set(fold.splits["test"].ids) & set(fold.splits["train"].ids)
        tests += fold.splits["test"].ids
        fold_test = read_rows(tmp_path / "cv" / Path(f).parent / "test.jsonl")
        per_class = Counter(r["label"] for r in fold_test)
        totals = Counter(r["label"] for r in rows)  # x 14, y 13, z 13
        assert all(abs(per_class[c] - n / 4) < 1 for c, n in totals.items())
    assert sorted(tests) == sorted(r["id"] for r in rows)  # every row is tested exactly once
    report = verify_lock(tmp_path / "cv" / "tunecheck.lock.json")
    assert report.ok and len(report.folds) == 4 and report.test_rows == 40


def test_hf_folder_split_round_trip(tmp_path: Path) -> None:
    import datasets

    from tunecheck.data import verify_lock

    rows = [{"input": f"text {i} with some words", "label": "ab"[i % 2]} for i in range(30)]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        lock = split_dataset(tmp_path / "ds", tmp_path / "out", stratify="label")
    assert {k: v.path for k, v in lock.splits.items()} == {
        "train": "train",
        "val": "val",
        "test": "test",
    }
    assert (
        datasets.load_from_disk(str(tmp_path / "out" / "test")).num_rows
        == lock.splits["test"].rows
        == 3
    )
    assert verify_lock(tmp_path / "out" / "tunecheck.lock.json").ok


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ((0.8, 0.1, 0.2), r"ratios must sum to 1, but 0.8 \+ 0.1 \+ 0.2 = 1.1"),
        ((0.5, 0.6), r"ratios must sum to 1, but 0.5 \+ 0.6 = 1.1"),
        ((0.5, 0.25, 0.25, 0.0), "expected 3 ratios"),
        ((1.1, -0.1, 0.0), "must not be negative"),
        ((1.0, 0.0, 0.0), "train and test ratios must be above 0"),
    ],
)
def test_bad_ratios(ratios: tuple[float, ...], message: str) -> None:
    with pytest.raises(DataError, match=message) as err:
        check_ratios(ratios)
    assert err.value.where == "ratios" and err.value.hint


def test_stratify_field_missing_in_some_rows(tmp_path: Path) -> None:
    src = _write_jsonl(
        tmp_path / "d.jsonl",
        [{"input": "a", "label": "x"}, {"input": "b", "label": "y"}, {"input": "c"}],
    )
    with pytest.raises(DataError) as err:
        split_dataset(src, tmp_path / "out", stratify="label")
    msg = str(err.value)
    assert f"{src}:3" in msg and "no value for the stratify field 'label'" in msg and "hint:" in msg
    with pytest.raises(DataError, match="stratify field 'lable' is not a column"):
        split_dataset(src, tmp_path / "out", stratify="lable")
    assert not (tmp_path / "out" / "tunecheck.lock.json").exists()


def test_existing_lock_is_not_replaced_without_force(tmp_path: Path) -> None:
    src = _write_jsonl(tmp_path / "d.jsonl", [{"input": f"q{i}"} for i in range(30)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        split_dataset(src, tmp_path / "out")
        with pytest.raises(DataError, match="a lock already exists here"):
            split_dataset(src, tmp_path / "out", seed=99)
        lock = split_dataset(src, tmp_path / "out", seed=99, overwrite=True)
    assert lock.seed == 99


def test_too_few_rows_for_a_test_split(tmp_path: Path) -> None:
    src = _write_jsonl(tmp_path / "d.jsonl", [{"input": "a"}, {"input": "b"}, {"input": "c"}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        with pytest.raises(
            DataError, match=r"3 examples leave the test split empty.*\n  hint:.*--folds"
        ):
            split_dataset(src, tmp_path / "out")


def test_dedupe_drops_repeated_inputs(tmp_path: Path) -> None:
    rows = [{"input": f"question {i % 40}", "label": "ab"[i % 2]} for i in range(80)]
    src = _write_jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=r"duplicate id.*\n  hint:.*--dedupe"):
        split_dataset(src, tmp_path / "out")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        lock = split_dataset(src, tmp_path / "out", dedupe=True)
    assert lock.source["dropped_duplicates"] == 40 and lock.source["rows"] == 80
    assert sum(s.rows for s in lock.splits.values()) == 40
