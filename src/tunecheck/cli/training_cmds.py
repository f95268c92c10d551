"""Verbs for during-training work: ``diagnose`` and ``checkpoints`` (being built)."""

from __future__ import annotations
