"""Every ``docs/<file>.md#<anchor>`` cited in code, configs and docs names an existing heading."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"docs/([\w-]+\.md)(?:#([\w-]+))?")


def heading_slugs(document: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings: lower case, punctuation dropped, spaces to hyphens."""
    slugs = set()
    for line in document.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slugs.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return slugs


def cited_links() -> list[tuple[str, str, str | None]]:
    files = subprocess.run(
        ["git", "ls-files", "*.py", "*.yaml", "*.md", "*.sh", "*.cfg"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    links = []
    for name in files:
        for match in LINK.finditer((ROOT / name).read_text()):
            links.append((name, match.group(1), match.group(2)))
    return links


def test_code_cites_docs_by_existing_headings():
    links = cited_links()
    assert len(links) > 50  # the code does point at the docs
    broken = []
    for source, document, anchor in links:
        path = ROOT / "docs" / document
        if not path.exists() or (anchor is not None and anchor not in heading_slugs(path)):
            broken.append(f"{source}: docs/{document}#{anchor}")
    assert broken == []


def test_nothing_points_outside_the_repository_for_the_model_reference():
    pattern = "spec " + "§"  # split, so that this file does not match itself
    files = subprocess.run(["git", "grep", "-l", pattern], cwd=ROOT, capture_output=True, text=True).stdout
    assert files.split() == []
