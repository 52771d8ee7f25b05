"""Find code listings in chapters that should be snippet includes (docs are tested code).

A fenced block of code longer than `MAX_LISTING_LINES` lines must come from a real file through
`pymdownx.snippets` (`--8<-- "path:section"`), so the listing is the code that tests run. Mermaid
diagrams and `text` output blocks are prose, not code, and may be any length.

Example:
    >>> long_listings("```python\\na = 1\\nb = 2\\nc = 3\\nd = 4\\n```\\n")
    [Listing(line=1, language='python', code_lines=4)]
"""

from __future__ import annotations

import re
from typing import NamedTuple

MAX_LISTING_LINES = 3
PROSE_LANGUAGES = {"mermaid", "text", "txt", "plain", "output"}
"""Blocks that are not code. Every other block, including one without a language, is checked."""

_OPEN = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*\{?[ \t]*\.?(?P<lang>[\w+#.-]*)"
)
_SNIPPET = re.compile(r"^\s*-{1,}8<-{1,}\s")


class Listing(NamedTuple):
    """A fenced code block that is too long: its first line (1-based), language and code lines."""

    line: int
    language: str
    code_lines: int


def fenced_blocks(markdown: str) -> list[tuple[int, str, list[str]]]:
    """Return `(line, language, body lines)` for every fenced block, indented ones included."""
    blocks = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, start = m.group("fence"), i
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body = []
        i += 1
        while i < len(lines) and not close.match(lines[i]):
            body.append(lines[i])
            i += 1
        blocks.append((start + 1, m.group("lang").lower(), body))
        i += 1
    return blocks


def long_listings(markdown: str, limit: int = MAX_LISTING_LINES) -> list[Listing]:
    """Code blocks with more than `limit` non-blank lines that are not snippet includes."""
    found = []
    for line, lang, body in fenced_blocks(markdown):
        if lang in PROSE_LANGUAGES:
            continue
        code = [b for b in body if b.strip() and not _SNIPPET.match(b)]
        if len(code) > limit:
            found.append(Listing(line, lang or "(none)", len(code)))
    return found
