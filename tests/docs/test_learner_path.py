"""The learner's first ten minutes: what the README and the course site promise stays true.

The course map marks exactly the labs that exist, every lab's README is a page of the site, the
chapters' diagrams fit the page, long manifests fold away, snippets are dedented, every page has
an edit link and both colour schemes, and the facts the chapters quote (alerts, Pod Security
levels, drift settings, Make targets) are the repository's.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
import yaml

from .conftest import nav_pages
from .listings import fenced_blocks

ROOT = Path(__file__).resolve().parents[2]
CHAPTERS_DIR = ROOT / "chapters"
LAB_DIRS = sorted(p for p in (ROOT / "labs").glob("[0-9][0-9]-*") if p.is_dir())
EXISTING_LABS = {p.name[:2] for p in LAB_DIRS}
REPO = "https://github.com/fraud-lab/fraud-lab"

MAX_NODES_PER_ROW = 4
"""A left-to-right row of a diagram holds at most this many nodes, so its text stays readable at
page width (tests/docs/test_diagram_text.py measures the rendered size)."""
MAX_INLINE_MANIFEST_LINES = 25
"""An included manifest longer than this goes in a collapsible `??? example` block."""
MANIFEST_LANGUAGES = {"yaml", "yml", "dockerfile", "json", "toml"}


def _mkdocs_config() -> dict:
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.BaseLoader)


def _built_page(site: Path, source: str) -> Path:
    """The HTML file mkdocs writes for a page of chapters/ (use_directory_urls)."""
    path = Path(source)
    if path.name in ("index.md", "README.md"):
        return site / path.parent / "index.html"
    return site / path.with_suffix("") / "index.html"


# --- the course map ------------------------------------------------------------------------


def _course_map() -> str:
    text = (CHAPTERS_DIR / "index.md").read_text()
    return text.split("## Course map", 1)[1].split("\n## ", 1)[0]


def _marked(course_map: str, css_class: str) -> set[str]:
    """Lab numbers of the map's nodes given `css_class` by a `class L00,L02 name` statement."""
    found = set()
    for ids in re.findall(rf"^\s*class\s+([\w,]+)\s+{css_class}\s*;?$", course_map, flags=re.M):
        found |= {i.removeprefix("L") for i in ids.split(",")}
    return found


def test_course_map_marks_exactly_the_labs_that_exist():
    """Green boxes on the map are the folders in labs/; every other lab box is marked planned."""
    course_map = _course_map()
    nodes = set(re.findall(r"\bL(\d\d)\[", course_map))
    assert _marked(course_map, "lab") == EXISTING_LABS, (
        "the course map in chapters/index.md must give class `lab` to exactly the labs in labs/"
    )
    assert _marked(course_map, "planned") == nodes - EXISTING_LABS
    assert "Green boxes are the labs you can do now" in course_map, "the map's legend"


def test_course_table_links_exactly_the_labs_that_exist():
    """The table's lab column links each existing lab's page and says "planned" for the others."""
    rows = re.findall(r"^\| (\d\d) \| (.*) \|$", _course_map(), flags=re.M)
    assert [nn for nn, _ in rows] == [f"{n:02d}" for n in range(20)]
    for nn, rest in rows:
        lab_cell = rest.split(" | ")[-2]
        if nn in EXISTING_LABS:
            folder = next(p.name for p in LAB_DIRS if p.name.startswith(nn))
            assert lab_cell == f"[`make lab-{int(nn)}`](labs/{folder}/README.md)", nn
        else:
            assert "planned" in lab_cell or "reading" in lab_cell, nn


# --- the labs on the site ------------------------------------------------------------------


@pytest.mark.parametrize("lab", LAB_DIRS, ids=[p.name for p in LAB_DIRS])
def test_every_lab_readme_is_a_page_of_the_site(lab, built_site):
    """chapters/labs/NN-slug/README.md includes the whole lab README, is in the nav, and the built
    page has every section of the README (Goal · Before you start · Steps · Verification · Next)."""
    page = CHAPTERS_DIR / "labs" / lab.name / "README.md"
    assert page.exists(), f"no site page for {lab.name}: create {page.relative_to(ROOT)}"
    assert page.read_text().strip() == f'--8<-- "labs/{lab.name}/README.md"'
    assert f"labs/{lab.name}/README.md" in nav_pages(_mkdocs_config()["nav"])
    built = _built_page(built_site, f"labs/{lab.name}/README.md").read_text()
    readme = (lab / "README.md").read_text()
    title = readme.splitlines()[0].removeprefix("# ")
    assert html.escape(title, quote=False) in built
    for heading in re.findall(r"^## (.+)$", readme, flags=re.M):
        assert f">{html.escape(heading, quote=False)}<" in built, heading
    assert "--8&lt;--" not in built and "[start:" not in built, "snippet markers leaked"


def test_the_labs_section_has_no_page_for_a_missing_lab():
    pages = {p.parent.name for p in (CHAPTERS_DIR / "labs").glob("*/README.md")}
    assert pages == {p.name for p in LAB_DIRS}
    assert (CHAPTERS_DIR / "labs" / "README.md").read_text().strip() == '--8<-- "labs/README.md"'


@pytest.mark.parametrize("lab", LAB_DIRS, ids=[p.name for p in LAB_DIRS])
def test_the_chapter_links_its_lab_page(lab):
    chapter = next(CHAPTERS_DIR.glob(f"{lab.name[:2]}-*.md"))
    assert f"](labs/{lab.name}/README.md)" in chapter.read_text()


# --- theme: colour schemes, edit and repository links ----------------------------------------


def test_light_and_dark_schemes_with_a_toggle(built_site):
    theme = _mkdocs_config()["theme"]
    assert theme["font"] == "false", "no Google Fonts: the site works offline"
    schemes = {p["scheme"]: p for p in theme["palette"]}
    assert set(schemes) == {"default", "slate"}
    assert schemes["default"]["media"] == "(prefers-color-scheme: light)"
    assert schemes["slate"]["media"] == "(prefers-color-scheme: dark)"
    assert all(p["toggle"]["name"] for p in theme["palette"])
    home = (built_site / "index.html").read_text()
    assert 'data-md-color-media="(prefers-color-scheme: light)"' in home
    assert 'data-md-color-media="(prefers-color-scheme: dark)"' in home
    assert 'data-md-color-scheme="slate"' in home
    assert 'title="Switch to dark mode"' in home and 'title="Switch to light mode"' in home


def test_every_page_has_an_edit_link_to_its_source(built_site):
    assert "content.action.edit" in _mkdocs_config()["theme"]["features"]
    sources = sorted(p.relative_to(CHAPTERS_DIR).as_posix() for p in CHAPTERS_DIR.rglob("*.md"))
    assert len(sources) > 30
    for source in sources:
        page = _built_page(built_site, source).read_text()
        assert f'href="{REPO}/edit/main/chapters/{source}"' in page, source
        assert f'href="{REPO}"' in page, f"{source}: no link to the repository"


def test_no_page_asks_github_for_repository_facts(built_site):
    """Material's header widget (repo_url) fetches stars and forks from api.github.com: a request
    to a third party that fails offline. The repository link is a plain footer link instead."""
    assert "repo_url" not in _mkdocs_config()
    for page in built_site.rglob("*.html"):
        assert 'data-md-component="source"' not in page.read_text(), page


# --- snippets: dedented, long manifests folded ---------------------------------------------

_CODE = re.compile(r'<div class="highlight"><pre>.*?<code>(.*?)</code></pre></div>', re.S)


def test_snippets_from_inside_functions_are_dedented(built_site):
    """No code block on the site starts every line with indentation (dedent_subsections)."""
    snippets = next(
        e["pymdownx.snippets"]
        for e in _mkdocs_config()["markdown_extensions"]
        if isinstance(e, dict) and "pymdownx.snippets" in e
    )
    assert snippets["dedent_subsections"] == "true"
    indented = []
    for page in built_site.rglob("*.html"):
        for block in _CODE.findall(page.read_text()):
            lines = html.unescape(re.sub(r"<[^>]+>", "", block)).splitlines()
            code = [ln for ln in lines if ln.strip()]
            if code and all(ln[0] in " \t" for ln in code):
                indented.append(f"{page.relative_to(built_site)}: {code[0].strip()[:60]}")
    assert not indented, "\n".join(indented)
    serving = (built_site / "09-serving" / "index.html").read_text()
    blocks = [html.unescape(re.sub(r"<[^>]+>", "", b)) for b in _CODE.findall(serving)]
    predict = next(b for b in blocks if "async def predict" in b)
    assert predict.lstrip("\n").startswith("async def predict"), "a method, shown flush left"


def _snippet_lines(spec: str) -> int:
    """How many lines `--8<-- "path[:section]"` includes (section markers do not count)."""
    path, _, section = spec.partition(":")
    lines = (ROOT / path).read_text().splitlines()
    marker = re.compile(r"--8<-- \[(start|end):([\w-]+)\]")
    if section:
        start = next(i for i, ln in enumerate(lines) if f"[start:{section}]" in ln)
        end = next(i for i, ln in enumerate(lines) if f"[end:{section}]" in ln)
        lines = lines[start + 1 : end]
    return sum(1 for ln in lines if not marker.search(ln))


def _manifest_includes(text: str) -> list[tuple[str, int, bool]]:
    """(spec, included lines, inside a `???` block) for each manifest include of a chapter."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        fence = re.match(r"^( *)```(\w+)$", line)
        include = i + 1 < len(lines) and re.match(r'^ *--8<-- "([^"]+)"$', lines[i + 1])
        if not (fence and include and fence.group(2).lower() in MANIFEST_LANGUAGES):
            continue
        indent = len(fence.group(1))
        above = next((ln for ln in reversed(lines[:i]) if ln.strip()), "")
        above_indent = len(above) - len(above.lstrip())
        folded = above_indent == indent - 4 and re.match(r"^ *\?\?\?\+? \w+", above) is not None
        found.append((include.group(1), _snippet_lines(include.group(1)), folded))
    return found


def test_long_manifests_are_collapsible_and_short_ones_inline():
    wrong = []
    total = 0
    for chapter in sorted(CHAPTERS_DIR.glob("*.md")):
        for spec, count, folded in _manifest_includes(chapter.read_text()):
            total += 1
            if (count > MAX_INLINE_MANIFEST_LINES) != folded:
                wrong.append(
                    f"{chapter.name}: {spec} ({count} lines) {'folded' if folded else 'inline'}"
                )
    assert total >= 15, "the parser finds the chapters' manifest includes"
    assert not wrong, (
        f"manifests over {MAX_INLINE_MANIFEST_LINES} lines go in a `??? example` block, shorter "
        "ones stay inline:\n" + "\n".join(wrong)
    )


def test_fold_detector_sees_indented_blocks():
    text = '=== "kind"\n\n    ??? example "job"\n\n        ```yaml\n        --8<-- "Dockerfile"\n        ```\n'
    assert _manifest_includes(text) == [("Dockerfile", _snippet_lines("Dockerfile"), True)]
    assert _manifest_includes('```yaml\n--8<-- "Dockerfile"\n```\n')[0][2] is False


# --- diagrams --------------------------------------------------------------------------------


def _diagrams() -> list[tuple[str, list[str]]]:
    out = []
    for page in sorted(CHAPTERS_DIR.rglob("*.md")):
        for line, lang, body in fenced_blocks(page.read_text()):
            if lang == "mermaid":
                out.append((f"{page.relative_to(CHAPTERS_DIR)}:{line}", body))
    return out


def _without_front_matter(body: list[str]) -> list[str]:
    if body and body[0].strip() == "---":
        return body[body.index("---", 1) + 1 :] if "---" in body[1:] else body
    return body


def wide_rows(body: list[str]) -> list[str]:
    """Why a Mermaid diagram is too wide to read at page width, or [] when it is not.

    Example:
        >>> wide_rows(["flowchart LR", "  a --> b"])
        ['the diagram flows left to right (flowchart LR): use TD, or rows of subgraphs']
    """
    body = [ln.strip() for ln in _without_front_matter(body) if ln.strip()]
    header = re.match(r"^(flowchart|graph)\s+(\w+)", body[0]) if body else None
    if header is None:
        return []  # sequence and other diagram types: measured in the browser test only
    problems = []
    if header.group(2).upper() in ("LR", "RL"):
        problems.append(
            f"the diagram flows left to right ({header.group(1)} {header.group(2)}): use TD, "
            "or rows of subgraphs"
        )
    stack: list[tuple[str, bool, set[str]]] = []
    for line in body[1:]:
        if line.startswith("subgraph "):
            stack.append((line, False, set()))
        elif line == "end" and stack:
            name, across, nodes = stack.pop()
            if across and len(nodes) > MAX_NODES_PER_ROW:
                problems.append(f"{name}: {len(nodes)} nodes in one row")
        elif stack and re.match(r"^direction\s+(LR|RL)$", line):
            stack[-1] = (stack[-1][0], True, stack[-1][2])
        elif stack:
            unlabelled = re.sub(r'"[^"]*"', '""', line)
            stack[-1][2].update(re.findall(r"(?:^|[\s>&])([A-Za-z_]\w*)\s*[\[({]", unlabelled))
    return problems


def test_no_diagram_is_too_wide_to_read():
    """Today's fix for ≈ 6 px text: top-down flowcharts; left-to-right only in rows of ≤ 4 nodes."""
    diagrams = _diagrams()
    assert len(diagrams) >= 21
    problems = [f"{where}: {p}" for where, body in diagrams for p in wide_rows(body)]
    assert not problems, "\n".join(problems)


def test_wide_row_rule_catches_a_long_row():
    row = ["flowchart TD", 'subgraph s["row"]', "direction LR"]
    row += ['a["1"] --> b["2"] --> c["3"] --> d["4"] --> e["5"]', "end"]
    assert wide_rows(row) == ['subgraph s["row"]: 5 nodes in one row']
    assert wide_rows(["graph RL", "a --> b"]) != []
    assert wide_rows(["---", "config: {}", "---", "flowchart TD", "a --> b"]) == []


# --- facts the chapters quote ----------------------------------------------------------------


def _rule_alerts() -> dict[str, str]:
    rule = yaml.safe_load(
        (ROOT / "manifests/base/monitoring/prometheusrule.fraud-lab.yaml").read_text()
    )
    return {
        r["alert"]: " ".join(r["expr"].split())
        for group in rule["spec"]["groups"]
        for r in group["rules"]
        if "alert" in r
    }


def test_chapter_12_describes_exactly_the_alerts_of_the_rule_file():
    """Every alert of the PrometheusRule, by its name and expression, and the SLO alerts of lab 12
    (rendered by `fraudlab slo-rules`; the chapter includes the module); no alert that is not there."""
    from reference_app.monitoring import slo

    text = (CHAPTERS_DIR / "12-alerting-and-incidents.md").read_text()
    flat = " ".join(text.split())
    alerts = _rule_alerts()
    slo_alerts = {
        r["alert"] for r in slo.slo_rule_group(slo.burn_rate_threshold)["rules"] if "alert" in r
    }
    named = set(re.findall(r"\b(?:Fraud[A-Z]\w+|MLflow[A-Z]\w+)\b", text))
    assert named == set(alerts) | slo_alerts, (
        f"named but not in the rules: {named - set(alerts) - slo_alerts}"
    )
    assert '--8<-- "reference_app/monitoring/slo.py:slos"' in text
    for name, expr in alerts.items():
        assert f"`{expr}`" in flat, f"{name}: the chapter must quote its expression {expr}"
    assert "burn-rate" in text and "lab 12" in text


def test_chapter_15_pod_security_levels_are_the_namespaces():
    text = (CHAPTERS_DIR / "15-security-and-compliance.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| .* \| `(\w+)`.*\|$", text, flags=re.M))
    assert rows, "the namespace table"
    for namespace, level in rows.items():
        manifest = ROOT / f"manifests/base/namespaces/namespace.{namespace}.yaml"
        labels = yaml.safe_load(manifest.read_text())["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == level, namespace


def test_chapter_11_keeps_the_drift_across_commands():
    """The drift variables are real settings and exported for the session: set on one command
    only, the next `fraudlab pipeline` would simulate the data again without drift."""
    from reference_app.config import Settings

    text = (CHAPTERS_DIR / "11-monitoring.md").read_text()
    drift = {f"FRAUD_{f.upper()}" for f in Settings.model_fields if f.startswith("drift_")}
    assert set(re.findall(r"\bFRAUD_DRIFT_\w+", text)) == drift
    export = next(ln for ln in text.splitlines() if "export FRAUD_DRIFT_" in ln)
    assert set(re.findall(r"\b(FRAUD_DRIFT_\w+)=", export)) == drift
    for line in text.splitlines():
        if re.search(r"\bfraudlab (simulate|pipeline)\b", line):
            assert "FRAUD_DRIFT_" not in line, f"per-command drift variables: {line.strip()}"


def _makefile_targets() -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    return re.findall(r"^([A-Za-z0-9%_-]+):", makefile, flags=re.M)


def test_readme_start_here_names_only_real_make_targets():
    readme = (ROOT / "README.md").read_text()
    start = readme.split("## Start here\n", 1)[1].split("\n## ", 1)[0]
    assert readme.index("## Start here") < readme.index("## Kind mode")
    targets = _makefile_targets()
    patterns = [re.compile("^" + re.escape(t).replace("%", ".+") + "$") for t in targets]
    used = set(re.findall(r"\bmake ([a-z][\w-]*)", start))
    assert {"docs-serve", "doctor", "cluster", "images", "deploy", "lab-0"} <= used
    for target in used:
        name = target.replace("lab-N", "lab-1")
        assert any(p.match(name) for p in patterns), f"README names `make {target}`"
    assert "http://127.0.0.1:8000" in start and "labs/README.md" in start
    for nn in EXISTING_LABS:
        assert nn in start, f"lab {nn} is not listed in Start here"
