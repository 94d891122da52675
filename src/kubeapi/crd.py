"""CustomResourceDefinitions: validation, status, and the resource types they define."""

from __future__ import annotations

import re
from typing import Any

from .errors import Cause
from .meta import rfc3339
from .resources import ColumnSpec, Obj, ResourceType, ResourceVersion, Strategy, version_priority
from .schema import structural_problems

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class CustomResourceStrategy(Strategy):
    """Custom resources need nothing beyond the generic flow and their schema."""


class CRDStrategy(Strategy):
    def prepare_create(self, obj: Obj) -> None:
        meta = obj["metadata"]
        finalizers = meta.setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        spec = obj.setdefault("spec", {})
        spec.setdefault("conversion", {"strategy": "None"})
        for v in spec.get("versions") or []:
            if isinstance(v, dict):
                v.setdefault("served", True)
                v.setdefault("storage", False)
        obj["status"] = accepted_status(obj, None)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        spec = new.setdefault("spec", {})
        spec.setdefault("conversion", {"strategy": "None"})
        for v in spec.get("versions") or []:
            if isinstance(v, dict):
                v.setdefault("served", True)
                v.setdefault("storage", False)
        new["status"] = accepted_status(new, old.get("status"))

    def validate(self, obj: Obj, old: Obj | None) -> list[Cause]:
        return validate_crd(obj, old)


def _storage_version(spec: dict[str, Any]) -> str | None:
    stored = [v.get("name") for v in spec.get("versions") or []
              if isinstance(v, dict) and v.get("storage")]
    return stored[0] if len(stored) == 1 else None


def accepted_status(crd: Obj, old_status: dict[str, Any] | None) -> dict[str, Any]:
    spec = crd.get("spec", {})
    names = dict(spec.get("names") or {})
    kind = names.get("kind", "")
    names.setdefault("singular", kind.lower())
    names.setdefault("listKind", f"{kind}List")
    old_status = old_status or {}
    old_conditions = {c.get("type"): c for c in old_status.get("conditions") or []}
    now = rfc3339()

    def cond(ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
        prev = old_conditions.get(ctype)
        when = prev.get("lastTransitionTime", now) if prev and prev.get("status") == status \
            else now
        return {"type": ctype, "status": status, "reason": reason, "message": message,
                "lastTransitionTime": when}

    conditions = [cond("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
                  cond("Established", "True", "InitialNamesAccepted",
                       "the initial names have been accepted")]
    if crd.get("metadata", {}).get("deletionTimestamp"):
        conditions.append(cond("Terminating", "True", "InstanceDeletionInProgress",
                               "CustomResource deletion is in progress"))
    stored = list(old_status.get("storedVersions") or [])
    storage = _storage_version(spec)
    if storage and storage not in stored:
        stored.append(storage)
    return {"acceptedNames": names, "conditions": conditions, "storedVersions": stored}


def validate_crd(crd: Obj, old: Obj | None) -> list[Cause]:
    causes: list[Cause] = []
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        return [Cause("FieldValueRequired", "Required value", "spec")]
    group = spec.get("group")
    raw_names = spec.get("names")
    names: dict[str, Any] = raw_names if isinstance(raw_names, dict) else {}
    plural = names.get("plural")
    if not isinstance(group, str) or not group:
        causes.append(Cause("FieldValueRequired", "Required value", "spec.group"))
    elif "." not in group or not _SUBDOMAIN.match(group):
        causes.append(Cause("FieldValueInvalid", f'Invalid value: "{group}": should be a domain '
                            "with at least one dot", "spec.group"))
    if not isinstance(plural, str) or not plural:
        causes.append(Cause("FieldValueRequired", "Required value", "spec.names.plural"))
    elif not _DNS_LABEL.match(plural):
        causes.append(Cause("FieldValueInvalid", f'Invalid value: "{plural}": a lowercase RFC '
                            "1123 label must consist of lower case alphanumeric characters or "
                            "'-'", "spec.names.plural"))
    if not names.get("kind"):
        causes.append(Cause("FieldValueRequired", "Required value", "spec.names.kind"))
    name = crd.get("metadata", {}).get("name")
    if plural and group and name != f"{plural}.{group}":
        causes.append(Cause("FieldValueInvalid", f'Invalid value: "{name}": must be '
                            'spec.names.plural+"."+spec.group', "metadata.name"))
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        causes.append(Cause("FieldValueNotSupported", f'Unsupported value: "{scope}": supported '
                            'values: "Cluster", "Namespaced"', "spec.scope"))
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        causes.append(Cause("FieldValueInvalid", "Invalid value: null: must have exactly one "
                            "version marked as storage version", "spec.versions"))
        return causes
    if sum(1 for v in versions if isinstance(v, dict) and v.get("storage")) != 1:
        causes.append(Cause("FieldValueInvalid", "Invalid value: ...: must have exactly one "
                            "version marked as storage version", "spec.versions"))
    seen: set[str] = set()
    for i, v in enumerate(versions):
        path = f"spec.versions[{i}]"
        if not isinstance(v, dict) or not v.get("name"):
            causes.append(Cause("FieldValueRequired", "Required value", f"{path}.name"))
            continue
        if v["name"] in seen:
            causes.append(Cause("FieldValueDuplicate", f'Duplicate value: "{v["name"]}"',
                                f"{path}.name"))
        seen.add(v["name"])
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            causes.append(Cause("FieldValueRequired", "Required value: schemas are required",
                                f"{path}.schema.openAPIV3Schema"))
            continue
        causes.extend(structural_problems(schema, f"{path}.schema.openAPIV3Schema"))
        if isinstance(schema, dict) and schema.get("type") not in ("object", None):
            causes.append(Cause("FieldValueInvalid", f'Invalid value: "{schema.get("type")}": '
                                'must be object at the root', f"{path}.schema.openAPIV3Schema.type"))
    if old is not None:
        old_spec = old.get("spec", {})
        if old_spec.get("scope") != spec.get("scope"):
            causes.append(Cause("FieldValueInvalid", f'Invalid value: "{scope}": field is '
                                "immutable", "spec.scope"))
        if old_spec.get("group") != group:
            causes.append(Cause("FieldValueInvalid", f'Invalid value: "{group}": field is '
                                "immutable", "spec.group"))
    return causes


def resource_type_from_crd(crd: Obj) -> ResourceType | None:
    """The served resource type of an accepted CRD (None when it serves no version)."""
    spec = crd.get("spec", {})
    names = (crd.get("status") or {}).get("acceptedNames") or spec.get("names") or {}
    versions: dict[str, ResourceVersion] = {}
    for v in spec.get("versions") or []:
        if not v.get("served", True):
            continue
        subs = set()
        for sub in (v.get("subresources") or {}):
            if sub == "status":
                subs.add("status")
        versions[v["name"]] = ResourceVersion(
            v["name"], (v.get("schema") or {}).get("openAPIV3Schema"),
            list(v.get("additionalPrinterColumns") or []), frozenset(subs),
            bool(v.get("deprecated")), v.get("deprecationWarning"))
    storage = _storage_version(spec)
    if not versions or storage is None:
        return None
    selectable = {"metadata.name", "metadata.namespace"}
    for v in spec.get("versions") or []:
        for f in v.get("selectableFields") or []:
            if isinstance(f, dict) and isinstance(f.get("jsonPath"), str):
                selectable.add(f["jsonPath"].lstrip("."))
    kind = names.get("kind", "")
    return ResourceType(
        group=spec["group"], plural=names["plural"],
        singular=names.get("singular") or kind.lower(), kind=kind,
        namespaced=spec.get("scope") == "Namespaced",
        versions=dict(sorted(versions.items(), key=lambda kv: version_priority(kv[0]))),
        storage_version=storage, short_names=list(names.get("shortNames") or []),
        categories=list(names.get("categories") or []), custom=True, has_generation=True,
        strategy=CustomResourceStrategy(), field_selectors=frozenset(selectable),
        list_kind=names.get("listKind") or f"{kind}List", crd_name=crd["metadata"]["name"])


def crd_type() -> ResourceType:
    return ResourceType(
        "apiextensions.k8s.io", "customresourcedefinitions", "customresourcedefinition",
        "CustomResourceDefinition", False,
        {"v1": ResourceVersion("v1", subresources=frozenset({"status"}))}, "v1",
        short_names=["crd", "crds"], categories=["api-extensions"], has_generation=True,
        strategy=CRDStrategy(),
        columns=[ColumnSpec("Created At", "date", "Creation timestamp",
                            lambda o: o.get("metadata", {}).get("creationTimestamp"))])


