"""The Kubernetes JSONPath subset used by ``additionalPrinterColumns``.

Supports ``.field``, ``..field`` (recursive), ``['quoted.key']``, ``[n]`` (negative too),
``[a:b]`` slices, ``[*]`` / ``.*`` and filters ``[?(@.a.b OP literal)]`` with
``== != < <= > >=`` or a bare ``[?(@.a)]`` existence test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

Step = Callable[[list[Any]], list[Any]]


class JSONPathError(ValueError):
    pass


_FILTER_RE = re.compile(r"^@((?:\.[\w\-/]+|\['[^']*'\])*)\s*(==|!=|<=|>=|<|>)?\s*(.*)$")


def _child(name: str) -> Step:
    def step(values: list[Any]) -> list[Any]:
        return [v[name] for v in values if isinstance(v, dict) and name in v]
    return step


def _wildcard(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if isinstance(v, dict):
            out.extend(v.values())
        elif isinstance(v, list):
            out.extend(v)
    return out


def _recursive(name: str) -> Step:
    def walk(v: Any, out: list[Any]) -> None:
        if isinstance(v, dict):
            if name in v:
                out.append(v[name])
            for x in v.values():
                walk(x, out)
        elif isinstance(v, list):
            for x in v:
                walk(x, out)

    def step(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for v in values:
            walk(v, out)
        return out
    return step


def _index(text: str) -> Step:
    if ":" in text:
        start_s, _, end_s = text.partition(":")
        start = int(start_s) if start_s.strip() else None
        end = int(end_s.split(":")[0]) if end_s.split(":")[0].strip() else None

        def slice_step(values: list[Any]) -> list[Any]:
            out: list[Any] = []
            for v in values:
                if isinstance(v, list):
                    out.extend(v[start:end])
            return out
        return slice_step
    idx = int(text)

    def step(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for v in values:
            if isinstance(v, list) and -len(v) <= idx < len(v):
                out.append(v[idx])
        return out
    return step


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text


def _filter(expr: str) -> Step:
    m = _FILTER_RE.match(expr.strip())
    if not m:
        raise JSONPathError(f"unsupported filter: {expr}")
    sub_path, op, lit = m.groups()
    sub_steps = _compile(sub_path) if sub_path else []
    want = _literal(lit) if op else None

    def test(item: Any) -> bool:
        found = _run(sub_steps, [item])
        if not op:
            return bool(found)
        for have in found:
            if op in ("==", "!="):
                eq = str(have) == str(want) if not isinstance(want, int | float) else have == want
                if eq == (op == "=="):
                    return True
            else:
                try:
                    if {"<": have < want, "<=": have <= want, ">": have > want,
                        ">=": have >= want}[op]:
                        return True
                except TypeError:
                    continue
        return False

    def step(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for v in values:
            items = v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else []
            out.extend(i for i in items if test(i))
        return out
    return step


def _compile(path: str) -> list[Step]:
    steps: list[Step] = []
    i, n = 0, len(path)
    while i < n:
        ch = path[i]
        if path.startswith("..", i):
            m = re.compile(r"[\w\-]+").match(path, i + 2)
            if not m:
                raise JSONPathError(f"bad recursive descent in {path!r}")
            steps.append(_recursive(m.group(0)))
            i = m.end()
        elif ch == ".":
            if path.startswith(".*", i):
                steps.append(_wildcard)
                i += 2
                continue
            m = re.compile(r"[\w\-/]+").match(path, i + 1)
            if not m:
                i += 1
                continue
            steps.append(_child(m.group(0)))
            i = m.end()
        elif ch == "[":
            depth, j = 0, i
            while j < n:
                if path[j] == "[":
                    depth += 1
                elif path[j] == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j >= n:
                raise JSONPathError(f"unterminated [ in {path!r}")
            inner = path[i + 1:j].strip()
            if inner == "*":
                steps.append(_wildcard)
            elif inner.startswith("?(") and inner.endswith(")"):
                steps.append(_filter(inner[2:-1]))
            elif inner[:1] in "'\"":
                for name in re.findall(r"'([^']*)'|\"([^\"]*)\"", inner):
                    steps.append(_child(name[0] or name[1]))
            else:
                try:
                    steps.append(_index(inner))
                except ValueError:
                    raise JSONPathError(f"bad index [{inner}] in {path!r}") from None
            i = j + 1
        elif ch in " \t{}$":
            i += 1
        else:
            m = re.compile(r"[\w\-/]+").match(path, i)
            if not m:
                raise JSONPathError(f"unexpected {ch!r} in {path!r}")
            steps.append(_child(m.group(0)))
            i = m.end()
    return steps


def _run(steps: list[Step], values: list[Any]) -> list[Any]:
    for step in steps:
        values = step(values)
    return values


@lru_cache(maxsize=256)
def compile_path(path: str) -> tuple[Step, ...]:
    return tuple(_compile(path))


def find(obj: Any, path: str) -> list[Any]:
    """All values the path selects in ``obj``; an empty list when nothing matches."""
    return _run(list(compile_path(path)), [obj])
