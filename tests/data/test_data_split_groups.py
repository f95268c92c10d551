"""Grouped splits: rows with the same normalised text, near duplicates and rows sharing a
``--group-by`` value stay in one split, so `split` never writes what `verify` rejects."""

from __future__ import annotations

import json
import random
import sys
import warnings
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tunecheck.cli import main
from tunecheck.data import SplitWarning, read_rows, split_dataset, verify_lock
from tunecheck.data.contamination import normalized_text
from tunecheck.data.groups import find_groups
from tunecheck.data.split import assign_groups
from tunecheck.errors import DataError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tasks"


def _split_quietly(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        return split_dataset(*args, **kwargs)


def _where(lock) -> dict[str, str]:
    return {rid: name for name, info in lock.splits.items() for rid in info.ids}


def _random_words(rnd: random.Random, n: int) -> str:
    return " ".join(f"w{rnd.randrange(5_000)}" for _ in range(n))


@st.composite
def planted(draw) -> tuple[list[dict], int]:
    """Rows with planted exact copies (case/punctuation changed), near duplicates (extra or
    changed words), chains of near duplicates, and shared n-grams spread over several rows."""
    seed = draw(st.integers(0, 10_000))
    rnd = random.Random(seed)
    n_base = draw(st.integers(20, 70))
    classes = draw(st.integers(1, 4))
    rows: list[dict] = []
    for _ in range(n_base):
        text = _random_words(rnd, rnd.choice((3, 8, 20, 30)))
        rows.append({"text": text, "label": f"c{rnd.randrange(classes)}"})
        kind = rnd.random()
        if kind < 0.15:  # exact copy after normalisation
            rows.append({"text": text.upper() + "!", "label": f"c{rnd.randrange(classes)}"})
        elif kind < 0.35:  # near duplicate: more words, or one word changed
            words = text.split()
            if len(words) >= 13 and rnd.random() < 0.5:
                words[rnd.randrange(len(words))] = "changed"
                rows.append({"text": " ".join(words), "label": rows[-1]["label"]})
            else:
                rows.append(
                    {"text": text + " " + _random_words(rnd, 4), "label": rows[-1]["label"]}
                )
        elif kind < 0.42 and len(text.split()) >= 26:  # halves spread over two other rows
            words = text.split()
            rows.append({"text": " ".join(words[:14]) + " x1 x2", "label": "c0"})
            rows.append({"text": "y1 y2 " + " ".join(words[13:]), "label": "c0"})
    for i, r in enumerate(rows):
        r["id"] = f"r{i:04d}"
    rnd.shuffle(rows)
    return rows, seed


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=planted(), stratify=st.booleans(), ratios=st.sampled_from([None, (0.6, 0.2, 0.2)]))
def test_split_then_verify_always_passes(tmp_path_factory, data, stratify, ratios) -> None:
    rows, seed = data
    folder = tmp_path_factory.mktemp("planted")
    src = folder / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    try:
        lock = _split_quietly(
            src,
            folder / "s",
            seed=seed,
            ratios=ratios,
            stratify="label" if stratify else None,
            input_field="text",
        )
    except DataError as err:  # tiny data can leave a split empty: a clear refusal is fine
        assert "empty" in str(err)
        return
    report = verify_lock(lock.path)  # raises LockError on any overlap
    assert report.exact == 0 and report.near == 0
    # every exact-copy group is whole
    where = _where(lock)
    by_text = defaultdict(set)
    for r in rows:
        by_text[normalized_text(r["text"])].add(where[r["id"]])
    assert all(len(splits) == 1 for splits in by_text.values())
    assert sum(info.rows for info in lock.splits.values()) == len(rows)


def test_goemotions_like_repeats(tmp_path: Path) -> None:
    """Short repeated comments (``Thank you!`` x6, ``thank you`` x3, ``[NAME] is the best`` /
    ``... best!``) and long comments re-posted with an edit, as in GoEmotions."""
    src = FIXTURES / "goemotions_like.csv"
    rows = read_rows(src)
    with pytest.warns(SplitWarning, match=r"rows form \d+ groups"):
        lock = split_dataset(src, tmp_path / "s", stratify="label", seed=13)
    verify_lock(lock.path)
    where = _where(lock)
    thanks = {where[r["id"]] for r in rows if normalized_text(r["text"]) == "thank you"}
    assert len([r for r in rows if normalized_text(r["text"]) == "thank you"]) == 9
    assert len(thanks) == 1
    g = lock.grouping
    naive = _naive_groups([r["text"] for r in rows])
    sizes = Counter(naive)
    assert g["groups"] == len(sizes)
    assert g["multi_row_groups"] == sum(1 for c in sizes.values() if c > 1) == 15
    assert g["rows_in_multi_row_groups"] == sum(c for c in sizes.values() if c > 1)
    assert g["near_duplicates"] is True and g["rows_moved_to_train"] == 0
    for group in set(naive):  # every group whole
        assert len({where[r["id"]] for r, k in zip(rows, naive, strict=True) if k == group}) == 1
    # the same file split as before grouping existed: verify rejects it
    plain = _split_quietly(src, tmp_path / "plain", stratify="label", seed=13, group_near=False)
    with pytest.raises(Exception, match="overlaps the training data"):
        verify_lock(plain.path)


def test_group_by_keeps_each_conversation_in_one_split(tmp_path: Path) -> None:
    rows = [
        {
            "conv": f"c{i // 4}",
            "text": f"turn {i} of a conversation about topic {i}",
            "y": "ab"[i % 2],
        }
        for i in range(400)
    ]
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows))
    lock = _split_quietly(src, tmp_path / "s", group_by="conv", stratify="y")
    verify_lock(lock.path)
    conv_split = defaultdict(set)
    for name in lock.splits:
        for r in read_rows(tmp_path / "s" / f"{name}.jsonl"):
            conv_split[r["conv"]].add(name)
    assert len(conv_split) == 100 and all(len(s) == 1 for s in conv_split.values())
    assert lock.grouping["group_by"] == "conv" and lock.grouping["multi_row_groups"] == 100
    sizes = {k: v.rows for k, v in lock.splits.items()}
    assert sizes == {"train": 320, "val": 40, "test": 40}
    with pytest.raises(DataError, match="convo"):
        split_dataset(src, tmp_path / "t", group_by="convo")


def test_stratification_holds_within_one_where_groups_allow(tmp_path: Path) -> None:
    # 300 singletons over 3 classes plus 10 pairs of exact copies within one class
    rows = [{"text": f"unique question number {i}", "y": f"k{i % 3}"} for i in range(300)]
    rows += [{"text": f"Repeated question {j}?", "y": "k0"} for j in range(10)] * 2
    rows = [{"id": f"r{i}", **r} for i, r in enumerate(rows)]
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows))
    lock = _split_quietly(src, tmp_path / "s", stratify="y")
    assert lock.grouping["classes_loosened"] == 0
    totals = Counter(r["y"] for r in rows)
    for name, ratio in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        got = Counter(r["y"] for r in read_rows(tmp_path / "s" / f"{name}.jsonl"))
        assert all(abs(got[c] - n * ratio) < 1 + 1e-9 for c, n in totals.items()), (name, got)


def test_a_group_too_big_for_its_share_loosens_stratification_and_says_so(tmp_path: Path) -> None:
    rows = [{"text": f"unique question number {i}", "y": f"k{i % 2}"} for i in range(200)]
    # class k2 is 10 copies of one text: one group, so one split gets all 10 (target 8/1/1)
    rows += [{"text": "the same complaint", "y": "k2"}] * 10
    rows = [{"id": f"r{i}", **r} for i, r in enumerate(rows)]
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.warns(SplitWarning, match=r"1 classes are off their stratified share by up to"):
        lock = split_dataset(src, tmp_path / "s", stratify="y")
    assert lock.grouping["classes_loosened"] == 1 and lock.grouping["max_class_deviation"] == 2
    assert [r["y"] for r in read_rows(tmp_path / "s" / "train.jsonl")].count("k2") == 10
    verify_lock(lock.path)


def test_dedupe_still_drops_copies_and_groups_near_duplicates(tmp_path: Path) -> None:
    base = "the quick brown fox jumps over the lazy dog near the river bank at dawn today"
    rows = [{"text": f"question {i}"} for i in range(200)]
    rows += [{"text": base}, {"text": base.upper()}, {"text": base + " again and again"}]
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows))
    lock = _split_quietly(src, tmp_path / "s", dedupe=True)
    assert lock.source["dropped_duplicates"] == 1
    assert lock.grouping["multi_row_groups"] == 1 and lock.grouping["links"]["near_duplicate"] == 1
    where = {
        r["text"]: name for name in lock.splits for r in read_rows(tmp_path / "s" / f"{name}.jsonl")
    }
    assert where[base] == where[base + " again and again"]


def _naive_groups(texts: list[str], ngram: int = 13, threshold: float = 0.5) -> list[int]:
    """Union-find over all pairs with Python sets of word tuples (the slow, obvious way)."""

    def grams(t: str) -> set[tuple[str, ...]]:
        w = normalized_text(t).split()
        return {tuple(w[i : i + ngram]) for i in range(len(w) - ngram + 1)}

    parent = list(range(len(texts)))

    def root(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    all_grams = [grams(t) for t in texts]
    norm = [normalized_text(t) for t in texts]
    for i in range(len(texts)):
        for j in range(len(texts)):
            ga, gb = all_grams[i], all_grams[j]
            same = norm[i] and norm[i] == norm[j]
            near = ga and len(ga & gb) >= threshold * len(ga)
            if i != j and (same or near):
                parent[root(i)] = root(j)
    return [root(i) for i in range(len(texts))]


def _same_partition(a: list[int], b: list[int]) -> bool:
    pairs_a = {(i, j) for i in range(len(a)) for j in range(len(a)) if a[i] == a[j]}
    return pairs_a == {(i, j) for i in range(len(b)) for j in range(len(b)) if b[i] == b[j]}


def test_find_groups_links_against_a_naive_reference() -> None:
    rnd = random.Random(5)
    texts = []
    for _ in range(60):
        t = _random_words(rnd, rnd.choice((5, 15, 25)))
        texts.append(t)
        if rnd.random() < 0.3:
            texts.append(t + " " + _random_words(rnd, rnd.choice((2, 20))))
        if rnd.random() < 0.1:
            texts.append(t.upper() + "?")
    g = find_groups(texts)
    assert _same_partition(g.group_of, _naive_groups(texts))
    assert g.multi_row_groups >= 5


def test_assign_groups_keeps_groups_whole_and_sizes_close() -> None:
    ids = [f"r{i:03d}" for i in range(100)]
    group_of = [i // 5 for i in range(100)]  # 20 groups of 5
    parts, info = assign_groups(ids, None, group_of, (0.8, 0.1, 0.1), seed=3)
    assert sorted(len(p) for p in parts) == [10, 10, 80]
    for p in parts:
        assert {group_of[i] for i in p}.isdisjoint(
            {group_of[i] for q in parts if q is not p for i in q}
        )
    assert info["classes_loosened"] == 0


def test_cli_group_by_json(tmp_path: Path, monkeypatch, capsys) -> None:
    rows = [{"doc": f"d{i // 3}", "text": f"paragraph {i} of a long report"} for i in range(240)]
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows))
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "tunecheck",
            "split",
            str(src),
            "--out",
            str(tmp_path / "s"),
            "--group-by",
            "doc",
            "--json",
        ],
    )
    with pytest.raises(SystemExit) as exc:
        main()
    out = capsys.readouterr().out
    assert exc.value.code in (0, None)
    data = json.loads(out)
    assert data["grouping"]["group_by"] == "doc" and data["grouping"]["multi_row_groups"] == 80
    assert any("240 rows form 80 groups" in w for w in data["warnings"])


def test_a_test_row_covered_by_several_training_rows_moves_to_train(tmp_path: Path) -> None:
    """No pair is a near duplicate, but a row's n-grams are spread over two others: verify
    counts n-grams found anywhere in train, so `split` moves such a test row to train."""
    rnd = random.Random(11)
    rows = [{"id": f"f{i}", "text": f"filler row {i} " + _random_words(rnd, 3)} for i in range(200)]
    for t in range(30):
        words = _random_words(rnd, 30).split()
        junk = [_random_words(rnd, 20) for _ in range(2)]
        rows.append({"id": f"t{t}", "text": " ".join(words)})  # 18 13-grams
        rows.append({"id": f"a{t}", "text": " ".join(words[:20]) + " " + junk[0]})  # 8 of them
        rows.append({"id": f"b{t}", "text": junk[1] + " " + " ".join(words[10:])})  # 8 others
    texts = [r["text"] for r in rows]
    assert find_groups(texts).multi_row_groups == 0  # no pair reaches the threshold
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows))
    lock = _split_quietly(src, tmp_path / "s", seed=4)
    assert lock.grouping["rows_moved_to_train"] > 0
    verify_lock(lock.path)
    plain = _split_quietly(src, tmp_path / "plain", seed=4, group_near=False)
    with pytest.raises(Exception, match="near-duplicate"):
        verify_lock(plain.path)


def test_k_fold_keeps_groups_in_one_fold(tmp_path: Path) -> None:
    rnd = random.Random(8)
    rows = []
    for i in range(60):
        text = _random_words(rnd, 20)
        rows.append({"id": f"a{i}", "text": text, "y": "ab"[i % 2]})
        if i % 3 == 0:  # a near duplicate (4 more words) and an exact copy
            rows.append({"id": f"n{i}", "text": text + " one two three four", "y": "ab"[i % 2]})
            rows.append({"id": f"c{i}", "text": text.upper() + ".", "y": "ab"[i % 2]})
    src = tmp_path / "d.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows))
    index = _split_quietly(src, tmp_path / "cv", folds=5, stratify="y")
    assert index.grouping["multi_row_groups"] == 20
    fold_of = {}
    for k in range(1, 6):
        for r in read_rows(tmp_path / "cv" / f"fold_{k}" / "test.jsonl"):
            fold_of[r["id"]] = k
    assert len(fold_of) == len(rows)
    for i in range(0, 60, 3):
        assert fold_of[f"a{i}"] == fold_of[f"n{i}"] == fold_of[f"c{i}"]
    verify_lock(tmp_path / "cv")
