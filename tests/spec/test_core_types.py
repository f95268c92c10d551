"""The core types (tunecheck.core) behave like the spec's models they replace below the spec."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from tunecheck.core import (
    CodeSettings,
    FieldMap,
    Parser,
    Thresholds,
    as_code_settings,
    as_field_map,
    as_parser,
    as_thresholds,
)
from tunecheck.data import load_examples
from tunecheck.errors import DataError, SpecError
from tunecheck.examples import Example
from tunecheck.metrics import score_outputs
from tunecheck.pipeline.scoring import evaluate_task, probe_result
from tunecheck.results import RunResult
from tunecheck.spec import CodeSpec, ParserSpec, parse_spec
from tunecheck.spec import FieldMap as SpecFieldMap
from tunecheck.spec import Thresholds as SpecThresholds


def test_core_types_are_immutable_and_hashable():
    parser = Parser(type="label", labels=["yes", "no"])
    assert parser.labels == ("yes", "no")  # a YAML list becomes a tuple
    assert hash(parser) == hash(Parser(type="label", labels=("yes", "no")))
    with pytest.raises(dataclasses.FrozenInstanceError):
        parser.type = "raw"  # type: ignore[misc]
    assert FieldMap(slices=["a", "b"]).slices == ("a", "b")
    assert FieldMap(slices="topic").slices == "topic"
    assert len({Thresholds(), Thresholds(), Thresholds(warn=0.1)}) == 2


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"warn": 0.3, "fail": 0.2}, "thresholds.fail"),
        ({"alpha": 0.0}, "thresholds.alpha"),
        ({"alpha": 1.0}, "thresholds.alpha"),
        ({"warn": -0.1}, "thresholds.warn"),
        ({"min_gain": -0.01}, "thresholds.min_gain"),
        ({"max_error_share": 1.5}, "thresholds.max_error_share"),
    ],
)
def test_thresholds_refuse_what_the_spec_refuses(kwargs, where):
    with pytest.raises(SpecError) as err:
        Thresholds(**kwargs)
    assert err.value.where == where
    spec = "contenders: [{name: a, model: 'test:echo'}, {name: b, model: 'test:echo'}]\n"
    spec += "task: {data: d.jsonl}\n"
    assert parse_spec(spec).thresholds.to_core() == Thresholds()
    # the spec refuses the same values, naming the line
    with pytest.raises(SpecError, match=r"<spec>:3: field `thresholds"):
        parse_spec(spec + f"thresholds: {json.dumps(kwargs)}\n")


def test_parser_mode_and_labels_are_checked():
    with pytest.raises(SpecError, match="exact' or 'first"):
        Parser(mode="last")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="list of labels"):  # not three labels y, e, s
        Parser(type="label", labels="yes")  # type: ignore[arg-type]


def test_field_map_remembers_what_was_given():
    assert FieldMap().given == frozenset()
    # None is a value ("no such column"), not "not given"
    fm = FieldMap(reference=None, id="ticket")
    assert (fm.reference, fm.id, fm.given) == (None, "ticket", {"reference", "id"})
    moved = fm.updated(id="key", label="intent")
    assert (moved.id, moved.label, moved.given) == ("key", "intent", {"reference", "id", "label"})
    assert fm.id == "ticket"  # unchanged
    with pytest.raises(TypeError, match="no field"):
        fm.updated(columns="x")
    with pytest.raises(SpecError, match="input field"):
        FieldMap(input="")


def test_the_spec_models_convert_with_what_was_written():
    spec_fields = SpecFieldMap(input="text", reference=None)
    core = spec_fields.to_core()
    assert core == FieldMap(input="text", reference=None)
    assert core.given == spec_fields.model_fields_set == {"input", "reference"}
    assert as_field_map(spec_fields) == core
    assert as_field_map({"input": "text", "reference": None}) == core
    assert as_field_map(None) == FieldMap()
    assert as_parser(ParserSpec(type="regex", pattern="(A|B)")) == Parser(
        type="regex", pattern="(A|B)"
    )
    assert as_parser(None) == Parser()
    assert as_thresholds(SpecThresholds(fail=0.3)) == Thresholds(fail=0.3)
    assert as_thresholds({"warn": 0.01}) == Thresholds(warn=0.01)
    assert as_code_settings(CodeSpec(workers=2)) == CodeSettings(workers=2)
    assert as_code_settings(None) == CodeSettings()


def _rows(tmp_path, rows):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_loading_with_core_and_spec_field_maps_is_the_same(tmp_path):
    path = _rows(tmp_path, [{"q": f"question {i}", "a": str(i), "k": f"id{i}"} for i in range(5)])
    for fields in (
        FieldMap(input="q", reference="a", id="k"),
        SpecFieldMap(input="q", reference="a", id="k"),
    ):
        examples = load_examples(path, fields)
        assert [e.id for e in examples] == [f"id{i}" for i in range(5)]
        assert [e.reference for e in examples] == [str(i) for i in range(5)]
    # the default id column is optional (content hashes), an explicitly mapped one is not
    no_id = _rows(tmp_path, [{"input": "x"}, {"input": "y"}])
    assert len(load_examples(no_id, FieldMap())) == 2
    for fields in (FieldMap(id="id"), SpecFieldMap(id="id")):
        with pytest.raises(DataError, match="the id field 'id' is not a column"):
            load_examples(no_id, fields)
    # likewise the reference column
    for fields in (FieldMap(reference="reference"), SpecFieldMap(reference="reference")):
        with pytest.raises(DataError, match="reference field"):
            load_examples(no_id, fields)


def test_scoring_with_core_and_spec_types_gives_the_same_result():
    examples = [Example(id=str(i), input="?", label=["yes", "no"][i % 3 == 0]) for i in range(30)]
    rng = np.random.default_rng(3)
    outputs = {
        "base": [str(rng.choice(["yes", "no", "maybe"])) for _ in examples],
        "tuned": [e.label if rng.random() < 0.8 else "no" for e in examples],
    }
    results = [
        evaluate_task(
            "t", examples, outputs, metrics=["accuracy", "macro_f1"], primary_metric="accuracy",
            parser=parser, candidate="tuned", baselines=["base"], n_resamples=500,
        )
        for parser in (Parser(type="label", labels=["yes", "no"]),
                       ParserSpec(type="label", labels=["yes", "no"]))
    ]  # fmt: skip
    assert results[0].model_dump() == results[1].model_dump()
    assert results[0].contender("base").invalid > 0  # "maybe" is no label: parsed as invalid
    direct = score_outputs(["accuracy"], outputs["tuned"], examples, Parser(type="label"))
    assert direct["accuracy"].value == results[0].contender("tuned").metrics["accuracy"]


def test_probe_status_and_run_result_take_either_thresholds():
    base = [1.0] * 40 + [0.0] * 10
    tuned = [1.0] * 30 + [0.0] * 20
    ids = [str(i) for i in range(50)]

    class Outcome:
        def __init__(self, scores):
            self.per_example, self.example_ids, self.details = scores, ids, {}

    rows = [
        probe_result("p", "accuracy", Outcome(base), Outcome(tuned), th, n_resamples=500)
        for th in (Thresholds(warn=0.1, fail=0.2), SpecThresholds(warn=0.1, fail=0.2))
    ]
    assert rows[0] == rows[1]
    assert rows[0].rel_change == pytest.approx(-0.25) and rows[0].status == "FAIL"
    result = RunResult(run_id="r", thresholds=SpecThresholds(warn=0.1, fail=0.2))
    assert result.thresholds == Thresholds(warn=0.1, fail=0.2)
    loaded = RunResult.model_validate_json(result.model_dump_json())
    assert loaded.thresholds == Thresholds(warn=0.1, fail=0.2)
    assert json.loads(result.model_dump_json())["thresholds"] == dataclasses.asdict(
        Thresholds(warn=0.1, fail=0.2)
    )
    bad = json.loads(result.model_dump_json())
    bad["thresholds"]["warn"] = 0.5
    with pytest.raises(ValueError, match="must be >= warn"):
        RunResult.model_validate(bad)
