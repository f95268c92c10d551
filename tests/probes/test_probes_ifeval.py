"""IFEval checkers: every instruction id of the real input file, with passing and failing responses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tunecheck.errors import TunecheckError
from tunecheck.metrics import ifeval

LONG = " ".join(["word"] * 320)

# instruction id -> (kwargs, passing responses, failing responses), all hand-made
CASES: dict[str, tuple[dict, list[str], list[str]]] = {
    "keywords:existence": (
        {"keywords": ["banana", "Ocean"]},
        ["The ocean is blue and a BANANA is yellow."],
        ["The ocean is blue.", ""],
    ),
    "keywords:forbidden_words": (
        {"forbidden_words": ["bad", "ugly"]},
        ["A badge is fine, and so is ugliness."],
        ["That was BAD.", "so ugly"],
    ),
    "keywords:frequency": (
        {"keyword": "cat", "frequency": 3, "relation": "at least"},
        ["cat Cat CAT", "the cats sat with a cat and a catalogue"],
        ["cat cat", "dog"],
    ),
    "keywords:letter_frequency": (
        {"letter": "z", "let_frequency": 2, "let_relation": "less than"},
        ["zebra", "no such letter here"],
        ["zigzag", "ZZ top"],
    ),
    "language:response_language": (
        {"language": "de"},
        ["Das ist ein schöner Tag und ich gehe mit dem Hund in den Park, weil die Sonne scheint."],
        ["This is a lovely day and I walk the dog in the park because the sun is shining."],
    ),
    "length_constraints:number_sentences": (
        {"num_sentences": 3, "relation": "less than"},
        ["One sentence. Two sentences!", "Dr. Smith met Mr. Jones at 3.5 p.m. today."],
        ["One. Two. Three.", "A? B! C. D."],
    ),
    "length_constraints:number_paragraphs": (
        {"num_paragraphs": 3},
        ["First.\n***\nSecond.\n***\nThird.", "***\nA\n***\nB\n***\nC\n***"],
        ["First.\n***\nSecond.", "A\n***\n***\nB\n***\nC"],
    ),
    "length_constraints:number_words": (
        {"num_words": 300, "relation": "at least"},
        [LONG],
        ["too short", " ".join(["w"] * 299)],
    ),
    "length_constraints:nth_paragraph_first_word": (
        {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "However"},
        ['Intro text.\n\n"However, this works.', "Intro.\n\nhowever it is fine"],
        ["Intro.\n\nBut not this.", "Intro.\n\nHowever one.\n\nThree paragraphs."],
    ),
    "detectable_content:number_placeholders": (
        {"num_placeholders": 2},
        ["Dear [name], see you at [address]."],
        ["Dear [name], see you soon.", "no placeholders"],
    ),
    "detectable_content:postscript": (
        {"postscript_marker": "P.S."},
        ["Main text.\nP.S. remember the milk", "text\np. s. lowercase works"],
        ["Main text. PS no dots", "no postscript"],
    ),
    "detectable_format:constrained_response": (
        {},
        ["My answer is yes.", "Well... My answer is maybe."],
        ["Yes.", "my answer is yes"],
    ),
    "detectable_format:json_format": (
        {},
        ['{"a": 1}', '```json\n{"a": [1, 2]}\n```', "[1, 2]"],
        ["{'a': 1}", 'Here is JSON: {"a": 1}'],
    ),
    "detectable_format:multiple_sections": (
        {"section_spliter": "SECTION", "num_sections": 2},
        ["SECTION 1\nfoo\nSECTION 2\nbar"],
        ["SECTION 1\nonly one", "Section one\nSection two"],
    ),
    "detectable_format:number_bullet_lists": (
        {"num_bullets": 2},
        ["* one\n* two", "Intro\n- one\n- two"],
        ["* one\n* two\n* three", "* one", "**bold** line\n* one"],
    ),
    "detectable_format:number_highlighted_sections": (
        {"num_highlights": 2},
        ["*first* and *second*", "**bold one** and *italic*"],
        ["*only one*", "* * empty ones * *"],
    ),
    "detectable_format:title": (
        {},
        ["<<My Title>>\nbody"],
        ["My Title\nbody", "<<   >> empty", "<<broken\n>>"],
    ),
    "combination:repeat_prompt": (
        {"prompt_to_repeat": "Write a poem about cats."},
        ["write a poem about cats. Cats are soft..."],
        ["Here is a poem about cats.", "Cats. Write a poem about cats."],
    ),
    "combination:two_responses": (
        {},
        ["Answer one.\n******\nAnswer two."],
        ["Same.\n******\nSame.", "One only.", "A\n******\n******\nB"],
    ),
    "startend:end_checker": (
        {"end_phrase": "Is there anything else I can help with?"},
        [
            "Sure. Is there anything else I can help with?",
            '"Done. is there anything else i can help with?"',
        ],
        ["Is there anything else I can help with? Bye."],
    ),
    "startend:quotation": (
        {},
        ['"Everything is quoted."'],
        ['"Not closed', 'x"y"', '"'],
    ),
    "change_case:capital_word_frequency": (
        {"capital_frequency": 2, "capital_relation": "at least"},
        ["This is VERY IMPORTANT news.", "NASA and ESA-LED work"],
        ["Only ONE capital word here.", "none at all"],
    ),
    "change_case:english_capital": (
        {},
        ["THIS IS ALL IN CAPITAL LETTERS AND IT IS ENGLISH TEXT."],
        [
            "This is not all capitals.",
            "DAS IST EIN TEXT UND ER IST NICHT AUF ENGLISCH, SONDERN DEUTSCH.",
        ],
    ),
    "change_case:english_lowercase": (
        {},
        ["this is all lowercase and it is english text."],
        [
            "This has a capital letter.",
            "das ist ein text und er ist nicht auf englisch, sondern deutsch.",
        ],
    ),
    "punctuation:no_comma": (
        {},
        ["No commas here. None at all!"],
        ["One, two.", "x,"],
    ),
    "startend:start_checker": (
        {"start_phrase": "Sure"},
        ["Sure, here it is.", ' "sure thing'],
        ["Here you go. Sure.", ""],
    ),
}


def _ids_in_file(fixture_data) -> set[str]:
    ids: set[str] = set()
    with (fixture_data / "probes" / "ifeval_input_data.jsonl").open() as fh:
        for line in fh:
            ids.update(json.loads(line)["instruction_id_list"])
    return ids


def test_every_instruction_id_in_the_real_file_is_supported_and_covered(fixture_data):
    ids = _ids_in_file(fixture_data)
    assert len(ids) >= 25
    assert ids <= set(ifeval.checkers.names()), ids - set(ifeval.checkers.names())
    assert ids <= set(CASES), f"no hand-made cases for {ids - set(CASES)}"


@pytest.mark.parametrize("iid", sorted(CASES))
def test_checker_passes_and_fails(iid):
    kwargs, good, bad = CASES[iid]
    for response in good:
        assert ifeval.check(iid, response, kwargs), (iid, response)
    for response in bad:
        assert not ifeval.check(iid, response, kwargs), (iid, response)


def test_relation_less_than_and_at_least():
    assert ifeval.check(
        "length_constraints:number_words", "a b c", {"num_words": 4, "relation": "less than"}
    )
    assert not ifeval.check(
        "length_constraints:number_words", "a b c d", {"num_words": 4, "relation": "less than"}
    )
    assert ifeval.check(
        "length_constraints:number_words", "a b c d", {"num_words": 4, "relation": "at least"}
    )
    with pytest.raises(TunecheckError, match="unknown relation"):
        ifeval.check("length_constraints:number_words", "a", {"num_words": 1, "relation": "about"})


def test_null_kwargs_from_the_real_file_are_ignored():
    # IFEval rows carry unused keys as null
    kw = {"num_highlights": None, "relation": None, "num_words": None}
    assert ifeval.check("punctuation:no_comma", "no comma", kw)


def test_unknown_instruction_id_is_a_clear_error():
    with pytest.raises(TunecheckError, match="unknown IFEval instruction 'punctuation:no_coma'"):
        ifeval.check("punctuation:no_coma", "x")


def test_sentence_splitters_match_hand_counts():
    # IFEval's regex splitter (the fallback without a Punkt model)
    text = "Mr. Smith went to Washington. He paid $3.50 for e.g. tea."
    assert len(ifeval.split_into_sentences(text)) == 2
    assert len(ifeval.split_into_sentences("Wait... what? Visit example.com today.")) == 3
    # NLTK's Punkt with the English model, as the reference counts: "Mr." is a known
    # abbreviation, "e.g." is not in the English model
    assert ifeval.count_sentences("Hello world. How are you? Fine!") == 3
    assert ifeval.count_sentences(text) == 3
    assert ifeval.count_words("Hello, world! It's 2024.") == 5


def test_loose_variants_are_the_eight_of_ifeval():
    r = "Sure! Here it is:\n**BODY**\nHope it helps"
    variants = ifeval.loose_variants(r)
    assert len(variants) == 8
    assert variants[1] == "**BODY**\nHope it helps"
    assert variants[2] == "Sure! Here it is:\n**BODY**"
    assert variants[3] == "**BODY**"
    assert variants[7] == "BODY"


def test_strict_and_loose_at_prompt_and_instruction_level():
    responses = [
        "Sure, here it is:\n<<Title>>\nall lowercase text here",  # loose-only for lowercase
        "<<Title>> no commas here",
        "nothing right, at all",
    ]
    ids = [
        ["detectable_format:title", "punctuation:no_comma"],
        ["detectable_format:title", "punctuation:no_comma"],
        ["detectable_format:title"],
    ]
    kwargs = [[{}, {}], [{}, {}], [{}]]
    res = ifeval.score_ifeval(responses, ids, kwargs)
    # hand-computed: prompt 1 has a comma in its first line: strict fails no_comma, loose
    # (first line removed) passes it; prompt 2 passes both; prompt 3 has no title
    assert res.inst_level_strict == [[True, False], [True, True], [False]]
    assert res.inst_level_loose == [[True, True], [True, True], [False]]
    np.testing.assert_array_equal(res.prompt_level_strict, [0, 1, 0])
    np.testing.assert_array_equal(res.prompt_level_loose, [1, 1, 0])
    s = res.summary()
    assert s["prompt_level_strict_acc"] == pytest.approx(1 / 3)
    assert s["inst_level_strict_acc"] == pytest.approx(3 / 5)
    assert s["prompt_level_loose_acc"] == pytest.approx(2 / 3)
    assert s["inst_level_loose_acc"] == pytest.approx(4 / 5)


def test_empty_response_follows_nothing():
    assert ifeval.follows("", ["punctuation:no_comma"], [{}]) == [False]
    assert ifeval.follows("   ", ["punctuation:no_comma"], [{}], loose=True) == [False]
