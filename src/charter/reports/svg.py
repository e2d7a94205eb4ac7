"""Inline SVG charts for reports: small pure functions from given numbers to an SVG string.

Conventions
-----------
* Every function returns one ``<svg>`` element that is well-formed XML and self-contained: no
  script, no stylesheet, no reference to anything outside itself, so it works pasted into an HTML
  file opened from disk (and in WeasyPrint). It carries ``width``, ``height`` and a ``viewBox``,
  so CSS may scale it.
* All text (titles, labels, tooltips) is escaped with :func:`html.escape`.
* Numbers that are ``None``, NaN, infinite, negative or not numbers at all are drawn as zero: a
  density or share that is unknown gets no bar.
* The charts draw what they are given and estimate nothing. Their only decisions are about
  display: the x range of a histogram may be clipped to keep a long tail from flattening the plot
  (the chart says so), bins far narrower than a pixel are drawn as marked point masses, and
  categories beyond ``max_bars`` are summed into one ``"other (n)"`` bar.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from itertools import pairwise
from typing import Any

REFERENCE_COLOUR = "#4c78a8"
CURRENT_COLOUR = "#f58518"
AXIS_COLOUR = "#555555"
GRID_COLOUR = "#e4e4e4"
NOTE_COLOUR = "#5f5f5f"
NEW_CATEGORY_COLOUR = "#b3261e"
TIER_COLOURS: dict[str, str] = {"stable": "#2e7d32", "warning": "#a35a00", "critical": "#c62828"}
UNKNOWN_TIER_COLOUR = "#616161"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"

_CHAR_W = 6.3  # rough advance of one 11 px sans-serif character, for layout estimates only
_SPIKE = 1e-6  # a bin narrower than this fraction of the x axis is drawn as a point mass
_TAIL = 0.01  # a histogram may hide at most this share of either side's mass beyond each end
_PAD = 0.04  # ... and then shows this fraction of the kept span beyond the cut


# ------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------


def _esc(text: object) -> str:
    return escape(str(text), quote=True)


def finite_or_none(value: Any) -> float | None:
    """``value`` as a finite float, or None (for None, booleans, text, NaN and infinities)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _amount(values: Sequence[object], i: int) -> float:
    """The i-th value as a non-negative finite float; missing or unusable values are 0."""
    x = finite_or_none(values[i]) if i < len(values) else None
    return x if x is not None and x > 0 else 0.0


def _c(x: float) -> str:
    """A coordinate with at most two decimals, never ``-0``."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s in ("", "-0") else s


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(1, limit - 1)] + "…"


def _nice_step(span: float, count: int) -> float:
    raw = span / max(count, 1)
    if not raw > 0 or not math.isfinite(raw):
        return 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0):
        if raw <= m * mag * (1 + 1e-9):
            return m * mag
    return 10.0 * mag


def _ticks(lo: float, hi: float, count: int) -> tuple[list[float], float]:
    """Round tick values inside [lo, hi], about ``count`` of them, and their step."""
    step = _nice_step(hi - lo, count)
    first = math.ceil(lo / step - 1e-9) * step
    out: list[float] = []
    for k in range(4 * count + 4):
        v = first + k * step
        if v > hi + step * 1e-9 or (out and v <= out[-1]):
            break
        out.append(0.0 if abs(v) < step * 1e-9 else v)
    return out, step


def _decimals(step: float) -> int:
    for d in range(10):
        scaled = step * 10**d
        if abs(scaled - round(scaled)) < 1e-6 * max(1.0, scaled):
            return d
    return 10


def _fmt_tick(v: float, step: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e7 or a < 1e-4:
        return f"{v:.3g}"
    return f"{v:,.{_decimals(step)}f}"


def _fmt_value(v: float) -> str:
    """A value in a note: six significant digits, as the report's bin labels are."""
    return f"{v:.6g}"


def _fmt_share(v: float) -> str:
    p = 100.0 * v
    if p == 0:
        return "0%"
    if p >= 10:
        return f"{p:.1f}%"
    if p >= 0.1:
        return f"{p:.2f}%"
    return f"{p:.2g}%"


def _svg_open(width: float, height: float, label: str, cls: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{_esc(cls)}" width="{_c(width)}" '
        f'height="{_c(height)}" viewBox="0 0 {_c(width)} {_c(height)}" role="img" '
        f'aria-label="{_esc(label)}" font-family="{FONT}" font-size="11">'
        f"<title>{_esc(label)}</title>"
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: float | None = None,
    fill: str = "#222222",
    weight: str | None = None,
    extra: str = "",
) -> str:
    attrs = f'x="{_c(x)}" y="{_c(y)}" fill="{fill}"'
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    if size is not None:
        attrs += f' font-size="{_c(size)}"'
    if weight is not None:
        attrs += f' font-weight="{weight}"'
    if extra:
        attrs += " " + extra
    return f"<text {attrs}>{_esc(text)}</text>"


def _title_row(title: str, room: float) -> str:
    limit = max(8, int(room / (_CHAR_W * 1.05)))
    return _text(8, 15, _truncate(title, limit), size=12, weight="600")


def _legend(right: float, y: float, entries: Sequence[tuple[str, str, str]]) -> tuple[str, float]:
    """Right-aligned legend of (label, fill, stroke) swatches; returns the SVG and its width."""
    parts: list[str] = []
    x = right
    for label, fill, stroke in reversed(entries):
        x -= len(label) * _CHAR_W
        parts.append(_text(x, y + 4, label, fill="#333333"))
        x -= 16
        parts.append(
            f'<rect x="{_c(x)}" y="{_c(y - 5)}" width="11" height="11" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"/>'
        )
        x -= 12
    return "".join(reversed(parts)), right - x


def _placeholder(width: float, height: float, title: str, message: str, cls: str) -> str:
    return (
        _svg_open(width, height, f"{title}: {message}" if title else message, cls)
        + f'<rect x="0.5" y="0.5" width="{_c(width - 1)}" height="{_c(height - 1)}" '
        'fill="#fafafa" stroke="#cccccc"/>'
        + (_title_row(title, width - 16) if title else "")
        + _text(width / 2, height / 2 + 4, message, anchor="middle", fill=NOTE_COLOUR)
        + "</svg>"
    )


# ------------------------------------------------------------------------------------------
# histogram
# ------------------------------------------------------------------------------------------


def overlaid_histogram(
    edges: Sequence[object],
    ref_density: Sequence[object],
    cur_density: Sequence[object],
    *,
    width: float = 560,
    height: float = 250,
    title: str = "",
    reference_label: str = "reference",
    current_label: str = "current",
) -> str:
    """Reference and current densities over the same bins, as two overlaid step areas.

    ``edges`` are the bin edges (``len(edges) == len(density) + 1``, non-decreasing); density ``i``
    is drawn over ``[edges[i], edges[i + 1])``. Missing densities are zero. The reference is a
    filled blue area, the current an orange outline over a light orange fill.

    Display rules, each stated on the chart when it applies:

    * a bin narrower than a millionth of the axis (a point mass, e.g. an integer value) is drawn
      as a marked spike reaching the top of the plot, and the y scale ignores it;
    * a long tail is clipped: let the body run from the point below which 1% of either side's
      mass lies (interpolated within its bin) to the point above which 1% lies; when the range
      beyond one end of the body is longer than the body itself, the x axis stops 4% of the
      body's span beyond that end.
    """
    cls = "chart histogram"
    label = title or "distribution"
    raw = [finite_or_none(x) for x in edges]
    xs = [x for x in raw if x is not None]
    n = len(raw) - 1
    if n < 1 or len(xs) != len(raw):
        return _placeholder(width, height, title, "no distribution to plot", cls)
    if any(b < a for a, b in pairwise(xs)):
        return _placeholder(width, height, title, "bin edges are not increasing", cls)
    lo, hi = xs[0], xs[-1]
    if not hi > lo:
        return _placeholder(width, height, title, f"every value equals {_fmt_value(lo)}", cls)
    ref = [_amount(ref_density, i) for i in range(n)]
    cur = [_amount(cur_density, i) for i in range(n)]
    span = hi - lo
    spike = [xs[i + 1] - xs[i] <= span * _SPIKE and (ref[i] > 0 or cur[i] > 0) for i in range(n)]

    # x range: clip a long tail on either side (see the docstring)
    x_lo, x_hi = lo, hi
    sides = [d for d in (ref, cur) if any(d)]
    body_lo = min(_mass_point(xs, d, _TAIL) for d in sides) if sides else lo
    body_hi = max(_mass_point(xs, d, 1 - _TAIL) for d in sides) if sides else hi
    body = body_hi - body_lo
    if body > 0:
        if hi - body_hi > body:
            x_hi = min(hi, body_hi + _PAD * body)
        if body_lo - lo > body:
            x_lo = max(lo, body_lo - _PAD * body)
    visible = [i for i in range(n) if xs[i + 1] >= x_lo and xs[i] <= x_hi]
    notes: list[str] = []
    if x_hi < hi:
        notes.append(
            f"x axis cut at {_fmt_value(x_hi)}: the maximum is {_fmt_value(hi)}; "
            "under 1% of each side lies above"
        )
    if x_lo > lo:
        notes.append(
            f"x axis starts at {_fmt_value(x_lo)}: the minimum is {_fmt_value(lo)}; "
            "under 1% of each side lies below"
        )
    spikes = [i for i in visible if spike[i]]
    if spikes:
        notes.append("▲ point mass (bin narrower than a pixel): drawn to the top, off scale")

    y_max = max((max(ref[i], cur[i]) for i in visible if not spike[i]), default=0.0)
    if y_max <= 0 and not spikes:
        return _placeholder(width, height, title, "all densities are zero", cls)
    y_max = 1.0 if y_max <= 0 else y_max * 1.06

    left, right = 30.0, width - 14.0
    top = 44.0
    bottom = height - (22.0 + 15.0 * len(notes) + 12.0)

    def x_of(v: float) -> float:
        v = min(max(v, x_lo), x_hi)
        return left + (v - x_lo) / (x_hi - x_lo) * (right - left)

    def y_of(d: float) -> float:
        return bottom - min(d, y_max) / y_max * (bottom - top)

    def area(values: list[float]) -> str:
        pts: list[tuple[str, str]] = []
        for i in visible:
            y = _c(y_of(0.0 if spike[i] else values[i]))
            for x in (_c(x_of(xs[i])), _c(x_of(xs[i + 1]))):
                if not pts or pts[-1] != (x, y):
                    pts.append((x, y))
        base = _c(bottom)
        path = [(pts[0][0], base), *pts, (pts[-1][0], base)]
        return "M " + " L ".join(f"{x} {y}" for x, y in path) + " Z"

    no_current = not any(cur)
    cur_label = f"{current_label} (no data)" if no_current else current_label
    legend, _ = _legend(
        right,
        31,
        [
            (reference_label, _fill(REFERENCE_COLOUR, 0.35), REFERENCE_COLOUR),
            (cur_label, _fill(CURRENT_COLOUR, 0.12), CURRENT_COLOUR),
        ],
    )
    out = [_svg_open(width, height, label, cls)]
    if title:
        out.append(_title_row(title, width - 16))
    out.append(legend)
    out.append(
        f'<path d="{area(ref)}" fill="{REFERENCE_COLOUR}" fill-opacity="0.35" '
        f'stroke="{REFERENCE_COLOUR}" stroke-width="1" stroke-linejoin="round"/>'
    )
    out.append(
        f'<path d="{area(cur)}" fill="{CURRENT_COLOUR}" fill-opacity="0.12" '
        f'stroke="{CURRENT_COLOUR}" stroke-width="1.8" stroke-linejoin="round"/>'
    )
    for i in spikes:
        x = x_of(xs[i])
        tip = (
            f"point mass at {_fmt_value(xs[i])}: bin [{_fmt_value(xs[i])}, "
            f"{_fmt_value(xs[i + 1])}) is narrower than a pixel; its density is off scale"
        )
        out.append(f"<g><title>{_esc(tip)}</title>")
        for share, dx, colour in ((ref[i], -2.0, REFERENCE_COLOUR), (cur[i], 2.0, CURRENT_COLOUR)):
            if share > 0:
                out.append(
                    f'<line x1="{_c(x + dx)}" y1="{_c(bottom)}" x2="{_c(x + dx)}" '
                    f'y2="{_c(top)}" stroke="{colour}" stroke-width="2.5"/>'
                    f'<polygon points="{_c(x + dx - 4)},{_c(top)} {_c(x + dx + 4)},{_c(top)} '
                    f'{_c(x + dx)},{_c(top - 7)}" fill="{colour}"/>'
                )
        out.append("</g>")
    # axes
    out.append(
        f'<line x1="{_c(left)}" y1="{_c(bottom)}" x2="{_c(right)}" y2="{_c(bottom)}" '
        f'stroke="{AXIS_COLOUR}"/>'
        f'<line x1="{_c(left)}" y1="{_c(top)}" x2="{_c(left)}" y2="{_c(bottom)}" '
        f'stroke="{AXIS_COLOUR}"/>'
    )
    out.append(
        _text(
            14,
            (top + bottom) / 2,
            "density",
            anchor="middle",
            fill=NOTE_COLOUR,
            extra=f'transform="rotate(-90 14 {_c((top + bottom) / 2)})"',
        )
    )
    ticks, step = _ticks(x_lo, x_hi, max(2, int((right - left) // 95)))
    for v in ticks:
        x = x_of(v)
        text = _fmt_tick(v, step)
        half = len(text) * _CHAR_W / 2
        anchor = "end" if x + half > width - 2 else ("start" if x - half < 2 else "middle")
        out.append(
            f'<line x1="{_c(x)}" y1="{_c(bottom)}" x2="{_c(x)}" y2="{_c(bottom + 4)}" '
            f'stroke="{AXIS_COLOUR}"/>' + _text(x, bottom + 16, text, anchor=anchor)
        )
    for k, note in enumerate(notes):
        fit = _truncate(note, int((width - left) / (_CHAR_W * 0.95)))
        out.append(_text(left, bottom + 32 + 15 * k, fit, size=10.5, fill=NOTE_COLOUR))
    out.append("</svg>")
    return "".join(out)


def _mass_point(xs: Sequence[float], density: Sequence[float], level: float) -> float:
    """The x below which ``level`` of the mass of a histogram lies, linear within its bin."""
    masses = [d * (b - a) for d, (a, b) in zip(density, pairwise(xs), strict=False)]
    goal = level * sum(masses)
    below = 0.0
    for i, m in enumerate(masses):
        if m > 0 and below + m >= goal:
            return xs[i] + (goal - below) / m * (xs[i + 1] - xs[i])
        below += m
    return xs[-1]


def _fill(colour: str, opacity: float) -> str:
    """A hex colour blended with white, for legend swatches (no opacity needed)."""
    rgb = [int(colour[k : k + 2], 16) for k in (1, 3, 5)]
    mixed = [round(255 - (255 - c) * opacity) for c in rgb]
    return "#" + "".join(f"{c:02x}" for c in mixed)


# ------------------------------------------------------------------------------------------
# grouped bars
# ------------------------------------------------------------------------------------------


def grouped_bars(
    labels: Sequence[object],
    ref_share: Sequence[object],
    cur_share: Sequence[object],
    *,
    width: float = 560,
    height: float = 190,
    title: str = "",
    reference_label: str = "reference",
    current_label: str = "current",
    max_bars: int = 30,
    highlight: Iterable[object] = (),
    max_label_chars: int = 24,
) -> str:
    """Reference and current shares side by side, one pair of bars per label, in label order.

    ``height`` is the height of the bar area; the SVG adds a title band above it and a label band
    below it that grows with the labels. Labels longer than ``max_label_chars`` are truncated (the
    full text is in the tooltip) and rotated when they do not fit under their bars. With more than
    ``max_bars`` labels, the ``max_bars - 1`` with the largest share on either side are kept in
    their order and the rest are summed into one last bar ``"other (n)"``. Labels in
    ``highlight`` (e.g. categories new in the current data) are drawn in red.
    """
    cls = "chart bars"
    names = [str(x) for x in labels]
    n = len(names)
    if n == 0:
        return _placeholder(width, height + 44, title, "no bins or categories to plot", cls)
    marked = {str(h) for h in highlight}
    items = [
        (names[i], _amount(ref_share, i), _amount(cur_share, i), names[i] in marked)
        for i in range(n)
    ]
    limit = max(2, max_bars)
    if n > limit:
        order = sorted(range(n), key=lambda i: (-max(items[i][1], items[i][2]), i))
        rest = sorted(order[limit - 1 :])
        items = [items[i] for i in sorted(order[: limit - 1])]
        items.append(
            (
                f"other ({len(rest)})",
                sum(_amount(ref_share, i) for i in rest),
                sum(_amount(cur_share, i) for i in rest),
                False,
            )
        )
    k = len(items)
    top_value = max(max(r, c) for _, r, c, _ in items)
    if top_value > 0:
        step = _nice_step(top_value, 4)
        y_top = step * max(1, math.ceil(top_value / step - 1e-9))
    else:
        step, y_top = 0.05, 0.1
    ticks = [j * step for j in range(round(y_top / step) + 1)]

    shown = [_truncate(name, max(4, max_label_chars)) for name, _, _, _ in items]
    text_w = [len(s) * _CHAR_W for s in shown]
    left, right = 46.0, width - 12.0
    slot = (right - left) / k
    rotate = max(text_w) > slot - 4
    angle = 40.0
    if rotate:
        reach = text_w[0] * math.cos(math.radians(angle)) - slot / 2 + 6
        if reach > left:
            left = min(reach, width / 3)
            slot = (right - left) / k
        band = max(text_w) * math.sin(math.radians(angle)) + 20
    else:
        band = 24.0
    if any(h for _, _, _, h in items):
        band += 16
    top = 44.0
    bottom = top + height
    total = bottom + band

    def y_of(v: float) -> float:
        return bottom - v / y_top * (bottom - top)

    legend, _ = _legend(
        right,
        31,
        [
            (reference_label, REFERENCE_COLOUR, REFERENCE_COLOUR),
            (current_label, CURRENT_COLOUR, CURRENT_COLOUR),
        ],
    )
    out = [_svg_open(width, total, title or "shares", cls)]
    if title:
        out.append(_title_row(title, width - 16))
    out.append(legend)
    for v in ticks:
        y = y_of(v)
        out.append(
            f'<line x1="{_c(left)}" y1="{_c(y)}" x2="{_c(right)}" y2="{_c(y)}" '
            f'stroke="{GRID_COLOUR if v else AXIS_COLOUR}"/>'
            + _text(left - 5, y + 4, _fmt_tick(100 * v, 100 * step) + "%", anchor="end")
        )
    bar_w = min(24.0, slot * 0.38)
    for j, ((name, r, c, new), text) in enumerate(zip(items, shown, strict=True)):
        cx = left + slot * (j + 0.5)
        tip = f"{name}: {reference_label} {_fmt_share(r)}, {current_label} {_fmt_share(c)}"
        if new:
            tip += " (new category)"
        out.append(f"<g><title>{_esc(tip)}</title>")
        pair = ((r, cx - bar_w - 0.5, REFERENCE_COLOUR), (c, cx + 0.5, CURRENT_COLOUR))
        for value, x, colour in pair:
            if value > 0:
                h = max(1.0, bottom - y_of(value))
                out.append(
                    f'<rect x="{_c(x)}" y="{_c(bottom - h)}" width="{_c(bar_w)}" '
                    f'height="{_c(h)}" fill="{colour}" fill-opacity="0.85"/>'
                )
        colour = NEW_CATEGORY_COLOUR if new else "#222222"
        weight = "700" if new else None
        if rotate:
            y = bottom + 12
            out.append(
                _text(
                    cx + 3,
                    y,
                    text,
                    anchor="end",
                    fill=colour,
                    weight=weight,
                    extra=f'transform="rotate(-{_c(angle)} {_c(cx + 3)} {_c(y)})"',
                )
            )
        else:
            out.append(_text(cx, bottom + 15, text, anchor="middle", fill=colour, weight=weight))
        out.append("</g>")
    if any(h for _, _, _, h in items):
        out.append(
            _text(
                left,
                total - 6,
                "red labels: categories not seen in the reference",
                size=10.5,
                fill=NEW_CATEGORY_COLOUR,
            )
        )
    out.append("</svg>")
    return "".join(out)


# ------------------------------------------------------------------------------------------
# badge
# ------------------------------------------------------------------------------------------


def tier_badge(tier: str, *, count: int | None = None) -> str:
    """A small rounded badge naming a drift tier (coloured by tier), optionally with a count."""
    text = str(tier) if count is None else f"{tier} {count}"
    colour = TIER_COLOURS.get(str(tier), UNKNOWN_TIER_COLOUR)
    w = len(text) * 6.8 + 18
    return (
        _svg_open(w, 20, f"tier: {text}", f"badge tier-{_slug(str(tier))}")
        + f'<rect x="0" y="0" width="{_c(w)}" height="20" rx="10" fill="{colour}"/>'
        + _text(w / 2, 14, text, anchor="middle", fill="#ffffff", weight="700", size=11.5)
        + "</svg>"
    )


def _slug(text: str) -> str:
    return "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in text.lower())[:24]


# ------------------------------------------------------------------------------------------
# line chart and horizontal bars (validation documents)
# ------------------------------------------------------------------------------------------

SERIES_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d")


def line_chart(
    series: Sequence[tuple[str, Sequence[object], Sequence[object]]],
    *,
    width: float = 360,
    height: float = 300,
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    x_range: tuple[float, float] = (0.0, 1.0),
    y_range: tuple[float, float] = (0.0, 1.0),
    diagonal: bool = False,
    markers: bool = False,
) -> str:
    """Lines through ``(x, y)`` points, one per ``(label, xs, ys)`` series, on fixed axes.

    Points whose x or y is missing or not finite are skipped (the line joins its neighbours).
    ``diagonal`` draws the dashed line y = x (the chance line of a ROC curve, perfect
    calibration in a reliability diagram).
    """
    cls = "chart lines"
    pts_all = []
    for label, xs, ys in series:
        pts = []
        for x, y in zip(xs, ys, strict=False):
            fx, fy = finite_or_none(x), finite_or_none(y)
            if fx is not None and fy is not None:
                pts.append((fx, fy))
        pts_all.append((label, pts))
    if not any(p for _, p in pts_all):
        return _placeholder(width, height, title, "no data", cls)
    left, right, top = 46.0, width - 12.0, 44.0
    bottom = height - 34.0
    (x0, x1), (y0, y1) = x_range, y_range

    def px(v: float) -> float:
        return left + (min(max(v, x0), x1) - x0) / (x1 - x0) * (right - left)

    def py(v: float) -> float:
        return bottom - (min(max(v, y0), y1) - y0) / (y1 - y0) * (bottom - top)

    out = [_svg_open(width, height, title or "line chart", cls)]
    if title:
        out.append(_title_row(title, width - 16))
    entries = [
        (label, SERIES_COLOURS[i % len(SERIES_COLOURS)], SERIES_COLOURS[i % len(SERIES_COLOURS)])
        for i, (label, _) in enumerate(pts_all)
    ]
    legend, _ = _legend(right, 31, entries)
    out.append(legend)
    xticks, xstep = _ticks(x0, x1, 5)
    yticks, ystep = _ticks(y0, y1, 5)
    for v in yticks:
        out.append(
            f'<line x1="{_c(left)}" y1="{_c(py(v))}" x2="{_c(right)}" y2="{_c(py(v))}" '
            f'stroke="{GRID_COLOUR if v != y0 else AXIS_COLOUR}"/>'
            + _text(left - 5, py(v) + 4, _fmt_tick(v, ystep), anchor="end")
        )
    for v in xticks:
        out.append(_text(px(v), bottom + 14, _fmt_tick(v, xstep), anchor="middle"))
    out.append(
        f'<line x1="{_c(left)}" y1="{_c(top)}" x2="{_c(left)}" y2="{_c(bottom)}" '
        f'stroke="{AXIS_COLOUR}"/>'
    )
    if x_label:
        out.append(
            _text((left + right) / 2, height - 6, x_label, anchor="middle", fill=NOTE_COLOUR)
        )
    if y_label:
        out.append(
            _text(
                12,
                (top + bottom) / 2,
                y_label,
                anchor="middle",
                fill=NOTE_COLOUR,
                extra=f'transform="rotate(-90 12 {_c((top + bottom) / 2)})"',
            )
        )
    if diagonal:
        out.append(
            f'<line x1="{_c(px(x0))}" y1="{_c(py(y0))}" x2="{_c(px(x1))}" y2="{_c(py(y1))}" '
            f'stroke="{AXIS_COLOUR}" stroke-dasharray="4 3"/>'
        )
    for i, (label, pts) in enumerate(pts_all):
        if not pts:
            continue
        colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
        path = " ".join(f"{_c(px(x))},{_c(py(y))}" for x, y in pts)
        out.append(f"<g><title>{_esc(label)}</title>")
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if markers:
            for x, y in pts:
                out.append(f'<circle cx="{_c(px(x))}" cy="{_c(py(y))}" r="3" fill="{colour}"/>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def horizontal_bars(
    labels: Sequence[object],
    values: Sequence[object],
    *,
    width: float = 560,
    title: str = "",
    limit: float | None = None,
    limit_label: str = "limit",
    warn: float | None = None,
    percent: bool = False,
    max_label_chars: int = 28,
) -> str:
    """One bar per label (in the given order), with optional dashed ``warn`` and ``limit`` lines;
    bars past the limit are red, past the warning amber."""
    cls = "chart hbars"
    items = [(str(lab), _amount(values, i)) for i, lab in enumerate(labels)]
    if not items:
        return _placeholder(width, 80, title, "no data", cls)
    row = 18.0
    top = 44.0
    shown = [_truncate(name, max_label_chars) for name, _ in items]
    left = min(width / 2.5, max(len(s) for s in shown) * _CHAR_W + 14)
    right = width - 50.0
    bottom = top + row * len(items)
    height = bottom + 26
    hi = max([v for _, v in items] + [limit or 0.0, warn or 0.0])
    hi = hi if hi > 0 else 1.0
    step = _nice_step(hi, 4)
    x_top = step * max(1, math.ceil(hi / step - 1e-9))

    def px(v: float) -> float:
        return left + v / x_top * (right - left)

    out = [_svg_open(width, height, title or "bars", cls)]
    if title:
        out.append(_title_row(title, width - 16))
    for v in [j * step for j in range(round(x_top / step) + 1)]:
        tick = _fmt_tick(100 * v, 100 * step) + "%" if percent else _fmt_tick(v, step)
        out.append(
            f'<line x1="{_c(px(v))}" y1="{_c(top)}" x2="{_c(px(v))}" y2="{_c(bottom)}" '
            f'stroke="{GRID_COLOUR if v else AXIS_COLOUR}"/>'
            + _text(px(v), bottom + 14, tick, anchor="middle")
        )
    for j, ((name, v), text) in enumerate(zip(items, shown, strict=True)):
        y = top + j * row
        colour = REFERENCE_COLOUR
        if limit is not None and v > limit:
            colour = TIER_COLOURS["critical"]
        elif warn is not None and v > warn:
            colour = TIER_COLOURS["warning"]
        out.append(f"<g><title>{_esc(f'{name}: {_fmt_value(v)}')}</title>")
        out.append(_text(left - 6, y + row / 2 + 4, text, anchor="end"))
        if v > 0:
            out.append(
                f'<rect x="{_c(left)}" y="{_c(y + 3)}" width="{_c(max(1.0, px(v) - left))}" '
                f'height="{_c(row - 6)}" fill="{colour}" fill-opacity="0.85"/>'
            )
        out.append("</g>")
    for value, label, colour in ((warn, "warning", TIER_COLOURS["warning"]),
                                 (limit, limit_label, TIER_COLOURS["critical"])):  # fmt: skip
        if value is None:
            continue
        out.append(
            f'<line x1="{_c(px(value))}" y1="{_c(top - 4)}" x2="{_c(px(value))}" '
            f'y2="{_c(bottom)}" stroke="{colour}" stroke-dasharray="4 3" stroke-width="1.5"/>'
            + _text(px(value), top - 7, label, anchor="middle", fill=colour, size=10)
        )
    out.append("</svg>")
    return "".join(out)
