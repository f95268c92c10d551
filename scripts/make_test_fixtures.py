"""Maintainer script: rebuild the small data subsets under ``tests/data/fixtures`` from the full
public files (``../shared/data`` beside the repository, or ``--source DIR``).

Not run by the tests: the tests read only the committed subsets. Every selection is
deterministic (file order, fixed rules); ``tests/data/SOURCES.md`` states each rule.
Run from the repository root: ``python scripts/make_test_fixtures.py [--source DIR]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "fixtures"


def _jsonl_head(src: Path, dst: Path, n: int) -> None:
    with src.open(encoding="utf-8") as fh:
        lines = [line for line in fh if line.strip()][:n]
    dst.write_text("".join(lines), encoding="utf-8")


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def banking77(src: Path, dst: Path) -> None:
    """Test: the first 250 rows + every test row that overlaps train (13-gram check, as the
    contamination test runs it). Train: the first 6 rows of each class + every train row such an
    overlap points to, or that shares a 13-gram with one of the kept test rows; file order kept."""
    sys.path.insert(0, str(ROOT / "src"))
    from tunecheck.data.contamination import _normalize_many, find_contamination
    from tunecheck.data.load import load_examples
    from tunecheck.spec import FieldMap

    fields = FieldMap(input="text", label="category")
    train_path, test_path = src / "banking77_train.csv", src / "banking77_test.csv"
    train, test = load_examples(train_path, fields), load_examples(test_path, fields)
    overlaps = find_contamination(train, test)
    keep_test = {e.id for e in test[:250]} | {o.test_id for o in overlaps}
    keep_train = {o.other_id for o in overlaps}
    # every train row sharing any 13-gram with a kept overlapping test row, so the near-duplicate
    # scores (fraction of the test row's n-grams found anywhere in train) stay what they are on
    # the full file
    test_grams = set()
    for e in test:
        if e.id in {o.test_id for o in overlaps}:
            w = _normalize_many([e.input])[0].split()
            test_grams |= {tuple(w[i : i + 13]) for i in range(len(w) - 12)}
    per_class: dict[str, int] = {}
    for e in train:
        w = _normalize_many([e.input])[0].split()
        if any(tuple(w[i : i + 13]) in test_grams for i in range(len(w) - 12)):
            keep_train.add(e.id)
        if per_class.get(str(e.label), 0) < 6:
            per_class[str(e.label)] = per_class.get(str(e.label), 0) + 1
            keep_train.add(e.id)
    for name, examples, keep in (
        ("banking77_train.csv", train, keep_train),
        ("banking77_test.csv", test, keep_test),
    ):
        header, rows = _csv_rows(src / name)
        kept = [r for r, e in zip(rows, examples, strict=True) if e.id in keep]
        _write_csv(dst / name, header, kept)
    shutil.copy(src / "banking77_categories.json", dst / "banking77_categories.json")


def sms(src: Path, dst: Path) -> None:
    """The first 320 ham and the first 320 spam messages, in file order, plus every message
    before the 8th one starting with a double quote (CSV quoting must not apply to them)."""
    with (src / "sms_spam_collection.tsv").open(encoding="utf-8", newline="") as fh:
        lines = fh.read().split("\n")
    header, body = lines[0], [line for line in lines[1:] if line]
    seen = {"ham": 0, "spam": 0}
    quoted = 0
    kept = []
    for line in body:
        label, text = line.split("\t", 1)
        take = seen[label] < 320 or (text.startswith('"') and quoted < 8)
        if text.startswith('"') and take:
            quoted += 1
        if take:
            seen[label] += 1
            kept.append(line)
    (dst / "sms_spam_collection.tsv").write_text(
        "\n".join([header, *kept]) + "\n", encoding="utf-8"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data")
    src = ap.parse_args().source
    if not src.is_dir():
        sys.exit(f"full data folder not found: {src} (pass --source DIR)")
    for sub in ("tasks", "probes/mmlu", "trainer_states"):
        (OUT / sub).mkdir(parents=True, exist_ok=True)
    banking77(src / "tasks", OUT / "tasks")
    sms(src / "tasks", OUT / "tasks")
    _jsonl_head(src / "tasks" / "ntrex128_en_de.jsonl", OUT / "tasks" / "ntrex128_en_de.jsonl", 100)
    mbpp = json.loads((src / "tasks" / "mbpp_sanitized.json").read_text(encoding="utf-8"))[:40]
    (OUT / "tasks" / "mbpp_sanitized.json").write_text(json.dumps(mbpp), encoding="utf-8")
    _jsonl_head(src / "probes" / "gsm8k_test.jsonl", OUT / "probes" / "gsm8k_test.jsonl", 200)
    _jsonl_head(src / "probes" / "arc_easy_test.jsonl", OUT / "probes" / "arc_easy_test.jsonl", 300)
    _jsonl_head(src / "probes" / "boolq_val.jsonl", OUT / "probes" / "boolq_val.jsonl", 150)
    shutil.copy(src / "probes" / "ifeval_input_data.jsonl", OUT / "probes")
    for f in sorted((src / "probes" / "mmlu").glob("*.csv")):
        header, rows = _csv_rows(f)
        _write_csv(OUT / "probes" / "mmlu" / f.name, header, rows[:50])
    for f in sorted((src / "trainer_states").glob("*.json")):
        shutil.copy(f, OUT / "trainer_states" / f.name)


if __name__ == "__main__":
    main()
