"""Every relative link of the documentation leads somewhere.

`README.md` and `docs/*.md` link to each other, to headings and to files of the
repository; a moved file or a renamed heading breaks a link silently, so this test
follows each one: the file (or folder) must exist, and a `#anchor` must name a heading
of the target, as GitHub makes anchors from headings.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest

from contracts.topics import Topic
from local.reference import REPO, documents

FENCE = re.compile(r"^(```|~~~)")
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
EXTERNAL = ("http://", "https://", "mailto:")


def prose_lines(path: Path) -> list[str]:
    """The lines of a Markdown file outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(path):
        match = HEADING.match(line)
        if match:
            base = slug(match[1])
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def links(path: Path) -> list[str]:
    return [
        target
        for line in prose_lines(path)
        for target in LINK.findall(CODE_SPAN.sub("", line))
        if not target.startswith(EXTERNAL)
    ]


DOCUMENTS = documents()


def test_the_documents_are_found() -> None:
    names = {str(p.relative_to(REPO)) for p in DOCUMENTS}
    assert {"README.md", "docs/architecture.md", "docs/security.md"} <= names


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_to_a_file_and_heading(document: Path) -> None:
    broken = []
    for target in links(document):
        location, _, anchor = unquote(target).partition("#")
        file = (document.parent / location).resolve() if location else document
        if not file.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target} (no such heading in {file.name})")
    assert not broken, f"{document.relative_to(REPO)}: broken links {broken}"


def test_every_topic_is_documented_for_integrators() -> None:
    text = (REPO / "docs" / "integration.md").read_text(encoding="utf-8")
    missing = [topic.value for topic in Topic if f"`{topic.value}`" not in text]
    assert not missing, f"docs/integration.md does not describe {missing}"


REPOSITORY_PATH = re.compile(
    r"`((?:contracts|services|crm|local|bench|deploy|tests|docs)/[\w./-]*)`"
)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_repository_path_named_exists(document: Path) -> None:
    named = set(REPOSITORY_PATH.findall(document.read_text(encoding="utf-8")))
    missing = sorted(path for path in named if not (REPO / path).exists())
    assert not missing, f"{document.relative_to(REPO)} names paths that do not exist: {missing}"
