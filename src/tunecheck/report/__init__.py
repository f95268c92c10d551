"""Reports built from a :class:`~tunecheck.results.RunResult`: terminal, JSON, Markdown.

All are pure functions of the result, so ``tunecheck report RUN_ID`` rebuilds them
from the store without running any model.
"""

from __future__ import annotations

from tunecheck.report.json_report import json_schema, load_json, render_json
from tunecheck.report.markdown import render_markdown
from tunecheck.report.terminal import render_terminal

__all__ = ["json_schema", "load_json", "render_json", "render_markdown", "render_terminal"]
