"""Language identification for IFEval's language checks, exactly as the reference scores them.

The IFEval reference (Google's ``instruction_following_eval`` and lm-evaluation-harness's copy of it)
calls ``langdetect.detect`` on the response; so does tunecheck. ``langdetect`` draws random samples
of the text's n-grams, so two calls on the same text can disagree unless its ``DetectorFactory.seed``
is fixed: tunecheck fixes it to 0, as ``langdetect``'s documentation recommends for reproducible
results, making every verdict reproducible run to run.
"""

from __future__ import annotations

import langdetect
from langdetect import DetectorFactory
from langdetect.lang_detect_exception import LangDetectException

SEED = 0


def detect_language(text: str) -> str | None:
    """The ISO 639-1 code ``langdetect`` gives ``text``; ``None`` when it cannot tell (no letters).

    IFEval counts an undecidable response as following a language instruction.
    """
    DetectorFactory.seed = SEED  # set on every call: another library may have changed it
    try:
        return str(langdetect.detect(text))
    except LangDetectException:
        return None
