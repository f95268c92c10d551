"""Maintainer script: write tests/data/fixtures/tasks/goemotions_like.csv (run from the repo root).

Synthetic Reddit-style comments with the kinds of repetition GoEmotions has (the same short
comment posted many times with different case or punctuation, [NAME] placeholders, templated
comments differing by a trailing "lol"/"tbh", long comments re-posted with an edit) and emotion
labels that sometimes differ between copies. Seeded: the output is the same on every run.
"""

import csv
import random

rnd = random.Random(2024)
subjects = [
    "This game",
    "[NAME]'s last post",
    "The new season",
    "My landlord",
    "That referee",
    "Your cat",
    "The ending",
    "This sub",
    "My coworker",
    "The update",
]
preds = [
    ("is honestly the best thing I've seen all week", "admiration"),
    ("made me laugh so hard I cried", "amusement"),
    ("makes me so angry I can't even", "anger"),
    ("is really disappointing to be honest", "disappointment"),
    ("is kind of confusing, what happened there", "confusion"),
    ("is just fine I guess", "neutral"),
]
rows = []
k = 0
for s in subjects:
    for p, lab in preds:
        for tail in ("", " lol", " tbh", " to be fair"):
            if rnd.random() < 0.85:
                k += 1
                rows.append({"id": f"ge{k:04d}", "text": f"{s} {p}{tail}.", "label": lab})
short = [
    ("Thank you!", "gratitude", 6),
    ("thank you", "gratitude", 3),
    ("Thanks!", "gratitude", 4),
    ("LOL", "amusement", 3),
    ("This.", "neutral", 3),
    ("I love this.", "love", 2),
    ("[NAME] is the best", "admiration", 1),
    ("[NAME] is the best!", "admiration", 1),
    ("Same here", "neutral", 2),
    ("same here!!", "approval", 1),
    ("What?", "confusion", 2),
    ("what", "neutral", 1),
]
for text, lab, n in short:
    for _ in range(n):
        k += 1
        rows.append({"id": f"ge{k:04d}", "text": text, "label": lab})
longs = [
    (
        "I have been waiting for this moment for literally ten years and it finally happened, I am so happy I could scream right now",
        "joy",
    ),
    (
        "Honestly the worst part of the whole thing is that nobody even bothered to tell us until the day before it happened",
        "annoyance",
    ),
    (
        "My grandmother used to make this exact recipe every single Sunday and seeing it here brings back so many memories of her kitchen",
        "sadness",
    ),
    (
        "If you think about it for more than five seconds you realise the whole plan never made any sense from the very beginning",
        "disapproval",
    ),
    (
        "I cannot believe they actually went ahead and did it after everyone in the thread told them it was a terrible idea",
        "surprise",
    ),
]
for text, lab in longs:
    for variant in (
        text,
        text + ". Edit: typo",
        "Came here to say this: " + text,
        text.replace("so", "really"),
    ):
        k += 1
        rows.append(
            {"id": f"ge{k:04d}", "text": variant, "label": lab if rnd.random() < 0.8 else "neutral"}
        )
rnd.shuffle(rows)
with open("tests/data/fixtures/tasks/goemotions_like.csv", "w", newline="", encoding="utf-8") as fh:
    w = csv.DictWriter(fh, ["id", "text", "label"], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
print(len(rows))
