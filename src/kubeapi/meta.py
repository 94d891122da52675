"""ObjectMeta helpers: timestamps, name and label validation, ages."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from .errors import Cause

OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
})

_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_LABEL_RE = re.compile(rf"^{_DNS1123_LABEL}$")
_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_SUBDOMAIN}$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(t: dt.datetime | None = None) -> str:
    """metav1.Time serialisation: second precision, UTC, ``Z`` suffix."""
    return (t or now()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(t: dt.datetime | None = None) -> str:
    """metav1.MicroTime serialisation."""
    return (t or now()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration, used for AGE columns."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any) -> str:
    t = parse_time(timestamp)
    if t is None:
        return "<unknown>"
    return human_duration((now() - t).total_seconds())


def validate_name(name: Any, field: str, *, label: bool = False) -> list[Cause]:
    """DNS-1123 subdomain (most kinds) or label (namespaces) name validation."""
    if not isinstance(name, str) or not name:
        return [Cause("FieldValueRequired", "Required value: name or generateName is required",
                      field)]
    if label:
        if len(name) > 63 or not _LABEL_RE.match(name):
            return [Cause("FieldValueInvalid", f'Invalid value: "{name}": a lowercase RFC 1123 '
                          "label must consist of lower case alphanumeric characters or '-', and "
                          "must start and end with an alphanumeric character (e.g. 'my-name',  "
                          "or '123-abc', regex used for validation is "
                          f"'{_DNS1123_LABEL}')", field)]
        return []
    if len(name) > 253 or not _SUBDOMAIN_RE.match(name):
        return [Cause("FieldValueInvalid", f'Invalid value: "{name}": a lowercase RFC 1123 '
                      "subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                      "and must start and end with an alphanumeric character (e.g. "
                      "'example.com', regex used for validation is "
                      f"'{_DNS1123_SUBDOMAIN}')", field)]
    return []


def _validate_qualified_key(key: str, field: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    bad = (not name or len(name) > 63 or not _QUALIFIED_NAME_RE.match(name)
           or (prefix and (len(prefix) > 253 or not _SUBDOMAIN_RE.match(prefix))))
    if bad:
        return [Cause("FieldValueInvalid", f'Invalid value: "{key}": name part must consist of '
                      "alphanumeric characters, '-', '_' or '.', and must start and end with an "
                      "alphanumeric character", field)]
    return []


def validate_metadata(meta: dict[str, Any]) -> list[Cause]:
    """Labels, annotations and finalizers checks shared by every kind."""
    causes: list[Cause] = []
    labels = meta.get("labels")
    if labels is not None:
        if not isinstance(labels, dict):
            causes.append(Cause("FieldValueTypeInvalid", "Invalid value: must be a map",
                                "metadata.labels"))
        else:
            for k, v in labels.items():
                causes += _validate_qualified_key(k, "metadata.labels")
                if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE_RE.match(v):
                    causes.append(Cause(
                        "FieldValueInvalid", f'Invalid value: "{v}": a valid label must be an '
                        "empty string or consist of alphanumeric characters, '-', '_' or '.', "
                        "and must start and end with an alphanumeric character",
                        "metadata.labels"))
    annotations = meta.get("annotations")
    if annotations is not None:
        if not isinstance(annotations, dict):
            causes.append(Cause("FieldValueTypeInvalid", "Invalid value: must be a map",
                                "metadata.annotations"))
        else:
            for k, v in annotations.items():
                causes += _validate_qualified_key(k, "metadata.annotations")
                if not isinstance(v, str):
                    causes.append(Cause("FieldValueTypeInvalid",
                                        "Invalid value: annotation values must be strings",
                                        f"metadata.annotations[{k}]"))
    finalizers = meta.get("finalizers")
    if finalizers is not None and (not isinstance(finalizers, list)
                                   or not all(isinstance(f, str) for f in finalizers)):
        causes.append(Cause("FieldValueTypeInvalid", "Invalid value: must be a list of strings",
                            "metadata.finalizers"))
    return causes
