"""The dashboard end to end: ``charter demo`` once per module into a temporary home, the service
(``create_app``, dashboard included) on 127.0.0.1, and Debian's Chromium driven headless by
Playwright (launched by path with the flags of ``tests/browser.py``; Playwright's own browser
download is never used). A missing browser or Playwright fails the suite, never skips it:
``make test`` installs Debian's ``chromium`` package when it is missing.

Every request the browser makes is recorded; anything that is not for the local server (or a
``data:``/``blob:``/``about:`` URL) is aborted before it leaves the machine, so a test can assert
that no page asked for anything outside. Screenshots of each page go to ``$CHARTER_SCREENSHOTS``
(default ``test-artifacts/screenshots/`` at the repository root) for a person to look at.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from browser import CHROMIUM_FLAGS, VIEWPORT, chromium_path, is_local_url
from charter.config import Settings
from charter.registry.service import Registry
from charter.serving.app import create_app
from charter.serving.local import serve_in_thread

from helpers import DemoRun

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright, Request, Route

REPO = Path(__file__).resolve().parents[2]
PEOPLE = ("ada", "dana", "victor", "petra")
TIMEOUT_MS = 30_000


def screenshot_dir() -> Path:
    out = Path(os.environ.get("CHARTER_SCREENSHOTS") or REPO / "test-artifacts" / "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    return out


@dataclass
class DemoStore:
    home: Path
    registry: Registry
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def demo_store(demo_run: DemoRun) -> Iterator[DemoStore]:
    """The demo's data (two models, six months of monitoring, alerts, decisions, an experiment;
    the session's one demo run) and a token for each of its people, issued by the admin."""
    home = demo_run.home
    reg = Registry.open(Settings.for_home(home))
    admin = reg.identity.actor("ada")
    tokens = {u: reg.identity.issue_token(admin, u, label="e2e") for u in PEOPLE}
    try:
        yield DemoStore(home, reg, tokens)
    finally:
        reg.db.dispose()


@pytest.fixture(scope="module")
def base_url(demo_store: DemoStore) -> Iterator[str]:
    app = create_app(demo_store.registry, refresh_seconds=3600, canary_seconds=0)
    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    chromium_path()  # fails (never skips) without the browser
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # the dev requirements are not installed
        pytest.fail(
            f"the playwright package is missing ({exc}); `make test` installs requirements-dev.txt",
            pytrace=False,
        )
    with sync_playwright() as pw:
        yield pw


@dataclass
class Tab:
    """A page in a fresh browser profile, and what it asked for."""

    page: Page
    base_url: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path, wait_until="load")

    def shot(self, name: str) -> Path:
        path = screenshot_dir() / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def sign_in(self, token: str, path: str = "/ui/") -> None:
        self.goto(path)
        assert re.search(r"/ui/login\?next=", self.page.url), self.page.url
        self.page.fill("#token", token)
        self.page.click("form[action='/ui/login'] button[type=submit]")
        self.page.wait_for_load_state("load")


@pytest.fixture
def open_tab(playwright: Playwright, base_url: str) -> Iterator[Callable[[], Tab]]:
    """``open_tab()`` gives a page in its own headless Chromium profile (no shared cookies)."""
    contexts: list[BrowserContext] = []
    dirs: list[tempfile.TemporaryDirectory[str]] = []

    def make() -> Tab:
        profile = tempfile.TemporaryDirectory(prefix="charter-chromium-")
        dirs.append(profile)
        context = playwright.chromium.launch_persistent_context(
            profile.name,
            executable_path=chromium_path(),
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport=VIEWPORT,
            service_workers="block",
            accept_downloads=False,
        )
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.pages[0] if context.pages else context.new_page()
        tab = Tab(page, base_url)

        def route(r: Route, request: Request) -> None:
            url = request.url
            if url == base_url or url.startswith(base_url + "/") or is_local_url(url):
                r.continue_()
            else:
                tab.blocked.append(url)
                r.abort("blockedbyclient")

        context.route("**/*", route)
        context.on("request", lambda request: tab.requests.append(request.url))
        page.on("pageerror", lambda error: tab.page_errors.append(str(error)))
        page.on(
            "console",
            lambda msg: tab.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        return tab

    try:
        yield make
    finally:
        for context in contexts:
            context.close()
        for d in dirs:
            d.cleanup()
