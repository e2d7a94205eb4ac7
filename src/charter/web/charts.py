"""Inline SVG charts for the dashboard: a PSI heat map (features by window) and time-series lines
on a date axis, with an optional shaded band.

Same conventions as :mod:`charter.reports.svg` (whose colours and font these share): each
function returns one self-contained ``<svg>`` (no script, no stylesheet, no external reference),
all text is escaped, numbers that are missing or not finite are skipped, and nothing is
estimated: the charts draw the stored series as they are. A chart with nothing to draw says so
("no data") rather than drawing an empty frame.

They are built for a year of daily windows: the heat map merges neighbouring cells of one
feature that fall in the same PSI band into one rectangle (its tooltip gives the range and the
largest value), so its size grows with the number of band changes, not with the number of
windows, and lines are single polylines.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from charter.reports.svg import (
    AXIS_COLOUR,
    GRID_COLOUR,
    NOTE_COLOUR,
    SERIES_COLOURS,
    TIER_COLOURS,
    finite_or_none,
)
from charter.reports.svg import _c as _c  # the reports' SVG primitives, one implementation
from charter.reports.svg import _esc as _esc
from charter.reports.svg import _svg_open as _open
from charter.reports.svg import _text as _text

# PSI bands (the conventional reading: below 0.10 stable, 0.10 to 0.25 a shift, 0.25 or more a
# major shift). The colours are the reports' tier colours, lightened for cells.
PSI_WARNING = 0.10
PSI_CRITICAL = 0.25
BAND_COLOURS: dict[str, str] = {
    "stable": "#a5d6a7",
    "warning": "#ffcc80",
    "critical": "#e57373",
    "none": "#eeeeee",
}
BAND_LABELS: dict[str, str] = {
    "stable": "PSI < 0.10",
    "warning": "0.10 to 0.25",
    "critical": "≥ 0.25",
    "none": "not computed",
}
_CHAR_W = 6.3


def psi_band(value: float | None) -> str:
    """``stable``, ``warning``, ``critical`` or ``none`` (missing or not finite)."""
    v = finite_or_none(value)
    if v is None:
        return "none"
    if v >= PSI_CRITICAL:
        return "critical"
    if v >= PSI_WARNING:
        return "warning"
    return "stable"


def _placeholder(width: float, height: float, title: str, message: str, cls: str) -> str:
    return (
        _open(width, height, f"{title}: {message}" if title else message, cls)
        + f'<rect x="0.5" y="0.5" width="{_c(width - 1)}" height="{_c(height - 1)}" '
        'fill="#fafafa" stroke="#cccccc"/>'
        + (_text(8, 15, title, size=12, weight="600") if title else "")
        + _text(width / 2, height / 2 + 4, message, anchor="middle", fill=NOTE_COLOUR)
        + "</svg>"
    )


def nice_ticks(lo: float, hi: float, count: int = 5) -> tuple[list[float], float]:
    """Round tick values covering ``[lo, hi]`` and their step."""
    span = hi - lo
    if not span > 0 or not math.isfinite(span):
        return [lo], 1.0
    raw = span / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = first
    while v <= hi + step * 1e-9:
        ticks.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return ticks, step


def _fmt_tick(v: float, step: float, percent: bool) -> str:
    if percent:
        v, step = 100 * v, 100 * step
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    text = f"{v:,.{decimals}f}"
    return text + ("%" if percent else "")


def _fmt_value(v: float, percent: bool = False) -> str:
    if percent:
        return f"{100 * v:.2f}%"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.3g}"
    return f"{v:,.4f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:,.0f}"


def _day(t: datetime) -> str:
    return t.strftime("%Y-%m-%d")


# --------------------------------------------------------------------------------- heat map
@dataclass(frozen=True)
class Column:
    """One window of the heat map (a version's window; two versions in one period are two)."""

    start: datetime
    end: datetime
    version: int


def psi_heatmap(
    features: Sequence[str],
    columns: Sequence[Column],
    values: Mapping[tuple[str, int], float | None],
    *,
    width: float = 880,
    title: str = "Feature PSI by window",
) -> str:
    """Features (rows) by windows (columns, in the given order), each cell coloured by its PSI
    band; ``values[(feature, column_index)]`` is the PSI (missing: not computed)."""
    cls = "chart heatmap"
    if not features or not columns:
        return _placeholder(width, 90, title, "no monitoring windows yet", cls)
    row_h = 16.0
    top = 44.0
    label_w = min(220.0, max(len(f) for f in features) * _CHAR_W + 14)
    left = label_w
    right = width - 12.0
    cell_w = (right - left) / len(columns)
    bottom = top + row_h * len(features)
    height = bottom + 40
    out = [_open(width, height, title, cls), _text(8, 15, title, size=12, weight="600")]
    # legend, right-aligned on the title row
    x = right
    for band in ("none", "critical", "warning", "stable"):
        label = BAND_LABELS[band]
        x -= len(label) * _CHAR_W
        out.append(_text(x, 31, label, fill="#333333"))
        x -= 15
        out.append(
            f'<rect x="{_c(x)}" y="22" width="11" height="11" fill="{BAND_COLOURS[band]}" '
            'stroke="#999999" stroke-width="0.5"/>'
        )
        x -= 12
    for i, feature in enumerate(features):
        y = top + i * row_h
        shown = feature if len(feature) <= 32 else feature[:31] + "…"
        out.append(_text(left - 6, y + row_h / 2 + 4, shown, anchor="end"))
        j = 0
        while j < len(columns):
            band = psi_band(values.get((feature, j)))
            k = j
            peak: float | None = None
            while k < len(columns) and psi_band(values.get((feature, k))) == band:
                v = finite_or_none(values.get((feature, k)))
                if v is not None and (peak is None or v > peak):
                    peak = v
                k += 1
            first, last = columns[j], columns[k - 1]
            span = (
                f"{_day(first.start)} to {_day(last.end)}"
                if k - j > 1
                else f"{_day(first.start)} to {_day(first.end)} (v{first.version})"
            )
            what = (
                "not computed"
                if peak is None
                else (f"PSI {peak:.3f}" if k - j == 1 else f"max PSI {peak:.3f}")
            )
            out.append(
                f"<g><title>{_esc(f'{feature}: {span}: {what}')}</title>"
                f'<rect x="{_c(left + j * cell_w)}" y="{_c(y + 1)}" '
                f'width="{_c(max(0.5, (k - j) * cell_w))}" height="{_c(row_h - 2)}" '
                f'fill="{BAND_COLOURS[band]}"/></g>'
            )
            j = k
    # x labels: up to six window dates, at the window's end
    picks = sorted({round(t * (len(columns) - 1) / 5) for t in range(6)})
    seen: set[str] = set()
    for j in picks:
        if _day(columns[j].end) in seen:
            continue
        seen.add(_day(columns[j].end))
        cx = left + (j + 0.5) * cell_w
        out.append(
            f'<line x1="{_c(cx)}" y1="{_c(bottom)}" x2="{_c(cx)}" y2="{_c(bottom + 4)}" '
            f'stroke="{AXIS_COLOUR}"/>'
        )
        out.append(_text(cx, bottom + 16, _day(columns[j].end), anchor="middle"))
    out.append(
        _text(
            (left + right) / 2,
            height - 6,
            f"{len(columns)} windows (window end)",
            anchor="middle",
            fill=NOTE_COLOUR,
        )
    )
    out.append("</svg>")
    return "".join(out)


# ------------------------------------------------------------------------------- time series
Point = tuple[datetime, float | None]


@dataclass(frozen=True)
class Band:
    """A shaded range (e.g. the estimated AUC's 95% band): ``(time, low, high)`` points."""

    label: str
    points: Sequence[tuple[datetime, float | None, float | None]]
    colour: int = 0


@dataclass(frozen=True)
class Line:
    """One line of a time series: its points, colour (an index into the series colours) and
    whether it is dashed (an earlier version beside the current one)."""

    label: str
    points: Sequence[Point]
    colour: int = 0
    dashed: bool = False


def _legend(
    entries: Sequence[tuple[str, str, bool]], left: float, right: float, y: float
) -> tuple[list[str], float]:
    """Right-aligned legend rows of (label, colour, dashed), wrapped to fit between ``left`` and
    ``right``; returns the SVG parts and the height used below ``y``."""
    rows: list[list[tuple[str, str, bool, float]]] = [[]]
    room = right - left
    used = 0.0
    for label, colour, dashed in entries:
        w = len(label) * _CHAR_W + 26
        if rows[-1] and used + w > room:
            rows.append([])
            used = 0.0
        rows[-1].append((label, colour, dashed, w))
        used += w
    out: list[str] = []
    for r, row in enumerate(rows):
        x = right - sum(w for *_, w in row)
        yy = y + r * 14
        for label, colour, dashed, w in row:
            dash = ' stroke-dasharray="4 2"' if dashed else ""
            out.append(
                f'<line x1="{_c(x + 2)}" y1="{_c(yy - 4)}" x2="{_c(x + 16)}" y2="{_c(yy - 4)}" '
                f'stroke="{colour}" stroke-width="2.5"{dash}/>'
            )
            out.append(_text(x + 20, yy, label, fill="#333333"))
            x += w
    return out, 14.0 * (len(rows) - 1)


def time_series(
    series: Sequence[Line],
    *,
    title: str,
    width: float = 430,
    height: float = 230,
    y_label: str = "",
    y_range: tuple[float, float] | None = None,
    percent: bool = False,
    bands: Sequence[Band] = (),
    reference: float | None = None,
    reference_label: str = "",
    zero_based: bool = False,
) -> str:
    """One line per ``(label, [(time, value), ...])`` on a date axis; missing values are skipped
    (the line joins its neighbours). ``bands`` are shaded behind the lines, ``reference`` is a
    dashed horizontal line (a baseline or a limit)."""
    cls = "chart timeseries"
    lines = []
    for line in series:
        clean = [
            (t, v) for t, v in ((t, finite_or_none(v)) for t, v in line.points) if v is not None
        ]
        lines.append((line, sorted(clean, key=lambda p: p[0])))
    shaded = []
    for b in bands:
        clean_b = []
        for t, lo, hi in b.points:
            flo, fhi = finite_or_none(lo), finite_or_none(hi)
            if flo is not None and fhi is not None:
                clean_b.append((t, flo, fhi))
        shaded.append((b, sorted(clean_b, key=lambda p: p[0])))
    times = [t for _, pts in lines for t, _ in pts] + [t for _, pts in shaded for t, _, _ in pts]
    if not times:
        return _placeholder(width, height, title, "no data", cls)
    ys = [v for _, pts in lines for _, v in pts]
    ys += [x for _, pts in shaded for _, lo, hi in pts for x in (lo, hi)]
    ref = finite_or_none(reference)
    if ref is not None:
        ys.append(ref)
    if y_range is not None:
        y0, y1 = y_range
    else:
        y0, y1 = min(ys), max(ys)
        if zero_based:
            y0 = min(0.0, y0)
        pad = (y1 - y0) * 0.08 or (abs(y1) * 0.1 or 1.0)
        y0, y1 = (y0 if zero_based and y0 == 0 else y0 - pad), y1 + pad
    t0, t1 = min(times).timestamp(), max(times).timestamp()
    if t1 <= t0:
        t0, t1 = t0 - 86400, t1 + 86400
    left, right = 54.0, width - 12.0
    colours = [SERIES_COLOURS[line.colour % len(SERIES_COLOURS)] for line, _ in lines]
    legend, extra = _legend(
        [(line.label, c, line.dashed) for (line, _), c in zip(lines, colours, strict=True)],
        8.0,
        right,
        32.0,
    )
    top = 44.0 + extra
    height += extra
    bottom = height - 36.0

    def px(t: datetime) -> float:
        return left + (t.timestamp() - t0) / (t1 - t0) * (right - left)

    def py(v: float) -> float:
        return bottom - (min(max(v, y0), y1) - y0) / (y1 - y0) * (bottom - top)

    out = [_open(width, height, title, cls), _text(8, 15, title, size=12, weight="600")]
    out.extend(legend)
    yticks, ystep = nice_ticks(y0, y1, 4)
    for v in yticks:
        out.append(
            f'<line x1="{_c(left)}" y1="{_c(py(v))}" x2="{_c(right)}" y2="{_c(py(v))}" '
            f'stroke="{GRID_COLOUR}"/>'
            + _text(left - 5, py(v) + 4, _fmt_tick(v, ystep, percent), anchor="end")
        )
    out.append(
        f'<line x1="{_c(left)}" y1="{_c(top)}" x2="{_c(left)}" y2="{_c(bottom)}" '
        f'stroke="{AXIS_COLOUR}"/><line x1="{_c(left)}" y1="{_c(bottom)}" x2="{_c(right)}" '
        f'y2="{_c(bottom)}" stroke="{AXIS_COLOUR}"/>'
    )
    n_ticks = 4 if width < 500 else 6
    for k in range(n_ticks):
        ts = t0 + (t1 - t0) * k / (n_ticks - 1)
        tx = left + (right - left) * k / (n_ticks - 1)
        anchor = "start" if k == 0 else ("end" if k == n_ticks - 1 else "middle")
        out.append(
            f'<line x1="{_c(tx)}" y1="{_c(bottom)}" x2="{_c(tx)}" y2="{_c(bottom + 4)}" '
            f'stroke="{AXIS_COLOUR}"/>'
            + _text(
                tx,
                bottom + 16,
                _day(datetime.fromtimestamp(ts, tz=min(times).tzinfo)),
                anchor=anchor,
            )
        )
    if y_label:
        out.append(_text(left, height - 6, y_label, fill=NOTE_COLOUR))
    for band, bpts in shaded:
        if not bpts:
            continue
        label = band.label
        colour = SERIES_COLOURS[band.colour % len(SERIES_COLOURS)]
        upper = [f"{_c(px(t))},{_c(py(hi))}" for t, _, hi in bpts]
        lower = [f"{_c(px(t))},{_c(py(lo))}" for t, lo, _ in reversed(bpts)]
        if len(bpts) == 1:  # one window: a short vertical bar shows the band
            t, lo, hi = bpts[0]
            out.append(
                f"<g><title>{_esc(f'{label}: {_fmt_value(lo)} to {_fmt_value(hi)}')}</title>"
                f'<rect x="{_c(px(t) - 3)}" y="{_c(py(hi))}" width="6" '
                f'height="{_c(max(1.0, py(lo) - py(hi)))}" fill="{colour}" fill-opacity="0.2"/>'
                "</g>"
            )
            continue
        out.append(
            f"<g><title>{_esc(label)}</title>"
            f'<polygon points="{" ".join(upper + lower)}" fill="{colour}" fill-opacity="0.18" '
            'stroke="none"/></g>'
        )
    if ref is not None:
        out.append(
            f'<line x1="{_c(left)}" y1="{_c(py(ref))}" x2="{_c(right)}" y2="{_c(py(ref))}" '
            f'stroke="{TIER_COLOURS["critical"]}" stroke-dasharray="4 3" stroke-width="1.2"/>'
        )
        if reference_label:
            out.append(
                _text(
                    right - 2,
                    py(ref) - 4,
                    reference_label,
                    anchor="end",
                    fill=TIER_COLOURS["critical"],
                    size=10,
                )
            )
    for (line, pts), colour in zip(lines, colours, strict=True):
        if not pts:
            continue
        label = line.label
        last_v = pts[-1][1]
        out.append(f"<g><title>{_esc(f'{label}: latest {_fmt_value(last_v, percent)}')}</title>")
        if len(pts) > 1:
            path = " ".join(f"{_c(px(t))},{_c(py(v))}" for t, v in pts)
            dash = ' stroke-dasharray="5 3"' if line.dashed else ""
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
            )
        out.append("</g>")
        if len(pts) <= 60:  # markers with their own tooltips while they stay readable
            for t, v in pts:
                out.append(
                    f"<g><title>{_esc(f'{label} {_day(t)}: {_fmt_value(v, percent)}')}</title>"
                    f'<circle cx="{_c(px(t))}" cy="{_c(py(v))}" r="2.6" fill="{colour}"/></g>'
                )
    out.append("</svg>")
    return "".join(out)


def bar_series(
    points: Sequence[tuple[datetime, datetime, float | None]],
    *,
    title: str,
    width: float = 430,
    height: float = 230,
    y_label: str = "",
) -> str:
    """Vertical bars, one per window ``(start, end, value)`` spanning the window (volume)."""
    cls = "chart bars"
    clean = [
        (s, e, v) for s, e, v in ((s, e, finite_or_none(v)) for s, e, v in points) if v is not None
    ]
    if not clean:
        return _placeholder(width, height, title, "no data", cls)
    t0 = min(s for s, _, _ in clean).timestamp()
    t1 = max(e for _, e, _ in clean).timestamp()
    if t1 <= t0:
        t1 = t0 + 86400
    hi = max(max(v for _, _, v in clean), 0.0) or 1.0
    left, right, top = 54.0, width - 12.0, 44.0
    bottom = height - 36.0
    yticks, ystep = nice_ticks(0.0, hi * 1.05, 4)
    y1 = max(yticks[-1], hi)

    def px(ts: float) -> float:
        return left + (ts - t0) / (t1 - t0) * (right - left)

    def py(v: float) -> float:
        return bottom - max(v, 0.0) / y1 * (bottom - top)

    out = [_open(width, height, title, cls), _text(8, 15, title, size=12, weight="600")]
    for v in yticks:
        out.append(
            f'<line x1="{_c(left)}" y1="{_c(py(v))}" x2="{_c(right)}" y2="{_c(py(v))}" '
            f'stroke="{GRID_COLOUR}"/>'
            + _text(left - 5, py(v) + 4, _fmt_tick(v, ystep, False), anchor="end")
        )
    colour = SERIES_COLOURS[0]
    for s, e, v in clean:
        x0, x1 = px(s.timestamp()), px(e.timestamp())
        w = max(1.0, (x1 - x0) * 0.85)
        out.append(
            f"<g><title>{_esc(f'{_day(s)} to {_day(e)}: {_fmt_value(v)}')}</title>"
            f'<rect x="{_c(x0 + (x1 - x0 - w) / 2)}" y="{_c(py(v))}" width="{_c(w)}" '
            f'height="{_c(max(0.5, bottom - py(v)))}" fill="{colour}" fill-opacity="0.85"/></g>'
        )
    out.append(
        f'<line x1="{_c(left)}" y1="{_c(bottom)}" x2="{_c(right)}" y2="{_c(bottom)}" '
        f'stroke="{AXIS_COLOUR}"/>'
    )
    for k in range(4):
        ts = t0 + (t1 - t0) * k / 3
        anchor = "start" if k == 0 else ("end" if k == 3 else "middle")
        out.append(
            _text(
                px(ts),
                bottom + 16,
                _day(datetime.fromtimestamp(ts, tz=clean[0][0].tzinfo)),
                anchor=anchor,
            )
        )
    if y_label:
        out.append(_text(left, height - 6, y_label, fill=NOTE_COLOUR))
    out.append("</svg>")
    return "".join(out)
