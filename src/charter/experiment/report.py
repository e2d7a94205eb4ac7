"""The experiment comparison report: JSON data first, then one self-contained HTML file.

``report_data(analysis)`` is the JSON-able snapshot (the decision with its evidence and the
comparison: score distributions, approval rates, the shadow's disagreement matrix, deltas by
segment). ``render_report_html(data)`` draws that snapshot and computes nothing: it only orders
and formats the numbers it is given and passes them to the SVG charts of
:mod:`charter.reports.svg`. The HTML has inline CSS and SVG, no script, no external URL, and a
Content-Security-Policy that forbids any fetch; every text is escaped by Jinja2's autoescaping
(and inside the SVG by :func:`html.escape`). The same data renders to the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup

from charter.experiment.analysis import ExperimentAnalysis
from charter.reports import svg
from charter.reports.drift_html import fmt_number, fmt_p, fmt_rate

__all__ = ["REPORT_VERSION", "render_report_html", "report_data"]

REPORT_VERSION = 1
_RATE_METRICS = ("approval_rate", "bad_rate")
_DECISION_COLOURS = {
    "promote": "#2e7d32",
    "keep": "#1f5a96",
    "stop": "#c62828",
    "continue": "#a35a00",
}


def report_data(analysis: ExperimentAnalysis) -> dict[str, Any]:
    """The report's JSON snapshot (``report_version``, ``decision``, ``comparison``)."""
    return {"report_version": REPORT_VERSION, **analysis.to_dict()}


# ------------------------------------------------------------------------------------------
# formatting (nothing here derives a statistic)
# ------------------------------------------------------------------------------------------


def _fmt(metric: str, value: object) -> str:
    return fmt_rate(value) if metric in _RATE_METRICS else fmt_number(value)


def _fmt_diff(metric: str, value: object) -> str:
    x = svg.finite_or_none(value)
    if x is None:
        return "n/a"
    sign = "+" if x > 0 else ""
    if metric in _RATE_METRICS:
        return f"{sign}{100.0 * x:.2f} pts"
    return f"{sign}{x:.4f}"


def _seq(value: Any) -> Sequence[Any]:
    return value if isinstance(value, (list, tuple)) else []


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _context(data: Mapping[str, Any]) -> dict[str, Any]:
    d = _map(data.get("decision"))
    c = _map(data.get("comparison"))
    champion = f"champion v{d.get('champion_version')}"
    challenger = (
        f"{'shadow' if d.get('kind') == 'shadow' else 'challenger'} v{d.get('challenger_version')}"
    )
    metrics = []
    for m in _seq(d.get("metrics")):
        name = str(m.get("metric"))
        metrics.append(
            {
                "metric": name,
                "primary": name == d.get("primary_metric"),
                "method": str(m.get("method") or ""),
                "n": f"{fmt_number(m.get('n_a'))} / {fmt_number(m.get('n_b'))}",
                "a": _fmt(name, m.get("estimate_a")),
                "b": _fmt(name, m.get("estimate_b")),
                "diff": _fmt_diff(name, m.get("difference")),
                "ci": f"[{_fmt_diff(name, m.get('ci_low'))}, {_fmt_diff(name, m.get('ci_high'))}]",
                "p": fmt_p(m.get("p_value")),
                "verdict": str(m.get("verdict")),
                "note": str(m.get("note") or ""),
            }
        )
    guards = [
        {
            "name": str(g.get("name")),
            "value": fmt_number(g.get("value")),
            "champion": fmt_number(g.get("champion_value")),
            "limit": f"{g.get('op')} {fmt_number(g.get('limit'))}",
            "state": "breached" if g.get("breached") else ("held" if g.get("judged") else "n/j"),
            "detail": str(g.get("detail") or ""),
        }
        for g in _seq(d.get("guardrails"))
    ]
    seq = _map(d.get("sequential"))
    hist = _map(c.get("score_histogram"))
    edges = list(_seq(hist.get("edges")))
    charts: list[Markup] = []
    if edges:
        charts.append(
            Markup(
                svg.overlaid_histogram(
                    edges,
                    list(_seq(hist.get("density_a"))),
                    list(_seq(hist.get("density_b"))),
                    title="Score distributions",
                    reference_label=champion,
                    current_label=challenger,
                )
            )
        )
        lo = svg.finite_or_none(edges[0]) or 0.0
        hi = svg.finite_or_none(edges[-1]) or 1.0
        charts.append(
            Markup(
                svg.line_chart(
                    [
                        (champion, edges, list(_seq(hist.get("cdf_a")))),
                        (challenger, edges, list(_seq(hist.get("cdf_b")))),
                    ],
                    title="Cumulative share of scores",
                    x_label="score",
                    y_label="share at or below",
                    x_range=(lo, hi if hi > lo else lo + 1.0),
                    y_range=(0.0, 1.0),
                )
            )
        )
    charts.append(
        Markup(
            svg.horizontal_bars(
                [champion, challenger],
                [c.get("approval_a"), c.get("approval_b")],
                title="Approval rate",
                percent=True,
            )
        )
    )
    segments = []
    seg_labels: list[str] = []
    seg_values: list[object] = []
    for s in _seq(c.get("segments")):
        label = f"{s.get('attribute')}: {s.get('group')}"
        segments.append(
            {
                "segment": label,
                "n": f"{fmt_number(s.get('n_a'))} / {fmt_number(s.get('n_b'))}",
                "a": fmt_rate(s.get("approval_a")),
                "b": fmt_rate(s.get("approval_b")),
                "delta": _fmt_diff("approval_rate", s.get("approval_delta")),
                "score_a": fmt_number(s.get("mean_score_a")),
                "score_b": fmt_number(s.get("mean_score_b")),
                "disagreement": fmt_rate(s.get("disagreement_rate"))
                if s.get("disagreement_rate") is not None
                else "",
            }
        )
        seg_labels += [f"{label} ({champion})", f"{label} ({challenger})"]
        seg_values += [s.get("approval_a"), s.get("approval_b")]
    if seg_labels:
        charts.append(
            Markup(
                svg.horizontal_bars(
                    seg_labels,
                    seg_values,
                    title="Approval rate by segment",
                    percent=True,
                    max_label_chars=44,
                )
            )
        )
    dis = c.get("disagreement")
    matrix = None
    if isinstance(dis, Mapping):
        rows = _seq(dis.get("matrix"))
        if len(rows) == 2:
            matrix = {
                "rows": [
                    ("approve", [fmt_number(v) for v in _seq(rows[0])]),
                    ("decline", [fmt_number(v) for v in _seq(rows[1])]),
                ],
                "rate": fmt_rate(dis.get("disagreement_rate")),
                "disagree": fmt_number(dis.get("disagree")),
            }
    parity = [
        {
            "attribute": str(p.get("attribute")),
            "ratio_a": fmt_number(p.get("ratio_a")),
            "ratio_b": fmt_number(p.get("ratio_b")),
            "change": fmt_number(p.get("change")),
        }
        for p in _seq(d.get("parity"))
    ]
    window = _map(d.get("window"))
    decision = str(d.get("decision", "n/a"))
    return {
        "title": f"Experiment {d.get('experiment')}: {champion} vs {challenger}",
        "model": str(d.get("model")),
        "kind": "shadow (same applicants)" if d.get("kind") == "shadow" else "A/B (live traffic)",
        "since": str(window.get("since")),
        "until": str(window.get("until")),
        "analysed_at": str(d.get("analysed_at")),
        "plan_sha256": str(d.get("plan_sha256")),
        "decision": decision,
        "colour": _DECISION_COLOURS.get(decision, "#616161"),
        "reasons": [str(r) for r in _seq(d.get("reasons"))],
        "continue_until": d.get("continue_until"),
        "primary_metric": str(d.get("primary_metric")),
        "stopping_rule": str(d.get("stopping_rule")),
        "seq_p": fmt_p(seq.get("p_value")),
        "seq_lr": fmt_number(seq.get("max_likelihood_ratio")),
        "seq_looks": fmt_number(seq.get("looks")),
        "seq_ci": f"[{fmt_number(seq.get('ci_low'))}, {fmt_number(seq.get('ci_high'))}]",
        "champion": champion,
        "challenger": challenger,
        "metrics": metrics,
        "guards": guards,
        "charts": charts,
        "segments": segments,
        "matrix": matrix,
        "parity": parity,
        "approval_a": fmt_rate(c.get("approval_a")),
        "approval_b": fmt_rate(c.get("approval_b")),
        "approval_delta": _fmt_diff("approval_rate", c.get("approval_delta")),
        "css": Markup(_CSS),
    }


_CSS = """
* { box-sizing: border-box; }
body { margin: 0; color: #1d1d1d; background: #fff; font-size: 14px; line-height: 1.45;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #222; }
.meta { color: #5a5a5a; margin: 0 0 12px; overflow-wrap: anywhere; }
.decision { border-left: 8px solid; border-radius: 4px; background: #f7f7f7; padding: 10px 16px; }
.decision strong { font-size: 20px; text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border-bottom: 1px solid #d9d9d9; padding: 5px 8px; text-align: left;
  vertical-align: top; }
th { background: #f2f2f2; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.primary td:first-child { box-shadow: inset 4px 0 0 #1f5a96; font-weight: 600; }
.breached { color: #c62828; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 18px; align-items: flex-start; }
svg.chart { max-width: 100%; height: auto; }
.caption { color: #5a5a5a; font-size: 12px; }
.notice { background: #fff4e0; border: 1px solid #e0b060; border-radius: 4px; padding: 8px 12px; }
@media print { main { max-width: none; padding: 0; } tr, svg.chart { break-inside: avoid; } }
"""

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="generator" content="charter">
<title>{{ title }}</title>
<style>{{ css }}</style>
</head>
<body>
<main>
<header>
<h1>{{ title }}</h1>
<p class="meta">Model {{ model }}; {{ kind }}; decisions from {{ since }} to {{ until }};
analysed {{ analysed_at }}; plan sha256 {{ plan_sha256 }}.</p>
</header>

{% if notice %}<p class="notice">{{ notice }}</p>{% endif %}
<section class="decision" style="border-left-color: {{ colour }}">
<p><strong style="color: {{ colour }}">{{ decision }}</strong>
{%- if continue_until %} until {{ continue_until }}{% endif %}</p>
<ul>{% for r in reasons %}<li>{{ r }}</li>{% endfor %}</ul>
<p class="caption">Primary metric {{ primary_metric }}; stopping rule {{ stopping_rule }};
always-valid p-value {{ seq_p }} (largest mixture likelihood ratio {{ seq_lr }} over
{{ seq_looks }} daily looks; always-valid interval {{ seq_ci }}).</p>
</section>

<h2>Metrics ({{ challenger }} minus {{ champion }})</h2>
<table>
<thead><tr><th>metric</th><th>rows</th><th>{{ champion }}</th><th>{{ challenger }}</th>
<th>difference</th><th>interval</th><th>p-value</th><th>verdict</th><th>method</th></tr></thead>
<tbody>
{% for m in metrics %}<tr{% if m.primary %} class="primary"{% endif %}>
<td>{{ m.metric }}</td><td class="num">{{ m.n }}</td><td class="num">{{ m.a }}</td>
<td class="num">{{ m.b }}</td><td class="num">{{ m.diff }}</td><td class="num">{{ m.ci }}</td>
<td class="num">{{ m.p }}</td><td>{{ m.verdict }}</td>
<td>{{ m.method }}{% if m.note %}<br><span class="caption">{{ m.note }}</span>{% endif %}</td>
</tr>
{% endfor %}</tbody>
</table>

<h2>Guardrails</h2>
<table>
<thead><tr><th>guardrail</th><th>{{ challenger }}</th><th>{{ champion }}</th><th>limit</th>
<th>state</th><th>detail</th></tr></thead>
<tbody>
{% for g in guards %}<tr><td>{{ g.name }}</td><td class="num">{{ g.value }}</td>
<td class="num">{{ g.champion }}</td><td class="num">{{ g.limit }}</td>
<td{% if g.state == "breached" %} class="breached"{% endif %}>{{ g.state }}</td>
<td>{{ g.detail }}</td></tr>
{% endfor %}</tbody>
</table>

<h2>Comparison</h2>
<p>Approval rate {{ champion }} {{ approval_a }}, {{ challenger }} {{ approval_b }}
(difference {{ approval_delta }}).</p>
<div class="charts">{% for c in charts %}{{ c }}{% endfor %}</div>

{% if matrix %}
<h2>Disagreement at the thresholds</h2>
<table>
<thead><tr><th>{{ champion }} \\ {{ challenger }}</th><th>approve</th><th>decline</th></tr></thead>
<tbody>
{% for label, cells in matrix.rows %}<tr><th>{{ label }}</th>
{% for v in cells %}<td class="num">{{ v }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
<p class="caption">{{ matrix.disagree }} applicants decided differently ({{ matrix.rate }}).</p>
{% endif %}

{% if segments %}
<h2>By segment</h2>
<table>
<thead><tr><th>segment</th><th>rows</th><th>approval {{ champion }}</th>
<th>approval {{ challenger }}</th><th>difference</th><th>mean score {{ champion }}</th>
<th>mean score {{ challenger }}</th>{% if matrix %}<th>disagreement</th>{% endif %}</tr></thead>
<tbody>
{% for s in segments %}<tr><td>{{ s.segment }}</td><td class="num">{{ s.n }}</td>
<td class="num">{{ s.a }}</td><td class="num">{{ s.b }}</td><td class="num">{{ s.delta }}</td>
<td class="num">{{ s.score_a }}</td><td class="num">{{ s.score_b }}</td>
{% if matrix %}<td class="num">{{ s.disagreement }}</td>{% endif %}</tr>
{% endfor %}</tbody>
</table>
{% endif %}

{% if parity %}
<h2>Approval-rate parity (four-fifths ratio)</h2>
<table>
<thead><tr><th>attribute</th><th>{{ champion }}</th><th>{{ challenger }}</th><th>change</th></tr>
</thead>
<tbody>
{% for p in parity %}<tr><td>{{ p.attribute }}</td><td class="num">{{ p.ratio_a }}</td>
<td class="num">{{ p.ratio_b }}</td><td class="num">{{ p.change }}</td></tr>
{% endfor %}</tbody>
</table>
{% endif %}
</main>
</body>
</html>
"""

_ENV = Environment(autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True)


def render_report_html(data: Mapping[str, Any], *, notice: str = "") -> str:
    """One self-contained HTML page from :func:`report_data`'s snapshot. ``notice`` is shown
    above the decision (the dashboard says there that an analysis run on view is not recorded)."""
    return _ENV.from_string(_TEMPLATE).render(**_context(data), notice=notice)
