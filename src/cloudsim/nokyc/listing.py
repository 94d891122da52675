"""Cursor paging, equality filters and sorting, the same on every list endpoint.

Query parameters: ``page_size`` (1..100, default 25), ``cursor`` (a ``next_cursor``
from the previous page), ``sort`` (``created_at`` (default) or ``-created_at``) and
``filter[FIELD]=VALUE`` equality filters; which fields a list supports is per
endpoint (an unsupported one is a 400).  Any other query parameter is a 400 too
(``offset``/``limit`` are gone: "Cursor-based; no offset").

Answer: ``{"object": "list", "data": [...], "has_more", "next_cursor"}``.

A cursor is opaque (``c_`` + base64url JSON) and records the creation sequence number
of the last item returned, the sort direction and a digest of the filters.  Paging
resumes strictly after that item, so items created or deleted meanwhile never shift a
page; a cursor used with another sort or other filters is a 400.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from multidict import MultiMapping

from .errors import invalid, problem

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
SORTS = ("created_at", "-created_at")
_FILTER = re.compile(r"^filter\[([^\[\]]+)\]$")

Row = dict[str, Any]
# A filter takes the query value (validating it, 400 when bad) and returns the test.
Predicate = Callable[[Row], bool]
Filter = Callable[[str], Predicate]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def eq(field: str) -> Filter:
    """``filter[field]=v``: the rendered field equals ``v`` (booleans as true/false)."""
    return lambda value: lambda row: _text(row.get(field)) == value


def member(field: str) -> Filter:
    """``filter[field]=v``: ``v`` is one of the items of an array field."""
    return lambda value: lambda row: value in (row.get(field) or ())


def boolean(field: str) -> Filter:
    def build(value: str) -> Predicate:
        if value not in ("true", "false"):
            raise invalid(f"filter[{field}] must be true or false.",
                          problem(f"filter[{field}]", "type", expected="boolean"))
        wanted = value == "true"
        return lambda row: row.get(field) is wanted

    return build


def _instant(name: str, value: str) -> float:
    try:
        parsed = datetime.fromisoformat(value) if "T" in value.upper() else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise invalid(f"{name} must be an RFC 3339 timestamp, e.g. 2026-05-12T08:47:12Z.",
                      problem(name, "format", format="rfc3339"))
    return parsed.timestamp()


def since(field: str, name: str) -> Filter:
    """The row's timestamp ``field`` is at or after the value."""
    def build(value: str) -> Predicate:
        bound = _instant(name, value)
        return lambda row: _instant(field, row[field]) >= bound

    return build


def until(field: str, name: str) -> Filter:
    """The row's timestamp ``field`` is before the value."""
    def build(value: str) -> Predicate:
        bound = _instant(name, value)
        return lambda row: _instant(field, row[field]) < bound

    return build


def label(prefix: str) -> Callable[[str, str], Predicate]:
    """``filter[labels.KEY]=v``: the object field ``labels`` maps KEY to ``v``."""
    field = prefix.rstrip(".")
    return lambda key, value: lambda row: (row.get(field) or {}).get(key) == value


@dataclass
class ListQuery:
    page_size: int
    descending: bool
    after: int | None
    predicates: list[Predicate]
    digest: str


def _digest(filters: Mapping[str, str], descending: bool) -> str:
    canonical = json.dumps([sorted(filters.items()), descending], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def encode_cursor(seq: int, descending: bool, digest: str) -> str:
    raw = json.dumps({"a": seq, "d": int(descending), "q": digest}, separators=(",", ":"))
    return "c_" + base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> dict[str, Any]:
    bad = invalid("cursor is not a cursor this list returned.",
                  problem("cursor", "format", format="cursor"))
    if not cursor.startswith("c_"):
        raise bad
    body = cursor[2:]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if (
        not isinstance(decoded, dict)
        or not isinstance(decoded.get("a"), int)
        or decoded.get("d") not in (0, 1)
        or not isinstance(decoded.get("q"), str)
    ):
        raise bad
    return decoded


def parse_query(
    query: MultiMapping[str],
    filters: Mapping[str, Filter],
    *,
    prefix_filters: Mapping[str, Callable[[str, str], Predicate]] | None = None,
    aliases: Mapping[str, str] | None = None,
) -> ListQuery:
    """Validate a list query.  ``prefix_filters`` maps e.g. ``labels.`` to a builder
    taking (suffix, value); ``aliases`` maps a plain parameter to a filter name (the
    audit log's ``from``/``to``)."""
    errors: list[dict[str, Any]] = []
    messages: list[str] = []
    prefix_filters = prefix_filters or {}
    aliases = aliases or {}
    chosen: dict[str, str] = {}
    predicates: list[Predicate] = []
    for key in dict.fromkeys(query.keys()):
        values = query.getall(key)
        if len(values) > 1:
            errors.append(problem(key, "duplicate"))
            messages.append(f"{key} is given more than once")
            continue
        if key in ("page_size", "cursor", "sort"):
            continue
        name = aliases.get(key)
        if name is None:
            match = _FILTER.match(key)
            if match is None:
                errors.append(problem(key, "unknown_parameter"))
                messages.append(f"Unknown query parameter {key}")
                continue
            name = match.group(1)
        if name in chosen:
            errors.append(problem(key, "duplicate"))
            messages.append(f"filter {name} is given more than once")
            continue
        value = values[0]
        if name in filters:
            predicates.append(filters[name](value))
        else:
            prefixed = next((p for p in prefix_filters if name.startswith(p)), None)
            if prefixed is None or len(name) == len(prefixed):
                supported = sorted([*filters, *(p + "<key>" for p in prefix_filters)])
                errors.append(problem(key, "unsupported_filter", supported=supported))
                messages.append(f"This list cannot be filtered by {name}")
                continue
            predicates.append(prefix_filters[prefixed](name[len(prefixed):], value))
        chosen[name] = value

    page_size = DEFAULT_PAGE_SIZE
    raw_size = query.get("page_size")
    if raw_size is not None:
        if not re.fullmatch(r"\d{1,6}", raw_size):
            errors.append(problem("page_size", "type", expected="integer"))
            messages.append("page_size must be an integer")
        elif not 1 <= int(raw_size) <= MAX_PAGE_SIZE:
            issue = "min" if int(raw_size) < 1 else "max"
            errors.append(problem("page_size", issue, min=1, max=MAX_PAGE_SIZE))
            messages.append(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        else:
            page_size = int(raw_size)

    sort = query.get("sort", "created_at")
    if sort not in SORTS:
        errors.append(problem("sort", "enum", allowed=list(SORTS)))
        messages.append("sort must be created_at or -created_at")
    descending = sort == "-created_at"
    if errors:
        raise invalid(" ".join(m + "." for m in messages[:3]), *errors)

    digest = _digest(chosen, descending)
    after: int | None = None
    cursor = query.get("cursor")
    if cursor is not None:
        decoded = _decode_cursor(cursor)
        if decoded["q"] != digest or bool(decoded["d"]) != descending:
            raise invalid(
                "cursor belongs to a list with other filters or sort; repeat the query of "
                "the first page.",
                problem("cursor", "mismatch"),
            )
        after = decoded["a"]
    return ListQuery(page_size, descending, after, predicates, digest)


def page(rows: Sequence[tuple[int, Row]], query: ListQuery) -> dict[str, Any]:
    """One page of ``rows`` (creation sequence number, rendered item)."""
    kept = [r for r in rows if all(p(r[1]) for p in query.predicates)]
    kept.sort(key=lambda r: r[0], reverse=query.descending)
    if query.after is not None:
        after = query.after
        kept = [r for r in kept if (r[0] < after if query.descending else r[0] > after)]
    chunk = kept[: query.page_size]
    has_more = len(kept) > query.page_size
    return {
        "object": "list",
        "data": [r[1] for r in chunk],
        "has_more": has_more,
        "next_cursor": (
            encode_cursor(chunk[-1][0], query.descending, query.digest) if has_more else None
        ),
    }


def no_query(query: MultiMapping[str], allowed: Collection[str] = ()) -> None:
    """Endpoints that are not lists accept only the query parameters they document."""
    unknown = [k for k in dict.fromkeys(query.keys()) if k not in allowed]
    if unknown:
        raise invalid(
            " ".join(f"Unknown query parameter {k}." for k in unknown[:3]),
            *(problem(k, "unknown_parameter") for k in unknown),
        )
