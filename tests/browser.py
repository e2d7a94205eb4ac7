"""Test helpers for rendered documents: headless Chromium through Playwright, and PDF pages.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``, or ``CHARTER_CHROMIUM``), launched
by path with a fresh profile; Playwright's own browser download is never used. ``make test``
installs the package when it is missing. A missing browser fails the test, never skips it.

Pages are opened offline: every request is recorded, and any request that is not for a local
URL (``file:``, ``data:``, ``about:``, ``blob:``) is aborted before it leaves the machine, so a
test can assert a page asked for nothing without the page ever reaching the network.

PDF pages are rasterised with pypdfium2 (a wheel, no system package needed).
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

if TYPE_CHECKING:
    from PIL.Image import Image
    from playwright.sync_api import Page, Request, Route, ViewportSize

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
LOCAL_SCHEMES: tuple[str, ...] = ("file", "data", "about", "blob")
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
TIMEOUT_MS = 30_000


def chromium_path() -> str:
    """The Chromium executable: ``CHARTER_CHROMIUM`` if set, else Debian's ``/usr/bin/chromium``.

    Fails the calling test (never skips it) when the file is not an executable.
    """
    path = os.environ.get("CHARTER_CHROMIUM") or DEFAULT_CHROMIUM
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        source = "CHARTER_CHROMIUM" if os.environ.get("CHARTER_CHROMIUM") else "the default"
        pytest.fail(
            f"no Chromium executable at {path} ({source}). `make test` installs Debian's "
            "chromium package when it is missing (apt-get install --no-install-recommends "
            "chromium); or point CHARTER_CHROMIUM at a Chromium binary.",
            pytrace=False,
        )
    return path


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower() if ":" in url else ""


def is_local_url(url: str) -> bool:
    return _scheme(url) in LOCAL_SCHEMES


def page_url(path_or_url: str | os.PathLike[str]) -> str:
    """A ``file:`` URL for a path; a string that already has a URL scheme is returned as is."""
    if isinstance(path_or_url, str) and len(_scheme(path_or_url)) > 1:  # not "C:" on Windows
        return path_or_url
    return Path(path_or_url).resolve().as_uri()


@dataclass
class BrowserPage:
    """An open page and what it did while loading: every request, console errors, page errors."""

    page: Page
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @property
    def external_requests(self) -> list[str]:
        """Requests for anything but ``file:``/``data:``/``about:``/``blob:`` (all aborted)."""
        return [url for url in self.requests if not is_local_url(url)]


@contextmanager
def open_page(path_or_url: str | os.PathLike[str]) -> Iterator[BrowserPage]:
    """Open ``path_or_url`` in headless Chromium with a fresh profile; yield a ``BrowserPage``.

    The page has loaded (the ``load`` event) when this yields. Non-local requests are recorded
    and aborted.
    """
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # the dev requirements are not installed
        pytest.fail(
            f"the playwright package is missing ({exc}); `make test` installs requirements-dev.txt",
            pytrace=False,
        )
    url = page_url(path_or_url)

    def block_external(route: Route, request: Request) -> None:
        if is_local_url(request.url):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    with (
        tempfile.TemporaryDirectory(prefix="charter-chromium-") as profile,
        sync_playwright() as pw,
    ):
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport=VIEWPORT,
            service_workers="block",
            accept_downloads=False,
        )
        try:
            context.set_default_timeout(TIMEOUT_MS)
            context.route("**/*", block_external)
            page = context.pages[0] if context.pages else context.new_page()
            opened = BrowserPage(page)
            context.on("request", lambda request: opened.requests.append(request.url))
            page.on(
                "console",
                lambda msg: opened.console_errors.append(msg.text) if msg.type == "error" else None,
            )
            page.on("pageerror", lambda error: opened.page_errors.append(str(error)))
            page.goto(url, wait_until="load")
            yield opened
        finally:
            context.close()


# ------------------------------------------------------------------------------------------
# SVG charts as the browser drew them
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SvgDrawing:
    """One ``<svg>`` element as laid out: its box in CSS pixels and how many shapes it painted.

    ``shapes`` counts path/rect/circle/ellipse/line/polyline/polygon elements (outside ``defs``,
    ``clipPath``, masks, patterns, markers and symbols) that are visible and painted: a filled
    shape with a box of non-zero width and height, or a stroked one with non-zero width or
    height. ``elements`` counts all such elements, painted or not.
    """

    index: int
    element_id: str
    classes: tuple[str, ...]
    label: str
    width: float
    height: float
    shapes: int
    elements: int

    @property
    def drawn(self) -> bool:
        return self.width > 0 and self.height > 0 and self.shapes > 0


_DRAWN_SVGS_JS = """
() => {
  const SHAPES = "path, rect, circle, ellipse, line, polyline, polygon";
  const HIDDEN = "defs, clipPath, mask, pattern, marker, symbol";
  const positive = (value) => { const x = parseFloat(value); return Number.isFinite(x) && x > 0; };
  return Array.from(document.querySelectorAll("svg"), (svg, index) => {
    const box = svg.getBoundingClientRect();
    let shapes = 0, elements = 0;
    for (const el of svg.querySelectorAll(SHAPES)) {
      if (el.closest(HIDDEN)) continue;
      elements += 1;
      const style = getComputedStyle(el);
      if (style.display === "none" || style.visibility !== "visible" || !positive(style.opacity)) {
        continue;
      }
      const r = el.getBoundingClientRect();
      const fills = el.localName !== "line" && style.fill !== "none"
        && positive(style.fillOpacity);
      const strokes = style.stroke !== "none" && positive(style.strokeWidth)
        && positive(style.strokeOpacity);
      if ((fills && r.width > 0 && r.height > 0) || (strokes && (r.width > 0 || r.height > 0))) {
        shapes += 1;
      }
    }
    const title = svg.querySelector("title");
    const label = svg.getAttribute("aria-label") || (title ? title.textContent : "") || "";
    return {
      index, element_id: svg.id || "", classes: Array.from(svg.classList), label: label.trim(),
      width: box.width, height: box.height, shapes, elements,
    };
  });
}
"""


def drawn_charts(page: Page) -> list[SvgDrawing]:
    """Every ``<svg>`` on ``page`` in document order, with its box and painted-shape count."""
    rows: list[dict[str, Any]] = page.evaluate(_DRAWN_SVGS_JS)
    return [
        SvgDrawing(
            index=int(row["index"]),
            element_id=str(row["element_id"]),
            classes=tuple(str(c) for c in row["classes"]),
            label=str(row["label"]),
            width=float(row["width"]),
            height=float(row["height"]),
            shapes=int(row["shapes"]),
            elements=int(row["elements"]),
        )
        for row in rows
    ]


# ------------------------------------------------------------------------------------------
# PDF pages
# ------------------------------------------------------------------------------------------


def pdf_page_count(data: bytes) -> int:
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        return len(document)
    finally:
        document.close()


def pdf_metadata(data: bytes) -> dict[str, str]:
    """The PDF's document information (Title, Producer, CreationDate, ModDate, ...)."""
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        return {str(k): str(v) for k, v in document.get_metadata_dict().items()}
    finally:
        document.close()


def pdf_page_text(data: bytes, page: int = 0) -> str:
    """The text of page ``page`` (0-based) as pdfium extracts it."""
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        textpage = document[page].get_textpage()
        return str(textpage.get_text_range())
    finally:
        document.close()


def pdf_page_image(data: bytes, page: int = 0, *, dpi: float = 72.0) -> Image:
    """Page ``page`` (0-based) of the PDF ``data`` rasterised at ``dpi`` as an RGB PIL image."""
    import pypdfium2

    document = pypdfium2.PdfDocument(data)
    try:
        if not 0 <= page < len(document):
            raise IndexError(f"page {page} of a {len(document)}-page PDF")
        bitmap = document[page].render(scale=dpi / 72.0)
        image = bitmap.to_pil().convert("RGB")
        image.load()
        return image
    finally:
        document.close()


def pdf_page_png(data: bytes, page: int = 0, *, dpi: float = 72.0) -> bytes:
    """Page ``page`` of the PDF ``data`` as PNG bytes (e.g. to keep as a failure artefact)."""
    out = io.BytesIO()
    pdf_page_image(data, page, dpi=dpi).save(out, format="PNG")
    return out.getvalue()


def ink_fraction(image: Image, *, white_level: int = 245) -> float:
    """The share of pixels that are not (near-)white: some channel below ``white_level``."""
    pixels = np.asarray(image.convert("RGB"))
    if pixels.size == 0:
        return 0.0
    return float((pixels.min(axis=2) < white_level).mean())


def assert_not_blank(image: Image, *, min_fraction: float = 0.005) -> float:
    """Fail unless at least ``min_fraction`` of the pixels carry ink; return the fraction."""
    fraction = ink_fraction(image)
    assert fraction >= min_fraction, (
        f"the page is blank: {fraction:.4%} of {image.width}x{image.height} pixels are not "
        f"white (need {min_fraction:.2%})"
    )
    return fraction


__all__ = [
    "CHROMIUM_FLAGS",
    "BrowserPage",
    "SvgDrawing",
    "assert_not_blank",
    "chromium_path",
    "drawn_charts",
    "ink_fraction",
    "is_local_url",
    "open_page",
    "page_url",
    "pdf_metadata",
    "pdf_page_count",
    "pdf_page_image",
    "pdf_page_png",
    "pdf_page_text",
]
