"""`--set model.lam=0.2` and sweep axes `model.lam=0.1,0.2` → nested config overrides.

Values are read as JSON when they parse (numbers, true/false, null, lists, quoted strings) and
as plain strings otherwise, so `--set data.kind=natural_patches` needs no quotes. The server
validates the merged config and names any unknown field or wrong value.
"""
from __future__ import annotations

import json
import re
from typing import Any

FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


class OverrideError(ValueError):
    """A malformed --set / --grid item; str() is one line naming it."""


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def split_item(item: str, flag: str = "--set") -> tuple[str, str]:
    path, eq, value = item.partition("=")
    path = path.strip()
    if not eq:
        raise OverrideError(f"{flag} {item!r}: expected FIELD=VALUE, e.g. model.lam=0.2")
    if not FIELD.fullmatch(path):
        raise OverrideError(f"{flag} {item!r}: the field must be dotted names, e.g. model.lam")
    if value.strip() == "":
        raise OverrideError(f"{flag} {path}: no value after '='")
    return path, value.strip()


def set_path(target: dict, path: str, value: Any) -> dict:
    node = target
    parts = path.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise OverrideError(f"--set {path}: {part} is given a value and sub-fields at once")
        node = child
    node[parts[-1]] = value
    return target


def parse_sets(items: list[str] | None) -> dict:
    """['model.lam=0.2', 'train.steps=100'] → {'model': {'lam': 0.2}, 'train': {'steps': 100}}."""
    out: dict = {}
    for item in items or []:
        path, value = split_item(item)
        set_path(out, path, parse_value(value))
    return out


def parse_axis(item: str, flag: str = "--grid") -> tuple[str, list[Any]]:
    """'model.lam=0.1,0.2' → ('model.lam', [0.1, 0.2]); a JSON list works too: 'x=[1,2]'."""
    path, value = split_item(item, flag)
    parsed = parse_value(value)
    values = parsed if isinstance(parsed, list) else [parse_value(v.strip()) for v in value.split(",")]
    if not values or any(v == "" for v in values):
        raise OverrideError(f"{flag} {path}: give one or more comma-separated values")
    return path, values


def parse_random(item: str) -> tuple[str, dict | list]:
    """'model.lam=0.01:1:log' → a range (':log' draws in log space, ':int' rounds); 'x=a,b,c' → choices."""
    path, value = split_item(item, "--random")
    if ":" not in value:
        return path, [parse_value(v.strip()) for v in value.split(",")]
    parts = value.split(":")
    flags = {p.strip() for p in parts[2:]}
    if len(parts) < 2 or not flags <= {"log", "int"}:
        raise OverrideError(f"--random {item!r}: expected FIELD=LOW:HIGH[:log][:int] or FIELD=A,B,C")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise OverrideError(f"--random {path}: LOW and HIGH must be numbers, got {parts[0]!r} and {parts[1]!r}") from None
    return path, {"low": low, "high": high, "log": "log" in flags, "integer": "int" in flags}
