"""Code problems: the three formats, extraction as documented, and bad input naming the example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunecheck.code import build_program, extract_code, problem_of
from tunecheck.code.load import load_code_examples
from tunecheck.code.problems import CodeProblem
from tunecheck.errors import DataError

DATA = Path(__file__).resolve().parents[1] / "data" / "code"

ADD = CodeProblem(
    id="add",
    format="humaneval",
    prompt='def add(a, b):\n    """Sum."""\n',
    tests="def check(candidate):\n    assert candidate(2, 3) == 5\n",
    entry_point="add",
)


def test_humaneval_rows_load_with_their_test_and_entry_point() -> None:
    examples = load_code_examples(DATA / "HumanEval.jsonl")
    assert len(examples) == 164
    first = problem_of(examples[0])
    assert first.id == "HumanEval/0" and first.format == "humaneval"
    assert first.entry_point == "has_close_elements"
    assert examples[0].input == first.prompt and first.prompt.startswith("from typing import List")
    assert first.reference is not None and first.reference.startswith(first.prompt)


def test_mbpp_rows_show_the_task_and_its_asserts() -> None:
    examples = load_code_examples(DATA / "mbpp_sanitized.json")
    assert len(examples) == 427
    p = problem_of(examples[0])
    assert p.id == "2" and p.format == "mbpp" and p.entry_point is None
    assert examples[0].input.startswith("Write a function to find the shared elements")
    assert "Your code should pass these tests:" in examples[0].input
    assert "assert set(similar_elements(" in examples[0].input
    with_imports = next(problem_of(e) for e in examples if e.meta.get("test_imports"))
    assert with_imports.setup.startswith("import")


def test_original_mbpp_text_and_setup_code(tmp_path: Path) -> None:
    rows = [
        {
            "task_id": 11,
            "text": "Write a function to double a number.",
            "code": "def double(x):\n    return LIMIT and 2 * x",
            "test_list": ["assert double(2) == 4"],
            "test_setup_code": "LIMIT = 1",
        }
    ]
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (ex,) = load_code_examples(path)
    p = problem_of(ex)
    assert ex.input.startswith("Write a function to double a number.")
    program = build_program(p, p.reference or "")
    assert program.index("LIMIT = 1") < program.index("def double") < program.index("assert double")


def test_plain_user_format(tmp_path: Path) -> None:
    rows = [
        {
            "id": "sq",
            "prompt": "Write square(x).",
            "tests": "assert square(3) == 9",
            "solution": "def square(x):\n    return x * x",
            "entry_point": None,
        },
        {
            "id": "ck",
            "prompt": "Write inc(x).",
            "tests": "def check(f):\n    assert f(1) == 2",
            "entry_point": "inc",
            "solution": None,
        },
    ]
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    sq, ck = (problem_of(e) for e in load_code_examples(path))
    assert sq.format == "plain" and sq.reference == "def square(x):\n    return x * x"
    assert ck.reference is None
    assert build_program(ck, "def inc(x):\n    return x + 1").rstrip().endswith("check(inc)")


def test_extraction_rules_from_the_documentation() -> None:
    body = "    return a + b\n"
    assert extract_code(body, ADD) == ADD.prompt + body  # completion
    chat = "Sure!\n```python\ndef add(a, b):\n    return a + b\n```\nHope it helps."
    assert extract_code(chat, ADD) == "def add(a, b):\n    return a + b\n"
    assert extract_code("```\n    return a + b\n```", ADD) == ADD.prompt + body  # a body
    assert extract_code(body, ADD, "fenced") == ""
    assert extract_code(chat, ADD, "raw") == chat
    assert extract_code(chat, ADD, "completion") == ADD.prompt + chat
    # the block defining the entry point wins over an earlier example block
    two = "```python\nprint(add(1, 2))\n```\n```python\ndef add(a, b):\n    return a + b\n```"
    assert extract_code(two, ADD) == "def add(a, b):\n    return a + b\n"
    # other languages are not Python
    assert extract_code("```bash\nrm -rf /\n```", ADD, "fenced") == ""


def test_a_fenced_function_gets_the_prompts_imports() -> None:
    examples = load_code_examples(DATA / "HumanEval.jsonl")
    p = problem_of(examples[0])
    fenced = "```python\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    return False\n```"
    code = extract_code(fenced, p)
    assert code.startswith("from typing import List\n")


def test_an_nl_prompt_without_a_block_is_taken_raw() -> None:
    p = CodeProblem(id="m", format="mbpp", prompt="Write f.", tests="assert f() == 1")
    assert extract_code("def f():\n    return 1\n", p) == "def f():\n    return 1\n"


def _write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "problems.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_problem_without_tests_is_refused_by_name(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {
                "task_id": 1,
                "text": "Write f.",
                "code": "def f(): pass",
                "test_list": ["assert f() is None"],
            },
            {"task_id": 2, "text": "Write g.", "code": "def g(): pass", "test_list": []},
        ],
    )
    with pytest.raises(DataError, match=r"example '2'.*no tests") as err:
        load_code_examples(path)
    assert str(path) in str(err.value) and "test_list" in str(err.value)


def test_a_missing_entry_point_is_refused_by_name(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (DATA / "HumanEval.jsonl").read_text().splitlines()[:3]]
    rows[2]["entry_point"] = ""
    with pytest.raises(DataError, match=r"example 'HumanEval/2'.*no entry point"):
        load_code_examples(_write(tmp_path, rows))


def test_a_file_that_is_not_code_problems(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"id": "a", "input": "hi", "reference": "hello"}])
    with pytest.raises(DataError, match="not a code task file"):
        load_code_examples(path)
