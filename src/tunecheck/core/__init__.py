"""Core types every layer shares, independent of the YAML spec (see :mod:`tunecheck.core.config`).

The spec (:mod:`tunecheck.spec`) converts into these; nothing in here imports it.
"""

from __future__ import annotations

from tunecheck.core.config import (
    CodeSettings,
    FieldMap,
    FieldMapLike,
    InvalidSetting,
    Parser,
    ParserLike,
    Thresholds,
    as_code_settings,
    as_field_map,
    as_parser,
    as_thresholds,
)

__all__ = [
    "CodeSettings",
    "FieldMap",
    "FieldMapLike",
    "InvalidSetting",
    "Parser",
    "ParserLike",
    "Thresholds",
    "as_code_settings",
    "as_field_map",
    "as_parser",
    "as_thresholds",
]
