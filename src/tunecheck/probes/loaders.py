"""Standard benchmarks from local files: MMLU, ARC, BoolQ, HellaSwag, GSM8K, IFEval.

The format is detected from the file name, then from the fields of the first record, and
can always be forced (``format:`` in the probe spec). Every loader returns
:class:`~tunecheck.examples.Example` objects:

* multiple choice (MMLU, ARC, BoolQ, HellaSwag): ``meta["context"]`` is the shared
  loglikelihood context, ``meta["continuations"]`` one continuation per choice,
  ``meta["choices"]`` the choice texts, ``meta["gold"]`` the 0-based answer; ``input`` is a
  lettered prompt for scoring by generated letter; ``reference``/``label`` are the letter;
* GSM8K: ``reference`` is the number after ``####``;
* IFEval: ``meta["instruction_id_list"]`` and ``meta["kwargs"]``.

A Hugging Face dataset is read by name (``hf:NAME[:CONFIG][@SPLIT]``) only when the
``datasets`` package can reach a hub or finds it in its local cache.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunecheck.errors import DataError
from tunecheck.examples import Example
from tunecheck.metrics.answers import LETTERS
from tunecheck.metrics.numbers import parse_number
from tunecheck.probes.base import Scoring
from tunecheck.registry import Registry

Row = dict[str, Any]
RowParser = Callable[[Row, str, str], Example]


@dataclass(frozen=True)
class BenchmarkFormat:
    """How to read one benchmark format: a row parser, its scoring and default metric."""

    name: str
    parse_row: RowParser
    scoring: Scoring
    metric: str
    required: tuple[frozenset[str], ...]  # any one of these field sets identifies the format


formats: Registry[BenchmarkFormat] = Registry("benchmark format")


def _register(
    name: str, scoring: Scoring, metric: str, *required: Iterable[str]
) -> Callable[[RowParser], RowParser]:
    def decorate(fn: RowParser) -> RowParser:
        formats.register(name)(
            BenchmarkFormat(name, fn, scoring, metric, tuple(frozenset(r) for r in required))
        )
        return fn

    return decorate


# ----------------------------------------------------------------------------- multiple choice


def mc_example(
    example_id: str,
    question: str,
    choices: list[str],
    gold: int,
    *,
    context: str,
    continuations: list[str] | None = None,
    slices: tuple[str, ...] = (),
    instruction: str = "",
) -> Example:
    """A multiple-choice :class:`Example` usable by loglikelihood and by generated letter."""
    if not 0 <= gold < len(choices):
        raise DataError(
            f"gold answer {gold} is out of range for {len(choices)} choices", where=example_id
        )
    lettered = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))
    head = f"{instruction}\n\n" if instruction else ""
    prompt = f"{head}{question}\n{lettered}\nAnswer with the letter of the correct choice."
    return Example(
        id=example_id,
        input=prompt,
        reference=LETTERS[gold],
        label=LETTERS[gold],
        slices=slices,
        meta={
            "question": question,
            "choices": list(choices),
            "gold": int(gold),
            "context": context,
            "continuations": continuations or [f" {c}" for c in choices],
        },
    )


def _gold_index(value: Any, n_choices: int, labels: list[str] | None = None, *, where: str) -> int:
    """A 0-based answer index from an int, a digit string, a letter or one of ``labels``."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | np.integer):
        return int(value)
    text = str(value).strip()
    if labels and text in labels:
        return labels.index(text)
    if text.isdigit():
        return int(text)
    if len(text) == 1 and text.upper() in LETTERS[:n_choices]:
        return LETTERS.index(text.upper())
    raise DataError(
        f"cannot read the answer {value!r}",
        where=where,
        hint="use a letter (A-D) or a 0-based index",
    )


@_register("mc_jsonl", "multiple_choice", "acc", {"query", "choices", "gold"})
def _mc_jsonl(row: Row, example_id: str, where: str) -> Example:
    """llm-foundry's local format (ARC, BoolQ, PIQA...): ``query``, ``choices``, ``gold``."""
    query = str(row["query"]).strip()
    choices = [str(c) for c in row["choices"]]
    gold = _gold_index(row["gold"], len(choices), where=where)
    question = re.sub(r"^Question:\s*", "", query)
    return mc_example(example_id, question, choices, gold, context=f"{query}\nAnswer:")


@_register("arc", "multiple_choice", "acc", {"question", "choices", "answerKey"})
def _arc(row: Row, example_id: str, where: str) -> Example:
    """Hugging Face ARC: ``question``, ``choices: {text, label}``, ``answerKey``."""
    choices_field = row["choices"]
    if isinstance(choices_field, dict):
        texts, labels = list(choices_field["text"]), [str(x) for x in choices_field["label"]]
    else:  # a list of {text, label}
        texts = [c["text"] for c in choices_field]
        labels = [str(c["label"]) for c in choices_field]
    gold = _gold_index(row["answerKey"], len(texts), labels, where=where)
    question = str(row["question"]).strip()
    rid = str(row.get("id") or example_id)
    return mc_example(rid, question, texts, gold, context=f"Question: {question}\nAnswer:")


@_register("boolq", "multiple_choice", "acc", {"question", "passage", "answer"})
def _boolq(row: Row, example_id: str, where: str) -> Example:
    """Hugging Face BoolQ: ``question``, ``passage``, ``answer`` (bool)."""
    answer = row["answer"]
    if isinstance(answer, str):
        if answer.strip().lower() not in ("true", "false", "yes", "no"):
            raise DataError(f"BoolQ answer must be true/false, got {answer!r}", where=where)
        answer = answer.strip().lower() in ("true", "yes")
    question = str(row["question"]).strip().rstrip("?") + "?"
    context = f"{row['passage']}\nQuestion: {question}\nAnswer:"
    return mc_example(
        example_id, f"{row['passage']}\nQuestion: {question}", ["no", "yes"], int(bool(answer)),
        context=context,
    )  # fmt: skip


def _hellaswag_clean(text: str) -> str:
    # the same clean-up as lm-evaluation-harness: drop WikiHow artefacts
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


@_register(
    "hellaswag",
    "multiple_choice",
    "acc_norm",
    {"ctx", "endings", "label"},
    {"ctx_a", "ctx_b", "endings", "label"},
)
def _hellaswag(row: Row, example_id: str, where: str) -> Example:
    """HellaSwag (HF / jsonl): ``ctx`` or ``ctx_a``+``ctx_b``, ``endings``, ``label``."""
    if "ctx_a" in row and "ctx_b" in row:
        ctx = f"{row['ctx_a']} {str(row['ctx_b']).capitalize()}"
    else:
        ctx = str(row["ctx"])
    activity = str(row.get("activity_label") or "").strip()
    query = _hellaswag_clean(f"{activity}: {ctx}" if activity else ctx)
    endings = [_hellaswag_clean(str(e)) for e in row["endings"]]
    gold = _gold_index(row["label"], len(endings), where=where)
    rid = f"hellaswag-{row['ind']}" if row.get("ind") is not None else example_id
    return mc_example(
        rid,
        f"How does this continue? {query}", endings, gold, context=query,
    )  # fmt: skip


MMLU_INSTRUCTION = "The following are multiple choice questions (with answers) about {subject}."


def mmlu_example(
    example_id: str, question: str, choices: list[str], gold: int, subject: str
) -> Example:
    """An MMLU item in lm-evaluation-harness's prompt format (continuations are the letters)."""
    subject_text = subject.replace("_", " ")
    letters = LETTERS[: len(choices)]
    body = question.strip() + "".join(f"\n{letters[i]}. {c}" for i, c in enumerate(choices))
    context = MMLU_INSTRUCTION.format(subject=subject_text) + f"\n\n{body}\nAnswer:"
    ex = mc_example(
        example_id, question.strip(), choices, gold,
        context=context, continuations=[f" {x}" for x in letters],
        slices=(subject,), instruction=MMLU_INSTRUCTION.format(subject=subject_text),
    )  # fmt: skip
    # letters are what is scored, so acc_norm normalises by the letters' length (as lm-eval)
    ex.meta["norm_texts"] = list(letters)
    return ex


@_register("gsm8k", "number", "accuracy", {"question", "answer"})
def _gsm8k(row: Row, example_id: str, where: str) -> Example:
    """GSM8K: ``question`` and an ``answer`` whose last line is ``#### N``."""
    answer = str(row["answer"])
    if "####" not in answer:
        raise DataError("GSM8K answer has no '#### N' final line", where=where)
    final = answer.rsplit("####", 1)[1].strip()
    value = parse_number(final)
    if value is None:
        raise DataError(f"GSM8K final answer {final!r} is not a number", where=where)
    question = str(row["question"]).strip()
    return Example(
        id=example_id,
        input=f"{question}\nSolve the problem and end your answer with 'The answer is N'.",
        reference=int(value) if value.is_integer() else value,
        meta={"question": question, "solution": answer, "answer_type": "number"},
    )


@_register(
    "ifeval", "ifeval", "prompt_level_strict_acc", {"prompt", "instruction_id_list", "kwargs"}
)
def _ifeval(row: Row, example_id: str, where: str) -> Example:
    """IFEval ``input_data.jsonl``: ``key``, ``prompt``, ``instruction_id_list``, ``kwargs``."""
    from tunecheck.metrics.ifeval import checkers

    ids = list(row["instruction_id_list"])
    kwargs = list(row["kwargs"])
    if len(ids) != len(kwargs):
        raise DataError(f"{len(ids)} instruction ids but {len(kwargs)} kwargs", where=where)
    for iid in ids:
        checkers.get(iid, where=f"{where}: instruction_id_list")
    key = row.get("key")
    return Example(
        id=f"ifeval-{key}" if key is not None else example_id,
        input=str(row["prompt"]),
        meta={"instruction_id_list": ids, "kwargs": kwargs},
    )


# ----------------------------------------------------------------------------- reading files

_NAME_HINTS = (
    ("mmlu", "mmlu"), ("hendrycks", "mmlu"), ("gsm8k", "gsm8k"), ("ifeval", "ifeval"),
    ("input_data", "ifeval"), ("hellaswag", "hellaswag"), ("boolq", "boolq"), ("arc", "arc"),
)  # fmt: skip
ACCEPTED = (
    "MMLU (.csv with header question,choice0..,answer or hendrycks' header-less CSV; or a folder "
    "of *_test.csv), ARC / BoolQ / PIQA in llm-foundry's query/choices/gold JSONL, ARC as "
    "question/choices{text,label}/answerKey, BoolQ as question/passage/answer, HellaSwag as "
    "ctx/endings/label, GSM8K as question/answer with '#### N', IFEval input_data.jsonl "
    "(key/prompt/instruction_id_list/kwargs)"
)


def _read_jsonl(path: Path) -> Iterator[tuple[int, Row]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8 text (byte {err.start})", where=str(path)) from None
    if path.suffix == ".json":
        data = json.loads(text)
        rows = data if isinstance(data, list) else data.get("data") or data.get("rows")
        if not isinstance(rows, list):
            raise DataError("a .json benchmark must be a list of records", where=str(path))
        yield from ((i + 1, r) for i, r in enumerate(rows))
        return
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"invalid JSON: {err.msg}", where=f"{path}:{lineno}") from None
        if not isinstance(row, dict):
            raise DataError("each line must be a JSON object", where=f"{path}:{lineno}")
        yield lineno, row


def _detect_jsonl_format(path: Path, first: Row) -> str:
    keys = set(first)
    matches = [
        f.name for f in (formats.get(n) for n in formats) if any(r <= keys for r in f.required)
    ]
    if "mc_jsonl" in matches:
        return "mc_jsonl"
    if len(matches) == 1:
        return matches[0]
    # several formats share fields (e.g. question/answer): the file name decides
    hinted = _hint_from_name(path)
    for candidate in (hinted, "arc", "hellaswag", "ifeval", "boolq", "gsm8k"):
        if candidate in matches:
            return candidate
    raise DataError(
        f"cannot tell the benchmark format from the fields {sorted(keys)}",
        where=str(path),
        hint=f"set `format:` on the probe; accepted: {ACCEPTED}",
    )


def _hint_from_name(path: Path) -> str | None:
    name = path.name.lower()
    return next((fmt for token, fmt in _NAME_HINTS if token in name), None)


def _mmlu_rows(path: Path) -> Iterator[Example]:
    subject = re.sub(r"_(test|dev|val|validation|train)$", "", path.stem)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    header = [h.strip().lower() for h in rows[0]]
    has_header = "question" in header and "answer" in header
    body = rows[1:] if has_header else rows
    for i, row in enumerate(body, 2 if has_header else 1):
        where = f"{path}:{i}"
        if not row or not any(cell.strip() for cell in row):
            continue
        if has_header:
            rec = dict(zip(header, row, strict=False))
            question = rec["question"]
            choice_cols = [h for h in header if h not in ("question", "answer", "subject")]
            choices = [rec[h] for h in choice_cols]
            answer = rec["answer"]
        else:
            if len(row) < 3:
                raise DataError(
                    f"an MMLU row needs a question, choices and an answer; got {len(row)} columns",
                    where=where,
                )
            question, choices, answer = row[0], row[1:-1], row[-1]
        gold = _gold_index(answer.strip(), len(choices), where=where)
        yield mmlu_example(f"mmlu-{subject}-{i}", question, choices, gold, subject)


def read_benchmark(
    path: str | Path, format: str | None = None
) -> tuple[BenchmarkFormat, list[Example]]:
    """All items of a benchmark file (or MMLU folder), with the detected format."""
    if isinstance(path, str) and path.startswith("hf:"):
        return _read_hub(path[3:], format)
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError("benchmark file not found", where=str(p))
    if format is not None:
        formats.get(format, where=f"probe format for {p}")
    if p.is_dir() or p.suffix.lower() in (".csv", ".tsv") or format == "mmlu":
        files = (sorted(p.glob("*_test.csv")) or sorted(p.glob("*.csv"))) if p.is_dir() else [p]
        if not files:
            raise DataError("no MMLU *_test.csv files in this folder", where=str(p))
        if format not in (None, "mmlu"):
            raise DataError(
                f"CSV files are read as MMLU, not {format!r}", where=str(p), hint=ACCEPTED
            )
        examples = [ex for f in files for ex in _mmlu_rows(f)]
        return MMLU_FORMAT, examples
    if p.suffix.lower() not in (".jsonl", ".json"):
        raise DataError(
            f"unsupported benchmark file type {p.suffix!r}",
            where=str(p),
            hint=f"accepted: {ACCEPTED}",
        )
    rows = list(_read_jsonl(p))
    if not rows:
        raise DataError("the benchmark file is empty", where=str(p))
    name = format or _detect_jsonl_format(p, rows[0][1])
    if name in ("arc", "boolq") and {"query", "choices", "gold"} <= set(rows[0][1]):
        name = "mc_jsonl"  # ARC/BoolQ in llm-foundry's layout
    fmt = formats.get(name, where=f"probe format for {p}")
    examples = []
    for lineno, row in rows:
        if not any(r <= set(row) for r in fmt.required):
            missing = sorted(min(fmt.required, key=len) - set(row))
            raise DataError(
                f"missing field(s) {missing} for format {fmt.name!r}", where=f"{p}:{lineno}"
            )
        examples.append(fmt.parse_row(row, f"{p.stem}-{lineno}", f"{p}:{lineno}"))
    return fmt, examples


def _read_hub(ref: str, format: str | None) -> tuple[BenchmarkFormat, list[Example]]:
    name, _, split = ref.partition("@")
    name, _, config = name.partition(":")
    try:
        import datasets
    except ImportError:
        raise DataError("reading hub datasets needs the `datasets` package", where=ref) from None
    try:
        ds = datasets.load_dataset(name, config or None, split=split or "test")
    except Exception as err:
        raise DataError(
            f"could not load dataset {name!r} ({type(err).__name__}: {err})",
            where=f"hf:{ref}",
            hint="no hub is reachable offline: download the file and give its local path",
        ) from None
    rows = [dict(r) for r in ds]
    if not rows:
        raise DataError("the dataset split is empty", where=f"hf:{ref}")
    fmt_name = format or _detect_jsonl_format(Path(name.replace("/", "_")), rows[0])
    if fmt_name == "mmlu":
        examples = [
            mmlu_example(f"mmlu-{r.get('subject', 'all')}-{i}", r["question"], list(r["choices"]),
                         _gold_index(r["answer"], len(r["choices"]), where=f"hf:{ref}[{i}]"),
                         str(r.get("subject", "all")))
            for i, r in enumerate(rows)
        ]  # fmt: skip
        return MMLU_FORMAT, examples
    fmt = formats.get(fmt_name, where=f"hf:{ref}")
    return fmt, [fmt.parse_row(r, f"{name}-{i}", f"hf:{ref}[{i}]") for i, r in enumerate(rows)]


def _mmlu_placeholder(row: Row, example_id: str, where: str) -> Example:  # pragma: no cover
    raise DataError("MMLU is read from CSV files", where=where)


MMLU_FORMAT = formats.register("mmlu")(
    BenchmarkFormat("mmlu", _mmlu_placeholder, "multiple_choice", "acc", ())
)


def sample_examples(examples: list[Example], n: int | None, seed: int) -> list[Example]:
    """``n`` items drawn without replacement, deterministically from ``seed``, in file order."""
    if n is None or n >= len(examples):
        return list(examples)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(examples), size=n, replace=False))
    return [examples[i] for i in picked]


def load_benchmark(
    path: str | Path, format: str | None = None, *, n: int | None = None, seed: int = 0
) -> tuple[BenchmarkFormat, list[Example]]:
    """Read a benchmark and sample ``n`` items with ``seed`` (all when ``n`` is None)."""
    fmt, examples = read_benchmark(path, format)
    return fmt, sample_examples(examples, n, seed)
