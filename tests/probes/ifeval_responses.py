"""Deterministic IFEval responses built to exercise each instruction near its decision boundary.

For one IFEval row and a seeded RNG, :func:`constructed_response` assembles a response from
fragments chosen per instruction: a count one below, at, or one above the threshold; keywords
present, absent, or inside a longer word; markers (``P.S.``, ``SECTION 1``, ``<<title>>``,
``******``) present or malformed; the whole text upper- or lower-cased, quoted, or JSON.
Sentences include abbreviations, initials, decimals and ellipses so sentence counters are stressed.
"""

from __future__ import annotations

import json
import random
from typing import Any

FILLER = [
    "The committee met on Tuesday to review the plan.",
    "Dr. Smith arrived at 3.30 p.m. with the final report.",
    "It was raining... but nobody minded.",
    "The U.S. team won again!",
    "Why would anyone doubt it?",
    "Prices rose by 2.5 percent, e.g. for bread and milk.",
    "J. R. R. Tolkien wrote about hobbits.",
    "We left early; the road was empty.",
    "Mr. and Mrs. Brown live at No. 5 Baker St. in London.",
    "This is fine.",
]
FOREIGN = {
    "de": "Heute ist das Wetter sehr schön und wir gehen mit den Kindern in den Park.",
    "fr": "Aujourd'hui il fait très beau et nous allons au parc avec les enfants.",
    "it": "Oggi il tempo è molto bello e andiamo al parco con i bambini.",
    "pt": "Hoje o tempo está muito bom e vamos ao parque com as crianças.",
    "fi": "Tänään on kaunis päivä ja menemme puistoon lasten kanssa.",
    "sw": "Leo hali ya hewa ni nzuri sana na tunakwenda kwenye bustani pamoja na watoto.",
    "vi": "Hôm nay trời rất đẹp và chúng tôi đi công viên cùng các con.",
    "ru": "Сегодня очень хорошая погода, и мы идём в парк с детьми.",
    "bg": "Днес времето е много хубаво и отиваме в парка с децата.",
    "hi": "आज मौसम बहुत अच्छा है और हम बच्चों के साथ पार्क जा रहे हैं।",
    "mr": "आज हवामान खूप छान आहे आणि आम्ही मुलांसोबत बागेत जात आहोत.",
    "ne": "आज मौसम धेरै राम्रो छ र हामी बच्चाहरूसँग पार्क जाँदैछौं।",
    "ar": "الطقس اليوم جميل جدا ونحن ذاهبون إلى الحديقة مع الأطفال.",
    "fa": "امروز هوا خیلی خوب است و ما با بچه ها به پارک می رویم.",
    "ur": "آج موسم بہت اچھا ہے اور ہم بچوں کے ساتھ پارک جا رہے ہیں۔",
    "ko": "오늘 날씨가 정말 좋아서 아이들과 함께 공원에 갑니다.",
    "th": "วันนี้อากาศดีมากและเราจะไปสวนสาธารณะกับเด็กๆ",
    "ta": "இன்று வானிலை மிகவும் நன்றாக உள்ளது, நாங்கள் குழந்தைகளுடன் பூங்காவிற்கு செல்கிறோம்.",
    "te": "ఈ రోజు వాతావరణం చాలా బాగుంది, మేము పిల్లలతో పార్కుకు వెళ్తున్నాము.",
    "kn": "ಇಂದು ಹವಾಮಾನ ತುಂಬಾ ಚೆನ್ನಾಗಿದೆ ಮತ್ತು ನಾವು ಮಕ್ಕಳೊಂದಿಗೆ ಉದ್ಯಾನವನಕ್ಕೆ ಹೋಗುತ್ತಿದ್ದೇವೆ.",
    "gu": "આજે હવામાન ખૂબ સરસ છે અને અમે બાળકો સાથે બગીચામાં જઈએ છીએ.",
    "pa": "ਅੱਜ ਮੌਸਮ ਬਹੁਤ ਵਧੀਆ ਹੈ ਅਤੇ ਅਸੀਂ ਬੱਚਿਆਂ ਨਾਲ ਪਾਰਕ ਜਾ ਰਹੇ ਹਾਂ।",
    "bn": "আজ আবহাওয়া খুব ভালো এবং আমরা বাচ্চাদের সাথে পার্কে যাচ্ছি।",
}


def _near(rng: random.Random, n: int) -> int:
    return max(0, n + rng.choice((-1, 0, 0, 1)))


def _sentences(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(FILLER) for _ in range(n))


def constructed_response(row: dict[str, Any], seed: int) -> str:
    """One response for ``row`` (an IFEval input row), different for every ``seed``."""
    rng = random.Random(f"{row['key']}-{seed}")
    body: list[str] = [_sentences(rng, rng.randint(1, 3))]
    wrap: list[str] = []
    head = ""
    tail: list[str] = []
    for iid, kw in zip(row["instruction_id_list"], row["kwargs"], strict=True):
        kw = {k: v for k, v in kw.items() if v is not None}
        if iid == "keywords:existence":
            body += [f"We talk about {k}." for k in kw["keywords"] if rng.random() < 0.7]
        elif iid == "keywords:forbidden_words":
            for w in kw["forbidden_words"]:
                r = rng.random()
                if r < 0.3:
                    body.append(f"A sentence with {w} in it.")
                elif r < 0.5:
                    body.append(f"A sentence with un{w}ed in it.")
        elif iid == "keywords:frequency":
            body += [f"Here is {kw['keyword']}." for _ in range(_near(rng, kw["frequency"]))]
        elif iid == "keywords:letter_frequency":
            body.append(" ".join(kw["letter"] * 1 for _ in range(_near(rng, kw["let_frequency"]))))
        elif iid == "language:response_language":
            if rng.random() < 0.7:
                body = [FOREIGN.get(kw["language"], FILLER[0])] * rng.randint(1, 2)
        elif iid in ("change_case:english_capital", "change_case:english_lowercase"):
            wrap.append(rng.choice(("upper", "lower", "none")))
        elif iid == "change_case:capital_word_frequency":
            n = _near(rng, kw["capital_frequency"])
            body.append(
                " ".join(rng.choice(("NASA", "USA", "OK", "BIG", "A-OK")) for _ in range(n))
            )
        elif iid == "length_constraints:number_words":
            body.append(" ".join("word" for _ in range(_near(rng, kw["num_words"]))))
        elif iid == "length_constraints:number_sentences":
            body = [_sentences(rng, _near(rng, kw["num_sentences"]))]
        elif iid == "length_constraints:number_paragraphs":
            n = _near(rng, kw["num_paragraphs"])
            sep = rng.choice(("\n***\n", " *** ", "\n\n***\n\n"))
            body = [sep.join(_sentences(rng, 1) for _ in range(max(n, 1)))]
            if rng.random() < 0.2:
                body[0] = "***\n" + body[0]
        elif iid == "length_constraints:nth_paragraph_first_word":
            n = _near(rng, kw["num_paragraphs"])
            paras = [_sentences(rng, 1) for _ in range(max(n, 1))]
            nth = kw["nth_paragraph"] - 1
            if nth < len(paras) and rng.random() < 0.7:
                first = rng.choice(
                    (kw["first_word"], kw["first_word"].capitalize() + ",", '"' + kw["first_word"])
                )
                paras[nth] = f"{first} {paras[nth]}"
            body = ["\n\n".join(paras)]
        elif iid == "detectable_content:number_placeholders":
            body += ["[name] [address]"[: 7 * _near(rng, kw["num_placeholders"])]]
        elif iid == "detectable_content:postscript":
            marker = kw["postscript_marker"]
            tail.append(
                rng.choice((f"{marker} see you soon", "PS see you", f"  {marker.lower()} later"))
            )
        elif iid == "detectable_format:number_bullet_lists":
            n = _near(rng, kw["num_bullets"])
            body.append(
                "\n".join(
                    rng.choice(("* item", "- item", "  * item", "**bold**")) for _ in range(n)
                )
            )
        elif iid == "detectable_format:constrained_response":
            body.append(rng.choice(("My answer is yes.", "My answer is maybe", "my answer is no.")))
        elif iid == "detectable_format:number_highlighted_sections":
            n = _near(rng, kw["num_highlights"])
            body.append(
                " ".join(rng.choice(("*part*", "**bold part**", "* *", "*x")) for _ in range(n))
            )
        elif iid == "detectable_format:multiple_sections":
            n = _near(rng, kw["num_sections"])
            sp = kw["section_spliter"]
            body = [f"\n{sp} {i + 1}\n{_sentences(rng, 1)}" for i in range(n)]
        elif iid == "detectable_format:json_format":
            if rng.random() < 0.6:
                doc = json.dumps({"answer": _sentences(rng, 1)})
                return rng.choice(
                    (doc, f"```json\n{doc}\n```", f"```\n{doc}\n```", doc + " trailing")
                )
        elif iid == "detectable_format:title":
            head = rng.choice(("<<A Title>>\n", "<< >>\n", "<<Title\n>>", ""))
        elif iid == "combination:repeat_prompt":
            if rng.random() < 0.7:
                p = kw["prompt_to_repeat"]
                head = rng.choice((p, p.upper(), " " + p, p[:-3])) + "\n"
        elif iid == "combination:two_responses":
            a, b = _sentences(rng, 1), _sentences(rng, 1)
            body = [
                rng.choice((f"{a}\n******\n{b}", f"{a}\n******\n{a}", f"{a}******{b}******", a))
            ]
        elif iid == "startend:end_checker":
            if rng.random() < 0.7:
                tail.append(kw["end_phrase"] + rng.choice(("", '"', " ", " Bye.")))
        elif iid == "startend:quotation":
            wrap.append(rng.choice(("quote", "none")))
        elif iid == "punctuation:no_comma" and rng.random() < 0.5:
            body = [b.replace(",", "") for b in body]
    text = head + "\n".join(body + tail)
    for w in wrap:
        if w == "upper":
            text = text.upper()
        elif w == "lower":
            text = text.lower()
        elif w == "quote":
            text = f'"{text}"'
    if rng.random() < 0.3:  # markdown emphasis and a chatty first line: what loose scoring strips
        text = "Sure, here is my answer:\n" + text.replace("We ", "*We* ")
    return text
