"""The built site in a real browser: headless Chromium (Debian package) driven by Playwright.

The site is served from a temporary build on a free 127.0.0.1 port. Pages must render their
title, navigation, Mermaid diagrams (as SVG, from the vendored Mermaid — no CDN) and snippet code,
log no console error, request nothing outside 127.0.0.1, and site search must find "champion".
Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# mkdocs-material renders each diagram into a *closed* shadow root; open it so the test can see
# the SVG. Test instrumentation only: rendering itself is unchanged.
OPEN_SHADOW_ROOTS = """
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) { return attach.call(this, {...init, mode: "open"}); };
"""
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _chromium():
    """No silent skip in a full `make test`: without the browser these tests fail, saying how to get it."""
    if not CHROMIUM.exists():
        pytest.fail(
            "needs Debian's chromium at /usr/bin/chromium: scripts/system-packages.sh installs it (make test runs it)"
        )


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def site_url(built_site):
    """Serve the built site on a free loopback port for the module's tests."""
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    # Imported here, not skipped: with Chromium present, a missing Playwright is a failure.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=3 * TIMEOUT_MS
        )  # a cold start on a loaded 2-core machine
        yield chromium
        chromium.close()


class Visit:
    """A page opened in a fresh context, with its console errors and off-host requests recorded."""

    def __init__(self, browser, site_url: str, path: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.add_init_script(OPEN_SHADOW_ROOTS)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.foreign: list[str] = []
        host = urlsplit(site_url).netloc
        self.page.on(
            "console",
            lambda m: m.type == "error" and self.errors.append(f"console: {m.text} ({m.location})"),
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on(
            "requestfailed", lambda r: self.errors.append(f"request failed: {r.url} {r.failure}")
        )
        self.page.on(
            "request",
            lambda r: urlsplit(r.url).netloc not in (host, "") and self.foreign.append(r.url),
        )
        self.page.goto(f"{site_url}/{path}", wait_until="load")

    def wait_for_diagrams(self) -> int:
        """Wait until every Mermaid block became an SVG; return how many there are."""
        count = self.page.locator("pre.mermaid, div.mermaid").count()
        if count:
            self.page.wait_for_function(
                "n => document.querySelectorAll('div.mermaid').length === n"
                " && [...document.querySelectorAll('div.mermaid')].every(d => d.shadowRoot && d.shadowRoot.querySelector('svg g'))",
                arg=count,
            )
        return count

    def diagram_texts(self) -> list[str]:
        return self.page.evaluate(
            "[...document.querySelectorAll('div.mermaid')].map(d => d.shadowRoot.querySelector('svg').textContent)"
        )

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        return path

    def close(self):
        self.context.close()


def _assert_clean(visit: Visit):
    assert visit.errors == [], "\n".join(visit.errors)
    assert visit.foreign == [], f"requests outside 127.0.0.1: {visit.foreign}"


@pytest.mark.parametrize(
    ("path", "title", "snippet_text", "shot"),
    [
        ("", "Fraud Lab — ML systems on Kubernetes", "test day (skew and latency)", "home"),
        (
            "09-serving/",
            "09 · Serving with Seldon Core and MLServer",
            "async def predict",
            "09-serving",
        ),
        (
            "03-data-pipelines/",
            "03 · Data pipelines",
            "TRANSACTION_SCHEMA = pa.DataFrameSchema(",
            "03-data-pipelines",
        ),
    ],
    ids=["home", "chapter-09", "chapter-03"],
)
def test_page_renders(browser, site_url, path, title, snippet_text, shot):
    """Title, navigation, a Mermaid diagram as SVG, code from a snippet, and no console error."""
    visit = Visit(browser, site_url, path)
    try:
        page = visit.page
        assert page.title().startswith(title.split(" — ")[0].split(" with ")[0])
        assert page.locator("h1").first.inner_text().startswith(title)
        nav = page.locator("nav.md-nav--primary")
        assert nav.count() == 1 and nav.locator("a.md-nav__link").count() >= 24
        assert visit.wait_for_diagrams() >= 1
        texts = visit.diagram_texts()
        assert all("Syntax error" not in t for t in texts), texts
        heights = page.evaluate(
            "[...document.querySelectorAll('div.mermaid')].map(d => d.shadowRoot.querySelector('svg').getBoundingClientRect().height)"
        )
        assert min(heights) > 50, heights
        # Snippet text lands in the page: inside a highlighted code block for chapters, as prose on the home page.
        where = page.locator(".highlight code") if path else page.locator("article")
        assert where.filter(has_text=snippet_text).count() >= 1
        visit.screenshot(shot)
        page.locator("div.mermaid").first.screenshot(path=str(SCREENSHOTS / f"{shot}-diagram.png"))
        _assert_clean(visit)
    finally:
        visit.close()


def test_search_finds_champion(browser, site_url):
    """Typing "champion" in the search box lists results (the search index and worker work offline)."""
    visit = Visit(browser, site_url, "")
    try:
        page = visit.page
        box = page.locator("input.md-search__input")  # in the header at desktop width
        box.click()
        box.press_sequentially("champion", delay=50)
        results = page.locator(".md-search-result__item")
        results.first.wait_for(state="visible")
        assert results.count() >= 3
        assert "champion" in page.locator(".md-search-result").inner_text().lower()
        visit.screenshot("search-champion")
        _assert_clean(visit)
    finally:
        visit.close()


def test_every_diagram_on_every_page_renders(browser, site_url, built_site):
    """No page has a Mermaid syntax error or a console error (all pages, not only the three above)."""
    pages = sorted(
        p.parent.relative_to(built_site).as_posix() for p in built_site.glob("*/index.html")
    )
    pages = ["", *[p + "/" for p in pages if p not in ("search", "assets")]]
    total = 0
    for path in pages:
        visit = Visit(browser, site_url, path)
        try:
            total += visit.wait_for_diagrams()
            bad = [t[:80] for t in visit.diagram_texts() if "Syntax error" in t]
            assert not bad, f"/{path}: {bad}"
            _assert_clean(visit)
        finally:
            visit.close()
    assert total >= 21
