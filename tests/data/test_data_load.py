"""Rows to examples: field mapping, stable ids, duplicates and missing fields."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tunecheck.data import load_examples, write_rows
from tunecheck.errors import DataError
from tunecheck.examples import content_id
from tunecheck.spec import FieldMap


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_field_mapping_and_meta(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "d.jsonl",
        [
            {"uid": "u1", "q": "What?", "ans": '{"a": 1}', "cls": "x", "topic": "t1", "extra": 5},
            {"uid": "u2", "q": "Why?", "ans": "[1, 2]", "cls": "y", "topic": "t2", "extra": 6},
        ],
    )
    fields = FieldMap(input="q", reference="ans", label="cls", id="uid", slices="topic")
    ex = load_examples(path, fields)
    assert [e.id for e in ex] == ["u1", "u2"]
    assert ex[0].input == "What?"
    # JSON-looking references stay strings: the metrics parse them
    assert ex[0].reference == '{"a": 1}' and isinstance(ex[1].reference, str)
    assert ex[0].label == "x" and ex[0].slices == ("t1",)
    assert ex[0].meta == {"extra": 5}


def test_content_ids_are_stable_and_match_content_id(fixture_data: Path) -> None:
    path = fixture_data / "tasks" / "banking77_test.csv"
    ex = load_examples(path, FieldMap(input="text", label="category"))
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(ex) == len(rows) == 283
    assert [e.id for e in ex] == [content_id(r) for r in rows]
    assert ex == load_examples(path, FieldMap(input="text", label="category"))
    assert ex[0].label == "card_arrival" and ex[0].reference is None


def test_same_ids_whatever_the_format(tmp_path: Path) -> None:
    rows = [{"input": f"text {i}", "reference": str(i)} for i in range(5)]
    ids = None
    for name in ("a.jsonl", "a.csv", "a.parquet"):
        write_rows(rows, tmp_path / name)
        got = [e.id for e in load_examples(tmp_path / name)]
        ids = ids or got
        assert got == ids == [content_id(r) for r in rows]


def test_chat_message_input(tmp_path: Path) -> None:
    msgs = [{"role": "user", "content": "hi"}]
    path = _jsonl(tmp_path / "chat.jsonl", [{"id": "1", "input": msgs, "reference": "hello"}])
    assert load_examples(path)[0].input == msgs


def test_duplicate_ids_name_ids_and_lines(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "dup.jsonl",
        [
            {"id": "a", "input": "1"},
            {"id": "b", "input": "2"},
            {"id": "a", "input": "3"},
            {"id": "b", "input": "4"},
        ],
    )
    with pytest.raises(DataError) as err:
        load_examples(path)
    msg = str(err.value)
    assert "2 duplicate id(s)" in msg and "'a' at lines 1, 3" in msg and "'b' at lines 2, 4" in msg
    assert str(path) in msg and "hint:" in msg


def test_identical_rows_without_id_are_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "same.csv"
    path.write_text("text,label\nhello,a\nother,b\nhello,a\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"duplicate id\(s\) by content .* at lines 2, 4"):
        load_examples(path, FieldMap(input="text"))


def test_missing_mapped_column_suggests_a_name(tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("text,category\nhello,a\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_examples(path, FieldMap(input="txt"))
    msg = str(err.value)
    assert (
        "input field 'txt' is not a column" in msg
        and "did you mean 'text'" in msg
        and str(path) in msg
    )
    with pytest.raises(DataError, match="label field 'label' is not a column"):
        load_examples(path, FieldMap(input="text", label="label"))
    # the default `reference`/`id` columns are optional, explicitly mapped ones are not
    assert load_examples(path, FieldMap(input="text"))[0].reference is None
    with pytest.raises(DataError, match="reference field 'answer'"):
        load_examples(path, FieldMap(input="text", reference="answer"))


def test_row_missing_a_mapped_field_names_its_line(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "partial.jsonl", [{"input": "a", "label": "x"}, {"input": "b"}])
    with pytest.raises(DataError, match=r"partial.jsonl:2: this row has no label field 'label'"):
        load_examples(path, FieldMap(label="label"))
    path = _jsonl(tmp_path / "noid.jsonl", [{"id": "1", "input": "a"}, {"input": "b"}])
    with pytest.raises(DataError, match=r"noid.jsonl:2: the id field 'id' is missing or empty"):
        load_examples(path)
    path = _jsonl(tmp_path / "null.jsonl", [{"input": None}])
    with pytest.raises(DataError, match=r"null.jsonl:1: the input field 'input' is empty"):
        load_examples(path)
