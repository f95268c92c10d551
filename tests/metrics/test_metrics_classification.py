"""Classification metrics and parsers vs scikit-learn and hand-computed cases."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from tunecheck.errors import DataError, SpecError, TunecheckError
from tunecheck.examples import Example
from tunecheck.metrics import METRICS, score_outputs
from tunecheck.metrics.base import macro_f1_codes
from tunecheck.metrics.parsers import normalize_text, parse_label, parse_output
from tunecheck.spec import ParserSpec


def _examples(labels: list[str]) -> list[Example]:
    return [Example(id=f"e{i}", input="text", label=lab) for i, lab in enumerate(labels)]


@pytest.fixture(scope="module")
def banking77(fixture_data) -> tuple[list[str], list[str]]:
    """Real banking77 gold labels (77 imbalanced classes) and simulated noisy predictions."""
    with open(fixture_data / "tasks" / "banking77_test.csv", newline="", encoding="utf-8") as fh:
        gold = [row["category"] for row in csv.DictReader(fh)][:1500]
    classes = sorted(set(gold))
    rng = np.random.default_rng(7)
    pred = [g if rng.random() < 0.7 else classes[rng.integers(len(classes))] for g in gold]
    return gold, pred


def test_accuracy_macro_f1_per_class_confusion_match_sklearn(banking77):
    gold, pred = banking77
    examples = _examples(gold)
    scores = score_outputs(["accuracy", "macro_f1"], pred, examples, ParserSpec(type="label"))
    classes = scores["macro_f1"].details["classes"]
    assert scores["accuracy"].value == pytest.approx(accuracy_score(gold, pred), abs=1e-12)
    assert scores["macro_f1"].value == pytest.approx(
        f1_score(gold, pred, average="macro"), abs=1e-12
    )
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=classes, zero_division=0)
    per_class = scores["macro_f1"].details["per_class"]
    assert [per_class[c]["precision"] for c in classes] == pytest.approx(p)
    assert [per_class[c]["recall"] for c in classes] == pytest.approx(r)
    assert [per_class[c]["f1"] for c in classes] == pytest.approx(f)
    assert [per_class[c]["support"] for c in classes] == list(s)
    cm = np.array(scores["accuracy"].details["confusion_matrix"])
    assert (cm[:, :-1] == confusion_matrix(gold, pred, labels=classes)).all()
    assert cm[:, -1].sum() == 0  # no invalid outputs here
    assert scores["macro_f1"].kind == "corpus" and scores["accuracy"].kind == "binary"


def test_macro_f1_codes_identical_to_sklearn_on_100k():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 20, 100_000)
    pred = np.where(rng.random(100_000) < 0.6, gold, rng.integers(0, 25, 100_000)) % 20
    pred[:50] = 19 - (gold[:50] % 3)  # classes present only in predictions too
    assert macro_f1_codes(pred, gold, 20) == pytest.approx(
        f1_score(gold, pred, average="macro"), abs=1e-14
    )
    gold2 = rng.integers(0, 5, 1000)
    pred2 = np.full(
        1000, 4
    )  # a class missing from predictions counts 0; absent classes are skipped
    assert macro_f1_codes(pred2, gold2 % 4, 10) == pytest.approx(
        f1_score(gold2 % 4, pred2, average="macro", zero_division=0), abs=1e-14
    )


def test_invalid_outputs_are_wrong_and_counted_and_not_a_class():
    gold = ["spam", "ham", "ham", "spam", "ham"]
    outputs = ["SPAM!", "I think it's ham.", "no idea", "ham", "  'ham' "]
    scores = score_outputs(
        ["accuracy", "macro_f1"], outputs, _examples(gold), ParserSpec(type="label")
    )
    pred = ["spam", "ham", "__invalid__", "ham", "ham"]
    assert scores["accuracy"].value == pytest.approx(accuracy_score(gold, pred))
    # the invalid prediction is a false negative for "ham" but not a class in the average
    assert scores["macro_f1"].value == pytest.approx(
        f1_score(gold, pred, labels=["ham", "spam"], average="macro")
    )
    assert scores["accuracy"].details["invalid"] == 1
    assert scores["accuracy"].details["confusion_matrix"] == [[2, 0, 1], [1, 1, 0]]


def test_backend_errors_are_excluded_not_wrong():
    gold = ["a", "b", "a", "b"]
    scores = score_outputs(
        ["accuracy"], ["a", None, "a", None], _examples(gold), ParserSpec(type="label")
    )
    acc = scores["accuracy"]
    assert acc.value == 1.0 and acc.n == 2
    assert acc.example_ids == ["e0", "e2"]
    assert acc.details["errors"] == 2 and acc.details["invalid"] == 0


@pytest.mark.parametrize(
    ("text", "mode", "case", "expected"),
    [
        ("Positive", "exact", False, "positive"),
        ("  positive.  ", "exact", False, "positive"),
        ('"negative"', "exact", False, "negative"),
        ("The sentiment is negative.", "exact", False, None),
        ("The sentiment is negative.", "first", False, "negative"),
        ("negative, not positive", "first", False, "negative"),
        ("this is not spam at all", "first", False, "not spam"),
        ("spam", "first", False, "spam"),
        ("positively unclear", "first", False, None),  # whole words only
        ("POSITIVE", "exact", True, None),
        ("positive", "exact", True, "positive"),
    ],
)
def test_parse_label(text, mode, case, expected):
    labels = ["positive", "negative", "spam", "not spam"]
    assert parse_label(text, labels, mode=mode, case_sensitive=case) == expected


def test_regex_parser_and_raw_parser():
    spec = ParserSpec(type="regex", pattern=r"Answer:\s*(\w+)", labels=["yes", "no"])
    assert parse_output("Thinking... Answer: YES", spec) == "yes"
    assert parse_output("Answer: maybe", spec) is None
    assert parse_output("no answer here", spec) is None
    scores = score_outputs(
        ["accuracy"],
        ["Answer: yes", "Answer: No", "yes"],
        _examples(["yes", "no", "yes"]),
        ParserSpec(type="regex", pattern=r"Answer:\s*(\w+)"),
    )
    assert scores["accuracy"].per_example.tolist() == [1.0, 1.0, 0.0]
    # raw parser: the whole (normalised) output must be the label
    raw = score_outputs(
        ["accuracy"], ["Yes.", "no, really"], _examples(["yes", "no"]), ParserSpec()
    )
    assert raw["accuracy"].per_example.tolist() == [1.0, 0.0]


def test_normalize_text():
    assert normalize_text("  Hello,\n  World!  ") == "hello, world"
    assert normalize_text("'Paris'") == "paris"
    assert normalize_text("Paris", case_sensitive=True) == "Paris"


def test_errors_name_the_problem():
    with pytest.raises(DataError, match="e1"):
        score_outputs(
            ["accuracy"],
            ["a", "b"],
            _examples(["a", "zzz"]),
            ParserSpec(type="label", labels=["a", "b"]),
        )
    with pytest.raises(SpecError, match="label"):
        score_outputs(["accuracy"], ["1"], _examples(["1"]), ParserSpec(type="number"))
    with pytest.raises(SpecError, match="pattern"):
        parse_output("x", ParserSpec(type="regex"))
    with pytest.raises(SpecError, match="regular expression"):
        parse_output("x", ParserSpec(type="regex", pattern="(unclosed"))
    with pytest.raises(TunecheckError, match="did you mean 'macro_f1'"):
        score_outputs(["macro_f2"], ["a"], _examples(["a"]), ParserSpec())


def test_registry_lists_builtins_and_accepts_new_metric():
    assert {"accuracy", "macro_f1", "json_exact_match", "field_accuracy", "json_schema_valid",
            "exact_match", "numeric_match", "chrf"} <= set(METRICS.names())  # fmt: skip
    from tunecheck.metrics import MetricScores, metric

    @metric("test_output_length")
    def _length(outputs, examples, ctx):
        per = np.array([len(o) for o in outputs], dtype=float)
        return MetricScores(
            "test_output_length", per.mean(), per, [e.id for e in examples], "continuous"
        )

    scores = score_outputs(
        ["test_output_length"], ["ab", None, "abcd"], _examples(["x"] * 3), ParserSpec()
    )
    assert scores["test_output_length"].value == 3.0
    assert scores["test_output_length"].details["errors"] == 1
