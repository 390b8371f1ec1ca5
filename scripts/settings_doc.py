"""The README's settings table, generated from the Settings classes (backend/app/settings.py,
worker/settings.py, both on pinwheel/paths.py): one row per environment variable, its default, which
processes read it and what it means. tests/test_docs.py fails when the README's copy differs.

    .venv/bin/python scripts/settings_doc.py            # print the table
    .venv/bin/python scripts/settings_doc.py --write    # replace it in README.md
"""
from __future__ import annotations

import sys
from pathlib import Path

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.app.settings import Settings  # noqa: E402
from pinwheel.paths import ROOT as CHECKOUT  # noqa: E402
from worker.settings import WorkerSettings  # noqa: E402

BEGIN, END = "<!-- settings table: scripts/settings_doc.py -->", "<!-- end of settings table -->"
DEFAULT_VAR_DIR = CHECKOUT / "var"


def env_names(name: str, field: FieldInfo) -> list[str]:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(c) for c in alias.choices]
    return [alias] if isinstance(alias, str) else [f"PINWHEEL_{name.upper()}"]


def default_text(field: FieldInfo) -> str:
    if field.default_factory is not None:  # derived from var_dir: shown as it is with var_dir's default
        value = field.default_factory({"var_dir": DEFAULT_VAR_DIR})
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if value is None:
        return "unset"
    text = str(value).replace(str(CHECKOUT) + "/", "")  # paths in the checkout, as the checkout has them
    return f"`{text}`" if text else "empty"


def rows() -> list[tuple[str, str, str, str]]:
    readers: dict[str, tuple[FieldInfo, list[str]]] = {}
    for label, cls in (("web", Settings), ("worker", WorkerSettings)):
        for name, field in cls.model_fields.items():
            readers.setdefault(name, (field, []))[1].append(label)
    out = []
    for name, (field, who) in readers.items():
        names = " / ".join(f"`{n}`" for n in env_names(name, field))
        out.append((names, default_text(field), " and ".join(who), (field.description or "").replace("|", "\\|")))
    return out


def table() -> str:
    lines = ["| variable | default | read by | meaning |", "| --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(row)} |" for row in rows()]
    return "\n".join([BEGIN, *lines, END])


def replace_in(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + table() + text[end:]


if __name__ == "__main__":
    if "--write" in sys.argv:
        readme = ROOT / "README.md"
        readme.write_text(replace_in(readme.read_text()))
    else:
        print(table())
