"""One ``parse_number`` and one ``numbers_match`` for tasks and probes: the task metrics and
the reasoning-answer metric probes use give the same verdict on the same answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tunecheck.examples import Example
from tunecheck.metrics import answers, numbers, parsers, score_outputs, text
from tunecheck.spec import ParserSpec

# real-looking answers: GSM8K-style chains, markers, units, currencies, fractions, lists
OUTPUTS = [
    "16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars",
    "#### 72",
    "So the answer is 8 apples, not 10",
    "\\boxed{-3}",
    "She earns $1,234.50 a day.",
    "3/4",
    "about 1.5e3 metres",
    "pages 3-4",
    "The answer: 1,000",
    "I cannot tell.",
    "It is -$5 now.",
    "0.1 + 0.2 = 0.30000000000000004",
]
REFERENCES = ["18", "72", "8", "-3", "1234.5", "0.75", "1500", "4", "1000", "7", "-5", "0.3"]


def test_one_parser_and_one_comparison_everywhere():
    assert answers.parse_number is numbers.parse_number is parsers.parse_number
    assert answers.numbers_match is numbers.numbers_match is text.numbers_match
    assert answers.parse_numbers is numbers.parse_numbers


def test_task_metrics_and_the_probe_scorer_agree():
    examples = [Example(id=str(i), input="q", reference=r) for i, r in enumerate(REFERENCES)]
    got = score_outputs(
        ["numeric_match", "exact_match", "answer_match"],
        OUTPUTS,
        examples,
        ParserSpec(type="number"),
    )
    expected = [1.0] * 9 + [0.0] + [1.0, 1.0]
    for name in ("numeric_match", "exact_match", "answer_match"):
        assert list(got[name].per_example) == expected, name
    assert got["answer_match"].details["invalid"] == got["numeric_match"].details["invalid"] == 1


@given(
    value=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False).map(lambda v: round(v, 2)),
    style=st.sampled_from(["plain", "commas", "dollar", "unit", "sentence", "marker"]),
)
def test_a_formatted_number_reads_back_as_itself(value, style):
    body = f"{abs(value):,.2f}" if style in ("commas", "dollar") else f"{abs(value):.2f}"
    sign = "-" if value < 0 else ""
    written = {
        "plain": f"{sign}{body}",
        "commas": f"{sign}{body}",
        "dollar": f"{sign}${body}",
        "unit": f"{sign}{body} kg",
        "sentence": f"We get 3 first, then {sign}{body}.",
        "marker": f"Step 2: 4 + 4 = 8\n#### {sign}{body}",
    }[style]
    got = numbers.parse_number(written)
    assert got is not None and math.isclose(got, value, rel_tol=1e-12, abs_tol=1e-9), written
    assert numbers.numbers_match(got, written)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [(18.0, "18", True), (0.1 + 0.2, 0.3, True), (1234.5, "1,234.50", True),
     (1234.5, 1234.6, False), (1e-12, 0.0, True), (None, 1, False), (3.0, "no number", False)],
)  # fmt: skip
def test_numbers_match_is_a_relative_tolerance(a, b, same):
    assert numbers.numbers_match(a, b) is same
    if a is not None and isinstance(b, float):
        assert same == bool(np.isclose(a, b, rtol=1e-6, atol=1e-9))
