"""The course site builds strict: every snippet file and section exists, every page is in the nav,
no internal link or anchor is broken, and every chapter of the outline is there with its parts."""

import re
from pathlib import Path

import pytest
import yaml

from .conftest import fixture_config, mkdocs_build, nav_pages

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS = sorted((ROOT / "chapters").glob("[0-9][0-9]-*.md"))


def test_mkdocs_build_strict(built_site):
    home = (built_site / "index.html").read_text()
    assert (
        "test day (skew and latency)" in home
    )  # the snippet from reference_app/orchestration/demo.py


def test_missing_snippet_section_fails_the_build(tmp_path):
    """check_paths is on: a chapter that includes a missing section breaks the build."""
    config = fixture_config(
        tmp_path, {"index.md": '--8<-- "reference_app/orchestration/demo.py:no-such-section"\n'}
    )
    result = mkdocs_build(tmp_path / "site", config)
    assert result.returncode != 0
    assert "Snippet section 'no-such-section' could not be located" in result.stderr


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("See [the missing chapter](99-missing.md).\n", "contains a link '99-missing.md'"),
        ("See [the glossary](glossary.md#no-such-term).\n", "no-such-term"),
    ],
    ids=["missing-page", "missing-anchor"],
)
def test_broken_internal_link_fails_the_build(tmp_path, page, message):
    """validation: broken links and anchors are warnings, and strict turns them into errors."""
    pages = {"index.md": "# Home\n\n" + page, "glossary.md": "# Glossary\n\n## A term\n"}
    result = mkdocs_build(tmp_path / "site", fixture_config(tmp_path, pages))
    assert result.returncode != 0
    assert message in result.stderr


def test_page_outside_the_nav_fails_the_build(tmp_path):
    config = fixture_config(tmp_path, {"index.md": "# Home\n"})
    (tmp_path / "chapters" / "orphan.md").write_text("# Not in the nav\n")
    result = mkdocs_build(tmp_path / "site", config)
    assert result.returncode != 0
    assert "orphan.md" in result.stderr


def test_twenty_chapters_numbered_00_to_19_all_in_the_nav():
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)
    nav = nav_pages(config["nav"])
    assert [p.name[:2] for p in CHAPTERS] == [f"{n:02d}" for n in range(20)]
    assert all(re.fullmatch(r"\d\d-[a-z0-9]+(-[a-z0-9]+)*\.md", p.name) for p in CHAPTERS)
    for page in [
        "index.md",
        *(p.name for p in CHAPTERS),
        "glossary.md",
        "licences.md",
        "instructors.md",
    ]:
        assert page in nav, f"{page} is not in the nav of mkdocs.yml"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_has_the_course_parts(chapter):
    """Why, concepts, the reference system (diagram + real code), the lab, a checklist, further reading."""
    text = chapter.read_text()
    number = chapter.name[:2]
    assert text.startswith(f"# {number} · "), "title is '# NN · …'"
    assert "```mermaid" in text, "an architecture diagram"
    assert '--8<-- "reference_app/' in text, "code included from the reference system"
    built = re.search(rf'--8<-- "labs/{number}-[a-z0-9-]+/README\.md:verification"', text)
    assert f"## Lab {number}" in text and (built or f"Lab {number} — " in text), (
        "a lab section: the lab README's goal and verification, or the coming-later admonition"
    )
    assert re.search(r"^## (Checklist|Template)", text, re.M), "a checklist or template to reuse"
    assert "## Further reading" in text and "](https://" in text, "links to upstream docs"


def test_kind_and_local_tabs_where_labs_differ():
    tabbed = [
        p.name
        for p in CHAPTERS
        if '=== "kind cluster"' in p.read_text() and '=== "local mode"' in p.read_text()
    ]
    assert len(tabbed) >= 15, tabbed


def test_seldon_licence_is_stated():
    text = (ROOT / "chapters" / "licences.md").read_text()
    assert "BSL-1.1" in text and "KServe" in text and "Apache-2.0" in text
    assert "non-production" in text and "education" in text


SEED_TOPICS = {
    "MLOps pillars": [
        "automation",
        "versioning and reproducibility",
        "continuous x",
        "collaboration",
        "shift-left",
        "services as products",
    ],
    "why Kubernetes for ML": ["portability", "scaling", "resilience", "cost"],
    "scheduling": ["node affinity", "anti-affinity", "taints and tolerations", "resourcequota"],
    "platform and teams": ["platform building", "golden path", "team topologies", "raci"],
    "data": [
        "batch and streaming",
        "data contract",
        "quarantine",
        "feature store",
        "training/serving skew",
    ],
    "orchestration engines": ["argo workflows", "kubeflow pipelines", "apache airflow"],
    "models": [
        "model registry",
        "alias",
        "champion",
        "challenger",
        "quality gate",
        "prequential",
        "cp@k",
    ],
    "testing and delivery": [
        "behavioural tests",
        "leakage",
        "pinning",
        "ci for ml",
        "canary",
        "shadow",
        "blue/green",
    ],
    "serving": [
        "online api",
        "batch scoring",
        "edge",
        "v2 inference protocol",
        "seldondeployment",
        "kserve",
    ],
    "operations": [
        "servicemonitor",
        "drift",
        "psi",
        "delayed labels",
        "burn-rate",
        "runbook",
        "incident",
    ],
    "scale": ["ray tune", "kuberay", "llm", "autoscaler", "chaos", "right-size"],
    "trust": [
        "pod security standards",
        "networkpolicy",
        "rbac",
        "secrets",
        "human-in-the-loop",
        "fairness",
        "model card",
    ],
}


@pytest.mark.parametrize("area", SEED_TOPICS, ids=list(SEED_TOPICS))
def test_seed_topics_are_covered(area):
    """Every topic the course promises is named somewhere in the chapters."""
    text = " ".join(p.read_text() for p in CHAPTERS).lower()
    missing = [term for term in SEED_TOPICS[area] if term not in text]
    assert not missing, f"{area}: no chapter mentions {missing}"
