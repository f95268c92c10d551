"""Verbs around evaluation runs: ``run``, ``runs``, ``show``, ``report``."""

from __future__ import annotations
