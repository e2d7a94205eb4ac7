"""Render the regulatory documents of :mod:`charter.reports.documents` as HTML and PDF.

The input is a document dict (a model card, a validation report or an MRM committee report); it
is read, never changed, and no statistic is recomputed: this module orders, formats and draws the
numbers it is given (reports are data first, rendered second). The one derived quantity is a
display conversion: histogram counts become densities for :func:`svg.overlaid_histogram`.

The HTML is self-contained and print-ready: the stylesheet (``templates/style.css``) is inlined,
charts are inline SVG from :mod:`charter.reports.svg`, there is no script and no external URL,
fonts come from the system, and the ``@page`` rules give WeasyPrint an A4 page with numbered
footers. All text from the record is escaped by Jinja2's autoescaping (inside SVG, by
:func:`html.escape`). The same document always renders to the same string: there is no clock
and every mapping is iterated in a fixed order.

Narrative sections that nobody has written yet are shown as such (:data:`NOT_WRITTEN`), and a
gate the policy did not run is shown as :data:`NOT_RUN`; nothing is invented to fill them.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, FunctionLoader, StrictUndefined
from markupsafe import Markup, escape

from charter.errors import InvalidArgument
from charter.reports import svg
from charter.reports.documents import document_sha256
from charter.reports.drift_html import fmt_count, fmt_number, fmt_p, fmt_rate

TEMPLATES: dict[str, str] = {
    "model-card": "model_card.html.j2",
    "validation": "validation.html.j2",
    "mrm": "mrm.html.j2",
}
TITLES: dict[str, str] = {
    "model-card": "Model card",
    "validation": "Validation report",
    "mrm": "Model risk management report",
}
FORMATS: tuple[str, ...] = ("json", "html", "pdf")
NOT_WRITTEN = "Not written yet (charter narrative set / charter recommend)"
NOT_RUN = "not run under this policy"

DATASET_ORDER: tuple[str, ...] = ("train", "holdout", "out_of_time")
TIER_ORDER: tuple[str, ...] = ("high", "medium", "low")
STATUS_ORDER: tuple[str, ...] = ("production", "development", "retired")
SEVERITY_ORDER: tuple[str, ...] = ("high", "medium", "low")
GATE_ORDER: tuple[str, ...] = (
    "data_quality",
    "performance",
    "stability",
    "fairness",
    "calibration",
    "sensitivity",
    "benchmark",
)
GATE_NAMES: dict[str, str] = {
    "data_quality": "Data quality",
    "performance": "Performance",
    "stability": "Stability",
    "fairness": "Fairness",
    "calibration": "Calibration",
    "sensitivity": "Sensitivity",
    "benchmark": "Benchmark",
}

_CHART_WIDTH = 560
_LINE_CHART_WIDTH = 440
_HIST_CHART_WIDTH = 320


# ------------------------------------------------------------------------------------------
# small formatting helpers (formatting only: nothing here derives a statistic)
# ------------------------------------------------------------------------------------------


def _text(value: object) -> str:
    """Any value as display text: ``n/a`` for null or empty, yes/no for booleans."""
    if value is None or value == "" or value == [] or value == {}:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    if isinstance(value, float):
        return fmt_number(value)
    return str(value)


def _setting(value: object) -> str:
    """A policy setting or hyperparameter: numbers in full precision, structures as JSON."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    if isinstance(value, list | tuple) and all(not isinstance(v, dict | list) for v in value):
        return "[" + ", ".join(_setting(v) for v in value) + "]"
    return _text(value)


def _short(value: object, n: int = 16) -> str:
    """The first ``n`` characters of a hash, with an ellipsis; ``n/a`` when there is none."""
    if not value:
        return "n/a"
    text = str(value)
    return text if len(text) <= n else text[:n] + "…"


def _op(op: object) -> str:
    return {">=": "≥", "<=": "≤"}.get(str(op), str(op))


def _pct(value: object) -> str:
    """A shift such as -0.1 as ``-10%``."""
    x = svg.finite_or_none(value)
    if x is None:
        return "n/a"
    return f"{x:+.0%}" if x else "0%"


def _verdict(passed: object) -> Markup:
    if passed is True:
        return Markup('<span class="verdict pass">pass</span>')
    if passed is False:
        return Markup('<span class="verdict fail">FAIL</span>')
    return Markup('<span class="verdict unknown">n/a</span>')


def _narrative(text: object) -> Markup:
    """A narrative section as paragraphs, or the muted note that it has not been written."""
    if not isinstance(text, str) or not text.strip():
        return Markup('<p class="not-written">{}</p>').format(NOT_WRITTEN)
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return Markup("\n").join(
        Markup('<p class="narrative">{}</p>').format(
            Markup("<br>\n").join(escape(line) for line in p.split("\n"))
        )
        for p in paragraphs
    )


def _not_run(what: str) -> Markup:
    return Markup('<p class="not-run">The {} gate was {}.</p>').format(what, NOT_RUN)


def _rank(value: object, order: Sequence[str]) -> tuple[int, str]:
    text = str(value)
    return (order.index(text), "") if text in order else (len(order), text)


def _items(mapping: object) -> list[tuple[str, Any]]:
    """A mapping's items sorted by key (as text); empty for anything else."""
    if not isinstance(mapping, Mapping):
        return []
    return sorted(((str(k), v) for k, v in mapping.items()), key=lambda kv: kv[0])


def _by_dataset(mapping: object) -> list[tuple[str, Any]]:
    """A mapping keyed by data set name: train, holdout, out_of_time, then others by name."""
    return sorted(_items(mapping), key=lambda kv: _rank(kv[0], DATASET_ORDER))


def _seq(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _densities(edges: Sequence[object], counts: Sequence[object]) -> list[float]:
    """Counts per bin as a density (count / (total * bin width)), for the histogram chart."""
    xs = [svg.finite_or_none(e) for e in edges]
    cs = [max(svg.finite_or_none(c) or 0.0, 0.0) for c in counts]
    total = sum(cs)
    out = []
    for i, c in enumerate(cs):
        lo, hi = (xs[i], xs[i + 1]) if i + 1 < len(xs) else (None, None)
        width = (hi - lo) if lo is not None and hi is not None else 0.0
        out.append(c / (total * width) if total > 0 and width > 0 else 0.0)
    return out


# ------------------------------------------------------------------------------------------
# charts and evidence views shared by the model card and the validation report
# ------------------------------------------------------------------------------------------


def _performance_view(metrics: object, champion: object) -> dict[str, Any]:
    rows = [(ds, _map(m)) for ds, m in _by_dataset(metrics)]
    series = [
        (ds, _seq(_map(m.get("roc")).get("fpr")), _seq(_map(m.get("roc")).get("tpr")))
        for ds, m in rows
        if m.get("roc")
    ]
    roc = (
        Markup(
            svg.line_chart(
                series,
                width=_LINE_CHART_WIDTH,
                title="ROC curve by data set",
                x_label="false positive rate (goods declined)",
                y_label="true positive rate (bads declined)",
                diagonal=True,
            )
        )
        if series
        else None
    )
    histograms = []
    for ds, m in rows:
        h = _map(m.get("histogram"))
        if not h:
            continue
        edges = _seq(h.get("edges"))
        chart = svg.overlaid_histogram(
            edges,
            _densities(edges, _seq(h.get("good"))),
            _densities(edges, _seq(h.get("bad"))),
            width=_HIST_CHART_WIDTH,
            title=f"Scores on {ds}",
            reference_label="goods",
            current_label="bads",
        )
        histograms.append((ds, Markup(chart)))
    return {
        "rows": rows,
        "roc": roc,
        "histograms": histograms,
        "champion": [(ds, _map(c)) for ds, c in _by_dataset(champion)],
    }


def _fairness_view(attributes: object) -> list[dict[str, Any]]:
    out = []
    for name, entry in _items(attributes):
        e = _map(entry)
        groups = [_map(g) for g in _seq(e.get("groups"))]
        chart = svg.horizontal_bars(
            [g.get("group") for g in groups],
            [g.get("approval_rate") for g in groups],
            width=_CHART_WIDTH,
            title=f"Approval rate by {name}",
            percent=True,
        )
        out.append(
            {
                "name": name,
                "column": e.get("column"),
                "groups": groups,
                "judged": "demographic_parity_difference" in e,
                "dpd": e.get("demographic_parity_difference"),
                "eod": e.get("equalized_odds_difference"),
                "dir": e.get("disparate_impact_ratio"),
                "chart": Markup(chart),
            }
        )
    return out


def _calibration_view(evidence: object) -> dict[str, Any] | None:
    ev = _map(evidence)
    if not ev:
        return None
    rel = _map(ev.get("reliability"))
    edges = _seq(rel.get("edges"))
    predicted, observed = _seq(rel.get("mean_predicted")), _seq(rel.get("observed_rate"))
    chart = svg.line_chart(
        [("observed bad rate", predicted, observed)],
        width=_LINE_CHART_WIDTH,
        title="Reliability diagram",
        x_label="mean predicted probability",
        y_label="observed bad rate",
        diagonal=True,
        markers=True,
    )
    counts, bads = _seq(rel.get("count")), _seq(rel.get("n_bad"))
    bins = []
    for i in range(max(len(edges) - 1, 0)):
        bins.append(
            {
                "range": f"{fmt_number(edges[i])} – {fmt_number(edges[i + 1])}",
                "count": counts[i] if i < len(counts) else None,
                "n_bad": bads[i] if i < len(bads) else None,
                "mean_predicted": predicted[i] if i < len(predicted) else None,
                "observed_rate": observed[i] if i < len(observed) else None,
            }
        )
    return {
        "dataset": ev.get("dataset"),
        "ece": ev.get("ece"),
        "brier": ev.get("brier"),
        "hl": _map(ev.get("hosmer_lemeshow")),
        "bins": bins,
        "chart": Markup(chart),
    }


def _criterion_limit(gate: Mapping[str, Any], prefix: str, contains: str = "") -> float | None:
    for c in _seq(gate.get("criteria")):
        name = str(_map(c).get("name", ""))
        if name.startswith(prefix) and contains in name:
            return svg.finite_or_none(_map(c).get("limit"))
    return None


def _setting_value(settings: Mapping[str, Any], key: str) -> float | None:
    return svg.finite_or_none(settings.get(key))


def _stability_view(gate: object, settings: Mapping[str, Any]) -> dict[str, Any] | None:
    g = _map(gate)
    if not g:
        return None
    ev = _map(g.get("evidence"))
    limit = _setting_value(settings, "max_feature_psi")
    if limit is None:
        limit = next(
            (
                svg.finite_or_none(_map(c).get("limit"))
                for c in _seq(g.get("criteria"))
                if str(_map(c).get("name", "")).startswith("PSI ")
                and _map(c).get("name") != "PSI score"
            ),
            None,
        )
    warn = _setting_value(settings, "warn_feature_psi")
    features = [_map(f) for f in _seq(ev.get("features"))]
    ordered = sorted(features, key=lambda f: -(svg.finite_or_none(f.get("psi")) or 0.0))
    reference = str(ev.get("feature_reference", "the reference"))
    chart = svg.horizontal_bars(
        [f.get("feature") for f in ordered],
        [f.get("psi") for f in ordered],
        width=_CHART_WIDTH,
        title="PSI by feature, out_of_time against the reference",
        limit=limit,
        warn=warn,
    )
    rows = []
    for f in ordered:
        psi = svg.finite_or_none(f.get("psi"))
        band = "n/a"
        if psi is not None:
            band = "stable"
            if warn is not None and psi > warn:
                band = "warning"
            if limit is not None and psi > limit:
                band = "FAIL"
        rows.append({"feature": f.get("feature"), "kind": f.get("kind"), "psi": psi, "band": band})
    hist = _map(ev.get("score_histogram"))
    base = str(ev.get("score_reference", "reference"))
    edges = _seq(hist.get("edges"))
    score_chart = None
    if edges:
        score_chart = Markup(
            svg.overlaid_histogram(
                edges,
                _densities(edges, _seq(hist.get(base))),
                _densities(edges, _seq(hist.get("out_of_time"))),
                width=_CHART_WIDTH,
                title=f"Score distribution: {base} against out_of_time",
                reference_label=base,
                current_label="out_of_time",
            )
        )
    return {
        "gate": g,
        "reference": reference,
        "score_reference": base,
        "score_psi": ev.get("score_psi"),
        "score_psi_train": ev.get("score_psi_train"),
        "max_score_psi": _setting_value(settings, "max_score_psi"),
        "warn_score_psi": _setting_value(settings, "warn_score_psi"),
        "limit": limit,
        "warn": warn,
        "rows": rows,
        "chart": Markup(chart),
        "score_chart": score_chart,
    }


def _sensitivity_view(gate: object, settings: Mapping[str, Any]) -> dict[str, Any] | None:
    g = _map(gate)
    if not g:
        return None
    ev = _map(g.get("evidence"))
    features = [_map(f) for f in _seq(ev.get("shifts"))]
    sizes = [
        abs(x)
        for f in features
        for s in _seq(f.get("shifts"))
        if (x := svg.finite_or_none(_map(s).get("shift"))) is not None
    ]
    top = max(sizes, default=None)
    limit = _setting_value(settings, "max_mean_abs_change")
    if limit is None:
        limit = _criterion_limit(g, "", "mean |score change|")
    worst: list[tuple[str, float]] = []
    table = []
    for f in features:
        at_top = [
            svg.finite_or_none(_map(s).get("mean_abs_change")) or 0.0
            for s in _seq(f.get("shifts"))
            if top is not None and abs(svg.finite_or_none(_map(s).get("shift")) or 0.0) == top
        ]
        worst.append((str(f.get("feature")), max(at_top, default=0.0)))
        for s in _seq(f.get("shifts")):
            table.append({"feature": f.get("feature"), **_map(s)})
    worst.sort(key=lambda fw: -fw[1])
    chart = None
    if worst and top is not None:
        chart = Markup(
            svg.horizontal_bars(
                [w[0] for w in worst],
                [w[1] for w in worst],
                width=_CHART_WIDTH,
                title=f"Mean |score change| at ±{top:.0%}, per input",
                limit=limit,
            )
        )
    return {
        "gate": g,
        "dataset": ev.get("dataset"),
        "top": _pct(top).lstrip("+") if top is not None else "n/a",
        "chart": chart,
        "shifts": table,
        "missing": [_map(m) for m in _seq(ev.get("missing"))],
    }


def _data_quality_view(gate: object) -> dict[str, Any] | None:
    g = _map(gate)
    if not g:
        return None
    ev = _map(g.get("evidence"))
    return {
        "gate": g,
        "datasets": [(ds, _map(d)) for ds, d in _by_dataset(ev.get("datasets"))],
        "features": [
            (ds, [_map(r) for r in _seq(rows)]) for ds, rows in _by_dataset(ev.get("features"))
        ],
    }


def _gate_rows(gates: Iterable[object]) -> list[Mapping[str, Any]]:
    return [_map(g) for g in gates]


# ------------------------------------------------------------------------------------------
# view models per document kind
# ------------------------------------------------------------------------------------------


def _explanations_view(ev: Any) -> dict[str, Any] | None:
    """Global importance (a bar chart of mean |log-odds contribution|) and the stability of the
    top reasons under resampling of the applicants; None when no run recorded any."""
    e = _map(ev)
    if not e:
        return None
    if not e.get("available"):
        return {"available": False, "reason": str(e.get("reason", ""))}
    ranked = [_map(f) for f in _seq(e.get("importance"))]
    top = ranked[:12]
    chart = svg.horizontal_bars(
        [f.get("feature") for f in top],
        [f.get("mean_abs") for f in top],
        width=_CHART_WIDTH,
        title=f"Mean |log-odds contribution| on {e.get('dataset')} ({e.get('rows')} applicants)",
    )
    stab = _map(e.get("reason_stability"))
    rows = [_map(f) for f in _seq(stab.get("features"))][:8]
    return {
        "available": True,
        "method": e.get("method"),
        "chart": Markup(chart),
        "top_set": ", ".join(str(x) for x in _seq(stab.get("top_set"))),
        "top_set_share": stab.get("top_set_share"),
        "n_boot": stab.get("n_boot"),
        "stability": rows,
    }


def _model_card_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    d = _map(doc.get("model_details"))
    qa = _map(doc.get("quantitative_analyses"))
    gov = _map(doc.get("governance"))
    run = gov.get("gate_run")
    return {
        "subject": f"{d.get('name')} v{d.get('version')}",
        "performance": _performance_view(qa.get("performance"), qa.get("champion_comparison")),
        "fairness": _fairness_view(qa.get("fairness")),
        "calibration": _calibration_view(qa.get("calibration")),
        "explanations": _explanations_view(qa.get("global_explanations")),
        "evaluation_data": _by_dataset(doc.get("evaluation_data")),
        "has_run": run is not None,
        "run_gates": _gate_rows(_seq(_map(run).get("gates"))),
    }


def _validation_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    scope = _map(doc.get("scope"))
    policy = _map(scope.get("policy"))
    settings = _map(policy.get("gates"))
    outcomes = _map(doc.get("outcomes_analysis"))
    perf = _map(outcomes.get("performance"))
    fair = _map(outcomes.get("fairness"))
    calib = _map(outcomes.get("calibration"))
    bench = _map(doc.get("benchmarking"))
    run = _map(scope.get("gate_run"))
    model = _map(scope.get("model"))
    return {
        "subject": f"{model.get('name')} v{model.get('version')}",
        "policy_settings": [
            (gate, _items(s))
            for gate, s in sorted(_items(settings), key=lambda kv: _rank(kv[0], GATE_ORDER))
        ],
        "run_gates": _gate_rows(_seq(run.get("gates"))),
        "datasets": _by_dataset(run.get("datasets")),
        "data_quality": _data_quality_view(doc.get("data_quality")),
        "performance_gate": perf or None,
        "performance": _performance_view(
            _map(perf.get("evidence")).get("metrics"), _map(perf.get("evidence")).get("champion")
        ),
        "calibration_gate": calib or None,
        "calibration": _calibration_view(calib.get("evidence")),
        "stability": _stability_view(outcomes.get("stability"), _map(settings.get("stability"))),
        "fairness_gate": fair or None,
        "fairness_dataset": _map(fair.get("evidence")).get("dataset"),
        "fairness": _fairness_view(_map(fair.get("evidence")).get("attributes")),
        "benchmark": _map(bench.get("benchmark")) or None,
        "champion": [(ds, _map(c)) for ds, c in _by_dataset(bench.get("champion"))],
        "sensitivity": _sensitivity_view(doc.get("sensitivity"), _map(settings.get("sensitivity"))),
    }


def _mrm_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    inv = _map(doc.get("inventory"))
    by = _map(inv.get("by_tier_and_status"))
    tiers = sorted((str(t) for t in by), key=lambda t: _rank(t, TIER_ORDER))
    statuses = sorted(
        {str(s) for t in tiers for s in _map(by[t])}, key=lambda s: _rank(s, STATUS_ORDER)
    )
    matrix = [
        {
            "tier": t,
            "counts": [int(_map(by[t]).get(s, 0)) for s in statuses],
            "total": sum(int(v) for v in _map(by[t]).values()),
        }
        for t in tiers
    ]
    production = {t: int(_map(by.get(t)).get("production", 0)) for t in TIER_ORDER}
    counts_line = f"{fmt_count(inv.get('in_production', 0))} models in production: " + ", ".join(
        f"{production[t]} {t}" for t in TIER_ORDER
    )
    labels = [f"{t} · {s}" for t in tiers for s in statuses if _map(by[t]).get(s)]
    values = [int(_map(by[t]).get(s, 0)) for t in tiers for s in statuses if _map(by[t]).get(s)]
    inventory_chart = Markup(
        svg.horizontal_bars(labels, values, width=_CHART_WIDTH, title="Models by tier and status")
    )
    open_f = [_map(f) for f in _seq(doc.get("open_findings"))]
    severities = Counter(str(f.get("severity")) for f in open_f)
    sev = sorted(severities, key=lambda s: _rank(s, SEVERITY_ORDER))
    findings_chart = (
        Markup(
            svg.horizontal_bars(
                sev,
                [severities[s] for s in sev],
                width=_CHART_WIDTH,
                title="Open findings by severity",
            )
        )
        if open_f
        else None
    )
    changes = _map(doc.get("changes_since_last_report"))
    by_action = _items(changes.get("by_action"))
    return {
        "subject": "All models",
        "statuses": statuses,
        "matrix": matrix,
        "counts_line": counts_line,
        "inventory_chart": inventory_chart,
        "findings_chart": findings_chart,
        "by_action": by_action,
    }


# ------------------------------------------------------------------------------------------
# templates
# ------------------------------------------------------------------------------------------


def _template_source(name: str) -> str | None:
    try:
        return (resources.files("charter.reports") / "templates" / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


_ENV = Environment(
    loader=FunctionLoader(_template_source),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters.update(
    num=fmt_number,
    p=fmt_p,
    rate=fmt_rate,
    count=fmt_count,
    text=_text,
    setting=_setting,
    short=_short,
    op=_op,
    pct=_pct,
    items=_items,
    by_dataset=_by_dataset,
)
_ENV.globals.update(
    verdict=_verdict,
    narrative=_narrative,
    not_run=_not_run,
    gate_name=lambda g: GATE_NAMES.get(str(g), str(g)),
    NOT_WRITTEN=NOT_WRITTEN,
    NOT_RUN=NOT_RUN,
)


def _css() -> Markup:
    text = _template_source("style.css")
    if text is None:
        raise FileNotFoundError("charter/reports/templates/style.css is missing")
    return Markup(text)


def _kind(doc: Mapping[str, Any]) -> str:
    prov = doc.get("provenance") if isinstance(doc, Mapping) else None
    kind = prov.get("document") if isinstance(prov, Mapping) else None
    if kind not in TEMPLATES:
        raise InvalidArgument(
            f"not a charter document: provenance.document is {kind!r}",
            field="provenance.document",
            remedy=f"build one with charter report (one of: {', '.join(TEMPLATES)})",
        )
    return str(kind)


def _provenance(doc: Mapping[str, Any]) -> dict[str, Any]:
    p = _map(doc.get("provenance"))
    recorded = doc.get("document_sha256")
    matches = bool(recorded) and recorded == document_sha256(dict(doc))
    head_hash = p.get("audit_head_hash")
    return {
        "as_of": _text(p.get("as_of")),
        "generator": _text(p.get("generator")),
        "schema_version": _text(p.get("schema_version")),
        "seq": _text(p.get("audit_head_seq", 0)),
        "hash": _short(head_hash) if head_hash else "empty chain",
        "time": p.get("audit_head_time"),
        "sha": _short(recorded) if recorded else None,
        "sha_matches": matches,
    }


def render_html(doc: Mapping[str, Any]) -> str:
    """The document ``doc`` (a model card, validation report or MRM report dict from
    :mod:`charter.reports.documents`) as one self-contained, print-ready HTML page.

    The template is chosen by ``doc["provenance"]["document"]``; an unknown kind raises
    :class:`~charter.errors.InvalidArgument`. The same document gives the same string.
    """
    kind = _kind(doc)
    builders = {"model-card": _model_card_view, "validation": _validation_view, "mrm": _mrm_view}
    view = builders[kind](doc)
    template = _ENV.get_template(TEMPLATES[kind])
    return template.render(
        doc=doc,
        v=view,
        kind=kind,
        title=TITLES[kind],
        subject=view["subject"],
        provenance=_provenance(doc),
        css=_css(),
    )


def render_pdf(doc: Mapping[str, Any]) -> bytes:
    """The document as PDF bytes (WeasyPrint, offline; see :mod:`charter.reports.pdf`)."""
    from charter.reports.pdf import html_to_pdf

    return html_to_pdf(render_html(doc))


def _slug(text: object) -> str:
    out = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "-" for ch in str(text))
    return out.strip(".") or "document"


def default_stem(doc: Mapping[str, Any]) -> str:
    """``model-card_<model>_v<version>``, ``validation_<model>_v<version>`` or ``mrm_<as_of>``."""
    kind = _kind(doc)
    if kind == "mrm":
        return f"mrm_{_slug(_map(doc.get('provenance')).get('as_of'))}"
    model = (
        _map(doc.get("model_details"))
        if kind == "model-card"
        else _map(_map(doc.get("scope")).get("model"))
    )
    return f"{kind}_{_slug(model.get('name'))}_v{_slug(model.get('version'))}"


def write_document(
    doc: Mapping[str, Any],
    out_dir: Path,
    stem: str | None = None,
    formats: Sequence[str] = FORMATS,
) -> dict[str, Path]:
    """Write the document as ``<stem>.json`` (sorted, indented), ``.html`` and ``.pdf`` into
    ``out_dir`` (created if needed); return the path of each format written.

    Every requested format is rendered before anything is written, so a failure (say, WeasyPrint
    missing for the PDF) leaves no partial set of files behind.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise InvalidArgument(
            f"unknown document format(s) {unknown}" if unknown else "no format to write",
            field="formats",
            remedy=f"use some of: {', '.join(FORMATS)}",
        )
    name = stem or default_stem(doc)
    contents: dict[str, str | bytes] = {}
    html = render_html(doc) if {"html", "pdf"} & set(formats) else ""
    for fmt in formats:
        if fmt == "json":
            contents[fmt] = json.dumps(doc, indent=2, sort_keys=True) + "\n"
        elif fmt == "html":
            contents[fmt] = html
        else:
            from charter.reports.pdf import html_to_pdf

            contents[fmt] = html_to_pdf(html)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for fmt, data in contents.items():
        path = out / f"{name}.{fmt}"
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        paths[fmt] = path
    return paths


__all__ = [
    "FORMATS",
    "NOT_RUN",
    "NOT_WRITTEN",
    "TEMPLATES",
    "default_stem",
    "render_html",
    "render_pdf",
    "write_document",
]
