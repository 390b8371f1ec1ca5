"""422 answers that name the field a person wrote, for configs (launch) and bundle records (import).

Pydantic's locations carry the tags of discriminated unions (`model.group_sparse.groups.tree.depth`)
and cross-field checks raise at the enclosing model with the field in the message
(`groups.depth: a tree of …`). Both are turned into the path of the key in the submitted JSON
(`model.groups.depth`), in `loc` (FastAPI's shape) and as a dotted `field`.
"""
from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

SECTIONS = ("model", "data", "train")
MSG_FIELD = re.compile(r"^(?:Value error, )?([A-Za-z_][\w]*(?:\.\w+)*): ")


def _input_path(loc: tuple, data: Any) -> list:
    """loc without the union tags: a part that is not a key (or index) of the input is a tag when the
    input object there has that `kind`."""
    out: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and node.get("kind") == part:
            continue  # the discriminator's tag, not a key the user wrote
        elif isinstance(node, dict) and "kind" not in node and isinstance(part, str) and not out:
            continue  # a default union member chosen without a kind (e.g. the default model)
        else:
            out.append(part)
            node = None
    return out


def _path(parts: list) -> list:
    return [int(p) if isinstance(p, str) and p.isdigit() else p for p in parts]


def field_errors(exc: ValidationError, data: Any, prefix: tuple = ()) -> list[dict]:
    """[{loc, msg, type, field}] for a failed validation of `data` (prefix: where data sits in the body)."""
    out = []
    for err in exc.errors(include_url=False):
        path = _input_path(tuple(err["loc"]), data)
        named = MSG_FIELD.match(err["msg"]) if err["type"] == "value_error" else None
        if named:
            inner = named.group(1).split(".")
            path = inner if inner[0] in SECTIONS and prefix[-1:] == ("config",) else [*path, *inner]
        path = _path(path)
        out.append({"loc": [*prefix, *path], "msg": err["msg"], "type": err["type"],
                    "field": ".".join(str(p) for p in path) or "(root)"})
    return out
