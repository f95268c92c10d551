"""Parser types are a registry: the built-ins, and one a user registers, read the same way."""

from __future__ import annotations

import pytest

from tunecheck.core import Parser
from tunecheck.errors import TunecheckError
from tunecheck.examples import Example
from tunecheck.metrics.parsers import PARSERS, parse_output, parser
from tunecheck.task import Task


@parser("yes_no")
def yes_no(text, p, labels):
    """'yes'/'no' anywhere in the answer, as a boolean (None when neither or both)."""
    words = text.lower().replace(",", " ").replace(".", " ").split()
    yes, no = "yes" in words, "no" in words
    return None if yes == no else yes


def test_the_built_in_types_are_registered():
    assert {"raw", "label", "json", "number", "regex"} <= set(PARSERS.names())
    assert parse_output("The total is $1,234.50", Parser(type="number")) == 1234.5
    assert parse_output("it is Shipping.", Parser(type="label"), ["billing", "shipping"]) == (
        "shipping"
    )


def test_a_registered_parser_is_used_by_a_task():
    examples = [
        Example(id=str(i), input="q", reference=ref) for i, ref in enumerate([True, False, True])
    ]
    task = Task("yn", examples, ["exact_match"], Parser(type="yes_no"))
    scores = task.score(["Yes, it is.", "yes", "I cannot say"])["exact_match"]
    assert scores.per_example.tolist() == [1.0, 0.0, 0.0]
    assert scores.details["invalid"] == 1


def test_an_unknown_type_names_the_field_and_the_known_types():
    with pytest.raises(TunecheckError, match="unknown parser type 'jsn'") as err:
        parse_output("{}", Parser(type="jsn"))
    assert err.value.where == "task.parser.type" and "json" in str(err.value)
