"""The project's docs stay true to the tree: every link between them lands on a file (and
a heading), every module path docs/architecture.md and its siblings name exists, and
every doc a docstring points at is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"`([^`\s]+)`")


def slug(heading: str) -> str:
    """A heading's anchor, as GitHub makes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines() if line[:1] == "#"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_land_on_a_file_and_a_heading(page: Path) -> None:
    prose = CODE.sub("", page.read_text())  # a regex in code is no link
    for target in LINK.findall(prose):
        if "://" in target or target.startswith("#"):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve()
        assert linked.exists(), f"{page.name}: {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked), f"{page.name}: {target}"


MODULES = {p.name for p in (REPO / "reconciler").rglob("*.py")}


def exists(module: str) -> bool:
    """A path from the repository or from reconciler/; a bare name anywhere in the package
    (prose names a module's siblings by their file name)."""
    if "/" not in module:
        return module in MODULES
    return any((base / module).exists() for base in (REPO, REPO / "reconciler"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_modules_named_exist(page: Path) -> None:
    named = [t for t in CODE.findall(page.read_text()) if t.endswith(".py")]
    assert named or page.name not in ("architecture.md", "domain.md")
    assert [t for t in named if not exists(t)] == [], page.name


def test_docstrings_point_at_docs_in_the_repository() -> None:
    pointed = {
        (path.relative_to(REPO), doc)
        for path in (REPO / "reconciler").rglob("*.py")
        for doc in re.findall(r"docs/[\w.-]+\.md", path.read_text())
    }
    assert pointed  # the code does point at its docs
    assert {(p, d) for p, d in pointed if not (REPO / d).exists()} == set()
