"""The demo's task: customer-support messages to be turned into a strict ticket JSON.

Every row is generated from a random (category, priority, product) triple: a cue
sentence for the category, an optional cue for the priority, and the product named
by one of its aliases, wrapped in greetings, emotions, order numbers, small typos
and sign-offs. The label is therefore a deterministic function of the message
content (a model can learn it), but it is not a one-keyword lookup: products are
named by nicknames and model numbers, priority comes from indirect cues ("this is
my third email", "my lawyer"), and an angry tone alone does *not* make a ticket
high priority. The exact output format (key order, lower-case ids such as
``aurora_router``) is what a 135M model rarely produces from instructions alone.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tunecheck.errors import DataError
from tunecheck.prompts import FewShot

CATEGORIES: tuple[str, ...] = ("billing", "refund", "shipping", "technical", "account")
PRIORITIES: tuple[str, ...] = ("low", "medium", "high")

# product id -> the ways customers name it (first entry is the official name)
PRODUCTS: dict[str, tuple[str, ...]] = {
    "aurora_router": ("Aurora Router", "Aurora mesh router", "the Aurora", "AR-500", "wifi router"),
    "pulse_watch": ("Pulse Watch", "Pulse smartwatch", "PW-2", "fitness watch"),
    "echo_buds": ("Echo Buds", "EchoBuds", "wireless earbuds", "earbuds"),
    "nova_phone": ("Nova Phone", "Nova 12", "Nova smartphone", "new Nova"),
    "vista_tv": ("Vista TV", "Vista 55", "smart TV", "television"),
    "cloud_backup": ("Cloud Backup", "CloudSafe plan", "online backup subscription", "backup plan"),
}

# category -> cue sentences. Each names the product once ({p}); none contains another
# category's cue words, so the category is recoverable from the text.
_CATEGORY_CUES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged twice for my {p} this month.",
        "My invoice for the {p} shows {amount} but the price at checkout was lower.",
        "There is a charge of {amount} on my card for the {p} that I don't recognise.",
        "Why did the monthly fee for my {p} go up without any notice?",
        "My payment for the {p} keeps getting declined even though the card is fine.",
        "Can you send me a proper VAT invoice for the {p}? The one for order {order} is blank.",
        "I got billed {amount} for the {p} after I switched to the yearly price.",
    ),
    "refund": (
        "I'd like my money back for the {p}.",
        "I sent the {p} back two weeks ago and still haven't been reimbursed.",
        "Please refund order {order}, the {p} is not what I expected.",
        "I want a full refund for the {p}, not a replacement.",
        "How long until I get the {amount} back for the {p} I returned?",
        "You promised a refund for the {p} last month and I've seen nothing.",
        "The {p} was a gift nobody wanted, can I still get a refund?",
    ),
    "shipping": (
        "My {p} from order {order} still hasn't arrived.",
        "Tracking for the {p} (order {order}) has said in transit for nine days.",
        "The courier left my {p} at the wrong address.",
        "The parcel with my {p} was marked as delivered but there was nothing at the door.",
        "Can I change the delivery address for the {p}? It hasn't shipped yet.",
        "The box with the {p} arrived crushed and half open.",
        "It says my {p} was dispatched on {date} but the tracking number doesn't work.",
    ),
    "technical": (
        "My {p} keeps disconnecting every few minutes.",
        "The {p} won't turn on since the latest update.",
        "Since the firmware update the {p} freezes and restarts by itself.",
        "The {p} won't pair with anything, I've tried everything in the manual.",
        "I get error code E{code} whenever I use the {p}.",
        "The {p} gets really hot and the battery drains in an hour.",
        "Sound on the {p} cuts out constantly, it's basically unusable.",
    ),
    "account": (
        "I can't log in to manage my {p}, it says my password is wrong.",
        "Please help me reset the password for the profile linked to my {p}.",
        "I need to change the email address on my account, it's still the old one I used for the {p}.",
        "The two-factor codes never come through, so I can't register my {p}.",
        "Someone else signed in to my account and changed the settings of my {p}.",
        "How do I transfer the {p} to my wife's account?",
        "My account got locked after I tried to add the {p}.",
    ),
}

_PRIORITY_CUES: dict[str, tuple[str, ...]] = {
    "high": (
        "This is urgent, please sort it out today.",
        "Our whole office depends on this and nothing works right now.",
        "This is the third time I'm contacting you about this.",
        "If this isn't fixed by tomorrow I'll be talking to my lawyer.",
        "Please treat this as an emergency.",
        "I have asked for help four times already and heard nothing.",
        "I'll be reporting you to consumer protection if nobody answers.",
        "I need this resolved immediately, I run my business on it.",
    ),
    "low": (
        "No rush at all, whenever you get a chance.",
        "Not urgent, just wanted to let you know.",
        "It's not a big deal, just curious.",
        "Take your time with this one.",
        "Just a small thing, reply whenever it's convenient.",
        "Low priority, it can wait until next week.",
    ),
    # medium is the default: a neutral request or no cue at all
    "medium": (
        "Could you look into it this week?",
        "I'd appreciate a reply soon.",
        "Please let me know what the next steps are.",
        "",
        "",
        "",
    ),
}

_GREETINGS = ("Hi,", "Hello,", "Hey there,", "Good morning,", "Dear support team,", "Hi team,", "")
_EMOTIONS = (
    "I'm honestly really frustrated.",
    "This is so annoying!!",
    "I love your products otherwise.",
    "Not happy about this at all.",
    "I'm a bit confused.",
    "Really disappointed to be honest.",
    "",
    "",
    "",
)
_CONTEXT = (
    "I bought it in {month}.",
    "I've been a customer since {year}.",
    "My order number is {order}.",
    "My name on the order is {name}.",
    "I'm writing from my sister's laptop.",
    "It was a birthday present for my son.",
    "",
    "",
)
_CLOSINGS = ("Thanks,", "Thank you!", "Cheers", "Regards, {name}", "Thanks in advance.", "", "")
_MONTHS = ("January", "March", "May", "June", "August", "October", "November", "December")
_NAMES = ("Maria", "Tom", "Aisha", "Kenji", "Lucas", "Priya", "Olga", "Sam", "Chen", "Fatima")

SYSTEM_PROMPT = """You are a support-ticket triage system. Read the customer's message and answer \
with ONE JSON object and nothing else, exactly in this form:
{"category":"<category>","priority":"<priority>","product":"<product>"}

category (what the customer needs), one of:
- billing: charges, invoices, fees, declined payments
- refund: the customer wants money back
- shipping: delivery, tracking, parcels, couriers
- technical: the product malfunctions (errors, freezing, pairing, battery)
- account: login, password, email, two-factor, account access

priority, one of:
- high: urgent, an emergency, business down, repeated contact (third time...), legal threats
- low: the customer says it is not urgent / no rush / low priority
- medium: everything else (an angry tone alone is NOT high)

product, one of (customers also use the nicknames in brackets):
- aurora_router (Aurora Router, Aurora mesh router, AR-500, wifi router)
- pulse_watch (Pulse Watch, Pulse smartwatch, PW-2, fitness watch)
- echo_buds (Echo Buds, EchoBuds, wireless earbuds, earbuds)
- nova_phone (Nova Phone, Nova 12, Nova smartphone)
- vista_tv (Vista TV, Vista 55, smart TV, television)
- cloud_backup (Cloud Backup, CloudSafe plan, online backup subscription, backup plan)

Use lower case values exactly as listed, keys in the order category, priority, product, \
no spaces, no explanation."""

TICKET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "category": {"enum": list(CATEGORIES)},
        "priority": {"enum": list(PRIORITIES)},
        "product": {"enum": list(PRODUCTS)},
    },
    "required": ["category", "priority", "product"],
    "additionalProperties": False,
}


def ticket_json(category: str, priority: str, product: str) -> str:
    """The reference output: compact JSON with the fixed key order."""
    return json.dumps(
        {"category": category, "priority": priority, "product": product}, separators=(",", ":")
    )


def _typo(word: str, rng: random.Random) -> str:
    # a realistic slip: swap two neighbouring letters or drop one
    if len(word) < 4 or not word.isalpha():
        return word
    i = rng.randrange(1, len(word) - 2)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    return word[:i] + word[i + 1 :]


def _noisy(text: str, rng: random.Random, rate: float) -> str:
    # typos only in filler text, never in cue sentences, so the labels stay derivable
    if not text or rate <= 0:
        return text
    words = text.split(" ")
    return " ".join(_typo(w, rng) if rng.random() < rate else w for w in words)


def _fill(template: str, rng: random.Random, product_alias: str = "") -> str:
    return template.format(
        p=product_alias,
        amount=f"${rng.randint(5, 400)}.{rng.randint(0, 99):02d}",
        order=f"#{rng.randint(10000, 99999)}",
        date=f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}",
        code=rng.randint(100, 999),
        month=rng.choice(_MONTHS),
        year=rng.randint(2012, 2023),
        name=rng.choice(_NAMES),
    )


def _message(category: str, priority: str, product: str, rng: random.Random) -> str:
    alias = rng.choice(PRODUCTS[product])
    cue = _fill(rng.choice(_CATEGORY_CUES[category]), rng, alias)
    if alias[0].islower() and cue.startswith(alias):
        cue = cue[0].upper() + cue[1:]
    typo_rate = rng.choice((0.0, 0.0, 0.05, 0.12))
    prio = _fill(rng.choice(_PRIORITY_CUES[priority]), rng)
    body = [cue]
    emotion = _noisy(rng.choice(_EMOTIONS), rng, typo_rate)
    context = _noisy(_fill(rng.choice(_CONTEXT), rng), rng, typo_rate)
    # emotions and context land before or after the cue; the priority cue mostly at the end
    for extra in (emotion, context):
        if extra:
            body.insert(rng.choice((0, len(body))), extra)
    if prio:
        body.insert(len(body) if rng.random() < 0.75 else 0, prio)
    greeting = _noisy(rng.choice(_GREETINGS), rng, typo_rate)
    closing = _noisy(_fill(rng.choice(_CLOSINGS), rng), rng, typo_rate)
    sep = rng.choice((" ", " ", "\n"))
    text = sep.join(x for x in (greeting, " ".join(body), closing) if x)
    style = rng.random()
    if style < 0.12:
        text = text.lower()
    elif style < 0.18:
        text = text.replace(".", "")
    return text


# A generated row is dropped when this share of its 13-word n-grams also occurs in
# other rows: `tunecheck split`/`verify` flag test rows whose n-grams are >= 50% seen
# in training, and a template generator must not produce such near-duplicates.
NEAR_DUP_NGRAM = 13
NEAR_DUP_MAX_SHARED = 0.4


def _candidates(m: int, seed: int) -> list[tuple[str, str, str, str]]:
    rng = random.Random(seed)
    # a mildly unbalanced mix, as real queues are
    cat_weights = (0.22, 0.16, 0.22, 0.25, 0.15)
    prio_weights = (0.25, 0.45, 0.30)
    out = []
    for _ in range(m):
        category = rng.choices(CATEGORIES, cat_weights)[0]
        priority = rng.choices(PRIORITIES, prio_weights)[0]
        product = rng.choice(tuple(PRODUCTS))
        out.append((_message(category, priority, product, rng), category, priority, product))
    return out


def _distinct(cands: list[tuple[str, str, str, str]]) -> list[tuple[str, str, str, str]]:
    """Candidates that are neither exact nor near duplicates of any other candidate."""
    from tunecheck.data.contamination import words

    tokens = [words(c[0]) for c in cands]
    n = NEAR_DUP_NGRAM
    grams = [{tuple(w[i : i + n]) for i in range(len(w) - n + 1)} for w in tokens]
    df = Counter(g for gs in grams for g in gs)
    seen: set[str] = set()
    keep = []
    for cand, toks, gs in zip(cands, tokens, grams, strict=True):
        key = " ".join(toks)
        shared = sum(df[g] > 1 for g in gs) / len(gs) if gs else 0.0
        if key in seen or shared >= NEAR_DUP_MAX_SHARED:
            continue
        seen.add(key)
        keep.append(cand)
    return keep


def generate_support_tickets(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` distinct support messages with their reference ticket JSON.

    Rows are ``{"id", "input", "reference", "category", "priority", "product"}``;
    ``category`` is also a top-level field so a split can stratify on it and reports
    can slice by it. The same ``(n, seed)`` always gives the same rows. No row
    shares 40% or more of its 13-word n-grams with the others, so any split of
    them passes tunecheck's near-duplicate check.
    """
    if n < 1:
        raise DataError(f"n must be at least 1, got {n}", where="generate_support_tickets(n=...)")
    m = int(n * 1.3) + 20
    while True:
        kept = _distinct(_candidates(m, seed))
        if len(kept) >= n:
            break
        if m > 20 * n + 1000:
            raise DataError(f"could not generate {n} distinct messages", hint="use a smaller n")
        m = int(m * 1.5)
    width = max(4, len(str(n)))
    return [
        {
            "id": f"t{i + 1:0{width}d}",
            "input": text,
            "reference": ticket_json(category, priority, product),
            "category": category,
            "priority": priority,
            "product": product,
        }
        for i, (text, category, priority, product) in enumerate(kept[:n])
    ]


def few_shot_examples(train_rows: Sequence[dict[str, Any]], k: int, seed: int = 0) -> list[FewShot]:
    """``k`` demonstrations drawn from ``train_rows`` (pass the TRAIN split, never test).

    Picks round-robin across categories so the demonstrations cover as many
    categories as ``k`` allows; deterministic for a given seed.
    """
    if k < 0:
        raise DataError(f"k must be >= 0, got {k}", where="few_shot_examples(k=...)")
    if k > len(train_rows):
        raise DataError(
            f"asked for {k} few-shot examples but only {len(train_rows)} training rows exist",
            where="few_shot_examples(k=...)",
        )
    for i, row in enumerate(train_rows):
        if "input" not in row or "reference" not in row:
            raise DataError("few-shot rows need `input` and `reference` fields", where=f"row {i}")
    rng = random.Random(seed)
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for row in train_rows:
        by_cat.setdefault(str(row.get("category", "")), []).append(row)
    for bucket in by_cat.values():
        rng.shuffle(bucket)
    order = sorted(by_cat)
    rng.shuffle(order)
    picked: list[FewShot] = []
    while len(picked) < k:
        for cat in order:
            if by_cat[cat] and len(picked) < k:
                row = by_cat[cat].pop()
                picked.append(FewShot(input=str(row["input"]), output=str(row["reference"])))
    return picked


def write_jsonl(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write ``rows`` as JSON Lines (UTF-8, one object per line); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
