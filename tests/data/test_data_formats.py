"""Reading and writing rows: every format round-trips; bad files get clear errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tunecheck.data import content_sha256, read_rows, read_table, write_rows
from tunecheck.errors import DataError

ROWS = [
    {"id": "a", "input": 'Héllo, "world"\tand more', "reference": '{"x": 1}', "label": "pos"},
    {"id": "b", "input": "line one\nline two", "reference": "plain", "label": "neg"},
    {"id": "c", "input": "naïve café ünïcode ✓", "reference": "", "label": "pos"},
]


@pytest.mark.parametrize(
    "name", ["rows.jsonl", "rows.json", "rows.csv", "rows.tsv", "rows.parquet", "rows_hf"]
)
def test_every_format_round_trips(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    fmt = "hf" if name == "rows_hf" else None
    write_rows(ROWS, path, fmt)
    assert path.exists()
    back = read_rows(path)
    assert back == ROWS
    # and a second generation is identical (write what was read)
    write_rows(back, tmp_path / ("again_" + name), fmt)
    assert read_rows(tmp_path / ("again_" + name)) == ROWS


def test_hf_folder_is_a_real_datasets_save(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "ds"))
    assert read_rows(tmp_path / "ds") == ROWS
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS), "test": datasets.Dataset.from_list(ROWS[:1])}
    ).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match="DatasetDict with 2 splits") as err:
        read_rows(tmp_path / "dd")
    assert "dd/train" in str(err.value) or "dd/test" in str(err.value)
    assert read_rows(tmp_path / "dd" / "test") == ROWS[:1]


def test_typed_values_survive_jsonl_and_parquet(tmp_path: Path) -> None:
    rows = [{"n": 1, "x": 0.5, "ok": True, "tags": ["a", "b"], "none": None}]
    for name in ("t.jsonl", "t.parquet"):
        write_rows(rows, tmp_path / name)
        assert read_rows(tmp_path / name) == rows


def test_sms_spam_tsv_is_read_unquoted(fixture_data: Path) -> None:
    path = fixture_data / "tasks" / "sms_spam_collection.tsv"
    table = read_table(path)
    # 647 messages per tests/data/SOURCES.md (8 start with '"'); CSV quoting rules would merge
    # the lines that start with '"' with the lines after them
    assert len(table.rows) == 647
    assert table.quoting == "none"
    assert sum(r["Label"] == "spam" for r in table.rows) == 320
    with path.open(newline="", encoding="utf-8") as f:
        reference = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert table.rows == reference
    assert any(r["SMS"].startswith('"') for r in table.rows)


def test_unquoted_tsv_is_written_back_unquoted(tmp_path: Path) -> None:
    src = tmp_path / "in.tsv"
    src.write_text('Label\tSMS\nham\t"Quoted" start, then text\nspam\tplain\n', encoding="utf-8")
    table = read_table(src)
    assert table.quoting == "none"
    assert table.rows[0]["SMS"] == '"Quoted" start, then text'
    write_rows(table.rows, tmp_path / "out.tsv", quoting=table.quoting, columns=table.columns)
    assert (tmp_path / "out.tsv").read_text(encoding="utf-8") == src.read_text(encoding="utf-8")


def test_quoted_csv_with_embedded_newline(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('text,label\n"a, b\nc",x\nplain,y\n', encoding="utf-8")
    table = read_table(path)
    assert table.rows == [{"text": "a, b\nc", "label": "x"}, {"text": "plain", "label": "y"}]
    assert table.lines == [2, 4]
    assert table.quoting == "minimal"


def test_normalisation_ignores_bom_crlf_and_nfc(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_text('{"t": "caf\\u00e9", "u": "x\\ny"}\n', encoding="utf-8")
    # BOM, CRLF line endings, decomposed é (e + combining acute), \r\n inside the value
    b.write_bytes(b"\xef\xbb\xbf" + b'{"u": "x\\r\\ny", "t": "cafe\\u0301"}\r\n')
    assert read_rows(a) != read_rows(b)
    assert content_sha256(read_rows(a)) == content_sha256(read_rows(b))
    c = tmp_path / "c.jsonl"
    c.write_text('{"t": "cafe", "u": "x\\ny"}\n', encoding="utf-8")
    assert content_sha256(read_rows(a)) != content_sha256(read_rows(c))


# --------------------------------------------------------------------------- bad input


def test_malformed_jsonl_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"input": "ok"}\n\n{"input": "missing quote}\n{"input": "x"}\n', encoding="utf-8"
    )
    with pytest.raises(DataError) as err:
        read_rows(path)
    assert f"{path}:3" in str(err.value)
    assert "not valid JSON" in str(err.value)
    assert "hint:" in str(err.value)


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.jsonl"
    path.write_text('{"input": "ok"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"list.jsonl:2: expected a JSON object, got list"):
        read_rows(path)


def test_non_utf8_bytes_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"text,label\nfine,a\n" + "caf\xe9,b\n".encode("latin-1"))
    with pytest.raises(DataError) as err:
        read_rows(path)
    msg = str(err.value)
    assert f"{path}:3" in msg and "not UTF-8" in msg and "e9" in msg and "iconv" in msg


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv", "empty.tsv", "empty.json"])
def test_empty_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("\n  \n" if name.endswith("jsonl") else "", encoding="utf-8")
    with pytest.raises(DataError, match="empty") as err:
        read_rows(path)
    assert str(path) in str(err.value)


def test_csv_with_header_only(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(DataError, match="header but no rows"):
        read_rows(path)


def test_csv_row_missing_a_column(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("text,label\nfirst,a\nsecond\nthird,c\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_rows(path)
    msg = str(err.value)
    assert f"{path}:3" in msg and "1 field(s), but the header has 2 (text, label)" in msg


def test_csv_repeated_header(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("text,text\na,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"dup.csv:1: the header repeats column\(s\) \['text'\]"):
        read_rows(path)


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data file not found"):
        read_rows(tmp_path / "nope.jsonl")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(DataError, match=r"unknown data format '\.xlsx'"):
        read_rows(tmp_path / "x.xlsx")
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match="not a `datasets` save_to_disk folder"):
        read_rows(tmp_path / "folder")


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read Parquet"):
        read_rows(path)


def test_json_array_file(fixture_data: Path) -> None:
    rows = read_rows(fixture_data / "tasks" / "mbpp_sanitized.json")
    raw = json.loads((fixture_data / "tasks" / "mbpp_sanitized.json").read_text())
    assert rows == raw and len(rows) == 40
