"""Generated probes: deterministic per seed, any size, answers checked by independent computation."""

from __future__ import annotations

import ast
import datetime as dt
import operator
import re

import pytest

from tunecheck.errors import TunecheckError
from tunecheck.metrics.ifeval import checkers
from tunecheck.probes import build_probe, default_probes, probes
from tunecheck.probes import generated as g
from tunecheck.spec import DEFAULT_PROBES, ProbeSpec


def _build(name: str, n: int, seed: int, **options):
    return build_probe(ProbeSpec(name=name, builtin=name, n=n, options=options), seed=seed)


@pytest.mark.parametrize("name", ["arithmetic", "reasoning", "instructions"])
def test_same_seed_same_items_other_seed_other_items(name):
    a = _build(name, 40, 7).examples
    b = _build(name, 40, 7).examples
    c = _build(name, 40, 8).examples
    assert [(e.id, e.input, e.reference, e.meta) for e in a] == [
        (e.id, e.input, e.reference, e.meta) for e in b
    ]
    assert sum(x.input != y.input for x, y in zip(a, c, strict=True)) >= 30
    assert len({e.id for e in a}) == 40
    # any size: the first items do not depend on how many are asked for
    assert [e.input for e in _build(name, 500, 7).examples[:40]] == [e.input for e in a]


def test_default_probes_match_the_spec_defaults():
    assert [p["builtin"] for p in DEFAULT_PROBES] == ["arithmetic", "reasoning", "instructions"]
    built = default_probes(seed=3, n=5)
    assert [p.name for p in built] == ["arithmetic", "reasoning", "instructions"]
    assert all(len(p.examples) == 5 for p in built)
    assert {"arithmetic", "reasoning", "instructions"} <= set(probes.names())


# --------------------------------------------------------------------- arithmetic, independently

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
}


def _eval(expr: str) -> int:
    """A tiny separate evaluator (AST walk) for the expression rebuilt from the question."""

    def walk(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.BinOp):
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(node)

    return walk(ast.parse(expr, mode="eval").body)


def _expression(kind: str, question: str) -> str:
    nums = [int(x) for x in re.findall(r"\d+", question)]
    template = {
        "add": "{0} + {1}",
        "sub": "{0} - {1}",
        "mul": "{0} * {1}",
        "div": "{0} // {1}",
        "add_sub": "{0} + {1} - {2}",
        "price": "{0} * {1}",
    }[kind]
    return template.format(*nums)


def test_arithmetic_answers_recomputed_from_the_question_text():
    examples = _build("arithmetic", 300, 11).examples
    assert {e.meta["kind"] for e in examples} == set(g.ARITHMETIC_KINDS)
    for ex in examples:
        question = ex.input.split("\n")[0]
        assert ex.reference == _eval(_expression(ex.meta["kind"], question)), ex.input
        assert ex.reference >= 0
        if ex.meta["kind"] == "div":
            a, b = (int(x) for x in re.findall(r"\d+", question))
            assert a % b == 0


# --------------------------------------------------------------------- reasoning, independently


def _independent_reasoning_answer(ex):
    q = ex.input
    kind = ex.meta["kind"]
    if kind == "letter_count":
        letter, word = re.search(r'letter "(.)" appear in the word "(\w+)"', q).groups()
        return word.count(letter)
    if kind == "item_count":
        listed = re.search(r"list: (.*)\. How many (\w+)", q)
        items = listed.group(1).split(", ")
        pool = g.ANIMALS if listed.group(2) == "animals" else g.FRUITS
        return len([x for x in items if x in pool])
    if kind == "moves":
        pos = 0
        for k, direction in re.findall(r"(\d+) steps? (forward|back)", q):
            pos += int(k) if direction == "forward" else -int(k)
        return pos
    if kind == "sort":
        return sorted(int(x) for x in re.search(r": ([\d, ]+)\.", q).group(1).split(", "))
    if kind == "weekday":
        today, offset = re.search(r"Today is (\w+)\. .* in (\d+) days", q).groups()
        monday = dt.date(2024, 1, 1)  # a Monday
        start = monday + dt.timedelta(days=g.WEEKDAYS.index(today))
        return (start + dt.timedelta(days=int(offset))).strftime("%A")
    if kind == "days_between":
        m1, d1, m2, d2 = re.search(r"from (\w+) (\d+) to (\w+) (\d+)", q).groups()
        a = dt.datetime.strptime(f"{m1} {d1} 2023", "%B %d %Y")
        b = dt.datetime.strptime(f"{m2} {d2} 2023", "%B %d %Y")
        return (b - a).days
    if kind == "sequence":
        seq = [int(x) for x in re.findall(r"-?\d+", q)]
        return seq[-1] + (seq[1] - seq[0])
    if kind == "ordering":
        pairs = re.findall(r"(\w+) is taller than (\w+)", q)
        taller = {a for a, _ in pairs}
        shorter = {b for _, b in pairs}
        return (taller - shorter).pop() if "taller?" in q else (shorter - taller).pop()
    if kind == "compare":
        return max(int(x) for x in re.findall(r"\d+", q))
    raise AssertionError(kind)


def test_reasoning_answers_recomputed_independently():
    examples = _build("reasoning", 400, 5).examples
    assert {e.meta["kind"] for e in examples} == set(g.REASONING_KINDS)
    for ex in examples:
        expected = _independent_reasoning_answer(ex)
        assert ex.reference == expected, ex.input
        if ex.meta["answer_type"] == "word":
            assert ex.reference in ex.meta["candidates"]


# --------------------------------------------------------------------- instructions


def test_instruction_probe_has_many_constraint_types_all_checkable():
    examples = _build("instructions", 68, 2).examples
    ids = {iid for ex in examples for iid in ex.meta["instruction_id_list"]}
    assert len(ids) >= 10
    assert len({ex.meta["kind"] for ex in examples}) == len(g.INSTRUCTION_KINDS) >= 17
    for ex in examples:
        for iid in ex.meta["instruction_id_list"]:
            assert iid in checkers
        assert ex.input.startswith("Write a short text about ")


def test_instruction_constraints_are_satisfiable_by_a_constructed_response():
    """For every generated constraint, a response built to obey it passes and a plain one fails."""
    from tunecheck.metrics.ifeval import check

    examples = _build("instructions", 34, 9).examples
    plain = "Once a text, with Commas and Capitals about the topic."
    for ex in examples:
        (iid,), (kw,) = ex.meta["instruction_id_list"], ex.meta["kwargs"]
        good = {
            "length_constraints:number_words": " ".join(["word"] * (kw.get("num_words", 0) + 5))
            if kw.get("relation") == "at least"
            else "few words",
            "length_constraints:number_sentences": "One sentence only",
            "length_constraints:number_paragraphs": "\n***\n".join(
                ["para"] * kw.get("num_paragraphs", 1)
            ),
            "detectable_format:json_format": '{"text": "hello"}',
            "detectable_format:number_bullet_lists": "\n".join(
                ["* item"] * kw.get("num_bullets", 0)
            ),
            "keywords:existence": " ".join(kw.get("keywords", [])),
            "keywords:forbidden_words": "xyz",
            "change_case:english_lowercase": "this is a lowercase text about the sea and the sky",
            "change_case:english_capital": "THIS IS AN UPPERCASE TEXT ABOUT THE SEA AND THE SKY",
            "startend:end_checker": f"text {kw.get('end_phrase')}",
            "startend:start_checker": f"{kw.get('start_phrase')} text",
            "punctuation:no_comma": "no comma",
            "detectable_content:number_placeholders": "[a] [b]",
            "detectable_content:postscript": f"text\n{kw.get('postscript_marker')} more",
            "detectable_format:title": "<<title>>\ntext",
            "startend:quotation": '"quoted"',
        }[iid]
        assert check(iid, good, kw), (iid, kw, good)
        if iid not in ("keywords:forbidden_words", "length_constraints:number_sentences") and not (
            iid == "length_constraints:number_words" and kw["relation"] == "less than"
        ):
            assert not check(iid, plain, kw), (iid, kw)


def test_two_constraints_per_item_never_contradict_case():
    examples = _build("instructions", 60, 4, per_item=2).examples
    for ex in examples:
        ids = ex.meta["instruction_id_list"]
        assert len(ids) == 2 and len(ex.meta["kwargs"]) == 2
        assert {"change_case:english_lowercase", "change_case:english_capital"} - set(ids)
        a, b = ex.meta["kind"].split("+")
        assert not any(a in group and b in group for group in g.CONFLICTS), ex.meta["kind"]


def test_bad_options_are_clear_errors():
    with pytest.raises(TunecheckError, match=r"probes\.instructions\.options"):
        _build("instructions", 3, 1, kinds=["shouting"])
    with pytest.raises(TunecheckError, match=r"probes\.arithmetic\.options"):
        _build("arithmetic", 3, 1, colour="red")
    with pytest.raises(TunecheckError, match="unknown probe 'arithmetik'"):
        build_probe(ProbeSpec(name="x", builtin="arithmetik"), seed=1)
