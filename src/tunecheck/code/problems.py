"""Code problems: the three row formats, and examples that carry a problem to the scorer.

- **HumanEval** (``task_id``, ``prompt``, ``canonical_solution``, ``test`` defining
  ``check(candidate)``, ``entry_point``): the program is the code, then ``test``, then
  ``check(<entry_point>)``.
- **MBPP** (``task_id``, ``text`` or ``prompt``, ``code``, ``test_list`` of asserts, optional
  ``test_setup_code`` / ``test_imports``): setup, the code, then every assert. The model
  is shown the task text and the asserts (as in Austin et al. 2021), so it knows the
  function's name.
- **plain** (``prompt``, ``tests`` as code, optional ``id``, ``solution``, ``entry_point``
  and ``setup``): for your own problems. ``tests`` may be bare asserts, or define
  ``check(candidate)`` -- then ``entry_point`` names the function to pass it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from tunecheck.errors import DataError
from tunecheck.examples import Example

CodeFormat = Literal["humaneval", "mbpp", "plain"]

_CHECK = re.compile(r"^\s*def\s+check\s*\(", re.MULTILINE)


@dataclass(frozen=True)
class CodeProblem:
    """One problem: what the model sees, how its code is tested, and a reference if any.

    ``code_prompt`` is true when the prompt is itself code the answer continues
    (HumanEval's signature and docstring). ``reference`` is a complete reference
    program (for HumanEval, prompt + canonical solution).
    """

    id: str
    format: CodeFormat
    prompt: str
    tests: str
    entry_point: str | None = None
    setup: str = ""
    reference: str | None = None

    @property
    def code_prompt(self) -> bool:
        return self.format == "humaneval" or (
            self.entry_point is not None and f"def {self.entry_point}" in self.prompt
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "format": self.format,
            "prompt": self.prompt,
            "tests": self.tests,
            "entry_point": self.entry_point,
            "setup": self.setup,
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodeProblem:
        return cls(**data)


def detect_format(columns: list[str] | set[str], where: str) -> CodeFormat:
    """The code format of a file from its columns."""
    cols = set(columns)
    if "test" in cols and ("entry_point" in cols or "canonical_solution" in cols):
        return "humaneval"
    if "test_list" in cols:
        return "mbpp"
    if "tests" in cols:
        return "plain"
    raise DataError(
        f"not a code task file: no tests column (columns: {', '.join(sorted(cols))})",
        where=where,
        hint="use HumanEval rows (prompt, test, entry_point), MBPP rows (text or prompt, "
        "test_list) or plain rows (prompt, tests)",
    )


def default_fields(fmt: CodeFormat, columns: list[str] | set[str]) -> dict[str, str | None]:
    """The field mapping of a format (input, reference, id), given the file's columns."""
    cols = set(columns)
    if fmt == "humaneval":
        return {"input": "prompt", "reference": "canonical_solution", "id": "task_id"}
    if fmt == "mbpp":
        return {
            "input": "text" if "text" in cols else "prompt",
            "reference": "code" if "code" in cols else None,
            "id": "task_id",
        }
    return {
        "input": "prompt",
        "reference": "solution" if "solution" in cols else None,
        "id": "id" if "id" in cols else None,
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def problem_from_example(ex: Example, fmt: CodeFormat, where: str) -> CodeProblem:
    """Read the problem a loaded example describes; errors name the example."""
    meta = ex.meta
    name = f"{where}: example {ex.id!r}"
    prompt = _text(ex.input)
    reference: str | None = None
    if fmt == "humaneval":
        tests = _text(meta.get("test"))
        entry = meta.get("entry_point")
        if ex.reference not in (None, ""):
            reference = prompt + _text(ex.reference)
        setup = ""
    elif fmt == "mbpp":
        tests = _text(meta.get("test_list"))
        entry = meta.get("entry_point")
        setup = _text(meta.get("test_setup_code") or meta.get("test_imports"))
        if ex.reference not in (None, ""):
            reference = _text(ex.reference)
    else:
        tests = _text(meta.get("tests"))
        entry = meta.get("entry_point")
        setup = _text(meta.get("setup"))
        if ex.reference not in (None, ""):
            reference = _text(ex.reference)
    if not tests.strip():
        raise DataError(
            "this problem has no tests: its samples could never pass or fail",
            where=name,
            hint={
                "humaneval": "give it a `test` defining check(candidate)",
                "mbpp": "give it a non-empty `test_list` of asserts",
                "plain": "give it `tests`: asserts, or check(candidate) plus `entry_point`",
            }[fmt],
        )
    entry = None if entry in (None, "") else str(entry)
    if (fmt == "humaneval" or _CHECK.search(tests)) and entry is None:
        raise DataError(
            "this problem's tests define check(candidate) but it has no entry point",
            where=name,
            hint="add `entry_point`: the name of the function the tests should check",
        )
    if fmt == "humaneval" and not _CHECK.search(tests):
        raise DataError(
            "a HumanEval problem's `test` must define check(candidate)",
            where=name,
        )
    return CodeProblem(
        id=ex.id,
        format=fmt,
        prompt=prompt,
        tests=tests,
        entry_point=entry,
        setup=setup,
        reference=reference,
    )


def model_input(problem: CodeProblem, *, show_tests: bool = True) -> str:
    """What the model is asked: HumanEval's code prompt, or MBPP's text with its asserts."""
    if problem.format == "mbpp" and show_tests:
        return f"{problem.prompt}\nYour code should pass these tests:\n\n{problem.tests}\n"
    return problem.prompt


def code_examples(
    examples: list[Example], fmt: CodeFormat, where: str, *, show_tests: bool = True
) -> list[Example]:
    """Examples whose ``meta["code_problem"]`` carries the problem and whose input is the model's prompt."""
    out = []
    for ex in examples:
        problem = problem_from_example(ex, fmt, where)
        out.append(
            replace(
                ex,
                input=model_input(problem, show_tests=show_tests),
                reference=problem.reference,
                meta={**ex.meta, "code_problem": problem.to_dict()},
            )
        )
    return out


def problem_of(ex: Example) -> CodeProblem:
    """The problem an example carries (see :func:`code_examples`)."""
    data = ex.meta.get("code_problem")
    if data is None:
        raise DataError(
            "pass@k needs a code task: this example carries no code problem",
            where=f"example {ex.id!r}",
            hint="add `code: {}` to the task (or use HumanEval / MBPP / plain code rows)",
        )
    return CodeProblem.from_dict(data)
