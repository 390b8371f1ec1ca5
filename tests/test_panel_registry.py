"""Every panel kind has one Python producer and one JS renderer of the same name, and nothing else."""
from __future__ import annotations

import re

from pinwheel.panels import PANELS

from .services import ROOT


def test_python_and_js_panel_registries_match():
    index = (ROOT / "frontend/js/panels/index.js").read_text()
    imports = dict((name, path) for name, path in re.findall(r'import \* as (\w+) from "\./(\w+)\.js"', index))
    registered = re.search(r"export const RENDERERS = \{([^}]*)\}", index).group(1)
    js_kinds = {k.strip() for k in registered.split(",") if k.strip()}
    assert js_kinds == set(PANELS), (js_kinds ^ set(PANELS))
    for kind in PANELS:
        assert imports.get(kind) == kind, f"{kind}.js must be imported as {kind}"
        assert (ROOT / f"frontend/js/panels/{kind}.js").is_file()
        assert (ROOT / f"pinwheel/panels/{kind}.py").is_file()
        js = (ROOT / f"frontend/js/panels/{kind}.js").read_text()
        assert re.search(r"export (async )?function create", js) and re.search(r"export (async )?function render", js)
        assert "export const title" in js
    modules = {p.stem for p in (ROOT / "pinwheel/panels").glob("*.py") if not p.stem.startswith("_")}
    assert modules == set(PANELS), modules ^ set(PANELS)
