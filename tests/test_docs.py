"""The documentation stands on its own in a clone of the repository.

- No tracked file outside docs/ cites the project's out-of-repo specification (FORBIDDEN below: the
  sibling `shared` folder or the spec's file name): a user's clone has neither. The science is in
  docs/models.md.
- Every `docs/models.md §N` citation names a section that exists.
- Every relative Markdown link (and image) in README.md and docs/**/*.md points to an existing file,
  and a `#fragment` into a Markdown file to one of its headings (GitHub's anchor rules).
"""
from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Built from pieces so that this file does not cite them itself.
FORBIDDEN = ("../" + "shared/", "science" + ".md")
SKIP_DIRS = {".git", ".venv", "node_modules", "var", "test-artifacts", "__pycache__", ".pytest_cache"}


def tracked_files() -> list[Path]:
    """Files git tracks (those a clone has); without git, the tree less build and run outputs."""
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        names = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(ROOT).parts)]
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def test_no_citation_of_the_out_of_repo_specification():
    offenders = []
    for path in tracked_files():
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "docs":
            continue
        data = path.read_bytes()
        for needle in FORBIDDEN:
            if needle.encode() in data:
                text = data.decode("utf-8", "replace")
                lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
                offenders.append(f"{rel}:{','.join(map(str, lines))}: cites {needle!r}")
    assert not offenders, ("cite docs/models.md instead (a clone has no sibling shared folder):\n" + "\n".join(offenders))


# ---- Markdown -------------------------------------------------------------------------------------

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+(?:\([^()\s]*\))?)>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose_lines(text: str) -> list[str]:
    """The lines of a Markdown file, those inside fenced or indented code blocks blanked (numbering kept).
    An indented block: lines indented 4 spaces (or a tab) after a blank line, up to the next line that is not."""
    out, fenced, indented, prev_blank = [], False, False, True
    for line in text.splitlines():
        blank = not line.strip()
        if FENCE.match(line):
            fenced = not fenced
            line = ""
        elif fenced:
            line = ""
        elif line.startswith(("    ", "\t")) and (prev_blank or indented):
            indented, line = True, ""
        elif not blank:
            indented = False
        prev_blank = blank
        out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped, spaces → '-'."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", heading)  # a link → its text
    text = CODE_SPAN.sub(lambda m: m.group(2), text)
    text = re.sub(r"<[^>]+>", "", text).lower()
    kept = "".join(ch for ch in text if ch in " -" or unicodedata.category(ch)[0] in "LMN" or unicodedata.category(ch) == "Pc")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    out.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", path.read_text(encoding="utf-8")))
    return out


def links(path: Path) -> list[tuple[int, str]]:
    out = []
    for no, line in enumerate(prose_lines(path.read_text(encoding="utf-8")), 1):
        line = CODE_SPAN.sub("", line)
        out += [(no, target) for target in INLINE_LINK.findall(line)]
        m = REF_DEF.match(line)
        if m:
            out.append((no, m.group(1)))
    return out


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_markdown_files_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in markdown_files()}
    assert {"README.md", "docs/models.md"} <= names


@pytest.mark.parametrize("md", markdown_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_point_to_existing_files(md: Path):
    broken = []
    for no, target in links(md):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # http:, https:, mailto: — not checked offline
        file_part, _, fragment = target.partition("#")
        file_part = file_part.split("?", 1)[0]
        dest = (md.parent / file_part).resolve() if file_part else md
        where = f"{md.relative_to(ROOT)}:{no}: {target}"
        if not dest.exists():
            broken.append(f"{where} (no such file)")
        elif not dest.is_relative_to(ROOT):
            broken.append(f"{where} (outside the repository)")
        elif fragment and dest.suffix == ".md" and fragment not in anchors(dest):
            broken.append(f"{where} (no heading with anchor #{fragment} in {dest.relative_to(ROOT)})")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_section_citations_exist():
    """`docs/models.md §N` (or `models.md §N` inside docs/) names a numbered section `## N.` of the page."""
    models = ROOT / "docs" / "models.md"
    sections = set(re.findall(r"^## (\d+)\.", models.read_text(encoding="utf-8"), flags=re.M))
    missing = []
    for path in tracked_files():
        if path.suffix not in {".py", ".md", ".js", ".html"}:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in re.finditer(r"models\.md §(\d+)", text):
            if m.group(1) not in sections:
                line = text.count("\n", 0, m.start()) + 1
                missing.append(f"{path.relative_to(ROOT)}:{line}: §{m.group(1)}")
    assert sections and not missing, f"docs/models.md has sections {sorted(sections)}; cited but missing: {missing}"
