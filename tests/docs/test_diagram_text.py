"""Diagrams are readable at page width: in headless Chromium at 1280 × 900 (the content column is
≈ 690 px), the smallest text of every Mermaid diagram on every page renders at ≥ 11 px.

A wide left-to-right graph is scaled down to the column: the course map used to render its labels
at ≈ 6 px. The static rule in test_learner_path.py keeps diagrams top-down; this measures them.
Screenshots of both colour schemes of the course map go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import pytest

from .test_browser import (  # noqa: F401 - fixtures used by name
    OPEN_SHADOW_ROOTS,
    SCREENSHOTS,
    Visit,
    _chromium,
    browser,
    site_url,
)
from .test_learner_path import EXISTING_LABS

MIN_TEXT_PX = 11.0
"""Mermaid draws labels at 16 px; below 11 px on screen they are hard to read."""

pytestmark = pytest.mark.slow

# Rendered size of the smallest label of each diagram: its font size in SVG units times the
# scale at which the SVG is drawn (rendered width / viewBox width).
TEXT_SIZES = """
[...document.querySelectorAll('div.mermaid')].map(d => {
  const svg = d.shadowRoot.querySelector('svg');
  const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
  const sizes = [...svg.querySelectorAll('.nodeLabel, .edgeLabel, text')]
    .filter(e => e.textContent.trim())
    .map(e => parseFloat(getComputedStyle(e).fontSize));
  return Math.min(...sizes) * scale;
})
"""


def test_every_diagram_is_readable_at_page_width(browser, site_url, built_site):  # noqa: F811
    pages = sorted(
        p.parent.relative_to(built_site).as_posix() for p in built_site.rglob("*/index.html")
    )
    pages = ["", *[p + "/" for p in pages if not p.startswith(("search", "assets"))]]
    small, measured = [], 0
    for path in pages:
        visit = Visit(browser, site_url, path)
        try:
            if visit.wait_for_diagrams():
                sizes = visit.page.evaluate(TEXT_SIZES)
                measured += len(sizes)
                small += [
                    f"/{path} diagram {i + 1}: {s:.1f} px"
                    for i, s in enumerate(sizes)
                    if s < MIN_TEXT_PX
                ]
        finally:
            visit.close()
    assert measured >= 21
    assert not small, f"diagram text below {MIN_TEXT_PX} px at 1280 px width:\n" + "\n".join(small)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_course_map_in_both_colour_schemes(browser, site_url, scheme):  # noqa: F811
    """The reader's system setting picks the scheme; the labs that exist stand out in both."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    context.add_init_script(OPEN_SHADOW_ROOTS)
    page = context.new_page()
    try:
        page.goto(f"{site_url}/", wait_until="load")
        expected = "slate" if scheme == "dark" else "default"
        assert page.evaluate("document.body.getAttribute('data-md-color-scheme')") == expected
        page.wait_for_function(
            "[...document.querySelectorAll('div.mermaid')].some(d => d.shadowRoot && d.shadowRoot.querySelector('svg g'))"
        )
        ready = page.evaluate(
            "[...document.querySelector('div.mermaid').shadowRoot.querySelectorAll('g.node.lab')].length"
        )
        assert ready == len(EXISTING_LABS), "the course map's existing labs carry the class `lab`"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.locator("div.mermaid").first.screenshot(
            path=str(SCREENSHOTS / f"course-map-{scheme}.png")
        )
    finally:
        context.close()
