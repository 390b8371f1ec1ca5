"""backend/app/js_bundle.py: the frontend's ES modules made one classic script for the HTML export.
(The export page running offline in Chromium is tests/browser/test_reading_runs.py.)"""
from __future__ import annotations

import re

import pytest

from backend.app.js_bundle import BundleError, bundle
from backend.app.settings import Settings


def write(root, files: dict) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_imports_become_requires_and_exports_the_namespace(tmp_path):
    write(tmp_path, {
        "main.js": 'import { a, b as bee } from "./lib/x.js";\nimport * as y from "./y.js";\nconsole.log(a, bee, y.Y);\n',
        "lib/x.js": 'import { Y } from "../y.js";\nexport const a = 1, b = 2;\nexport function f() { return Y; }\n',
        "y.js": "export class Y {}\nconst hidden = 3;\n",
        "unused.js": "export const never = 1;\n",
    })
    js = bundle(tmp_path, "main.js")
    assert 'const { a, b: bee } = __require("lib/x.js");' in js
    assert 'const y = __require("y.js");' in js and 'const { Y } = __require("y.js");' in js  # ../ resolved
    assert "return { a, b, f };" in js and "return { Y };" in js  # `hidden` stays private
    assert "unused.js" not in js  # only the entry's import graph
    assert not re.search(r"^\s*(import|export)\s", js, re.M)
    assert js.rstrip().endswith('__require("main.js");\n})();'.rstrip())


@pytest.mark.parametrize("source", ['export default 1;\n', 'const m = await import("./y.js");\n',
                                    'export { a };\nconst a = 1;\n', 'import "./nowhere.js";\n'])
def test_forms_it_does_not_handle_fail_at_export_time(tmp_path, source):
    write(tmp_path, {"main.js": source, "y.js": "export const y = 1;\n"})
    with pytest.raises(BundleError, match="main.js"):
        bundle(tmp_path, "main.js")


def test_a_missing_module_is_named(tmp_path):
    write(tmp_path, {"main.js": 'import { z } from "./z.js";\n'})
    with pytest.raises(BundleError, match=r"main.js: imports \./z\.js"):
        bundle(tmp_path, "main.js")


def test_the_export_page_bundles_every_renderer_and_no_network_module():
    js = bundle(Settings().frontend_dir / "js", "export_page.js")
    kinds = re.findall(r'import \* as (\w+) from', (Settings().frontend_dir / "js/panels/index.js").read_text())
    assert kinds and all(f'__define("panels/{k}.js"' in js for k in kinds)
    assert '__define("api.js"' not in js and '__define("auth.js"' not in js  # nothing that fetches or holds a token
    assert "</script" not in js
