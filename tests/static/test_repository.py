"""The repository stands on its own: no file points at notes outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Planning notes beside the checkout, and the tracker's issue numbers: neither exists for a reader
# of this repository. (Upstream GitHub issues are cited by their full URL.)
OUTSIDE = re.compile(r"\.\./shared|\b(STACK|STYLE|COURSE|HANDBOOK)\.md\b|\bissue #\d+")


def test_no_file_points_outside_the_repository():
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = []
    for name in files:
        path = ROOT / name
        if name.endswith(".lock") or not path.is_file() or path.suffix in {".png", ".whl", ".js"}:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found += [
            f"{name}:{i}: {line.strip()}"
            for i, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line) and name != "tests/static/test_repository.py"
        ]
    assert not found, "\n".join(found)
