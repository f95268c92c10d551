"""The lock: a test split edited after locking is refused, with what changed."""

from __future__ import annotations

import json
import random
import shutil
import warnings
from pathlib import Path

import pytest

from tunecheck.data import (
    LOCK_NAME,
    SplitWarning,
    load_locked_split,
    read_lock,
    read_rows,
    split_dataset,
    verify_lock,
    write_rows,
)
from tunecheck.errors import LockError
from tunecheck.spec import FieldMap

WORDS = [
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
]


def _rows(n: int, *, with_id: bool = True) -> list[dict]:
    rnd = random.Random(7)
    rows = []
    for i in range(n):
        text = f"request {i}: " + " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 9)))
        row = {"input": text, "reference": f"answer {i}", "label": ["a", "b", "c"][i % 3]}
        rows.append({"id": f"ex{i:03d}", **row} if with_id else row)
    return rows


@pytest.fixture()
def locked(tmp_path: Path) -> Path:
    src = write_rows(_rows(240), tmp_path / "data.jsonl")
    split_dataset(src, tmp_path / "split", stratify="label", seed=5)
    return tmp_path / "split"


def test_fresh_split_verifies(locked: Path) -> None:
    report = verify_lock(locked / LOCK_NAME)
    assert report.ok and report.test_rows == 24 and not report.overlaps and not report.override_used
    assert report.splits == {"train": "unchanged", "val": "unchanged", "test": "unchanged"}
    assert report.input_field == "input"
    json.dumps(report.to_dict())
    assert verify_lock(locked).ok  # the folder works too


@pytest.mark.parametrize("trial", range(5))
def test_one_changed_character_is_detected(locked: Path, trial: int) -> None:
    path = locked / "test.jsonl"
    rows = read_rows(path)
    rnd = random.Random(trial)
    k = rnd.randrange(len(rows))
    field = rnd.choice(["input", "reference"])
    text = rows[k][field]
    pos = rnd.randrange(len(text))
    rows[k][field] = text[:pos] + ("X" if text[pos] != "X" else "Y") + text[pos + 1 :]
    write_rows(rows, path)
    with pytest.raises(LockError) as err:
        verify_lock(locked / LOCK_NAME)
    msg = str(err.value)
    assert "test split changed since it was locked: 0 added, 0 removed, 1 changed" in msg
    assert f"changed: {rows[k]['id']}" in msg and str(path) in msg and "hint:" in msg


def test_added_removed_and_reordered_rows(locked: Path) -> None:
    path = locked / "test.jsonl"
    original = path.read_bytes()
    rows = read_rows(path)
    write_rows([*rows, {"id": "new1", "input": "x", "reference": "y", "label": "a"}], path)
    with pytest.raises(LockError, match=r"1 added, 0 removed, 0 changed; added: new1"):
        verify_lock(locked)
    write_rows(rows[1:], path)
    with pytest.raises(
        LockError, match=rf"0 added, 1 removed, 0 changed; removed: {rows[0]['id']}"
    ):
        verify_lock(locked)
    write_rows(rows[::-1], path)
    with pytest.raises(LockError, match="the same rows in a different order"):
        verify_lock(locked)
    path.write_bytes(original)
    assert verify_lock(locked).ok


def test_content_hash_ids_report_a_changed_row(tmp_path: Path) -> None:
    src = tmp_path / "d.csv"
    write_rows(_rows(240, with_id=False), src)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        lock = split_dataset(src, tmp_path / "s", input_field="input")
    assert lock.id_field is None
    path = tmp_path / "s" / "test.csv"
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[3] = lines[3].replace("request", "requesT", 1)  # one character in one CSV line
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(LockError) as err:
        verify_lock(tmp_path / "s")
    old_id = lock.splits["test"].ids[2]
    assert f"0 added, 0 removed, 1 changed; changed: {old_id} -> " in str(err.value)


def test_cosmetic_resave_is_not_a_change(locked: Path) -> None:
    path = locked / "test.jsonl"
    text = path.read_text(encoding="utf-8")
    # an editor on another OS: CRLF line endings, a byte-order mark, keys reordered, spaces
    rows = [json.loads(line) for line in text.splitlines()]
    resaved = "\r\n".join(
        json.dumps(dict(reversed(list(r.items()))), indent=None, separators=(" , ", " : "))
        for r in rows
    )
    path.write_bytes(b"\xef\xbb\xbf" + resaved.encode("utf-8") + b"\r\n")
    assert verify_lock(locked).ok


def test_folder_can_be_moved(locked: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "deeper"
    moved.parent.mkdir()
    shutil.move(str(locked), str(moved))
    assert verify_lock(moved / LOCK_NAME).ok


def test_missing_split_file_and_missing_lock(locked: Path, tmp_path: Path) -> None:
    (locked / "test.jsonl").unlink()
    with pytest.raises(LockError) as err:
        verify_lock(locked / LOCK_NAME)
    assert "the test split recorded in the lock is missing" in str(
        err.value
    ) and "test.jsonl" in str(err.value)
    with pytest.raises(LockError, match="lock file not found"):
        verify_lock(tmp_path / "nowhere" / LOCK_NAME)
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(LockError, match="not valid JSON"):
        read_lock(tmp_path / "broken.json")
    (tmp_path / "odd.json").write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(LockError, match="missing or has unexpected fields"):
        read_lock(tmp_path / "odd.json")


def test_missing_train_file_is_an_error(locked: Path) -> None:
    (locked / "train.jsonl").unlink()
    with pytest.raises(LockError, match="the train split recorded in the lock is missing"):
        verify_lock(locked)


def test_changed_train_split_is_reported_not_refused(locked: Path) -> None:
    rows = read_rows(locked / "train.jsonl")
    write_rows(
        [
            *rows,
            {
                "id": "extra",
                "input": "a brand new training example",
                "reference": "r",
                "label": "a",
            },
        ],
        locked / "train.jsonl",
    )
    report = verify_lock(locked)
    assert report.splits["train"] == "changed" and report.splits["test"] == "unchanged"


def test_load_locked_split_uses_lock_ids(locked: Path) -> None:
    lock = read_lock(locked)
    examples, report = load_locked_split(locked / LOCK_NAME, fields=FieldMap(label="label"))
    assert [e.id for e in examples] == lock.splits["test"].ids
    assert all(e.label in {"a", "b", "c"} and e.reference.startswith("answer") for e in examples)
    assert report.ok
    train, _ = load_locked_split(locked / LOCK_NAME, "train")
    assert [e.id for e in train] == lock.splits["train"].ids
    with pytest.raises(LockError, match="locked with id field 'id'"):
        load_locked_split(locked / LOCK_NAME, fields=FieldMap(id="other"))
    with pytest.raises(LockError, match="no 'dev' split"):
        load_locked_split(locked / LOCK_NAME, "dev")
    (locked / "test.jsonl").write_text(
        (locked / "test.jsonl").read_text().replace("request", "Request", 1)
    )
    with pytest.raises(LockError, match="1 changed"):
        load_locked_split(locked / LOCK_NAME)


def test_load_locked_split_refuses_a_kfold_index(tmp_path: Path) -> None:
    src = write_rows(_rows(30), tmp_path / "d.jsonl")
    split_dataset(src, tmp_path / "cv", folds=3)
    with pytest.raises(LockError, match="describes 3 folds"):
        load_locked_split(tmp_path / "cv" / LOCK_NAME)
    examples, _ = load_locked_split(tmp_path / "cv" / "fold_2" / LOCK_NAME)
    assert len(examples) == 10
