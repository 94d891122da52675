"""Label and field selectors with the grammar and matching rules of apimachinery."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"^{_KEY}$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            # A missing label satisfies != and notin, as in apimachinery.
            return not present or value not in self.values
        if self.op in ("gt", "lt"):
            try:
                have, want = int(value or ""), int(self.values[0])
            except ValueError:
                return False
            return have > want if self.op == "gt" else have < want
        return False


class LabelSelector:
    """A parsed ``labelSelector`` query string."""

    def __init__(self, requirements: list[Requirement]) -> None:
        self.requirements = requirements

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        text = (text or "").strip()
        if not text:
            return cls([])
        return cls([_parse_requirement(part) for part in _split_top_level(text)])

    def empty(self) -> bool:
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    if any(not p for p in parts) or depth != 0:
        raise bad_request(f"unable to parse requirement: invalid label selector {text!r}")
    return parts


_SET_RE = re.compile(r"^(\S+)\s+(in|notin)\s*\((.*)\)$")


def _parse_requirement(part: str) -> Requirement:
    m = _SET_RE.match(part)
    if m:
        key, op, raw = m.groups()
        values = tuple(v.strip() for v in raw.split(",") if v.strip())
        if not values:
            raise bad_request(f"unable to parse requirement: for 'in', 'notin' operators, "
                              f"values set can't be empty: {part!r}")
        return Requirement(_check_key(key), op, values)
    for token, op in (("==", "="), ("!=", "!="), ("=", "="), (">", "gt"), ("<", "lt")):
        if token in part:
            key, _, value = part.partition(token)
            return Requirement(_check_key(key.strip()), op, (value.strip(),))
    if part.startswith("!"):
        return Requirement(_check_key(part[1:].strip()), "!")
    return Requirement(_check_key(part), "exists")


def _check_key(key: str) -> str:
    if not _KEY_RE.match(key):
        raise bad_request(f"unable to parse requirement: invalid label key {key!r}")
    return key


# ---------------------------------------------------------------------------------------------
# Field selectors

@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool


class FieldSelector:
    """A parsed ``fieldSelector``; which fields are allowed depends on the resource."""

    def __init__(self, requirements: list[FieldRequirement]) -> None:
        self.requirements = requirements

    @classmethod
    def parse(cls, text: str | None) -> FieldSelector:
        text = (text or "").strip()
        if not text:
            return cls([])
        reqs = []
        for part in _split_escaped(text, ","):
            if not part:
                continue
            for token, negate in (("!=", True), ("==", False), ("=", False)):
                idx = _find_unescaped(part, token)
                if idx >= 0:
                    field_, value = part[:idx].strip(), part[idx + len(token):].strip()
                    reqs.append(FieldRequirement(field_, _unescape(value), negate))
                    break
            else:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        return cls(reqs)

    def empty(self) -> bool:
        return not self.requirements

    def fields(self) -> list[str]:
        return [r.field for r in self.requirements]

    def matches(self, get: Callable[[str], str]) -> bool:
        for r in self.requirements:
            equal = get(r.field) == r.value
            if equal == r.negate:
                return False
        return True


def _split_escaped(text: str, sep: str) -> list[str]:
    out, cur, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i:i + 2])
            i += 2
            continue
        if ch == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def _find_unescaped(text: str, token: str) -> int:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(token, i):
            return i
        i += 1
    return -1


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string form of a dotted field path, "" when absent (as fields.Set does)."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return ""
        cur = cur[part]
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)
