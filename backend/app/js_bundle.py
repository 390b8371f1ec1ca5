"""The frontend's ES modules as one classic script, for the HTML export (one file that opens offline).

No build step and no JS tooling: the frontend is written as plain ES modules, and the export needs
the same renderers in a file with nothing to fetch. Each module of the entry's import graph becomes a
function in a small registry; `import {a, b as c} from "./x.js"` becomes
`const {a, b: c} = __require("x.js")` and its `export`ed declarations are returned as the module's
namespace. Only the forms the frontend uses are understood — static named / namespace imports and
`export` before a declaration; anything else (a dynamic import, `export {…}`, `export default`)
raises at export time instead of breaking the page.
"""
from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

IMPORT = re.compile(r'^import\s+(?:\{([^}]*)\}|\*\s+as\s+(\w+))\s+from\s+"(\.{1,2}/[^"]+)";[ \t]*$', re.M)
EXPORT_DECL = re.compile(r"^export\s+(async\s+function\*?|function\*?|class|const|let)\s+(\w+)", re.M)
LEFT_OVER = re.compile(r"^\s*(import\s|export\s)|\bimport\(", re.M)


class BundleError(ValueError):
    pass


def _names(spec: str) -> str:
    """`a, b as c` → `a, b: c` (a destructuring pattern)."""
    out = []
    for part in (p.strip() for p in spec.split(",")):
        if part:
            name, _, alias = part.partition(" as ")
            out.append(f"{name.strip()}: {alias.strip()}" if alias else name.strip())
    return ", ".join(out)


def _exported(source: str) -> list[str]:
    names = []
    for m in EXPORT_DECL.finditer(source):
        names.append(m.group(2))
        if m.group(1) in ("const", "let"):  # `export const A = 1, B = 2;` on one line
            line = source[m.end():source.find("\n", m.end())]
            names += re.findall(r",\s*(\w+)\s*=(?!=)", line)
    return names


def _module(root: Path, name: str) -> tuple[str, list[str]]:
    """(the module as a registry function, the modules it imports)"""
    source = (root / name).read_text()
    here = posixpath.dirname(name)
    deps: list[str] = []

    def rewrite(m: re.Match) -> str:
        dep = posixpath.normpath(posixpath.join(here, m.group(3)))
        if not (root / dep).is_file():
            raise BundleError(f"{name}: imports {m.group(3)}, which is not a file of the frontend")
        deps.append(dep)
        target = f"{{ {_names(m.group(1))} }}" if m.group(1) is not None else m.group(2)
        return f"const {target} = __require({json.dumps(dep)});"

    body = IMPORT.sub(rewrite, source)
    exported = _exported(body)
    body = EXPORT_DECL.sub(lambda m: f"{m.group(1)} {m.group(2)}", body)
    if left := LEFT_OVER.search(body):
        raise BundleError(f"{name}: `{left.group(0).strip()}` is a form the export's bundler does not handle")
    fn = f"function (__require) {{\n{body}\nreturn {{ {', '.join(exported)} }};\n}}"
    return f"__define({json.dumps(name)}, {fn});\n", deps


def bundle(root: Path, entry: str) -> str:
    """Every module `entry` (a path under `root`) imports, directly or not, and a call of the entry."""
    seen: dict[str, str] = {}
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name], deps = _module(root, name)
        todo.extend(deps)
    loader = ("const __defs = {}, __mods = {};\n"
              "function __define(name, fn) { __defs[name] = fn; }\n"
              "function __require(name) {\n"
              "  if (!(name in __mods)) { __mods[name] = {}; __mods[name] = __defs[name](__require); }\n"
              "  return __mods[name];\n}\n")
    code = loader + "".join(seen[n] for n in sorted(seen)) + f"__require({json.dumps(entry)});\n"
    # inside <script>: no "</script" may end the element early
    script = "(function () {\n\"use strict\";\n" + code + "})();\n"
    return script.replace("</script", "<\\/script")
