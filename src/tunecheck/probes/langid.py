"""Light language identification for IFEval's ``language:response_language`` check.

IFEval itself uses ``langdetect``; when that package is installed we use it too (same
results as the reference implementation). Otherwise a heuristic decides: the dominant
Unicode script settles most languages outright (Korean, Thai, Tamil, Greek...), marker
letters split shared scripts (Urdu / Persian / Arabic; Ukrainian / Russian / Bulgarian),
and frequent function words separate languages written in Latin or Devanagari script.

Limits of the heuristic: it knows the ~45 languages listed in :data:`LATIN_STOPWORDS`,
:data:`DEVANAGARI_STOPWORDS` and the script table; very short texts (under ~5 words) in a
Latin script may come back ``None`` (undecided), which IFEval counts as followed; closely
related languages (Serbian/Croatian/Bosnian, Malay/Indonesian, Danish/Norwegian) are not
told apart reliably.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache

# scripts used by one language in practice (CJK ideographs alone are read as Chinese)
SCRIPT_LANGUAGE = {
    "HANGUL": "ko",
    "THAI": "th",
    "KANNADA": "kn",
    "GUJARATI": "gu",
    "TELUGU": "te",
    "TAMIL": "ta",
    "GURMUKHI": "pa",
    "BENGALI": "bn",
    "HEBREW": "he",
    "GREEK": "el",
    "MALAYALAM": "ml",
    "GEORGIAN": "ka",
    "ARMENIAN": "hy",
    "ORIYA": "or",
    "SINHALA": "si",
    "KHMER": "km",
    "LAO": "lo",
    "MYANMAR": "my",
    "ETHIOPIC": "am",
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "CJK": "zh",
}

_W = str.split
LATIN_STOPWORDS: dict[str, frozenset[str]] = {
    lang: frozenset(_W(words))
    for lang, words in {
        "en": "the and of to is in that it was for on are with as his they be at this have "
        "from or had by but not what all were when we there can an your which their said "
        "do will each about how if them then she many some so these would other into has "
        "more her two like him see time could no make than been who its now my over did "
        "down only way use may very should because you i me our just",
        "de": "der die das und ist nicht ein eine zu den mit sich des auf für im dem von "
        "sie es auch als an werden aus er hat dass wir ich bei oder wie noch nach einer "
        "über so zum war haben nur vor zur bis mehr durch kann sind wird man aber",
        "fr": "le la les de des et est un une du en que qui dans pour pas sur au avec ce "
        "il elle sont par plus ne se nous vous mais ou leur cette aux été être je tout",
        "es": "el la los las de del y que en un una es por con no para se al lo como más "
        "pero sus le ya o este sí porque esta entre cuando muy sin sobre también me hay "
        "donde yo está son",
        "it": "il lo la gli le di e che è un una per non in con del della dei si sono da "
        "come più ma anche al alla nel questo questa ha ci io essere molto tutto",
        "pt": "o a os as de do da dos das e que em um uma é não para com por se na no mais "
        "como mas ao seu sua ou foi são também muito já está você isso ele ela",
        "nl": "de het een en van is dat op te in zijn niet met voor die er maar ook als "
        "aan bij door naar om ik je we wat wordt hij ze",
        "sv": "och att det som en är av för på med till den har inte om ett jag var men "
        "ska kan så vi de eller från detta",
        "da": "og at det som en er af for på med til den har ikke om et jeg var men skal "
        "kan så vi de eller fra dette",
        "no": "og at det som en er av for på med til den har ikke om et jeg var men skal "
        "kan så vi de eller fra dette ikkje",
        "fi": "ja on ei se että oli hän kun niin mutta tai ole myös kuin mitä joka ovat "
        "sen tämä jos vain minä sinä me te he siitä olla voi kanssa",
        "sw": "na ya wa kwa ni za la katika kuwa hii yake hiyo lakini kama pia sana wake "
        "hilo huo wao yeye mimi wewe sisi ili bado baada kabla kila",
        "vi": "và của là có không được cho một những các này trong với người để đã khi "
        "thì từ như đến cũng làm nhưng rất",
        "tr": "ve bir bu da de için ile çok ne daha gibi olan ama en var mi o ben sen biz "
        "değil kadar sonra",
        "pl": "i w na z że nie się do jest to o jak co ale po tak czy od przez dla jego są już być",
        "id": "dan yang di ini itu dengan untuk dari tidak dalam akan pada juga ada saya "
        "kami mereka adalah bisa atau karena",
        "ms": "dan yang di ini itu dengan untuk dari tidak dalam akan pada juga ada saya "
        "kami mereka ialah boleh atau kerana",
        "ro": "și de la în nu cu o un ce pe care din este să mai sunt pentru dar se",
        "cs": "a v se na je že to s z do o k ale jak jsem by být pro tak jsou",
        "hu": "a az és hogy nem is egy ez meg de van volt csak már mint még el",
        "tl": "ang ng sa na mga at ay si ni ko mo siya ito para kung hindi",
        "hr": "i je u na se da za od su ne s sa kao što ali ili to",
        "et": "ja on ei et see oli ta kui aga või ka mis nii siis",
        "lt": "ir kad yra ne su į iš kaip bet tai jis ji",
        "lv": "un ir ka ar uz no par kā bet tas viņš",
        "sk": "a v sa na je že to s z do o k ale ako som by byť pre tak sú",
        "sl": "in je v na se da za od so ne s kot ali to",
        "so": "iyo oo waa ka ku in la ah u ee aan",
        "af": "die en van in is dat nie het om op te met vir",
        "ca": "el la els les de del i que en un una és per amb no",
        "cy": "y yr a ac yn i o ar mae",
        "sq": "dhe të në një për me nga është që si",
        "ga": "agus an na ar is le go",
    }.items()
}

DEVANAGARI_STOPWORDS: dict[str, frozenset[str]] = {
    "hi": frozenset(_W("है और के की में नहीं का को से एक यह हैं पर भी कि था लिए करने")),
    "mr": frozenset(_W("आहे आणि च्या नाही हे ते या व आहेत ला की होते मी")),
    "ne": frozenset(_W("छ र को हो छन् गर्न पनि यो मा भएको थियो")),
}

_URDU_MARKERS = set("ٹڈڑںےھ")
_PERSIAN_MARKERS = set("پچژگکی")
# split on spaces, not on \w: Indic vowel signs are combining marks that \w does not match
_PUNCT = "\"'“”‘’«»()[]{}.,;:!?¿¡।॥،؟…-–—"


@lru_cache(maxsize=4096)
def _script(ch: str) -> str | None:
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else None


def _stopword_vote(words: list[str], table: dict[str, frozenset[str]]) -> str | None:
    scores = Counter({lang: sum(w in vocab for w in words) for lang, vocab in table.items()})
    (best, top), *rest = scores.most_common()
    if top == 0 or (rest and rest[0][1] == top):
        return None
    return best


def detect_language_heuristic(text: str) -> str | None:
    """An ISO 639-1 code for ``text``, or ``None`` when undecided (see module limits)."""
    scripts = Counter(s for s in map(_script, text) if s)
    if not scripts:
        return None
    script = scripts.most_common(1)[0][0]
    if script in ("HIRAGANA", "KATAKANA", "CJK") and (scripts["HIRAGANA"] or scripts["KATAKANA"]):
        return "ja"
    if script in SCRIPT_LANGUAGE:
        return SCRIPT_LANGUAGE[script]
    letters = set(text)
    if script == "ARABIC":
        if letters & _URDU_MARKERS:
            return "ur"
        if letters & _PERSIAN_MARKERS:
            return "fa"
        return "ar"
    words = [w.strip(_PUNCT).lower() for w in text.split()]
    if script == "CYRILLIC":
        if letters & set("іїєґІЇЄҐ"):
            return "uk"
        if letters & set("ыэЫЭ"):
            return "ru"
        if letters & set("ъЪ"):
            return "bg"
        if letters & set("јљњћђџЈЉЊЋЂЏ"):
            return "sr"
        return "ru"
    if script == "DEVANAGARI":
        return _stopword_vote(words, DEVANAGARI_STOPWORDS) or "hi"
    if script == "LATIN":
        if letters & set("ơưđƠƯĐ") or re.search(
            r"[ạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]", text
        ):
            return "vi"
        return _stopword_vote(words, LATIN_STOPWORDS)
    return None


def detect_language(text: str) -> str | None:
    """``langdetect``'s answer when that package is installed, else the heuristic's."""
    try:
        import langdetect  # type: ignore[import-not-found]
    except ImportError:
        return detect_language_heuristic(text)
    try:
        langdetect.DetectorFactory.seed = 0  # langdetect is random unless seeded
        return str(langdetect.detect(text))
    except Exception:  # LangDetectException: no features in text
        return None
