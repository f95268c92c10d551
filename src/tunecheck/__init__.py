"""tunecheck: did fine-tuning this language model actually help?

Runs the base model (with its best prompt) and the fine-tuned model on a locked,
held-out test set, scores both, checks for capability regressions, tests every
difference for significance and ends with a verdict: DEPLOY, ITERATE or ABANDON.

Heavy libraries (torch, transformers) are imported lazily by the modules that
need them, so ``import tunecheck`` stays fast.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
