"""HTML to PDF with WeasyPrint, offline and deterministic.

WeasyPrint is an optional dependency, imported on first use. It needs the Pango, HarfBuzz and
fontconfig system libraries; when the package or a library is missing,
:class:`~charter.errors.OptionalDependencyMissing` says what to install.

Offline: every resource the document asks for (stylesheet, image, font, SVG ``<use>``) goes
through a fetcher that serves ``data:`` URLs only and refuses anything else with
:class:`~charter.errors.InvalidArgument`, so rendering a report never touches the network or
the file system. Hyperlinks (``<a href>``) are written into the PDF, never fetched.

Deterministic: the same HTML gives the same PDF bytes with the same WeasyPrint version and the
same installed fonts. WeasyPrint writes no clock: the PDF carries a creation or modification
date only when the HTML has ``<meta name="dcterms.created">`` / ``dcterms.modified``, and the
file identifier written here is a hash of the content. (PDF/A and PDF/X variants would add the
current time and a random XMP document id; they are not used.)
"""

from __future__ import annotations

from typing import Any

from charter.errors import InvalidArgument, OptionalDependencyMissing

INSTALL_HINT = (
    "pip install weasyprint (it is pinned in requirements.txt); on Debian also "
    "apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core "
    "(make demo and make test install them when missing)"
)
ALLOWED_SCHEMES = frozenset({"data"})
"""URL schemes a document may load resources from."""


class _RefusedURL(Exception):
    """Raised by the fetcher for a URL it will not load; WeasyPrint stops the rendering."""


def _weasyprint() -> Any:
    try:
        import weasyprint
    except ImportError as exc:
        raise OptionalDependencyMissing(
            "writing a PDF needs the optional package 'weasyprint', which is not installed",
            remedy=INSTALL_HINT,
        ) from exc
    except OSError as exc:  # cffi could not load Pango, HarfBuzz or fontconfig
        raise OptionalDependencyMissing(
            f"writing a PDF needs WeasyPrint's system libraries, which are missing ({exc})",
            remedy=INSTALL_HINT,
        ) from exc
    return weasyprint


def _offline_fetcher(weasyprint: Any, refused: list[str]) -> Any:
    """A ``URLFetcher`` that serves ``data:`` URLs and refuses (and records) every other URL.

    Refusing is fatal for the rendering, but WeasyPrint swallows every error while drawing an SVG
    (an ``<image>`` inside an ``<svg>``), so the refused URLs are also recorded in ``refused``.
    """
    base: Any = weasyprint.urls.URLFetcher

    class OfflineURLFetcher(base):
        def fetch(self, url: str, headers: Any = None) -> Any:
            scheme = url.split(":", 1)[0].lower() if ":" in url else ""
            if scheme not in ALLOWED_SCHEMES:
                refused.append(url)
                raise _RefusedURL(url)
            return super().fetch(url, headers)

    return OfflineURLFetcher(allowed_protocols=sorted(ALLOWED_SCHEMES), fail_on_errors=True)


def _refusal(refused: list[str]) -> InvalidArgument:
    shown = ", ".join(repr(u if len(u) <= 200 else u[:200] + "...") for u in refused[:3])
    more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
    return InvalidArgument(
        f"the PDF was not written: the document asks for {shown}{more}; only data: URLs are loaded",
        field="html",
        remedy="inline the resource (a data: URL, inline SVG or a <style> element); "
        "documents are rendered offline",
    )


def html_to_pdf(html: str, *, base_url: str | None = None) -> bytes:
    """Render the HTML document ``html`` to PDF bytes, without any network or file access.

    ``base_url`` resolves relative hyperlinks written into the PDF; resources are never loaded
    from it. A resource referenced by any URL other than ``data:`` raises
    :class:`~charter.errors.InvalidArgument` naming the URL: reports must be self-contained.
    """
    if not isinstance(html, str):
        raise InvalidArgument(
            f"html must be a str, not {type(html).__name__}",
            field="html",
            remedy="pass the document's text, e.g. render_drift_html(report)",
        )
    weasyprint = _weasyprint()
    refused: list[str] = []
    fetcher = _offline_fetcher(weasyprint, refused)
    try:
        document = weasyprint.HTML(string=html, base_url=base_url, url_fetcher=fetcher)
        data = document.write_pdf(pdf_identifier=True)
    except weasyprint.urls.FatalURLFetchingError as exc:
        if refused:
            raise _refusal(refused) from exc
        raise InvalidArgument(  # a data: URL that could not be read
            f"the PDF was not written: {exc}: {exc.__cause__}",
            field="html",
            remedy="fix or remove the resource",
        ) from exc
    if refused:
        raise _refusal(refused)
    return bytes(data)


__all__ = ["ALLOWED_SCHEMES", "INSTALL_HINT", "html_to_pdf"]
