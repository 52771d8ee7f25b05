"""Build helpers for the docs tests: the real site, or a copy of its config over a fixture folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def nav_pages(nav: list) -> list[str]:
    """Every page file of an mkdocs `nav`, depth first, in order."""
    out = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        out += nav_pages(value) if isinstance(value, list) else [value]
    return out


def mkdocs_build(site_dir: Path, config: Path | None = None) -> subprocess.CompletedProcess:
    """Run `mkdocs build --strict` from the repository root (snippet paths are relative to it)."""
    args = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)]
    if config is not None:
        args += ["-f", str(config)]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def fixture_config(tmp_path: Path, pages: dict[str, str]) -> Path:
    """Write `pages` into a docs folder and a copy of mkdocs.yml whose nav lists exactly those pages."""
    docs = tmp_path / "chapters"
    docs.mkdir()
    for name, text in pages.items():
        (docs / name).write_text(text)
    config = (ROOT / "mkdocs.yml").read_text().replace("docs_dir: chapters", f"docs_dir: {docs}")
    config = (
        config[: config.index("\nnav:")] + "\nnav:\n" + "".join(f"  - {name}\n" for name in pages)
    )
    path = tmp_path / "mkdocs.yml"
    path.write_text(config)
    return path


@pytest.fixture(scope="session")
def built_site(tmp_path_factory) -> Path:
    """The course site, built strict once per session."""
    site = tmp_path_factory.mktemp("site")
    result = mkdocs_build(site)
    assert result.returncode == 0, result.stderr[-3000:]
    return site
