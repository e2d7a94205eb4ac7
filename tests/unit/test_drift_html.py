"""The HTML drift report: one self-contained, escaped, deterministic page; and its SVG charts."""

from __future__ import annotations

import copy
import json
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pandas as pd
import pytest

from charter.datasets import drift_benchmark_frame, load_german_credit
from charter.reports import svg
from charter.reports.drift_html import render_drift_html
from charter.stats.compare import drift_report

EVIL_NAME = "<script>alert(1)</script>"
EVIL_LEVEL = '<img src=x onerror="alert(2)">'
SVG_NS = "{http://www.w3.org/2000/svg}"
XMLNS = 'xmlns="http://www.w3.org/2000/svg"'
GEOMETRY = ("x", "y", "width", "height", "x1", "y1", "x2", "y2", "d", "points", "viewbox",
            "viewBox", "transform")  # fmt: skip
TIER_RANK = {"critical": 0, "warning": 1, "stable": 2}


# ------------------------------------------------------------------------------------------
# a small DOM built with html.parser
# ------------------------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}  # fmt: skip


@dataclass
class Node:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    data: str = ""  # text, for "#text" nodes

    def iter(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str) -> list[Node]:
        return [n for n in self.iter() if n.tag == tag]

    def text(self) -> str:
        return "".join(n.data for n in self.iter() if n.tag == "#text")

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document")
        self.stack = [self.root]
        self.errors: list[str] = []
        self.doctype: str | None = None

    def handle_decl(self, decl: str) -> None:
        self.doctype = decl

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.stack[-1].tag == tag:
            self.stack.pop()
        else:
            self.errors.append(f"</{tag}> closes <{self.stack[-1].tag}>")

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(Node("#text", data=data))


def parse(page: str) -> TreeBuilder:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    return builder


# ------------------------------------------------------------------------------------------
# SVG geometry checks (shared by parsed pages and by xml.etree trees)
# ------------------------------------------------------------------------------------------


def _numbers(value: str) -> list[float]:
    out = []
    for token in value.replace(",", " ").replace("(", " ").replace(")", " ").split():
        if token.isalpha():
            continue  # path commands and transform names
        out.append(float(token))
    return out


def check_shapes(shapes: Iterable[tuple[str, dict[str, str]]]) -> int:
    """Assert all geometry is finite; return how many path/rect/polygon shapes have an area."""
    drawn = 0
    for tag, attrs in shapes:
        for key, value in attrs.items():
            if key in GEOMETRY:
                low = value.lower()
                assert "nan" not in low and "inf" not in low, (tag, key, value)
                assert all(math.isfinite(v) for v in _numbers(value)), (tag, key, value)
        if tag == "rect":
            if float(attrs["width"]) > 0 and float(attrs["height"]) > 0:
                drawn += 1
        elif tag in ("path", "polygon"):
            nums = _numbers(attrs["d"] if tag == "path" else attrs["points"])
            xs, ys = nums[0::2], nums[1::2]
            if len(xs) >= 3 and max(xs) > min(xs) and max(ys) > min(ys):
                drawn += 1
    return drawn


def etree(svg_text: str) -> ET.Element:
    root = ET.fromstring(svg_text)  # well-formed XML, or this raises
    assert root.tag == f"{SVG_NS}svg"
    return root


def et_shapes(root: ET.Element) -> list[tuple[str, dict[str, str]]]:
    return [(el.tag.removeprefix(SVG_NS), dict(el.attrib)) for el in root.iter()]


def et_texts(root: ET.Element, tag: str) -> list[str]:
    return ["".join(el.itertext()) for el in root.iter(f"{SVG_NS}{tag}")]


# ------------------------------------------------------------------------------------------
# reports
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def benchmark_report() -> dict[str, Any]:
    ref = drift_benchmark_frame(5_000, seed=1, drifted=False)
    cur = drift_benchmark_frame(5_000, seed=2, drifted=True)
    return drift_report(ref, cur).to_dict()


@pytest.fixture(scope="module")
def german_report() -> dict[str, Any]:
    df = load_german_credit()
    ref = df[df["foreign_worker"] == "yes"].drop(columns=["foreign_worker"])
    cur = df[df["foreign_worker"] == "no"].drop(columns=["foreign_worker"])
    return drift_report(ref, cur).to_dict()


@pytest.fixture(scope="module")
def evil_report() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    n = 600
    ref = pd.DataFrame({EVIL_NAME: rng.normal(size=n), "level": rng.choice(["a", "b"], n)})
    cur = pd.DataFrame(
        {EVIL_NAME: rng.normal(0.5, 1.0, n), "level": rng.choice(["a", "b", EVIL_LEVEL], n)}
    )
    return drift_report(ref, cur, numeric=[EVIL_NAME], categorical=["level"]).to_dict()


@pytest.fixture(scope="module")
def empty_current_report() -> dict[str, Any]:
    rng = np.random.default_rng(8)
    n = 500
    ref = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(["u", "v", "w"], n)})
    cur = pd.DataFrame({"x": [np.nan] * 40, "c": [None] * 40})
    return drift_report(ref, cur, numeric=["x"], categorical=["c"]).to_dict()


@pytest.fixture(scope="module", params=["benchmark", "german"])
def real(
    request: pytest.FixtureRequest,
    benchmark_report: dict[str, Any],
    german_report: dict[str, Any],
) -> tuple[dict[str, Any], str, TreeBuilder]:
    report = benchmark_report if request.param == "benchmark" else german_report
    page = render_drift_html(report, reference_name="ref.csv", current_name="cur.csv")
    return report, page, parse(page)


def feature_sections(doc: Node) -> dict[str, Node]:
    out: dict[str, Node] = {}
    for node in doc.find_all("section"):
        if "feature" in node.classes():
            name = node.find_all("h3")[0].text()
            assert name not in out, f"two sections for {name!r}"
            out[name] = node
    return out


def chart_svgs(node: Node) -> list[Node]:
    return [n for n in node.find_all("svg") if "chart" in n.classes()]


def svg_shapes(node: Node) -> list[tuple[str, dict[str, str]]]:
    return [(n.tag, n.attrs) for n in node.iter() if n.tag != "#text"]


def position(doc: Node, predicate: Any) -> int:
    for i, n in enumerate(doc.iter()):
        if predicate(n):
            return i
    raise AssertionError("not found")


# ------------------------------------------------------------------------------------------
# the page
# ------------------------------------------------------------------------------------------


def test_is_a_complete_html_document(real: tuple[dict[str, Any], str, TreeBuilder]) -> None:
    _, page, parsed = real
    assert parsed.doctype is not None and parsed.doctype.lower() == "doctype html"
    assert parsed.errors == [] and parsed.stack == [parsed.root], "every element is closed"
    (html,) = [n for n in parsed.root.children if n.tag != "#text"]
    assert html.tag == "html" and html.attrs.get("lang") == "en"
    head, body = [n for n in html.children if n.tag != "#text"]
    assert head.tag == "head" and body.tag == "body"
    assert any(m.attrs.get("charset") == "utf-8" for m in head.find_all("meta"))
    assert head.find_all("title")[0].text() == "Charter drift report"
    assert page.rstrip().endswith("</html>")


def test_references_nothing_outside_the_file(real: tuple[dict[str, Any], str, TreeBuilder]) -> None:
    _, page, parsed = real
    resource_attrs = {"src", "srcset", "href", "xlink:href", "action", "formaction", "poster",
                      "data", "background", "cite", "longdesc", "manifest", "ping"}  # fmt: skip
    for node in parsed.root.iter():
        assert node.tag not in {"script", "link", "iframe", "object", "embed", "img", "base"}
        for key, value in node.attrs.items():
            if key in resource_attrs:
                assert key == "href" and value.startswith("#"), (node.tag, key, value)
            if key == "style":
                assert "url(" not in value.lower()
    css = "".join(n.text() for n in parsed.root.find_all("style")).lower()
    assert "@import" not in css and "url(" not in css and "@font-face" not in css
    assert "https://" not in page
    # the only "http://" is the SVG namespace name, which is never fetched
    assert page.count("http://") == page.count(XMLNS)
    csp = [m for m in parsed.root.find_all("meta") if m.attrs.get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0].attrs["content"]


def test_every_feature_has_a_section_with_finite_charts(
    real: tuple[dict[str, Any], str, TreeBuilder],
) -> None:
    report, _, parsed = real
    sections = feature_sections(parsed.root)
    assert set(sections) == {f["feature"] for f in report["features"]}
    for f in report["features"]:
        section = sections[f["feature"]]
        charts = chart_svgs(section)
        assert len(charts) == (2 if f["kind"] == "numeric" else 1), f["feature"]
        for chart in charts:
            assert check_shapes(svg_shapes(chart)) >= 1, f["feature"]
        assert "tier-" + f["tier"] in section.classes()
        for reason in f["reasons"]:
            assert reason in section.text()
        assert "Data quality:" in section.text()


def test_table_links_to_every_section(real: tuple[dict[str, Any], str, TreeBuilder]) -> None:
    report, _, parsed = real
    ids = [n.attrs["id"] for n in parsed.root.iter() if "id" in n.attrs]
    assert len(ids) == len(set(ids)), "ids are unique"
    table = next(n for n in parsed.root.iter() if n.attrs.get("id") == "features-table")
    rows = table.find_all("tbody")[0].find_all("tr")
    assert len(rows) == len(report["features"])
    sections = feature_sections(parsed.root)
    for row in rows:
        link = row.find_all("a")[0]
        assert sections[link.text()].attrs["id"] == link.attrs["href"].removeprefix("#")


def test_summary_first_then_table_then_flagged_sections_first(
    real: tuple[dict[str, Any], str, TreeBuilder],
) -> None:
    report, _, parsed = real
    doc = parsed.root
    summary = position(doc, lambda n: n.attrs.get("id") == "summary")
    table = position(doc, lambda n: n.attrs.get("id") == "features-table")
    first_section = position(doc, lambda n: n.tag == "section" and "feature" in n.classes())
    assert summary < table < first_section
    summary_node = next(n for n in doc.iter() if n.attrs.get("id") == "summary")
    assert report["summary"]["flagged"], "the fixture has flagged features"
    for name in report["summary"]["flagged"]:
        assert name in summary_node.text()
    tiers = {f["feature"]: f["tier"] for f in report["features"]}
    order = [tiers[name] for name in feature_sections(doc)]  # dicts keep document order
    assert [TIER_RANK[t] for t in order] == sorted(TIER_RANK[t] for t in order)
    assert "stable" in order and order[0] != "stable"


def test_rendering_is_deterministic_and_leaves_the_report_alone(
    benchmark_report: dict[str, Any],
) -> None:
    before = json.dumps(benchmark_report, sort_keys=True)
    first = render_drift_html(benchmark_report)
    again = render_drift_html(copy.deepcopy(benchmark_report))
    assert first == again
    assert json.dumps(benchmark_report, sort_keys=True) == before
    assert "generated" not in first
    stamped = render_drift_html(benchmark_report, generated_at="2026-11-22 09:00 UTC")
    assert "generated 2026-11-22 09:00 UTC" in stamped


def test_user_text_is_escaped(evil_report: dict[str, Any]) -> None:
    page = render_drift_html(
        evil_report, title=EVIL_NAME, reference_name=EVIL_LEVEL, current_name="<b>cur</b>"
    )
    assert "<script" not in page.lower() and "<img" not in page.lower() and "<b>" not in page
    parsed = parse(page)
    assert parsed.errors == []
    for node in parsed.root.iter():
        assert node.tag not in {"script", "img", "b"}
        assert not any(key.startswith("on") for key in node.attrs), node.attrs
    sections = feature_sections(parsed.root)
    assert EVIL_NAME in sections, "the name is shown as text"
    assert parsed.root.find_all("title")[0].text() == EVIL_NAME
    level = sections["level"]
    assert EVIL_LEVEL in level.text(), "the new category is listed as text"
    (chart,) = chart_svgs(level)
    tips = [n.text() for n in chart.find_all("title")]
    assert any(t.startswith(EVIL_LEVEL) for t in tips)


def test_null_p_values_and_empty_current_data(empty_current_report: dict[str, Any]) -> None:
    features = empty_current_report["features"]
    assert all(f["n_current"] == 0 and f["p_value"] is None for f in features)
    page = render_drift_html(empty_current_report)
    parsed = parse(page)
    assert parsed.errors == []
    sections = feature_sections(parsed.root)
    assert set(sections) == {"x", "c"}
    for section in sections.values():
        for chart in chart_svgs(section):
            assert check_shapes(svg_shapes(chart)) >= 1
    assert "n/a" in sections["x"].text()
    assert "current (no data)" in sections["x"].text()


def test_a_report_with_missing_numbers_and_empty_series(benchmark_report: dict[str, Any]) -> None:
    report = copy.deepcopy(benchmark_report)
    for f in report["features"]:
        f.update(
            p_value=None,
            p_adjusted=None,
            statistic=None,
            current_mean=None,
            n_current=0,
            current_share=[],
            plot_current_density=[],
        )
    report["features"][0].update(plot_edges=[], plot_reference_density=[])
    report["features"][1].update(plot_edges=[3.0, 3.0], plot_reference_density=[1.0])
    report["features"][2]["plot_reference_density"] = [None] * 40
    parsed = parse(render_drift_html(report))
    assert parsed.errors == []
    sections = feature_sections(parsed.root)
    assert len(sections) == len(report["features"])
    for section in sections.values():
        for chart in chart_svgs(section):
            check_shapes(svg_shapes(chart))  # finite even when nothing can be drawn
            assert chart.find_all("rect") or chart.find_all("path")


# ------------------------------------------------------------------------------------------
# the SVG functions
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edges", "ref", "cur", "message"),
    [
        ([], [], [], "no distribution to plot"),
        ([1.0], [], [], "no distribution to plot"),
        ([2.0, 2.0], [1.0], [1.0], "every value equals 2"),
        ([0.0, float("nan"), 2.0], [1.0, 1.0], [1.0, 1.0], "no distribution to plot"),
        ([0.0, 2.0, 1.0], [1.0, 1.0], [1.0, 1.0], "bin edges are not increasing"),
        ([0.0, 1.0, 2.0], [0.0, 0.0], [0.0, 0.0], "all densities are zero"),
        ([0.0, 1.0, 2.0], [None, float("inf")], [], "all densities are zero"),
    ],
)
def test_histogram_degenerate_input(
    edges: list[float], ref: list[Any], cur: list[Any], message: str
) -> None:
    root = etree(svg.overlaid_histogram(edges, ref, cur, title="t"))
    assert message in " ".join(et_texts(root, "text"))
    assert check_shapes(et_shapes(root)) >= 1  # the frame


def test_histogram_draws_both_sides_with_ticks() -> None:
    edges = list(np.linspace(-3, 3, 25))
    ref = list(np.exp(-(np.linspace(-3, 3, 24) ** 2) / 2) / 2.5)
    cur = list(np.exp(-((np.linspace(-3, 3, 24) - 0.5) ** 2) / 2) / 2.5)
    root = etree(svg.overlaid_histogram(edges, ref, cur, reference_label="A", current_label="B"))
    paths = [el for el in root.iter(f"{SVG_NS}path")]
    assert len(paths) == 2 and check_shapes(et_shapes(root)) >= 2
    texts = et_texts(root, "text")
    assert {"A", "B", "-2", "0", "2"} <= set(texts)
    assert not any("clipped" in t or "cut at" in t for t in texts)


def test_histogram_clips_a_long_tail_and_says_so() -> None:
    edges = [*np.linspace(0.0, 10.0, 41), 1000.0]
    ref = [0.1] * 40 + [0.0]
    cur = [0.098] * 40 + [0.0002 / 990]
    root = etree(svg.overlaid_histogram(edges, ref, cur))
    texts = et_texts(root, "text")
    assert any(t.startswith("x axis cut at") and "1000" in t for t in texts)
    ticks = [
        float(t.replace(",", "")) for t in texts if t.replace(",", "").replace(".", "").isdigit()
    ]
    assert ticks and max(ticks) <= 11


def test_histogram_keeps_a_tail_that_holds_current_mass() -> None:
    edges = [*np.linspace(0.0, 10.0, 41), 1000.0]
    ref = [0.1] * 40 + [0.0]
    cur = [0.07] * 40 + [0.3 / 990]  # 30% of the current data lies in the far bin
    texts = et_texts(etree(svg.overlaid_histogram(edges, ref, cur)), "text")
    assert not any("cut at" in t for t in texts)
    assert "1,000" in texts


def test_histogram_point_masses_are_marked_not_scaled() -> None:
    edges = [1.0, 2.0, 3.0, 4.0, 4.0 + 1e-12, 5.0]
    ref = [0.2, 0.2, 0.2, 0.4e12, 0.0]
    cur = [0.3, 0.1, 0.2, 0.0, 0.4]
    root = etree(svg.overlaid_histogram(edges, ref, cur))
    assert len(list(root.iter(f"{SVG_NS}polygon"))) == 1, "one spike, reference side only"
    assert any("point mass" in t for t in et_texts(root, "text"))
    check_shapes(et_shapes(root))
    # the y scale follows the ordinary bins: the 0.4 current bin reaches near the top
    top = min(min(_numbers(p.attrib["d"])[1::2]) for p in root.iter(f"{SVG_NS}path"))
    assert top < 60


def test_grouped_bars_sum_the_rest_into_other() -> None:
    labels = [f"level {i}" for i in range(100)]
    ref = [1 / 100] * 100
    cur = [0.5] + [0.5 / 99] * 99
    root = etree(svg.grouped_bars(labels, ref, cur, max_bars=30))
    groups = [g for g in root.iter(f"{SVG_NS}g")]
    assert len(groups) == 30
    last = "".join(groups[-1].itertext())
    assert "other (71)" in last
    assert "level 0" in "".join(groups[0].itertext())
    check_shapes(et_shapes(root))


def test_grouped_bars_truncate_and_rotate_long_labels() -> None:
    long = "management/ self-employed/ highly qualified employee/ officer"
    root = etree(svg.grouped_bars([long, "b", "c"], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], width=300))
    texts = [el for el in root.iter(f"{SVG_NS}text") if "…" in "".join(el.itertext())]
    assert texts and "rotate(" in texts[0].attrib["transform"]
    assert any(t.startswith(long) for t in et_texts(root, "title")), "full label in the tooltip"
    check_shapes(et_shapes(root))
    bars = [el for g in root.iter(f"{SVG_NS}g") for el in g.iter(f"{SVG_NS}rect")]
    assert len(bars) == 6


def test_grouped_bars_escape_and_highlight() -> None:
    out = svg.grouped_bars(
        ["a", EVIL_LEVEL], [1.0, 0.0], [0.5, 0.5], highlight=[EVIL_LEVEL], max_label_chars=40
    )
    assert "<img" not in out
    root = etree(out)
    assert EVIL_LEVEL in et_texts(root, "text")
    red = [el for el in root.iter(f"{SVG_NS}text") if el.attrib.get("font-weight") == "700"]
    assert ["".join(el.itertext()) for el in red] == [EVIL_LEVEL]


def test_grouped_bars_without_labels_or_shares() -> None:
    cases: list[tuple[list[str], list[Any], list[Any]]] = [
        ([], [], []),
        (["a", "b"], [None, float("nan")], []),
    ]
    for labels, ref, cur in cases:
        root = etree(svg.grouped_bars(labels, ref, cur, title="t"))
        check_shapes(et_shapes(root))


def test_tier_badges() -> None:
    for tier, colour in svg.TIER_COLOURS.items():
        root = etree(svg.tier_badge(tier, count=3))
        assert root.find(f"{SVG_NS}rect").attrib["fill"] == colour
        assert et_texts(root, "text") == [f"{tier} 3"]
    root = etree(svg.tier_badge(EVIL_NAME))
    assert et_texts(root, "text") == [EVIL_NAME]
    assert root.find(f"{SVG_NS}rect").attrib["fill"] == svg.UNKNOWN_TIER_COLOUR
