"""Every link of README.md and docs/*.md resolves: the file, and the heading of an anchor.

(tests/test_architecture.py checks docs/ linking docs/; this adds README.md, links to
other files of the repository, anchors within a page, and paths written as code.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    prose = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {_anchor(h) for h in re.findall(r"^#+ (.*)$", prose, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page: Path):
    text = page.read_text(encoding="utf-8")
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", prose):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path) if path else page
        if not file.exists() or (anchor and file.suffix == ".md" and anchor not in _anchors(file)):
            broken.append(target)
    for path in re.findall(
        r"`((?:docs|examples|bench|tests|scripts|firmware-sim)/[\w./-]+)`", text
    ):
        if not (ROOT / path).exists():
            broken.append(path)
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_readme_indexes_every_document():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    index = readme.split("## Documentation", 1)[1].split("\n## ", 1)[0]
    missing = [p.name for p in (ROOT / "docs").glob("*.md") if f"`docs/{p.name}`" not in index]
    assert not missing, f"README's documentation table lacks {missing}"
