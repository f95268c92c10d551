"""Code tasks: problem formats, code extraction, execution in the sandbox and pass@k.

See :mod:`tunecheck.code.problems` (HumanEval, MBPP and plain rows),
:mod:`tunecheck.code.extract` (what is taken from a model's output),
:mod:`tunecheck.code.passk` (Chen et al.'s estimator) and :mod:`tunecheck.sandbox`.
"""

from tunecheck.code.execute import SampleRun, make_sandbox, run_samples
from tunecheck.code.extract import build_program, extract_code, fenced_blocks
from tunecheck.code.passk import estimate_pass_at_k, pass_at_k
from tunecheck.code.problems import (
    CodeProblem,
    code_examples,
    default_fields,
    detect_format,
    problem_from_example,
    problem_of,
)

__all__ = [
    "CodeProblem",
    "SampleRun",
    "build_program",
    "code_examples",
    "default_fields",
    "detect_format",
    "estimate_pass_at_k",
    "extract_code",
    "fenced_blocks",
    "make_sandbox",
    "pass_at_k",
    "problem_from_example",
    "problem_of",
    "run_samples",
]
