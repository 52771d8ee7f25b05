"""Chapters include code from real files: no fenced code block longer than three lines."""

from pathlib import Path

import pytest

from .listings import Listing, fenced_blocks, long_listings

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "chapters").rglob("*.md"))

BROKEN_CHAPTER = """\
# A chapter that retypes code

=== "kind cluster"

    ```yaml
    apiVersion: batch/v1
    kind: Job
    metadata: {name: simulate}
    spec: {backoffLimit: 2}
    ```

~~~python
from reference_app.features import build_features
features = build_features(transactions)
features.head()
features.describe()
~~~
"""

ACCEPTABLE_CHAPTER = """\
```python
--8<-- "reference_app/serving/runtime.py:predict"
```

```bash
make demo
make test
make docs
```

```mermaid
flowchart LR
  a --> b
  b --> c
  c --> d
```

```text
line 1
line 2
line 3
line 4
```
"""


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_chapter_has_no_long_listing(page):
    """A code block longer than three lines is a snippet include from a tested file, not retyped."""
    found = long_listings(page.read_text())
    assert not found, "\n".join(
        f"{page.relative_to(ROOT)}:{f.line}: a {f.language} block of {f.code_lines} lines; include it with "
        '--8<-- "path/to/file.py:section" and # --8<-- [start:section] markers instead'
        for f in found
    )


def test_checker_finds_long_listings_in_a_broken_chapter():
    """The rule fails on retyped code, also inside content tabs and ~~~ fences."""
    assert long_listings(BROKEN_CHAPTER) == [Listing(5, "yaml", 4), Listing(12, "python", 4)]


def test_checker_accepts_snippets_short_blocks_diagrams_and_output():
    assert long_listings(ACCEPTABLE_CHAPTER) == []
    assert len(fenced_blocks(ACCEPTABLE_CHAPTER)) == 4


def test_checker_sees_every_chapter_block():
    """Sanity: the parser finds the snippet-included listings of the chapters (it is not blind)."""
    blocks = [b for page in PAGES for b in fenced_blocks(page.read_text())]
    assert sum(lang == "python" for _, lang, _ in blocks) >= 20
    assert sum(lang == "mermaid" for _, lang, _ in blocks) >= 20
