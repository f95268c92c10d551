"""The README runs as written: every Python block, every `tunecheck` command, and the
outputs it quotes, in the README's order in one folder (see readme_blocks.py for the
markers a block may carry)."""

from __future__ import annotations

import json
import os
import random
import re
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
COMMANDS = [b for b in BLOCKS if b.lang in ("bash", "console")]
# a plain block that starts with `$ tunecheck ...` quotes what that command prints
QUOTED = [b for b in BLOCKS if b.lang in ("", "text") and b.code.startswith("$ tunecheck ")]


def commands_of(code: str) -> list[str]:
    """The `tunecheck` command lines of a bash/console block (continuations joined, comments cut)."""
    out = []
    for raw in code.replace("\\\n", " ").splitlines():
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
                "channel": ["app", "email"][i % 2],
            }
        )
    (folder / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    shutil.copy(HERE / "data" / "arc_sample.jsonl", folder / "arc_easy_test.jsonl")


def _steps(values: dict[str, str]) -> list[dict]:
    steps = []
    for b in BLOCKS:
        if b.skip:
            continue
        if b.lang == "python":
            steps.append(
                {"kind": "python", "line": b.line, "setup": fill(b.setup, values),
                 "code": b.runnable_code(values)}
            )  # fmt: skip
        elif b in COMMANDS or b in QUOTED:
            code = b.runnable_code(values)
            cmds = commands_of(code.splitlines()[0] if b in QUOTED else code)
            if cmds:
                steps.append(
                    {"kind": "shell", "line": b.line, "setup": fill(b.setup, values),
                     "commands": cmds}
                )  # fmt: skip
    return steps


@pytest.fixture(scope="session")
def values(embedded_model_dir: Path, lora_adapters: dict[str, Path]) -> dict[str, str]:
    return {
        "model": str(embedded_model_dir),
        "adapter": str(lora_adapters["trained"]),
        "repo": str(README.parent),
    }


@pytest.fixture(scope="session")
def readme_results(tmp_path_factory, values: dict[str, str]) -> dict[int, dict]:
    folder = tmp_path_factory.mktemp("readme")
    _write_data(folder)
    for block in BLOCKS:
        if block.file and not block.skip:
            (folder / block.file).write_text(block.runnable_code(values))
    (folder / "steps.json").write_text(json.dumps(_steps(values)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        [sys.executable, str(HERE / "readme_runner.py"), "steps.json", "results.json"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=2400,
        env=env,
    )
    assert (folder / "results.json").exists(), proc.stderr[-3000:]
    return {r["line"]: r for r in json.loads((folder / "results.json").read_text())}


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _result(block: Block, results: dict[int, dict]) -> dict:
    if block.skip:
        pytest.skip(block.skip)
    result = results[block.line]
    assert result["ok"], f"README.md:{block.line} failed:\n{result['error']}"
    return result


@pytest.mark.model
@pytest.mark.parametrize("block", PYTHON, ids=[f"README.md:{b.line}" for b in PYTHON])
def test_python_block_runs(block: Block, readme_results: dict[int, dict]) -> None:
    result = _result(block, readme_results)
    if not block.expect_output:
        return
    printed = {line: text for line, text in result["prints"]}
    checked = 0
    for offset, source in enumerate(block.code.splitlines()):
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


RUN = [b for b in COMMANDS if commands_of(b.code)]


@pytest.mark.model
@pytest.mark.parametrize("block", RUN, ids=[f"README.md:{b.line}" for b in RUN])
def test_commands_run_as_written(block: Block, readme_results: dict[int, dict]) -> None:
    for c in _result(block, readme_results)["commands"]:
        allowed = {0, 1} if "--fail-on" in c["command"] else {0}
        assert c["code"] in allowed, (
            f"README.md:{block.line}: `{c['command']}` exited {c['code']}\n{c['out'][-2000:]}"
        )


@pytest.mark.model
@pytest.mark.parametrize("block", QUOTED, ids=[f"README.md:{b.line}" for b in QUOTED])
def test_quoted_output_is_what_the_command_prints(
    block: Block, readme_results: dict[int, dict]
) -> None:
    """Every quoted line appears in the real output, in order; `...` stands for skipped lines."""
    [c] = _result(block, readme_results)["commands"]
    got = [_normalise(x) for x in c["out"].splitlines() if x.strip()]
    pos = 0
    for want in block.code.splitlines()[1:]:
        want = _normalise(want)
        if not want or want == "...":
            continue
        while pos < len(got) and got[pos] != want:
            pos += 1
        assert pos < len(got), (
            f"README.md:{block.line}: quoted line not printed (in this order): {want!r}\n"
            + "\n".join(got)
        )
        pos += 1


def test_every_block_is_run_or_says_why() -> None:
    for block in BLOCKS:
        if block.skip is not None:
            assert len(block.skip) > 10, f"README.md:{block.line}: a skip marker must give a reason"
    assert len([b for b in PYTHON if not b.skip]) >= len(PYTHON) * 3 // 4
    assert RUN and QUOTED
