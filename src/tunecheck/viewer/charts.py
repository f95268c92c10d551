"""Charts as inline SVG, drawn on the server (no script, no network, prints in the report).

Every label is escaped; every chart has a ``<title>`` per mark so hovering shows the
exact numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

_W = 640
_ROW = 26
_LEFT = 250
_RIGHT = 24


@dataclass
class Interval:
    """One row of an interval chart: a point estimate and its interval."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    note: str = ""
    status: str = "neutral"  # good, bad, warn, neutral: the mark's colour


def _fmt(x: float, scale: float, unit: str) -> str:
    return f"{x * scale:+.1f}{unit}"


def interval_chart(
    rows: Sequence[Interval],
    *,
    scale: float = 100.0,
    unit: str = " pts",
    thresholds: Sequence[tuple[float, str]] = (),
    title: str = "",
) -> Markup:
    """Horizontal point-and-interval chart around zero (deltas, relative changes).

    ``thresholds``: vertical dashed lines ``(x, label)`` (probe warn/fail limits).
    """
    finite = (
        [v for r in rows for v in (r.value, r.low, r.high) if v is not None and math.isfinite(v)]
        + [x for x, _ in thresholds]
        + [0.0]
    )
    lo, hi = min(finite), max(finite)
    pad = (hi - lo) * 0.08 or 0.05
    lo, hi = lo - pad, hi + pad
    height = 30 + _ROW * len(rows) + 24
    plot_w = _W - _LEFT - _RIGHT

    def x(v: float) -> float:
        return _LEFT + (v - lo) / (hi - lo) * plot_w

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {_W} {height}" width="{_W}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>" if title else "",
        f'<line x1="{x(0):.1f}" y1="20" x2="{x(0):.1f}" y2="{height - 22}" class="zero"/>',
    ]
    for value, label in thresholds:
        parts.append(
            f'<line x1="{x(value):.1f}" y1="20" x2="{x(value):.1f}" y2="{height - 22}" '
            f'class="threshold"/><text x="{x(value):.1f}" y="14" class="tick" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    for i, r in enumerate(rows):
        y = 30 + _ROW * i + _ROW / 2
        parts.append(
            f'<text x="{_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" class="label">'
            f"{escape(r.label)}</text>"
        )
        if r.value is None or not math.isfinite(r.value):
            parts.append(f'<text x="{_LEFT + 4}" y="{y + 4:.1f}" class="tick">n/a</text>')
            continue
        tip = _fmt(r.value, scale, unit)
        if r.low is not None and r.high is not None:
            tip += f" [{_fmt(r.low, scale, unit)}, {_fmt(r.high, scale, unit)}]"
            parts.append(
                f'<line x1="{x(r.low):.1f}" y1="{y:.1f}" x2="{x(r.high):.1f}" y2="{y:.1f}" '
                f'class="ci {r.status}"/>'
            )
        parts.append(
            f'<circle cx="{x(r.value):.1f}" cy="{y:.1f}" r="5" class="pt {r.status}">'
            f"<title>{escape(r.label)}: {escape(tip)} {escape(r.note)}</title></circle>"
        )
    for v in (lo + pad, 0.0, hi - pad):
        parts.append(
            f'<text x="{x(v):.1f}" y="{height - 6}" text-anchor="middle" class="tick">'
            f"{escape(_fmt(v, scale, unit))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass
class Series:
    """A named line: x and y values of equal length."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    low: Sequence[float | None] | None = None
    high: Sequence[float | None] | None = None


_COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"]


def line_chart(
    series: Sequence[Series],
    *,
    x_label: str = "",
    y_label: str = "",
    x_ticks: Sequence[tuple[float, str]] | None = None,
    zero_line: bool = False,
    height: int = 220,
) -> Markup:
    """Lines (with an optional interval band) on one axis: trends and training curves."""
    xs = [float(v) for s in series for v in s.xs]
    ys = [
        float(v)
        for s in series
        for v in [*s.ys, *(s.low or []), *(s.high or [])]
        if v is not None and math.isfinite(float(v))
    ]
    if zero_line:
        ys.append(0.0)
    if not xs or not ys:
        return Markup('<p class="muted">nothing to plot</p>')
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        y0, y1 = y0 - 1, y1 + 1
    pad = (y1 - y0) * 0.08
    y0, y1 = y0 - pad, y1 + pad
    left, right, top, bottom = 60, 16, 12, 36
    pw, ph = _W - left - right, height - top - bottom

    def px(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * pw

    def py(v: float) -> float:
        return top + (y1 - v) / (y1 - y0) * ph

    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {_W} {height}" width="{_W}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>',
    ]
    if zero_line and y0 < 0 < y1:
        parts.append(
            f'<line x1="{left}" y1="{py(0):.1f}" x2="{left + pw}" y2="{py(0):.1f}" class="zero"/>'
        )
    for v in (y0 + pad, (y0 + y1) / 2, y1 - pad):
        parts.append(
            f'<text x="{left - 6}" y="{py(v) + 4:.1f}" text-anchor="end" class="tick">{v:.3g}</text>'
        )
    ticks = x_ticks or [(x0, f"{x0:g}"), (x1, f"{x1:g}")]
    for v, label in ticks:
        parts.append(
            f'<text x="{px(v):.1f}" y="{height - 20}" text-anchor="middle" class="tick">'
            f"{escape(label)}</text>"
        )
    for k, s in enumerate(series):
        colour = _COLOURS[k % len(_COLOURS)]
        if s.low is not None and s.high is not None:
            for xv, lo_v, hi_v in zip(s.xs, s.low, s.high, strict=True):
                if lo_v is not None and hi_v is not None:
                    parts.append(
                        f'<line x1="{px(xv):.1f}" y1="{py(lo_v):.1f}" x2="{px(xv):.1f}" '
                        f'y2="{py(hi_v):.1f}" stroke="{colour}" class="band"/>'
                    )
        points = " ".join(
            f"{px(xv):.1f},{py(yv):.1f}"
            for xv, yv in zip(s.xs, s.ys, strict=True)
            if yv is not None and math.isfinite(yv)
        )
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" class="line"/>')
        for xv, yv in zip(s.xs, s.ys, strict=True):
            if yv is not None and math.isfinite(yv):
                parts.append(
                    f'<circle cx="{px(xv):.1f}" cy="{py(yv):.1f}" r="3" fill="{colour}">'
                    f"<title>{escape(s.name)}: {yv:.4g} at {xv:g}</title></circle>"
                )
        parts.append(
            f'<text x="{left + 8 + 150 * k}" y="{height - 4}" class="legend" fill="{colour}">'
            f"■ {escape(s.name)}</text>"
        )
    if x_label:
        parts.append(
            f'<text x="{left + pw}" y="{height - 4}" text-anchor="end" class="tick">'
            f"{escape(x_label)}</text>"
        )
    if y_label:
        parts.append(f'<text x="4" y="{top + 10}" class="tick">{escape(y_label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
