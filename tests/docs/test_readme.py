"""The README runs as written: every Python block, every `tunecheck` command, and the
outputs it quotes (see readme_blocks.py for the markers a block may carry)."""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from readme_blocks import Block, fill, parse

README = Path(__file__).resolve().parents[2] / "README.md"
HERE = Path(__file__).parent
BLOCKS = parse(README)
PYTHON = [b for b in BLOCKS if b.lang == "python"]
COMMAND_LANGS = {"bash", "console"}


def _commands(block: Block) -> list[str]:
    """The `tunecheck` command lines of a bash/console block (comments removed)."""
    out = []
    for raw in block.code.splitlines():
        line = raw.strip().removeprefix("$ ").strip()
        if line.startswith("tunecheck "):
            out.append(re.sub(r"\s+#.*$", "", line))
    return out


def _write_data(folder: Path) -> None:
    rng = random.Random(7)
    labels = ["billing", "refund", "shipping"]
    words = {
        "billing": ["invoice", "charged twice", "payment failed", "wrong amount"],
        "refund": ["money back", "refund please", "return my money", "cancel and refund"],
        "shipping": ["parcel late", "where is my order", "tracking number", "delivery missed"],
    }
    rows = []
    for i in range(300):
        label = labels[i % 3]
        rows.append(
            {
                "id": f"m{i:03d}",
                "text": f"message {i}: {rng.choice(words[label])} for order {rng.randint(1000, 9999)}",
                "label": label,
                "channel": ["app", "mail"][i % 2],
            }
        )
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    shutil.copy(HERE / "data" / "arc_sample.jsonl", folder / "arc_easy_test.jsonl")


def _write_files(folder: Path, values: dict[str, str]) -> None:
    for block in BLOCKS:
        if block.file and not block.skip:
            (folder / block.file).write_text(block.runnable_code(values))


@pytest.fixture(scope="session")
def values(embedded_model_dir: Path, lora_adapters: dict[str, Path]) -> dict[str, str]:
    return {
        "model": str(embedded_model_dir),
        "adapter": str(lora_adapters["trained"]),
        "repo": str(README.parent),
    }


@pytest.fixture(scope="session")
def python_results(tmp_path_factory, values: dict[str, str]) -> dict[int, dict]:
    folder = tmp_path_factory.mktemp("readme-python")
    _write_data(folder)
    _write_files(folder, values)
    runnable = [
        {"line": b.line, "setup": fill(b.setup, values), "code": b.runnable_code(values)}
        for b in PYTHON
        if not b.skip
    ]
    (folder / "blocks.json").write_text(json.dumps(runnable))
    proc = subprocess.run(
        [sys.executable, str(HERE / "readme_runner.py"), "blocks.json", "results.json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=1500,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert (folder / "results.json").exists(), proc.stderr[-3000:]
    return {r["line"]: r for r in json.loads((folder / "results.json").read_text())}


def _normalise(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.model
@pytest.mark.parametrize("block", PYTHON, ids=[f"README.md:{b.line}" for b in PYTHON])
def test_python_block_runs(block: Block, python_results: dict[int, dict]) -> None:
    if block.skip:
        pytest.skip(block.skip)
    result = python_results[block.line]
    assert result["ok"], f"README.md:{block.line} failed:\n{result['error']}"
    if not block.expect_output:
        return
    printed = {line: text for line, text in result["prints"]}
    lines = block.code.splitlines()
    checked = 0
    for offset, source in enumerate(lines):
        m = re.match(r"^\s*print\(.*\)\s*#\s*(.+)$", source)
        if not m:
            continue
        line = block.line + offset
        expected = m.group(1).strip()
        assert line in printed, f"README.md:{line}: nothing printed"
        got = _normalise(printed[line])
        if expected.endswith("..."):
            assert got.startswith(_normalise(expected[:-3])), f"README.md:{line}: {got!r}"
        else:
            assert got == _normalise(expected), f"README.md:{line}: printed {got!r}"
        checked += 1
    assert checked, f"README.md:{block.line}: expect-output but no `print(...)  # ...` line"


@pytest.mark.model
def test_commands_run_as_written(tmp_path: Path, values: dict[str, str]) -> None:
    """Every `tunecheck` line of the README's bash/console blocks, in order, in one folder."""
    _write_data(tmp_path)
    _write_files(tmp_path, values)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    ran = 0
    for block in BLOCKS:
        if block.lang not in COMMAND_LANGS or block.skip:
            continue
        for setup_line in block.setup.splitlines():
            subprocess.run(fill(setup_line, values), shell=True, cwd=tmp_path, env=env, check=True)
        for command in _commands(Block(block.line, block.lang, block.runnable_code(values))):
            if "RUN_ID" in command:
                runs = subprocess.run(
                    ["tunecheck", "runs", "--json"],
                    cwd=tmp_path,
                    env=env,
                    capture_output=True,
                    text=True,
                )
                command = command.replace("RUN_ID", shlex.quote(json.loads(runs.stdout)[0]["id"]))
            proc = subprocess.run(
                command,
                shell=True,
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            allowed = {0, 1} if "--fail-on" in command else {0}
            assert proc.returncode in allowed, (
                f"README.md:{block.line}: `{command}` exited {proc.returncode}\n{proc.stderr[-2000:]}"
            )
            ran += 1
    assert ran >= 5


def test_every_block_is_run_or_says_why() -> None:
    for block in BLOCKS:
        if block.skip is not None:
            assert len(block.skip) > 10, f"README.md:{block.line}: a skip marker must give a reason"
    runnable = [b for b in PYTHON if not b.skip]
    assert len(runnable) >= len(PYTHON) // 2, "most Python examples must run"
