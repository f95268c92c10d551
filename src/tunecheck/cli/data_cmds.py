"""Verbs for data: ``split`` and ``verify`` (being built)."""

from __future__ import annotations
