"""The generated support-ticket task: deterministic, learnable labels, valid references."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from tunecheck.demo.task import (
    CATEGORIES,
    PRIORITIES,
    PRODUCTS,
    SYSTEM_PROMPT,
    TICKET_SCHEMA,
    few_shot_examples,
    generate_support_tickets,
    write_jsonl,
)
from tunecheck.errors import DataError

# An independent labeller written from the task description, not from the
# generator's tables: if the labels were not a function of the message text, or
# two categories shared cue words, these rules would disagree with the references.
_CATEGORY_RULES = {
    "refund": r"refund|money back|reimburs|\bget the \$",
    "billing": r"charged|charge of|invoice|fee\b|payment|billed",
    "shipping": r"arriv|tracking|courier|deliver|shipped|parcel|dispatched",
    "technical": r"disconnect|turn on|firmware|freez|pair|error code|battery|cuts out",
    "account": r"log in|password|email address|two-factor|signed in|account",
}
_PRODUCT_RULES = {
    "aurora_router": r"aurora|ar-500|wifi router",
    "pulse_watch": r"pulse|pw-2|fitness watch",
    "echo_buds": r"echo ?buds|earbuds",
    "nova_phone": r"nova",
    "vista_tv": r"vista|smart tv|television",
    "cloud_backup": r"cloud ?backup|cloudsafe|backup (plan|subscription)",
}
_LOW = r"no rush|not urgent|not a big deal|take your time|whenever it's convenient|low priority"
_HIGH = (
    r"urgent|whole office|third time|lawyer|emergency|four times|consumer protection|immediately"
)


def _derive(text: str) -> dict[str, str]:
    t = text.lower()
    cats = [c for c, rx in _CATEGORY_RULES.items() if re.search(rx, t)]
    # exactly one category and one product must be recognisable, or the label is ambiguous
    prods = [p for p, rx in _PRODUCT_RULES.items() if re.search(rx, t)]
    if re.search(_LOW, t):
        prio = "low"
    elif re.search(_HIGH, t):
        prio = "high"
    else:
        prio = "medium"
    assert len(cats) == 1, (cats, text)
    assert len(prods) == 1, (prods, text)
    return {"category": cats[0], "priority": prio, "product": prods[0]}


def test_generation_is_deterministic_per_seed():
    a = generate_support_tickets(150, seed=3)
    b = generate_support_tickets(150, seed=3)
    c = generate_support_tickets(150, seed=4)
    assert a == b
    assert [r["input"] for r in a] != [r["input"] for r in c]


def test_labels_match_an_independent_rederivation():
    rows = generate_support_tickets(1500, seed=11)
    for row in rows:
        derived = _derive(row["input"])
        assert json.dumps(derived, separators=(",", ":")) == row["reference"], row
        assert row["category"] == derived["category"]


def test_references_are_compact_ordered_json_with_allowed_values():
    rows = generate_support_tickets(400, seed=1)
    for row in rows:
        ref = json.loads(row["reference"])
        jsonschema.validate(ref, TICKET_SCHEMA)
        assert list(ref) == ["category", "priority", "product"]
        assert ref["category"] in CATEGORIES
        assert ref["priority"] in PRIORITIES
        assert ref["product"] in PRODUCTS
        assert " " not in row["reference"]
        assert ref["category"] == row["category"]
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids) == 400
    assert len({" ".join(r["input"].lower().split()) for r in rows}) == 400


def test_task_is_varied_and_balanced_enough_to_learn():
    rows = generate_support_tickets(1000, seed=0)
    for field, values in (
        ("category", CATEGORIES),
        ("priority", PRIORITIES),
        ("product", PRODUCTS),
    ):
        counts = {v: sum(r[field] == v for r in rows) for v in values}
        assert min(counts.values()) >= 0.08 * len(rows), (field, counts)
    # the product is not always named by its official name, and tone does not decide priority
    official = sum(PRODUCTS[r["product"]][0].lower() in r["input"].lower() for r in rows)
    assert 0.15 * len(rows) < official < 0.5 * len(rows)
    angry_medium = [r for r in rows if "frustrated" in r["input"] and r["priority"] == "medium"]
    assert angry_medium
    # every allowed value is explained to the prompted baseline
    for value in (*CATEGORIES, *PRIORITIES, *PRODUCTS):
        assert value in SYSTEM_PROMPT


def test_few_shot_examples_come_from_train_rows_only():
    rows = generate_support_tickets(300, seed=5)
    train, test = rows[:240], rows[240:]
    shots = few_shot_examples(train, 5, seed=2)
    assert len(shots) == 5
    train_pairs = {(r["input"], r["reference"]) for r in train}
    test_inputs = {r["input"] for r in test}
    for shot in shots:
        assert (shot.input, shot.output) in train_pairs
        assert shot.input not in test_inputs
    # round-robin over categories: 5 shots cover all 5 categories
    cats = {json.loads(s.output)["category"] for s in shots}
    assert cats == set(CATEGORIES)
    assert few_shot_examples(train, 5, seed=2) == shots
    assert len({s.input for s in few_shot_examples(train, 12, seed=0)}) == 12


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(DataError, match="n must be at least 1"):
        generate_support_tickets(0)
    rows = generate_support_tickets(3)
    with pytest.raises(DataError, match="only 3 training rows"):
        few_shot_examples(rows, 4)
    with pytest.raises(DataError, match="input"):
        few_shot_examples([{"id": "x", "category": "billing"}], 1)


def test_write_jsonl_round_trips(tmp_path):
    rows = generate_support_tickets(25, seed=2)
    path = write_jsonl(rows, tmp_path / "sub" / "tickets.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == rows
