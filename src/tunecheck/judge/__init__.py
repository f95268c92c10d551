"""The LLM judge: rubric (pointwise) and pairwise judging, and its calibration against people.

* :mod:`tunecheck.judge.config` - the ``judge:`` block of a task (validated with the spec);
* :mod:`tunecheck.judge.templates` - the default prompt templates and placeholder checks;
* :mod:`tunecheck.judge.parsing` - strict parsing of the judge's JSON answers;
* :mod:`tunecheck.judge.stage` - the run stage: cached judge calls, repair turn, scores;
* :mod:`tunecheck.judge.pairwise` - both orders -> outcome, win rate, sign test, bias checks;
* :mod:`tunecheck.judge.agreement` - judge vs human labels (accuracy, kappas, intervals);
* :mod:`tunecheck.judge.pandalm` - converters for the PandaLM human-annotated test set.

This package's ``__init__`` stays light: the spec imports :mod:`tunecheck.judge.config`.
"""

from tunecheck.judge.config import JUDGE_METRICS, JudgeSpec

__all__ = ["JUDGE_METRICS", "JudgeSpec"]
