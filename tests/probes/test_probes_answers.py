"""Answer parsing: generated letters, numbers (commas, units), words and number lists."""

from __future__ import annotations

import numpy as np
import pytest

from tunecheck.examples import Example
from tunecheck.metrics import score_outputs
from tunecheck.metrics.answers import numbers_match, parse_letter, parse_number, parse_word
from tunecheck.spec import ParserSpec


def _score(name: str, examples: list[Example], outputs: list[str]):
    return score_outputs([name], outputs, examples, ParserSpec())[name]


CHOICES = ["Paris", "London", "Berlin", "Rome"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", 1),
        ("(B)", 1),
        ("B.", 1),
        ("b.", 1),
        ("B) London", 1),
        ("The answer is B", 1),
        ("The answer is (C).", 2),
        ("Answer: b", 1),
        ("answer: D", 3),
        ("**C**", 2),
        ("I think C is correct.", 2),
        ("A", 0),
        ("A. Paris", 0),
        ("D: Rome", 3),
        ("The correct option is A", 0),
        ("A good guess would be London.", 1),  # the article is not an answer; the choice text is
        ("London", 1),
        ("The capital is Paris.", 0),
        ("", None),
        ("I do not know.", None),
        ("Either B or C.", None),
        ("E", None),  # not one of the four letters
        ("A cat sat on a mat.", None),
    ],
)
def test_parse_letter(text, expected):
    assert parse_letter(text, 4, CHOICES) == expected


def test_parse_letter_respects_the_number_of_choices():
    assert parse_letter("C", 2) is None
    assert parse_letter("B", 2) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18", 18),
        ("The answer is 18.", 18),
        ("She makes $1,234.50 a day.", 1234.5),
        ("16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars", 18),
        ("#### 72", 72),
        ("Step 1: 5 + 3 = 8. So the answer is 8 apples, not 10", 8),
        ("It costs 45%", 45),
        ("-7 degrees", -7),
        ("The result is −3", -3),
        ("3/4", 0.75),
        ("x = 0.5", 0.5),
        ("no digits here", None),
        ("", None),
        ("\\boxed{42}", 42),
    ],
)
def test_parse_number(text, expected):
    got = parse_number(text)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_numbers_match_tolerates_format_not_value():
    assert numbers_match(18.0, 18)
    assert numbers_match(0.1 + 0.2, 0.3)
    assert numbers_match(1234.5, "1,234.50")
    assert not numbers_match(17.0, 18)
    assert not numbers_match(None, 18)


def test_parse_word():
    days = ["Monday", "Tuesday", "Sunday"]
    assert parse_word("Tuesday", days) == "Tuesday"
    assert parse_word("It will be tuesday.", days) == "Tuesday"
    assert parse_word("Today is Monday, so the answer is Sunday.", days) == "Sunday"
    assert parse_word("Sunday. Monday was yesterday.", days) == "Sunday"
    assert parse_word("Mondays are hard", days) is None
    assert parse_word("", days) is None


def _mc(gold: int) -> Example:
    return Example(
        id=f"q{gold}", input="q", meta={"choices": CHOICES, "gold": gold, "continuations": []}
    )


def test_score_mc_generated_counts_unparseable_as_wrong_and_invalid():
    examples = [_mc(1), _mc(1), _mc(0), _mc(3)]
    scored = _score("choice_letter", examples, ["B", "The answer is C", "no idea", "(D)"])
    np.testing.assert_array_equal(scored.per_example, [1, 0, 0, 1])
    assert scored.details["invalid"] == 1
    assert scored.details["answers"] == ["B", "C", "", "D"]


def test_score_numbers_and_answers():
    nums = [Example(id="a", input="", reference=18), Example(id="b", input="", reference=7)]
    s = _score("numeric_match", nums, ["so 18 dollars", "I cannot tell"])
    np.testing.assert_array_equal(s.per_example, [1, 0])
    assert s.details["invalid"] == 1
    mixed = [
        Example(
            id="w",
            input="",
            reference="Sunday",
            meta={"answer_type": "word", "candidates": ["Monday", "Sunday"]},
        ),
        Example(id="l", input="", reference=[3, 9, 20], meta={"answer_type": "list"}),
        Example(id="l2", input="", reference=[3, 9, 20], meta={"answer_type": "list"}),
        Example(id="n", input="", reference=-2, meta={"answer_type": "number"}),
    ]
    s = _score(
        "answer_match", mixed, ["sunday", "20, 3, 9 sorted: 3, 9, 20", "3, 20, 9", "position -2"]
    )
    np.testing.assert_array_equal(s.per_example, [1, 1, 0, 1])
