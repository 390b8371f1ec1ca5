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


# ---- README: every setting and every route ---------------------------------------------------------

def load_settings_doc():
    import importlib.util

    spec = importlib.util.spec_from_file_location("settings_doc", ROOT / "scripts" / "settings_doc.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_settings_table_is_the_settings_classes():
    """README's table is generated from the web's and worker's Settings: a new or changed setting must be
    documented (`python scripts/settings_doc.py --write`)."""
    doc = load_settings_doc()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert doc.BEGIN in readme and doc.END in readme
    current = readme[readme.index(doc.BEGIN):readme.index(doc.END) + len(doc.END)]
    assert current == doc.table(), "README's settings table is stale: run `python scripts/settings_doc.py --write`"
    from backend.app.settings import Settings
    from worker.settings import WorkerSettings
    for cls in (Settings, WorkerSettings):
        for name, field in cls.model_fields.items():
            assert field.description, f"{cls.__name__}.{name} has no description for the README"
            assert any(f"`{env}`" in current for env in doc.env_names(name, field)), f"{name} not in the table"


def test_every_environment_variable_the_code_reads_is_in_the_readme():
    """Also those read outside the Settings classes (make run's launcher, the client, the data loaders)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for path in tracked_files():
        rel = path.relative_to(ROOT)
        if rel.parts[0] in ("tests", "bench", "docs", "frontend") or path.suffix not in (".py", "", ".yml", ".sh", ".Dockerfile"):
            continue
        for name in re.findall(r"\bPINWHEEL_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8", errors="replace")):
            found.setdefault(name, str(rel))
    assert "PINWHEEL_VAR_DIR" in found and "PINWHEEL_REDIS_PORT" in found  # the scan sees the launcher
    missing = sorted(f"{name} ({where})" for name, where in found.items() if f"`{name}`" not in readme)
    assert not missing, "environment variables the README does not document: " + ", ".join(missing)


def app_routes() -> dict[str, set[str]]:
    """{path: methods} of every route the web app answers (the OpenAPI paths and those kept out of it)."""
    from backend.app.main import create_app
    from backend.app.settings import Settings

    app = create_app(Settings(database_url="sqlite:///:memory:", persist_frames=False, run_reaper=False))
    routes = {path: {m.upper() for m in ops} for path, ops in app.openapi()["paths"].items()}
    framework = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
    for route in app.routes:
        path, methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path and methods and path not in framework:
            routes.setdefault(path, set()).update(m for m in methods if m != "HEAD")
    return routes


def readme_routes() -> dict[str, set[str]]:
    """The README's API table: `| GET, PATCH | `/api/...` | what |` rows."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## API\n"):]
    section = section[:section.index("\n## ", 1)]
    out: dict[str, set[str]] = {}
    for methods, path in re.findall(r"^\| ([A-Z, ]+) \| `(/[^`]*)` \|", section, flags=re.M):
        out.setdefault(path, set()).update(m.strip() for m in methods.split(","))
    return out


def test_every_route_is_in_the_readme_and_every_readme_route_exists():
    app, readme = app_routes(), readme_routes()
    assert "/api/runs/{run_id}/exports/filter_grid.mp4" in app and "/api/health" in app  # the scan sees them
    undocumented = sorted(f"{' '.join(sorted(m - readme.get(p, set())))} {p}" for p, m in app.items()
                          if m - readme.get(p, set()))
    assert not undocumented, "routes missing from README's API table: " + "; ".join(undocumented)
    stale = sorted(f"{' '.join(sorted(m - app.get(p, set())))} {p}" for p, m in readme.items() if m - app.get(p, set()))
    assert not stale, "README's API table lists routes the app does not have: " + "; ".join(stale)
