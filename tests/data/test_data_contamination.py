"""Contamination: exact and n-gram near-duplicates between test and train.

The real case is banking77 (PolyAI, CC-BY-4.0): its official train and test
files share 25 questions that differ only in case, punctuation or hyphenation
("auto top-up" vs "auto top up") and 9 long questions that are near-copies.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
import warnings
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunecheck.data import (
    LOCK_NAME,
    SplitWarning,
    find_contamination,
    load_examples,
    read_rows,
    split_dataset,
    verify_lock,
    write_rows,
)
from tunecheck.errors import DataError, LockError
from tunecheck.examples import Example, content_id
from tunecheck.spec import FieldMap

FIELDS = FieldMap(input="text", label="category")


def _naive(
    train: list[Example], test: list[Example], ngram: int, threshold: float
) -> list[tuple[str, str, str, float]]:
    """Reference implementation: Python sets of word tuples, no hashing."""

    def words(t: str) -> list[str]:
        return re.findall(r"\w+", unicodedata.normalize("NFKC", t).casefold())

    def grams(w: list[str]) -> set[tuple[str, ...]]:
        return {tuple(w[k : k + ngram]) for k in range(len(w) - ngram + 1)}

    train_words = [words(e.input) for e in train]
    exact: dict[str, int] = {}
    for i, w in enumerate(train_words):
        if w:
            exact.setdefault(" ".join(w), i)
    index: dict[tuple[str, ...], set[int]] = {}
    for i, w in enumerate(train_words):
        for g in grams(w):
            index.setdefault(g, set()).add(i)
    out = []
    for e in test:
        w = words(e.input)
        if w and " ".join(w) in exact:
            out.append((e.id, train[exact[" ".join(w)]].id, "exact", 1.0))
            continue
        g = grams(w)
        if not g:
            continue
        shared = [x for x in g if x in index]
        frac = len(shared) / len(g)
        if frac >= threshold:
            counts = Counter(i for x in shared for i in index[x])
            best = min(counts, key=lambda d: (-counts[d], d))
            out.append((e.id, train[best].id, "near", round(frac, 4)))
    return out


@pytest.fixture(scope="module")
def banking(fixture_data: Path) -> tuple[list[Example], list[Example]]:
    tasks = fixture_data / "tasks"
    return load_examples(tasks / "banking77_train.csv", FIELDS), load_examples(
        tasks / "banking77_test.csv", FIELDS
    )


def _csv_ids(path: Path) -> dict[str, str]:
    with path.open(newline="", encoding="utf-8") as f:
        return {r["text"]: content_id(r) for r in csv.DictReader(f)}


def test_banking77_train_vs_test(banking, fixture_data: Path) -> None:
    train, test = banking
    overlaps = find_contamination(train, test)
    kinds = Counter(o.kind for o in overlaps)
    assert kinds == {"exact": 25, "near": 9}
    train_ids = _csv_ids(fixture_data / "tasks" / "banking77_train.csv")
    test_ids = _csv_ids(fixture_data / "tasks" / "banking77_test.csv")
    found = {(o.test_id, o.other_id): o for o in overlaps}
    # pairs checked by reading both files: (test text, train text, kind, score)
    expected = [
        ("Is there an auto top-up option?", "Is there an auto top up option?", "exact", 1.0),
        ("How do I unblock my PIN?", "\nHow do I unblock my PIN?", "exact", 1.0),
        ("what is the top up limit", "What is the top-up limit?", "exact", 1.0),
        ("My card payment was reverted.  Why?", "My card payment was reverted, why?", "exact", 1.0),
        (
            "I got my American Express in Apple Bay but top up is not working",
            "what can I do if I got my American Express in Apple Bay but top up is not working?",
            "near",
            1.0,
        ),
        (
            "I tried to buy something online yesterday but it kept saying declined. Tried again today but same thing happened. What's broken?",
            "I tried to buy something online yesterday but it kept saying declined. Tried again today but same thing happened. What's wrong?",
            "near",
            0.9,
        ),
    ]
    for test_text, train_text, kind, score in expected:
        key = (test_ids[test_text], train_ids[train_text])
        assert key in found, test_text
        assert found[key].kind == kind and found[key].score == score and found[key].split == "train"
    # a question that is only similar in topic is not flagged
    assert test_ids["How do I locate my card?"] not in {o.test_id for o in overlaps}


@pytest.mark.parametrize(("ngram", "threshold"), [(13, 0.5), (8, 0.5), (5, 0.3), (3, 0.8)])
def test_fast_matches_naive_reference_on_banking77(banking, ngram: int, threshold: float) -> None:
    train, test = banking
    fast = [
        (o.test_id, o.other_id, o.kind, o.score)
        for o in find_contamination(train, test, ngram=ngram, threshold=threshold)
    ]
    assert fast == _naive(train, test, ngram, threshold)
    assert len(fast) >= 34


# ASCII and non-ASCII tokens: NFKC ("ﬁ" -> "fi"), case folding ("ß" -> "ss"), non-Latin word characters
TOKENS = [
    "a",
    "b",
    "c",
    "d",
    "e",
    "A",
    "b!",
    "c-d",
    "fi",
    "ﬁ",
    "ss",
    "ß",
    "É",
    "é",
    "٣",
    "x_y",
    "\t",
    "\x00",
]
TEXT = st.lists(st.sampled_from(TOKENS), min_size=0, max_size=12).map(" ".join)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(
    train=st.lists(TEXT, max_size=15),
    test=st.lists(TEXT, max_size=15),
    ngram=st.integers(1, 4),
    threshold=st.sampled_from([0.1, 0.5, 0.75, 1.0]),
)
def test_fast_matches_naive_reference_on_random_text(
    train: list[str], test: list[str], ngram: int, threshold: float
) -> None:
    tr = [Example(id=f"tr{i}", input=t) for i, t in enumerate(train)]
    te = [Example(id=f"te{i}", input=t) for i, t in enumerate(test)]
    fast = [
        (o.test_id, o.other_id, o.kind, o.score)
        for o in find_contamination(tr, te, ngram=ngram, threshold=threshold)
    ]
    assert fast == _naive(tr, te, ngram, threshold)


def test_chat_inputs_are_compared_by_content() -> None:
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    train = [Example(id="t", input="Be brief.\nWhat is the capital of France?")]
    assert [o.kind for o in find_contamination(train, [Example(id="q", input=chat)])] == ["exact"]


def test_bad_parameters() -> None:
    with pytest.raises(DataError, match=r"threshold must be in \(0, 1\]"):
        find_contamination([], [], threshold=1.5)
    with pytest.raises(DataError, match="ngram must be >= 1"):
        find_contamination([], [], ngram=0)


def _contaminated_split(tmp_path: Path) -> tuple[Path, list[dict]]:
    long = "please tell me why the money i transferred to my friend last week has still not arrived in the account"
    rows = [
        {"id": f"r{i}", "text": f"question {i} about topic {i * 7 % 13}", "category": "ab"[i % 2]}
        for i in range(220)
    ]
    src = write_rows(rows, tmp_path / "d.csv")
    split_dataset(src, tmp_path / "s", stratify="category")
    test_rows = read_rows(tmp_path / "s" / "test.csv")
    train_rows = read_rows(tmp_path / "s" / "train.csv")
    # training data gains a copy of one test question and a reworded long one
    edited_test = [dict(test_rows[0])]
    train_rows += [
        {"id": "leak1", "text": test_rows[0]["text"].upper() + "!", "category": "a"},
        {"id": "leak2", "text": long.replace("friend", "brother"), "category": "a"},
    ]
    write_rows(train_rows, tmp_path / "s" / "train.csv")
    return tmp_path / "s", edited_test


def test_verify_refuses_overlap_and_records_the_override(tmp_path: Path) -> None:
    folder, leaked = _contaminated_split(tmp_path)
    with pytest.raises(LockError) as err:
        verify_lock(folder / LOCK_NAME)
    msg = str(err.value)
    assert "overlaps the training data: 1 exact duplicate(s), 0 near-duplicate(s)" in msg
    assert f"test {leaked[0]['id']} ~ train leak1" in msg and "--allow-overlap" in msg
    report = verify_lock(folder / LOCK_NAME, allow_overlap=True)
    assert report.override_used and report.allow_overlap and report.exact == 1
    data = json.loads(json.dumps(report.to_dict()))
    assert data["override_used"] is True and data["overlaps"][0]["other_id"] == "leak1"
    assert data["splits"]["train"] == "changed"


def test_near_duplicates_across_splits_are_found_by_verify(tmp_path: Path) -> None:
    import random

    rnd = random.Random(3)
    rows = []
    for p in range(40):
        base = " ".join(f"w{rnd.randrange(10_000)}" for _ in range(20))
        # 20 words (8 13-grams) and the same with 4 more words (12 13-grams, 8 shared)
        rows.append({"id": f"p{p}a", "text": base, "category": "x"})
        rows.append({"id": f"p{p}b", "text": base + " and one more thing", "category": "x"})
    rows += [{"id": f"s{i}", "text": f"short question {i}", "category": "y"} for i in range(140)]
    src = write_rows(rows, tmp_path / "d.jsonl")
    # by default `split` keeps near duplicates together (tests/data/test_data_split_groups.py);
    # without that, they land in different splits and verify must find them
    lock = split_dataset(src, tmp_path / "s", stratify="category", seed=1, group_near=False)
    where = {rid: name for name, info in lock.splits.items() for rid in info.ids}
    expected = {}
    for p in range(40):
        a, b = f"p{p}a", f"p{p}b"
        if where[a] == "test" and where[b] != "test":
            expected[a] = (b, where[b], 1.0)  # all of a's n-grams are in b
        if where[b] == "test" and where[a] != "test":
            expected[b] = (a, where[a], round(8 / 12, 4))
    assert len(expected) >= 3  # the seed puts several pairs across splits
    with pytest.raises(
        LockError, match=rf"0 exact duplicate\(s\), {len(expected)} near-duplicate\(s\)"
    ):
        verify_lock(lock.path)
    report = verify_lock(lock.path, allow_overlap=True)
    assert {o.test_id: (o.other_id, o.split, o.score) for o in report.overlaps} == expected
    assert all(o.kind == "near" for o in report.overlaps)
    # a stricter threshold keeps only the full containments
    strict = verify_lock(lock.path, allow_overlap=True, near_duplicate_threshold=0.9)
    assert {o.test_id for o in strict.overlaps} == {k for k, v in expected.items() if v[2] == 1.0}


def test_duplicates_between_test_and_val_are_reported(tmp_path: Path) -> None:
    rows = [
        {"id": f"r{i}", "text": f"question {i} about topic {i}", "category": "ab"[i % 2]}
        for i in range(220)
    ]
    src = write_rows(rows, tmp_path / "d.csv")
    lock = split_dataset(src, tmp_path / "s")
    test_rows = read_rows(tmp_path / "s" / "test.csv")
    val_rows = read_rows(tmp_path / "s" / "val.csv")
    write_rows(
        [*val_rows, {"id": "copy", "text": test_rows[3]["text"], "category": "a"}],
        tmp_path / "s" / "val.csv",
    )
    report = verify_lock(lock.path, allow_overlap=True)
    assert [(o.test_id, o.other_id, o.split) for o in report.overlaps] == [
        (test_rows[3]["id"], "copy", "val")
    ]


def test_split_warns_about_repeated_inputs(tmp_path: Path) -> None:
    rows = [{"text": f"Question {i % 150}?", "n": str(i)} for i in range(300)]
    src = write_rows(rows, tmp_path / "d.csv")
    with pytest.warns(SplitWarning, match=r"300 rows form 150 groups .* kept in one split each"):
        lock = split_dataset(src, tmp_path / "s")
    assert lock.grouping["multi_row_groups"] == 150 and lock.grouping["groups"] == 150
    verify_lock(lock.path)  # the copies never straddle splits
    with warnings.catch_warnings():
        warnings.simplefilter("error", SplitWarning)
        with pytest.raises(SplitWarning, match=r"dropped 150 rows"):
            split_dataset(src, tmp_path / "s2", dedupe=True)
