"""`tunecheck split` and `tunecheck verify`: what users see, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tunecheck.cli import main


def run_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str
) -> tuple[int, str, str]:
    """Run the console entry point in-process (same error handling as the installed script)."""
    monkeypatch.setattr(sys, "argv", ["tunecheck", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


def _data(tmp_path: Path, n: int = 240) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "input": f"question number {i}", "label": "abc"[i % 3]})
            + "\n"
            for i in range(n)
        ),
        encoding="utf-8",
    )
    return path


def test_split_then_verify(tmp_path: Path, monkeypatch, capsys) -> None:
    src = _data(tmp_path)
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "split",
        src,
        "--out",
        tmp_path / "s",
        "--stratify",
        "label",
        "--seed",
        "7",
    )
    assert code == 0, err
    assert (
        "train" in out and "192 rows" in out and "24 rows" in out and "tunecheck.lock.json" in out
    )
    assert (tmp_path / "s" / "test.jsonl").exists()
    code, out, err = run_cli(monkeypatch, capsys, "verify", tmp_path / "s" / "tunecheck.lock.json")
    assert code == 0, err
    assert "test split unchanged (24 rows" in out and "no overlap" in out
    code, out, _ = run_cli(monkeypatch, capsys, "verify", tmp_path / "s", "--json")
    report = json.loads(out)
    assert (
        code == 0
        and report["ok"] is True
        and report["test_rows"] == 24
        and report["override_used"] is False
    )


def test_split_json_and_ratios(tmp_path: Path, monkeypatch, capsys) -> None:
    code, out, _ = run_cli(
        monkeypatch,
        capsys,
        "split",
        _data(tmp_path),
        "--out",
        tmp_path / "s",
        "--ratios",
        "0.5,0.25,0.25",
        "--json",
    )
    lock = json.loads(out)
    assert code == 0 and lock["ratios"] == [0.5, 0.25, 0.25]
    assert {k: v["rows"] for k, v in lock["splits"].items()} == {
        "train": 120,
        "val": 60,
        "test": 60,
    }


def test_small_data_warns_about_folds(tmp_path: Path, monkeypatch, capsys) -> None:
    code, _, err = run_cli(
        monkeypatch, capsys, "split", _data(tmp_path, 60), "--out", tmp_path / "s"
    )
    assert code == 0 and "warning:" in err and "--folds 5" in err
    code, out, _ = run_cli(
        monkeypatch, capsys, "split", _data(tmp_path, 60), "--out", tmp_path / "cv", "--folds", "3"
    )
    assert code == 0 and "fold_1: train 40, test 20" in out
    code, out, _ = run_cli(monkeypatch, capsys, "verify", tmp_path / "cv")
    assert code == 0 and out.count("test split unchanged (20 rows") == 3


def _edited_lock(tmp_path: Path) -> Path:
    from tunecheck.data import split_dataset

    lock = split_dataset(_data(tmp_path), tmp_path / "s")
    test = tmp_path / "s" / "test.jsonl"
    test.write_text(test.read_text().replace("question", "questioN", 1))
    return lock.path


def _missing_file_lock(tmp_path: Path) -> Path:
    from tunecheck.data import split_dataset

    lock = split_dataset(_data(tmp_path), tmp_path / "s")
    (tmp_path / "s" / "test.jsonl").unlink()
    return lock.path


def _file(name: str, content: bytes):
    def make(tmp_path: Path) -> Path:
        (tmp_path / name).write_bytes(content)
        return tmp_path / name

    return make


BAD = {
    "malformed jsonl": (
        ["split", _file("bad.jsonl", b'{"input": "a"}\n{"input": oops}\n'), "--out", "OUT"],
        ["bad.jsonl:2", "not valid JSON"],
    ),
    "csv missing a column": (
        ["split", _file("c.csv", b"text,label\na,x\nb\n"), "--out", "OUT"],
        ["c.csv:3", "1 field(s), but the header has 2"],
    ),
    "mapped column absent": (
        [
            "split",
            _file("c.csv", b"text,label\na,x\nb,y\n"),
            "--out",
            "OUT",
            "--input-field",
            "txt",
        ],
        ["input field 'txt' is not a column", "did you mean 'text'"],
    ),
    "empty file": (["split", _file("e.jsonl", b""), "--out", "OUT"], ["e.jsonl", "empty"]),
    "duplicate ids": (
        [
            "split",
            _file("d.jsonl", b'{"id": "1", "input": "a"}\n{"id": "1", "input": "b"}\n'),
            "--out",
            "OUT",
        ],
        ["duplicate id", "'1' at lines 1, 2"],
    ),
    "non-utf8": (
        ["split", _file("l.csv", b"text,label\ncaf\xe9,x\n"), "--out", "OUT"],
        ["l.csv:2", "not UTF-8"],
    ),
    "ratios": (
        ["split", _data, "--out", "OUT", "--ratios", "0.8,0.2,0.1"],
        ["ratios", "must sum to 1"],
    ),
    "ratios not numbers": (
        ["split", _data, "--out", "OUT", "--ratios", "a,b,c"],
        ["--ratios", "cannot read ratios"],
    ),
    "stratify missing": (
        [
            "split",
            _file("s.jsonl", b'{"input": "a", "label": "x"}\n{"input": "b"}\n'),
            "--out",
            "OUT",
            "--stratify",
            "label",
        ],
        ["s.jsonl:2", "stratify field 'label'"],
    ),
    "missing lock": (
        ["verify", lambda p: p / "none" / "tunecheck.lock.json"],
        ["lock file not found"],
    ),
    "lock points at missing file": (
        ["verify", _missing_file_lock],
        ["test split recorded in the lock is missing", "test.jsonl"],
    ),
    "edited test split": (
        ["verify", _edited_lock],
        ["test split changed since it was locked", "1 changed"],
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_clear_message(case: str, tmp_path: Path, monkeypatch, capsys) -> None:
    args, expected = BAD[case]
    argv = [
        str(tmp_path / "out") if a == "OUT" else (str(a(tmp_path)) if callable(a) else a)
        for a in args
    ]
    code, out, err = run_cli(monkeypatch, capsys, *argv)
    assert code == 2
    assert err.startswith("error:") and "hint:" in err
    for text in expected:
        assert text in err, (text, err)
    assert "Traceback" not in err + out


def test_installed_entry_point_exit_code_and_debug(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "a"}\nnot json\n', encoding="utf-8")
    env = {**os.environ, "NO_COLOR": "1"}
    cmd = [sys.executable, "-m", "tunecheck"]
    plain = subprocess.run(
        [*cmd, "split", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert plain.returncode == 2 and f"{bad}:2" in plain.stderr and "Traceback" not in plain.stderr
    debug = subprocess.run(
        [*cmd, "--debug", "split", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "DataError" in debug.stderr
