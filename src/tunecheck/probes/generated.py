"""Built-in generated probes: offline, contamination-free, deterministic from a seed, any size.

No model can have trained on these exact items, and the same seed always yields the same
items, so base and fine-tuned models are compared on identical questions. Difficulty is
set so that a 135M-parameter instruction model scores well above zero and well below 100%
on each (a probe the model always fails cannot show a regression).

* ``arithmetic``: one- and two-step word problems with a numeric answer.
* ``reasoning``: counting letters and items, tracking moves, sorting, weekday and date
  arithmetic, sequences, orderings; answers are a number, a word or a list of numbers.
* ``instructions``: a short writing request plus one verifiable constraint drawn from 17
  types, checked by the IFEval checkers (``meta["instruction_id_list"]``, ``meta["kwargs"]``).
"""

from __future__ import annotations

import random
from typing import Any

from tunecheck.examples import Example
from tunecheck.probes.base import probe

NAMES = (
    "Anna", "Ben", "Carla", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jack",
    "Kira", "Liam", "Maya", "Noah", "Olga", "Pablo", "Rosa", "Sam", "Tara", "Victor",
)  # fmt: skip
ITEMS = (
    "apples", "pencils", "stickers", "marbles", "cookies", "books", "stamps", "cards",
    "balloons", "shells", "coins", "flowers", "candies", "eggs", "toy cars",
)  # fmt: skip
ANIMALS = (
    "cat",
    "dog",
    "horse",
    "cow",
    "sheep",
    "lion",
    "tiger",
    "rabbit",
    "mouse",
    "goat",
    "bear",
    "fox",
)
FRUITS = ("apple", "banana", "pear", "grape", "cherry", "mango", "lemon", "peach", "plum", "orange")
COLORS = ("red", "blue", "green", "yellow", "purple", "black", "white", "pink", "brown")
WORDS = (
    "banana", "strawberry", "mississippi", "letter", "committee", "balloon", "coffee",
    "pepper", "success", "bottle", "rabbit", "summer", "tomorrow", "assessment", "parallel",
    "cinnamon", "address", "google", "puppy", "hello", "bookkeeper", "possession",
)  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    ("January", 31), ("February", 28), ("March", 31), ("April", 30), ("May", 31), ("June", 30),
    ("July", 31), ("August", 31), ("September", 30), ("October", 31), ("November", 30),
    ("December", 31),
)  # fmt: skip
TOPICS = (
    "the ocean", "a rainy day", "your favourite food", "learning to ride a bike", "the moon",
    "a busy city", "trees", "friendship", "a summer holiday", "coffee", "winter", "a library",
    "music", "a train journey", "gardening", "the history of bread", "cats", "mountains",
    "a birthday party", "the importance of sleep",
)  # fmt: skip


def _rng(name: str, seed: int) -> random.Random:
    # string seeds hash with SHA-512: stable across platforms and Python versions
    return random.Random(f"tunecheck:{name}:{seed}")


def _example(
    probe_name: str, seed: int, i: int, question: str, answer: Any, **meta: Any
) -> Example:
    return Example(
        id=f"{probe_name}-{seed}-{i:05d}",
        input=question,
        reference=answer,
        slices=(str(meta.get("kind", "")),),
        meta=meta,
    )


# ----------------------------------------------------------------------------- arithmetic

ARITHMETIC_KINDS = ("add", "sub", "mul", "div", "add_sub", "price")


def _arithmetic_item(rng: random.Random, kind: str, hi: int) -> tuple[str, int]:
    name = rng.choice(NAMES)
    item = rng.choice(ITEMS)
    if kind == "add":
        a, b = rng.randint(2, hi), rng.randint(2, hi)
        return (
            f"{name} has {a} {item}. {name} gets {b} more {item}. How many {item} does {name} have now?",
            a + b,
        )
    if kind == "sub":
        a = rng.randint(5, hi + 5)
        b = rng.randint(1, a - 1)
        return (
            f"{name} had {a} {item} and gave {b} of them away. How many {item} does {name} have left?",
            a - b,
        )
    if kind == "mul":
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        return (
            f"{name} has {a} bags with {b} {item} in each bag. How many {item} are there in total?",
            a * b,
        )
    if kind == "div":
        each, k = rng.randint(2, 9), rng.randint(2, 6)
        return (
            f"{name} shares {each * k} {item} equally among {k} friends. "
            f"How many {item} does each friend get?",
            each,
        )
    if kind == "add_sub":
        a, b = rng.randint(5, hi), rng.randint(2, hi)
        c = rng.randint(1, a + b - 1)
        return (
            f"{name} has {a} {item}, buys {b} more, and then gives {c} to a friend. "
            f"How many {item} does {name} have now?",
            a + b - c,
        )
    price, count = rng.randint(2, 9), rng.randint(2, 6)
    return (
        f"One notebook costs {price} dollars. How many dollars do {count} notebooks cost?",
        price * count,
    )


@probe("arithmetic", scoring="number", metric="accuracy")
def arithmetic(
    n: int, seed: int, *, max_operand: int = 20, kinds: list[str] | None = None
) -> list[Example]:
    """Arithmetic word problems (add, subtract, multiply, divide, two steps, prices); numeric answer."""
    rng = _rng("arithmetic", seed)
    kinds = list(kinds or ARITHMETIC_KINDS)
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        question, answer = _arithmetic_item(rng, kind, max_operand)
        text = f"{question}\nAnswer with a number."
        out.append(_example("arithmetic", seed, i, text, answer, kind=kind, answer_type="number"))
    return out


# ----------------------------------------------------------------------------- reasoning

REASONING_KINDS = (
    "letter_count", "item_count", "moves", "sort", "weekday", "days_between", "sequence", "ordering",
    "compare",
)  # fmt: skip


def _day_of_year(month: int, day: int) -> int:
    # non-leap year; kept independent of datetime so tests can check against datetime
    return sum(length for _, length in MONTHS[: month - 1]) + day


def _reasoning_item(rng: random.Random, kind: str) -> tuple[str, Any, dict[str, Any]]:
    answer: int | str | list[int]  # a number, a word or a list, by kind
    if kind == "letter_count":
        word = rng.choice(WORDS)
        letter = rng.choice(sorted(set(word)))
        answer = sum(1 for ch in word if ch == letter)
        return f'How many times does the letter "{letter}" appear in the word "{word}"?', answer, {}
    if kind == "item_count":
        k_animals = rng.randint(1, 4)
        k_fruits = rng.randint(1, 4)
        items = rng.sample(ANIMALS, k_animals) + rng.sample(FRUITS, k_fruits)
        rng.shuffle(items)
        target, count = ("animals", k_animals) if rng.random() < 0.5 else ("fruits", k_fruits)
        return f"Here is a list: {', '.join(items)}. How many {target} are in the list?", count, {}
    if kind == "moves":
        steps = [rng.randint(1, 5) * rng.choice((1, -1)) for _ in range(rng.randint(2, 3))]
        if steps[0] < 0:
            steps[0] = -steps[0]
        parts = [
            f"{abs(s)} step{'s' if abs(s) > 1 else ''} {'forward' if s > 0 else 'back'}"
            for s in steps
        ]
        text = (
            "A robot starts at position 0 on a number line. It moves "
            + ", then ".join(parts)
            + ". At what position does it end?"
        )
        return text, sum(steps), {}
    if kind == "sort":
        values = rng.sample(range(1, 100), rng.randint(3, 4))
        answer = sorted(values)
        text = f"Sort these numbers from smallest to largest: {', '.join(map(str, values))}."
        return text, answer, {"answer_type": "list"}
    if kind == "weekday":
        start = rng.randrange(7)
        offset = rng.randint(1, 3)
        answer = WEEKDAYS[(start + offset) % 7]
        text = f"Today is {WEEKDAYS[start]}. What day of the week will it be in {offset} days?"
        return text, answer, {"answer_type": "word", "candidates": list(WEEKDAYS)}
    if kind == "days_between":
        month = rng.randint(1, 12)
        name, length = MONTHS[month - 1]
        d1 = rng.randint(1, length - 5)
        d2 = rng.randint(d1 + 1, length)
        answer = _day_of_year(month, d2) - _day_of_year(month, d1)
        return f"How many days are there from {name} {d1} to {name} {d2}?", answer, {"month": month}
    if kind == "sequence":
        start, step = rng.randint(1, 10), rng.randint(1, 3)
        seq = [start + step * j for j in range(4)]
        return (
            f"What number comes next in the sequence {', '.join(map(str, seq))}, ...?",
            start + step * 4,
            {},
        )
    if kind == "compare":
        a, b = rng.sample(range(1, 100), 2)
        return f"Which number is larger, {a} or {b}?", max(a, b), {}
    # ordering: two people by height, asked for the taller or the shorter
    people = rng.sample(NAMES, 2)  # taller first
    ask_taller = rng.random() < 0.5
    answer = people[0] if ask_taller else people[1]
    text = (
        f"{people[0]} is taller than {people[1]}. Who is {'taller' if ask_taller else 'shorter'}?"
    )
    return text, answer, {"answer_type": "word", "candidates": sorted(people)}


REASONING_FORMAT = {
    "number": "Answer with a number only.",
    "word": "Answer with one word only.",
    "list": "Answer with the sorted numbers only.",
}


@probe("reasoning", scoring="answer", metric="accuracy")
def reasoning(n: int, seed: int, *, kinds: list[str] | None = None) -> list[Example]:
    """Multi-step reasoning with a checkable answer: counting, moves, sorting, dates, sequences."""
    rng = _rng("reasoning", seed)
    kinds = list(kinds or REASONING_KINDS)
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        question, answer, meta = _reasoning_item(rng, kind)
        meta.setdefault("answer_type", "number")
        # a short answer keeps small models from rambling past the generation budget
        question += "\n" + REASONING_FORMAT[meta["answer_type"]]
        out.append(_example("reasoning", seed, i, question, answer, kind=kind, **meta))
    return out


# ----------------------------------------------------------------------------- instructions


def _constraint(rng: random.Random, kind: str) -> tuple[str, str, dict[str, Any]]:
    """(instruction id, sentence for the prompt, kwargs for the checker)."""
    if kind == "words_at_least":
        k = rng.choice((30, 40, 50))
        return (
            "length_constraints:number_words",
            f"Use at least {k} words.",
            {"relation": "at least", "num_words": k},
        )
    if kind == "words_less_than":
        k = rng.choice((20, 30, 40))
        return (
            "length_constraints:number_words",
            f"Use fewer than {k} words.",
            {"relation": "less than", "num_words": k},
        )
    if kind == "sentences":
        k = rng.choice((2, 3))
        return (
            "length_constraints:number_sentences",
            f"Your answer must have fewer than {k + 1} sentences.",
            {"relation": "less than", "num_sentences": k + 1},
        )
    if kind == "paragraphs":
        k = rng.choice((2, 3))
        return (
            "length_constraints:number_paragraphs",
            f"Write exactly {k} paragraphs, separated by the markdown divider ***.",
            {"num_paragraphs": k},
        )
    if kind == "json":
        return "detectable_format:json_format", "Wrap your whole answer in JSON format.", {}
    if kind == "bullets":
        k = rng.choice((2, 3, 4))
        return (
            "detectable_format:number_bullet_lists",
            f"Answer with exactly {k} bullet points, using markdown bullets such as:\n* point one\n* point two",
            {"num_bullets": k},
        )
    if kind == "keyword":
        word = rng.choice(("blue", "happy", "simple", "always", "water", "light", "friend"))
        return (
            "keywords:existence",
            f'Include the word "{word}" in your answer.',
            {"keywords": [word]},
        )
    if kind == "forbidden":
        word = rng.choice(("the", "and", "is", "a"))
        return (
            "keywords:forbidden_words",
            f'Do not use the word "{word}".',
            {"forbidden_words": [word]},
        )
    if kind == "lowercase":
        return (
            "change_case:english_lowercase",
            "Write your entire answer in English using only lowercase letters; no capital letters are allowed.",
            {},
        )
    if kind == "uppercase":
        return (
            "change_case:english_capital",
            "Write your entire answer in English using only capital letters.",
            {},
        )
    if kind == "end":
        phrase = rng.choice(("Is there anything else I can help with?", "Thank you.", "The end."))
        return (
            "startend:end_checker",
            f'Finish your answer with the exact phrase "{phrase}". No other words should follow it.',
            {"end_phrase": phrase},
        )
    if kind == "start":
        phrase = rng.choice(("Sure", "Hello", "Here is", "Well"))
        return (
            "startend:start_checker",
            f'Start your answer with the word "{phrase}".',
            {"start_phrase": phrase},
        )
    if kind == "no_comma":
        return "punctuation:no_comma", "Do not use any commas in your answer.", {}
    if kind == "placeholders":
        k = rng.choice((1, 2))
        return (
            "detectable_content:number_placeholders",
            f"Include at least {k} placeholder{'s' if k > 1 else ''} in square brackets, such as [name].",
            {"num_placeholders": k},
        )
    if kind == "postscript":
        marker = rng.choice(("P.S.", "P.P.S"))
        return (
            "detectable_content:postscript",
            f"At the end of your answer, add a postscript starting with {marker}",
            {"postscript_marker": marker},
        )
    if kind == "title":
        return (
            "detectable_format:title",
            "Give your answer a title wrapped in double angular brackets, such as <<my title>>.",
            {},
        )
    if kind == "quotation":
        return "startend:quotation", "Wrap your entire answer in double quotation marks.", {}
    raise ValueError(f"unknown constraint kind {kind!r}")


INSTRUCTION_KINDS = (
    "words_at_least", "words_less_than", "sentences", "paragraphs", "json", "bullets", "keyword",
    "forbidden", "lowercase", "uppercase", "end", "start", "no_comma", "placeholders",
    "postscript", "title", "quotation",
)  # fmt: skip


# constraints that cannot (or can hardly) hold together: at most one of each group per prompt
CONFLICTS = (
    frozenset({"words_at_least", "words_less_than", "sentences", "paragraphs"}),
    frozenset({"json", "bullets", "paragraphs", "quotation", "title"}),
    frozenset({"start", "quotation", "title", "json"}),
    frozenset({"end", "postscript", "quotation", "json"}),
    frozenset({"lowercase", "uppercase", "start", "end", "postscript", "title"}),
)


def _conflict(a: str, b: str) -> bool:
    return any(a in group and b in group for group in CONFLICTS)


@probe("instructions", scoring="ifeval", metric="prompt_level_strict_acc")
def instructions(
    n: int, seed: int, *, kinds: list[str] | None = None, per_item: int = 1
) -> list[Example]:
    """Verifiable instruction following: a writing request plus checkable constraints (17 types)."""
    rng = _rng("instructions", seed)
    kinds = list(kinds or INSTRUCTION_KINDS)
    unknown = sorted(set(kinds) - set(INSTRUCTION_KINDS))
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; choose from {', '.join(INSTRUCTION_KINDS)}")
    out = []
    for i in range(n):
        topic = rng.choice(TOPICS)
        chosen = [kinds[i % len(kinds)]]
        # extra constraints never contradict the ones already chosen
        while len(chosen) < per_item:
            pool = [
                k for k in kinds if k not in chosen and not any(_conflict(k, c) for c in chosen)
            ]
            if not pool:
                break
            chosen.append(rng.choice(pool))
        ids, sentences, kwargs = [], [], []
        for kind in chosen:
            iid, sentence, kw = _constraint(rng, kind)
            ids.append(iid)
            sentences.append(sentence)
            kwargs.append(kw)
        text = f"Write a short text about {topic}. " + " ".join(sentences)
        out.append(
            _example(
                "instructions",
                seed,
                i,
                text,
                None,
                kind="+".join(chosen),
                instruction_id_list=ids,
                kwargs=kwargs,
            )
        )
    return out
