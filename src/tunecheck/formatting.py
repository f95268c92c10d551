"""Numbers as every report, verdict reason and viewer page writes them: the one place.

``fmt_*`` write prose (``+3.2 pts [+1.0, +5.4]``, ``p=0.023``); the short forms (``pts``,
``pval``...) fill table cells, where the column header carries the unit.
"""

from __future__ import annotations


def fmt_p(p: float | None) -> str:
    """``p<0.001`` or ``p=0.023``."""
    if p is None:
        return "p=n/a"
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def fmt_pts(x: float | None) -> str:
    """A difference of proportions in percentage points: ``+3.2 pts``."""
    return "n/a" if x is None else f"{x * 100:+.1f} pts"


def fmt_ci(lo: float | None, hi: float | None) -> str:
    """An interval in points: ``[+1.0, +5.4]``."""
    if lo is None or hi is None:
        return "[n/a]"
    return f"[{lo * 100:+.1f}, {hi * 100:+.1f}]"


def fmt_pct(x: float | None) -> str:
    """A relative change: ``-4.1%``."""
    return "n/a" if x is None else f"{x * 100:+.1f}%"


def value(x: float | None) -> str:
    """A metric value: ``0.734``."""
    return "n/a" if x is None else f"{x:.3f}"


def pts(x: float | None) -> str:
    """A table cell in points (the header says so): ``+3.2``."""
    return "n/a" if x is None else f"{x * 100:+.1f}"


def ci_pts(lo: float | None, hi: float | None) -> str:
    """A table cell interval in points."""
    if lo is None or hi is None:
        return "n/a"
    return f"[{lo * 100:+.1f}, {hi * 100:+.1f}]"


pct = fmt_pct


def ci_pct(lo: float | None, hi: float | None) -> str:
    """A relative interval; an upper bound of ``None`` under a known lower bound is unbounded."""
    if lo is None:
        return "n/a"
    return f"[{lo * 100:+.1f}, {'+inf' if hi is None else f'{hi * 100:+.1f}'}]"


def pval(p: float | None) -> str:
    """A table cell p-value: ``<0.001`` or ``0.023``."""
    if p is None:
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def mde_pts(x: float | None) -> str:
    """A minimum detectable effect in points: ``4.0 pts``."""
    return "n/a" if x is None else f"{x * 100:.1f} pts"
