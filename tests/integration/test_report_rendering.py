"""The drift report rendered for real: as a PDF by WeasyPrint and as a page in headless Chromium.

Both renderings run offline. The PDF is checked by rasterising it with pdfium; the page by asking
the browser what it drew. Nothing here is skipped: a missing browser or library fails with the
command that installs it (``make test``).
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import (
    assert_not_blank,
    drawn_charts,
    open_page,
    pdf_metadata,
    pdf_page_count,
    pdf_page_image,
    pdf_page_text,
)
from charter.datasets import drift_benchmark_frame
from charter.errors import InvalidArgument
from charter.reports.drift_html import render_drift_html
from charter.reports.pdf import html_to_pdf
from charter.stats.compare import drift_report

TITLE = "Charter drift report"

# Renders its argument (an HTML file) to the PDF file named second, in a fresh interpreter.
_RENDER = (
    "import sys, pathlib; from charter.reports.pdf import html_to_pdf; "
    "pathlib.Path(sys.argv[2]).write_bytes("
    "html_to_pdf(pathlib.Path(sys.argv[1]).read_text(encoding='utf-8')))"
)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    ref = drift_benchmark_frame(5_000, seed=1, drifted=False)
    cur = drift_benchmark_frame(5_000, seed=2, drifted=True)
    return drift_report(ref, cur).to_dict()


@pytest.fixture(scope="module")
def report_html(report: dict[str, Any]) -> str:
    return render_drift_html(report, reference_name="ref.csv", current_name="cur.csv")


@pytest.fixture
def http_hits() -> Iterator[tuple[int, list[str]]]:
    """A local HTTP server that records every request: (port, paths requested)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# ------------------------------------------------------------------------------------------
# PDF
# ------------------------------------------------------------------------------------------


def test_drift_report_as_a_deterministic_pdf(report_html: str, tmp_path: Path) -> None:
    html_file, again_file = tmp_path / "drift.html", tmp_path / "again.pdf"
    html_file.write_text(report_html, encoding="utf-8")
    # the same HTML rendered at the same time by another interpreter with another hash seed
    other = subprocess.Popen(
        [sys.executable, "-c", _RENDER, str(html_file), str(again_file)],
        env={**os.environ, "PYTHONHASHSEED": "1234"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        data = html_to_pdf(report_html)
    finally:
        output, _ = other.communicate(timeout=300)
    assert other.returncode == 0, output.decode(errors="replace")

    assert data.startswith(b"%PDF-")
    assert pdf_page_count(data) >= 1
    assert_not_blank(pdf_page_image(data, 0))
    first_page = pdf_page_text(data, 0)
    assert TITLE in first_page and "ref.csv" in first_page

    info = pdf_metadata(data)
    assert info["Producer"].startswith("WeasyPrint")
    assert info["CreationDate"] == info["ModDate"] == "", "no clock in the file"
    assert again_file.read_bytes() == data, "the same HTML gives the same bytes"


def test_a_pdf_is_dated_only_by_the_document(tmp_path: Path) -> None:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>t</title>'
        '<meta name="dcterms.created" content="2026-11-22T09:00:00Z"></head>'
        "<body><h1>Validation report</h1></body></html>"
    )
    first, second = html_to_pdf(page), html_to_pdf(page)
    assert first == second
    info = pdf_metadata(first)
    assert (info["CreationDate"], info["ModDate"]) == ("D:20261122090000Z", "")


def test_a_pdf_loads_data_urls_only(http_hits: tuple[int, list[str]]) -> None:
    port, hits = http_hits
    dot = (
        "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='10' height='10'%3E"
        "%3Crect width='10' height='10' fill='black'/%3E%3C/svg%3E"
    )
    inline = html_to_pdf(f'<p>inline image <img src="{dot}" width="40"></p>')
    assert pdf_page_count(inline) == 1

    base = f"http://127.0.0.1:{port}"
    external = {
        "image": f'<img src="{base}/a.png">',
        "stylesheet": f'<link rel="stylesheet" href="{base}/s.css"><p>x</p>',
        "import": f"<style>@import url({base}/i.css);</style><p>x</p>",
        "background": f'<p style="background: url({base}/bg.png)">x</p>',
        "font": (
            f"<style>@font-face {{ font-family: X; src: url({base}/f.ttf) }} "
            "p { font-family: X }</style><p>x</p>"
        ),
        "svg image": (
            '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">'
            f'<image href="{base}/i.png" width="10" height="10"/></svg>'
        ),
        "relative file": '<img src="logo.png">',
    }
    for what, page in external.items():
        with pytest.raises(InvalidArgument, match="only data: URLs are loaded") as caught:
            html_to_pdf(page, base_url="file:///etc/")
        assert caught.value.field == "html", what
    assert hits == [], "nothing reached the server"

    # a hyperlink is written into the PDF, never fetched
    html_to_pdf(f'<p><a href="{base}/doc">the policy</a></p>')
    assert hits == []


# ------------------------------------------------------------------------------------------
# Chromium
# ------------------------------------------------------------------------------------------


def test_drift_report_charts_are_drawn_in_chromium(
    report: dict[str, Any], report_html: str, tmp_path: Path
) -> None:
    path = tmp_path / "drift.html"
    path.write_text(report_html, encoding="utf-8")
    with open_page(path) as opened:
        assert opened.page.title() == TITLE
        svgs = drawn_charts(opened.page)
        requests = list(opened.requests)
        errors = opened.console_errors + opened.page_errors

    charts = [s for s in svgs if "chart" in s.classes]
    expected = sum(2 if f["kind"] == "numeric" else 1 for f in report["features"])
    assert len(charts) == expected
    for chart in charts:
        assert chart.width > 0 and chart.height > 0, chart
        assert chart.shapes >= 2, chart  # a frame and at least one bar or curve
    assert all(s.drawn for s in svgs), [s for s in svgs if not s.drawn]

    assert requests == [path.as_uri()], "the page loads itself and nothing else"
    assert errors == []


def test_the_browser_helpers_see_empty_charts_and_outside_requests(
    tmp_path: Path, http_hits: tuple[int, list[str]]
) -> None:
    port, hits = http_hits
    path = tmp_path / "page.html"
    path.write_text(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>t</title></head><body>'
        '<svg class="chart" width="100" height="50"><title>empty</title>'
        '<rect width="0" height="10" fill="blue"/><line x1="5" y1="5" x2="5" y2="5" '
        'stroke="black"/><defs><rect width="10" height="10"/></defs></svg>'
        '<svg class="chart" width="100" height="50"><title>drawn</title>'
        '<rect width="30" height="10" fill="blue"/><line x1="0" y1="20" x2="90" y2="20" '
        'stroke="black"/><rect width="30" height="30" fill="none"/></svg>'
        f'<img src="http://127.0.0.1:{port}/tracker.png" alt="">'
        "</body></html>",
        encoding="utf-8",
    )
    with open_page(path) as opened:
        empty, drawn = drawn_charts(opened.page)
        outside = opened.external_requests
    assert (empty.label, empty.shapes, empty.elements, empty.drawn) == ("empty", 0, 2, False)
    assert (drawn.label, drawn.shapes, drawn.elements, drawn.drawn) == ("drawn", 2, 3, True)
    assert (drawn.width, drawn.height) == (100, 50)
    assert outside == [f"http://127.0.0.1:{port}/tracker.png"]
    assert hits == [], "the request was aborted before it left the browser"
