"""From a model's output to the program that is executed.

Modes (``code.extract`` in the spec):

``auto`` (default)
    A fenced block if the output has one, else: the prompt followed by the output when
    the prompt is code (completion models continuing HumanEval's signature), else the
    output as it is.
``fenced``
    Only a fenced block; an output without one is an empty program (it fails).
``completion``
    Always the prompt followed by the output (completion models).
``raw``
    The output as it is.

Which block: the first ```` ```python ```` / ```` ```py ```` / plain ```` ``` ```` block that defines
the entry point, else the first of them. A block that defines the entry point gets the
prompt's import lines put before it (chat models often drop ``from typing import List``);
a block that does not is taken as the function body and appended to the prompt.

Examples, for HumanEval's prompt ``"def add(a, b):\\n    \\"\\"\\"Sum.\\"\\"\\"\\n"``:

- output ``"    return a + b\\n"`` -> prompt + output (completion);
- output ``"Sure!\\n```python\\ndef add(a, b):\\n    return a + b\\n```"`` -> the block;
- output ``"```\\n    return a + b\\n```"`` -> prompt + the block (a body).

The program run is then: the problem's setup, the code, the tests, and for tests that
define ``check(candidate)``, ``check(<entry_point>)``.
"""

from __future__ import annotations

import re
from typing import Literal

from tunecheck.code.problems import CodeProblem

ExtractMode = Literal["auto", "fenced", "completion", "raw"]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PY_LANGS = {"", "python", "py", "python3", "py3"}
_IMPORT = re.compile(r"^(?:from\s+\S+\s+import\s+.+|import\s+.+)$", re.MULTILINE)


def fenced_blocks(text: str) -> list[str]:
    """Python (or unlabelled) fenced code blocks, in order; an unclosed last block counts."""
    return [body for lang, body in _FENCE.findall(text) if lang.lower() in _PY_LANGS]


def _defines(code: str, name: str | None) -> bool:
    return (
        name is not None and re.search(rf"^\s*def\s+{re.escape(name)}\s*\(", code, re.M) is not None
    )


def extract_code(output: str, problem: CodeProblem, mode: ExtractMode = "auto") -> str:
    """The code to test from ``output`` (see the module docstring for the rules)."""
    if mode == "raw":
        return output
    if mode == "completion":
        return problem.prompt + output
    blocks = fenced_blocks(output)
    if blocks:
        block = next((b for b in blocks if _defines(b, problem.entry_point)), blocks[0])
        if problem.code_prompt and not _defines(block, problem.entry_point):
            return problem.prompt + block
        if problem.code_prompt:
            imports = "\n".join(_IMPORT.findall(problem.prompt))
            return f"{imports}\n{block}" if imports else block
        return block
    if mode == "fenced":
        return ""
    return problem.prompt + output if problem.code_prompt else output


def build_program(problem: CodeProblem, code: str) -> str:
    """The whole program executed for one sample: setup, code, tests, check call."""
    parts = [problem.setup, code, problem.tests]
    if problem.entry_point and re.search(r"^\s*def\s+check\s*\(", problem.tests, re.M):
        parts.append(f"check({problem.entry_point})")
    return "\n\n".join(p.rstrip("\n") for p in parts if p.strip()) + "\n"
