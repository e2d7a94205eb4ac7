"""Render a drift report snapshot as one self-contained HTML file.

The input is the JSON-able dict of :meth:`charter.stats.compare.DriftReport.to_dict`; it is read,
never changed, and no statistic is recomputed: this module only orders, formats and draws the
numbers it is given (habit 7: reports are data first, rendered second).

The output needs nothing but a browser opened on the file: CSS is inline, charts are inline SVG
from :mod:`charter.reports.svg`, there is no script, and a Content-Security-Policy forbids any
network fetch. All text from the report (feature names, category labels, reasons) is escaped by
Jinja2's autoescaping or, inside the SVG, by :func:`html.escape`. The same input always renders
to the same bytes: no random ids, no clock (``generated_at`` is printed only when passed).

Layout: the summary first (tiers, rows, flagged features, missing and extra columns, policy),
then a table of all features, then one section per feature, critical first, then warning, then
stable (report order within a tier), each with its reasons, numbers, data quality and charts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, StrictUndefined
from markupsafe import Markup, escape

from charter.reports import svg

TIER_ORDER: tuple[str, ...] = ("critical", "warning", "stable")
"""Order of the feature table and sections: most severe first; unknown tiers come last."""

_CHART_WIDTH = 520  # two charts side by side fit the page
_MAX_LISTED_NEW = 10  # new categories named in a quality line; the rest are counted


# ------------------------------------------------------------------------------------------
# number formatting (formatting only: nothing here derives a statistic)
# ------------------------------------------------------------------------------------------


def fmt_number(value: object, digits: int = 4) -> str:
    """Four significant digits; ``"n/a"`` for null, NaN or anything that is not a number."""
    x = svg.finite_or_none(value)
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    if isinstance(value, int) or (x.is_integer() and abs(x) < 1e15):
        return f"{int(x):,}"
    if abs(x) >= 1e6 or abs(x) < 1e-4:
        return f"{x:.{max(1, digits - 1)}e}"
    return f"{x:.{digits}g}"


def fmt_p(value: object) -> str:
    """A p-value: four decimals, scientific below 1e-4; ``"n/a"`` when it was not computed."""
    x = svg.finite_or_none(value)
    if x is None:
        return "n/a"
    if x == 0:
        return "0"
    if x < 1e-4:
        return f"{x:.2e}"
    return f"{x:.4f}"


def fmt_rate(value: object) -> str:
    """A proportion as a percentage."""
    x = svg.finite_or_none(value)
    if x is None:
        return "n/a"
    p = 100.0 * x
    if p == 0:
        return "0%"
    if abs(p) >= 10:
        return f"{p:.1f}%"
    if abs(p) >= 0.1:
        return f"{p:.2f}%"
    return f"{p:.2g}%"


def fmt_count(value: object) -> str:
    x = svg.finite_or_none(value)
    if x is None:
        return "n/a"
    return f"{int(x):,}" if x.is_integer() else fmt_number(x)


def _fmt_setting(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return fmt_number(value)
    return "n/a" if value is None else str(value)


# ------------------------------------------------------------------------------------------
# view model: strings and SVG markup, in display order
# ------------------------------------------------------------------------------------------


def _tier_rank(tier: object) -> int:
    return TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER)


def _anchor(index: int, name: str) -> str:
    slug = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in name.lower())
    slug = "-".join(part for part in slug.split("-") if part)[:40]
    return f"f{index + 1:03d}-{slug}" if slug else f"f{index + 1:03d}"


def _breakable(name: str) -> Markup:
    """``name`` escaped, with a line-break opportunity after each underscore."""
    return Markup("_<wbr>").join(escape(part) for part in name.split("_"))


def _badge(tier: object, count: int | None = None) -> Markup:
    return Markup(svg.tier_badge(str(tier), count=count))


def _seq(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _quality(kind: str, q: Mapping[str, Any]) -> list[str]:
    items: list[str] = []
    if q.get("column_missing"):
        items.append("the column is missing from the current data")
    items.append(f"{fmt_count(q.get('n_rows'))} current rows")
    items.append(
        f"missing {fmt_rate(q.get('missing_rate'))} "
        f"(reference {fmt_rate(q.get('reference_missing_rate'))})"
    )
    if kind == "numeric":
        items.append(
            f"far outliers {fmt_rate(q.get('outlier_rate'))} "
            f"(reference {fmt_rate(q.get('reference_outlier_rate'))})"
        )
        items.append(
            f"outside the reference range {fmt_rate(q.get('out_of_range_rate'))} "
            f"({fmt_count(q.get('below_min'))} below the minimum, "
            f"{fmt_count(q.get('above_max'))} above the maximum)"
        )
        items.append(f"non-finite {fmt_count(q.get('nonfinite'))}")
        items.append(f"not numbers {fmt_count(q.get('type_errors'))}")
    else:
        new = [str(c) for c in _seq(q.get("new_categories"))]
        if new:
            listed = ", ".join(new[:_MAX_LISTED_NEW])
            if len(new) > _MAX_LISTED_NEW:
                listed += f" and {len(new) - _MAX_LISTED_NEW} more"
            items.append(
                f"{len(new)} new categories ({fmt_rate(q.get('new_category_rate'))} of rows): "
                f"{listed}"
            )
        else:
            items.append("no new categories")
    return items


def _numbers(f: Mapping[str, Any]) -> list[tuple[str, str]]:
    counts = f"{fmt_count(f.get('n_reference'))} / {fmt_count(f.get('n_current'))}"
    rows = [
        ("rows, reference / current", counts),
        ("PSI", fmt_number(f.get("psi"))),
        ("Jensen-Shannon distance", fmt_number(f.get("js_distance"))),
        ("KL divergence", fmt_number(f.get("kl_divergence"))),
    ]
    if f.get("kind") == "numeric":
        means = f"{fmt_number(f.get('reference_mean'))} / {fmt_number(f.get('current_mean'))}"
        rows += [
            ("KS statistic D", fmt_number(f.get("statistic"))),
            ("KS sketch error bound", fmt_number(f.get("ks_bound"))),
            ("Wasserstein distance", fmt_number(f.get("wasserstein"))),
            ("Wasserstein sketch bound", fmt_number(f.get("wasserstein_bound"))),
            ("Wasserstein / reference sd", fmt_number(f.get("wasserstein_normalised"))),
            ("mean, reference / current", means),
        ]
    else:
        rows += [
            ("chi-square statistic", fmt_number(f.get("statistic"))),
            ("degrees of freedom", fmt_count(f.get("chi2_dof"))),
        ]
    rows += [("p-value", fmt_p(f.get("p_value"))), ("adjusted p-value", fmt_p(f.get("p_adjusted")))]
    pooled = [str(x) for x in _seq(f.get("pooled_levels"))]
    if pooled:
        rows.append(("levels pooled for the test", ", ".join(pooled)))
    return rows


def _charts(f: Mapping[str, Any], reference_name: str, current_name: str) -> list[Markup]:
    bins = _seq(f.get("bins"))
    ref, cur = _seq(f.get("reference_share")), _seq(f.get("current_share"))
    if f.get("kind") == "numeric":
        hist = svg.overlaid_histogram(
            _seq(f.get("plot_edges")),
            _seq(f.get("plot_reference_density")),
            _seq(f.get("plot_current_density")),
            width=_CHART_WIDTH,
            title="Distribution (density over reference-quantile bins)",
            reference_label=reference_name,
            current_label=current_name,
        )
        bars = svg.grouped_bars(
            bins,
            ref,
            cur,
            width=_CHART_WIDTH,
            title="Shares in the PSI bins",
            reference_label=reference_name,
            current_label=current_name,
        )
        return [Markup(hist), Markup(bars)]
    quality = f.get("quality") or {}
    label_chars = 32 if len(bins) <= 8 else 24
    longest = max((min(len(str(b)), label_chars) for b in bins), default=0)
    slot = max(34.0, longest * 6.3 + 12)  # room for horizontal labels when few categories
    width = min(2 * _CHART_WIDTH + 16, max(_CHART_WIDTH, 80 + slot * min(len(bins), 30)))
    bars = svg.grouped_bars(
        bins,
        ref,
        cur,
        title="Shares by category",
        width=width,
        highlight=_seq(quality.get("new_categories")),
        max_label_chars=label_chars,
        reference_label=reference_name,
        current_label=current_name,
    )
    return [Markup(bars)]


def _feature_view(
    index: int, f: Mapping[str, Any], reference_name: str, current_name: str
) -> dict[str, Any]:
    name = str(f.get("feature", f"feature {index + 1}"))
    kind = str(f.get("kind", ""))
    tier = str(f.get("tier", ""))
    quality = f.get("quality") or {}
    if kind == "numeric":
        effect_label, effect = "W/sd", f.get("wasserstein_normalised")
        extra = f"outliers {fmt_rate(quality.get('outlier_rate'))}"
    else:
        effect_label, effect = "JS", f.get("js_distance")
        new = _seq(quality.get("new_categories"))
        extra = f"{len(new)} new ({fmt_rate(quality.get('new_category_rate'))})" if new else "none"
    test = str(f.get("test", ""))
    test_name = {"ks": "KS", "chi2": "chi-square"}.get(test, test)
    return {
        "name": name,
        "display_name": _breakable(name),
        "anchor": _anchor(index, name),
        "kind": kind,
        "tier": tier,
        "tier_class": tier if tier in TIER_ORDER else "unknown",
        "badge": _badge(tier),
        "psi": fmt_number(f.get("psi")),
        "effect": fmt_number(effect),
        "effect_label": effect_label,
        "test": test_name,
        "statistic": fmt_number(f.get("statistic")),
        "p_adjusted": fmt_p(f.get("p_adjusted")),
        "missing": fmt_rate(quality.get("missing_rate")),
        "extra": extra,
        "reasons": [str(r) for r in _seq(f.get("reasons"))],
        "numbers": _numbers(f),
        "quality": _quality(kind, quality),
        "charts": _charts(f, reference_name, current_name),
    }


def _view(
    report: Mapping[str, Any],
    title: str,
    reference_name: str,
    current_name: str,
    generated_at: str | None,
) -> dict[str, Any]:
    summary = report.get("summary") or {}
    raw = [f for f in _seq(report.get("features")) if isinstance(f, Mapping)]
    views = [_feature_view(i, f, reference_name, current_name) for i, f in enumerate(raw)]
    ordered = sorted(range(len(views)), key=lambda i: (_tier_rank(views[i]["tier"]), i))
    features = [views[i] for i in ordered]
    first_by_name: dict[str, dict[str, Any]] = {}
    for view in views:
        first_by_name.setdefault(view["name"], view)
    flagged = []
    for name in (str(x) for x in _seq(summary.get("flagged"))):
        v = first_by_name.get(name)
        flagged.append(
            {
                "name": name,
                "anchor": v["anchor"] if v else None,
                "badge": v["badge"] if v else "",
                "tier": v["tier"] if v else None,
            }
        )
    flagged.sort(key=lambda item: _tier_rank(item["tier"]))
    by_tier = summary.get("by_tier") or {}
    tiers = [t for t in TIER_ORDER if t in by_tier] + [t for t in by_tier if t not in TIER_ORDER]
    return {
        "title": title,
        "generated_at": generated_at,
        "reference_name": reference_name,
        "current_name": current_name,
        "n_reference": fmt_count(summary.get("n_reference")),
        "n_current": fmt_count(summary.get("n_current")),
        "n_features": fmt_count(summary.get("features", len(raw))),
        "tier_badges": [_badge(t, count=int(svg.finite_or_none(by_tier[t]) or 0)) for t in tiers],
        "worst_badge": _badge(summary.get("worst_tier", "n/a")),
        "flagged": flagged,
        "missing_columns": [str(c) for c in _seq(summary.get("missing_columns"))],
        "extra_columns": [str(c) for c in _seq(summary.get("extra_columns"))],
        "policy": [(str(k), _fmt_setting(v)) for k, v in (report.get("policy") or {}).items()],
        "notes": [str(n) for n in _seq(report.get("notes"))],
        "features": features,
    }


# ------------------------------------------------------------------------------------------
# template
# ------------------------------------------------------------------------------------------

_CSS = """
:root { --line: #d9d9d9; --muted: #5a5a5a; --critical: #c62828; --warning: #a35a00;
  --stable: #2e7d32; --unknown: #616161; }
* { box-sizing: border-box; }
body { margin: 0; color: #1d1d1d; background: #ffffff; font-size: 14px; line-height: 1.45;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 25px; margin: 0 0 2px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #222; }
h3 { font-size: 17px; margin: 0; }
a { color: #1f5a96; }
.meta { color: var(--muted); margin: 0 0 14px; }
.overview { display: flex; flex-wrap: wrap; gap: 14px 40px; align-items: flex-start; }
.overview > div { min-width: 220px; }
.overview > div.flagged { flex: 1 1 260px; }
.label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  margin: 0 0 4px; }
.badges { display: flex; flex-wrap: wrap; gap: 6px; }
svg.badge { vertical-align: middle; flex: none; }
ul.plain { list-style: none; padding: 0; margin: 0; }
ul.plain li { margin: 3px 0; display: flex; gap: 8px; align-items: center; }
.names { overflow-wrap: anywhere; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left;
  vertical-align: top; }
th { background: #f2f2f2; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.features { width: 100%; }
table.features td.name { overflow-wrap: anywhere; max-width: 300px; }
table.features tbody tr:nth-child(even) { background: #fafafa; }
tr.tier-critical td:first-child { box-shadow: inset 4px 0 0 var(--critical); }
tr.tier-warning td:first-child { box-shadow: inset 4px 0 0 var(--warning); }
tr.tier-stable td:first-child { box-shadow: inset 4px 0 0 var(--stable); }
tr.tier-unknown td:first-child { box-shadow: inset 4px 0 0 var(--unknown); }
.nowrap { white-space: nowrap; }
.caption { color: var(--muted); font-size: 12px; margin: 4px 0 8px; }
section.feature { border: 1px solid var(--line); border-left: 6px solid var(--unknown);
  border-radius: 4px; padding: 12px 16px 10px; margin: 18px 0; break-inside: avoid; }
section.feature.tier-critical { border-left-color: var(--critical); }
section.feature.tier-warning { border-left-color: var(--warning); }
section.feature.tier-stable { border-left-color: var(--stable); }
.feature header { display: flex; flex-wrap: wrap; gap: 8px 12px; align-items: center; }
.feature header h3 { overflow-wrap: anywhere; }
.kind { color: var(--muted); }
ul.reasons { margin: 8px 0; padding-left: 20px; }
dl.numbers { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr));
  gap: 0 22px; margin: 8px 0; }
dl.numbers div { display: flex; justify-content: space-between; gap: 10px;
  border-bottom: 1px dotted #d0d0d0; padding: 2px 0; }
dt { color: var(--muted); }
dd { margin: 0; text-align: right; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
p.quality { background: #f5f5f5; border-radius: 4px; padding: 6px 10px; margin: 8px 0; }
.charts { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 10px 16px;
  margin-top: 8px; }
svg.chart { max-width: 100%; height: auto; }
.back { font-size: 12px; }
@media print {
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  @page { margin: 14mm; }
  body { font-size: 11px; }
  main { max-width: none; padding: 0; }
  a { color: inherit; text-decoration: none; }
  .back { display: none; }
  h2 { break-after: avoid; }
  tr, section.feature, svg.chart { break-inside: avoid; }
}
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
<p class="meta">{{ reference_name }} ({{ n_reference }} rows) compared with {{ current_name }}
({{ n_current }} rows), {{ n_features }} features
{%- if generated_at %}; generated {{ generated_at }}{% endif %}.</p>
</header>

<section id="summary" class="summary">
<h2>Summary</h2>
<div class="overview">
<div>
<p class="label">Worst tier</p><div class="badges">{{ worst_badge }}</div>
<p class="label" style="margin-top:12px">Features by tier</p>
<div class="badges">{% for badge in tier_badges %}{{ badge }}{% endfor %}</div>
<p class="label" style="margin-top:12px">Rows</p>
<table class="rows">
<tr><th>{{ reference_name }}</th><td class="num">{{ n_reference }}</td></tr>
<tr><th>{{ current_name }}</th><td class="num">{{ n_current }}</td></tr>
</table>
</div>
<div class="flagged">
<p class="label">Flagged features ({{ flagged | length }})</p>
{% if flagged %}
<ul class="plain flagged">
{% for item in flagged %}
<li>{{ item.badge }} {% if item.anchor -%}
<a class="names" href="#{{ item.anchor }}">{{ item.name }}</a>
{%- else -%}
<span class="names">{{ item.name }}</span>
{%- endif %}</li>
{% endfor %}
</ul>
{% else %}
<p>None: every feature is stable.</p>
{% endif %}
</div>
<div>
<p class="label">Policy</p>
<table class="policy">
{% for key, value in policy %}<tr><th>{{ key }}</th><td class="num">{{ value }}</td></tr>
{% endfor %}
</table>
</div>
</div>

<p><strong>Columns missing from the {{ current_name }} data:</strong>
<span class="names">{{ missing_columns | join(", ") if missing_columns else "none" }}</span><br>
<strong>Columns only in the {{ current_name }} data:</strong>
<span class="names">{{ extra_columns | join(", ") if extra_columns else "none" }}</span></p>
{% if notes %}
<p class="label">Notes</p>
<ul class="notes">{% for note in notes %}<li>{{ note }}</li>{% endfor %}</ul>
{% endif %}
</section>

<section id="features-table">
<h2>All features</h2>
<p class="caption">Sorted by tier, most severe first, then in report order. Effect size:
Wasserstein distance over the reference standard deviation (W/sd) for numeric features,
Jensen-Shannon distance (JS) for categorical ones.</p>
<table class="features">
<thead><tr>
<th>feature</th><th>kind</th><th>tier &#9660;</th><th class="num">PSI</th>
<th class="num">effect size</th><th>test</th><th class="num">statistic</th>
<th class="num">adjusted p</th><th class="num">missing</th><th>outliers / new categories</th>
</tr></thead>
<tbody>
{% for f in features %}<tr class="tier-{{ f.tier_class }}">
<td class="name"><a href="#{{ f.anchor }}">{{ f.display_name }}</a></td><td>{{ f.kind }}</td>
<td>{{ f.badge }}</td><td class="num">{{ f.psi }}</td>
<td class="num">{{ f.effect }} <small>{{ f.effect_label }}</small></td>
<td class="nowrap">{{ f.test }}</td>
<td class="num">{{ f.statistic }}</td><td class="num">{{ f.p_adjusted }}</td>
<td class="num">{{ f.missing }}</td><td>{{ f.extra }}</td>
</tr>
{% endfor %}
</tbody>
</table>
</section>

<h2>Features</h2>
{% for f in features %}
<section class="feature tier-{{ f.tier_class }}" id="{{ f.anchor }}">
<header><h3>{{ f.display_name }}</h3>{{ f.badge }}<span class="kind">{{ f.kind }}</span></header>
{% if f.reasons %}
<ul class="reasons">{% for r in f.reasons %}<li>{{ r }}</li>{% endfor %}</ul>
{% endif %}
<dl class="numbers">
{% for label, value in f.numbers %}<div><dt>{{ label }}</dt><dd>{{ value }}</dd></div>
{% endfor %}
</dl>
<p class="quality"><strong>Data quality:</strong> {{ f.quality | join("; ") }}.</p>
<div class="charts">
{% for chart in f.charts %}{{ chart }}
{% endfor %}
</div>
<p class="back"><a href="#features-table">back to the table</a></p>
</section>
{% endfor %}
</main>
</body>
</html>
"""

_ENV = Environment(
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_PAGE = _ENV.from_string(_TEMPLATE)


def render_drift_html(
    report: dict[str, Any],
    *,
    title: str = "Charter drift report",
    reference_name: str = "reference",
    current_name: str = "current",
    generated_at: str | None = None,
) -> str:
    """The drift report ``report`` (``DriftReport.to_dict()``) as one self-contained HTML page.

    ``reference_name`` and ``current_name`` label the two data sets (e.g. file names); they and
    ``title`` are escaped like every other text. ``generated_at`` is printed as given, and only
    when given, so the same arguments always produce the same page.
    """
    view = _view(report, title, reference_name, current_name, generated_at)
    return _PAGE.render(css=Markup(_CSS), **view)


__all__ = ["TIER_ORDER", "fmt_number", "fmt_p", "fmt_rate", "render_drift_html"]
