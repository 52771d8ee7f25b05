"""The course site builds strict: every snippet file and section exists, every page is in the nav."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mkdocs_build_strict(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    home = (tmp_path / "site" / "index.html").read_text()
    assert "test day (skew and latency)" in home  # the snippet from reference_app/demo.py


def test_missing_snippet_section_fails_the_build(tmp_path):
    """check_paths is on: a chapter that includes a missing section breaks the build."""
    docs = tmp_path / "chapters"
    docs.mkdir()
    (docs / "index.md").write_text('--8<-- "reference_app/demo.py:no-such-section"\n')
    config = (ROOT / "mkdocs.yml").read_text().replace("docs_dir: chapters", f"docs_dir: {docs}")
    (tmp_path / "mkdocs.yml").write_text(config)
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Snippet section 'no-such-section' could not be located" in result.stderr
