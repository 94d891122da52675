"""OpenAPI v2 and v3 documents generated from the served types.

Custom resources get their CRD's structural schema (what ``kubectl explain`` reads);
built-ins get a permissive schema. Every PATCH operation declares the ``fieldValidation``
query parameter, which is how kubectl decides to rely on server-side field validation
instead of downloading the (protobuf) v2 document for client-side validation.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from .discovery import KUBE_VERSION
from .resources import Registry, ResourceType

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
_REF_V3 = "#/components/schemas/"

_BUILTIN_PREFIX = {
    "": "io.k8s.api.core", "apps": "io.k8s.api.apps", "coordination.k8s.io":
    "io.k8s.api.coordination", "events.k8s.io": "io.k8s.api.events",
    "rbac.authorization.k8s.io": "io.k8s.api.rbac", "networking.k8s.io":
    "io.k8s.api.networking", "policy": "io.k8s.api.policy",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
}


def definition_name(rt: ResourceType, version: str, kind: str | None = None) -> str:
    kind = kind or rt.kind
    if not rt.custom and rt.group in _BUILTIN_PREFIX:
        return f"{_BUILTIN_PREFIX[rt.group]}.{version}.{kind}"
    reversed_group = ".".join(reversed(rt.group.split(".")))
    return f"{reversed_group}.{version}.{kind}"


def _meta_schemas() -> dict[str, Any]:
    def s(desc: str, typ: str = "string", **extra: Any) -> dict[str, Any]:
        return {"type": typ, "description": desc, **extra}

    str_map = {"type": "object", "additionalProperties": {"type": "string", "default": ""}}
    return {
        f"{META}.ObjectMeta": {
            "description": "ObjectMeta is metadata that all persisted resources must have, "
                           "which includes all objects users must create.",
            "type": "object",
            "properties": {
                "name": s("Name must be unique within a namespace."),
                "generateName": s("GenerateName is an optional prefix, used by the server, to "
                                  "generate a unique name ONLY IF the Name field has not been "
                                  "provided."),
                "namespace": s("Namespace defines the space within which each name must be "
                               "unique."),
                "uid": s("UID is the unique in time and space value for this object."),
                "resourceVersion": s("An opaque value that represents the internal version of "
                                     "this object."),
                "generation": s("A sequence number representing a specific generation of the "
                                "desired state.", "integer", format="int64"),
                "creationTimestamp": {"allOf": [{"$ref": f"{_REF_V3}{META}.Time"}],
                                      "description": "CreationTimestamp is a timestamp "
                                      "representing the server time when this object was "
                                      "created."},
                "deletionTimestamp": {"allOf": [{"$ref": f"{_REF_V3}{META}.Time"}],
                                      "description": "DeletionTimestamp is RFC 3339 date and "
                                      "time at which this resource will be deleted."},
                "deletionGracePeriodSeconds": s("Number of seconds allowed for this object to "
                                                "gracefully terminate.", "integer",
                                                format="int64"),
                "labels": {**str_map, "description": "Map of string keys and values that can "
                           "be used to organize and categorize (scope and select) objects."},
                "annotations": {**str_map, "description": "Annotations is an unstructured key "
                                "value map stored with a resource."},
                "finalizers": {"type": "array", "items": {"type": "string", "default": ""},
                               "description": "Must be empty before the object is deleted "
                               "from the registry.", "x-kubernetes-list-type": "set"},
                "ownerReferences": {"type": "array", "description": "List of objects depended "
                                    "by this object.", "items": {"default": {}, "allOf": [
                                        {"$ref": f"{_REF_V3}{META}.OwnerReference"}]}},
                "managedFields": {"type": "array", "description": "ManagedFields maps "
                                  "workflow-id and version to the set of fields that are "
                                  "managed by that workflow.",
                                  "items": {"type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True}},
                "selfLink": s("Deprecated: selfLink is a legacy read-only field."),
            },
        },
        f"{META}.OwnerReference": {
            "description": "OwnerReference contains enough information to let you identify an "
                           "owning object.",
            "type": "object", "required": ["apiVersion", "kind", "name", "uid"],
            "properties": {"apiVersion": s("API version of the referent."),
                           "kind": s("Kind of the referent."), "name": s("Name of the referent."),
                           "uid": s("UID of the referent."),
                           "controller": s("If true, this reference points to the managing "
                                           "controller.", "boolean"),
                           "blockOwnerDeletion": s("If true, the owner cannot be deleted before "
                                                   "this reference is removed.", "boolean")},
            "x-kubernetes-map-type": "atomic",
        },
        f"{META}.ListMeta": {
            "description": "ListMeta describes metadata that synthetic resources must have.",
            "type": "object",
            "properties": {"resourceVersion": s("String that identifies the server's internal "
                                                "version of this object."),
                           "continue": s("continue may be set if the user set a limit on the "
                                         "number of items returned."),
                           "remainingItemCount": s("The number of subsequent items in the "
                                                   "list.", "integer", format="int64")},
        },
        f"{META}.Time": {"description": "Time is a wrapper around time.Time which supports "
                                        "correct marshaling to YAML and JSON.",
                         "type": "string", "format": "date-time"},
        f"{META}.Patch": {"description": "Patch is provided to give a concrete name and type to "
                                         "the Kubernetes PATCH request body.", "type": "object"},
        f"{META}.Status": {"description": "Status is a return value for calls that don't return "
                                          "other objects.", "type": "object",
                           "x-kubernetes-preserve-unknown-fields": True},
        f"{META}.DeleteOptions": {"description": "DeleteOptions may be provided when deleting "
                                                 "an API object.", "type": "object",
                                  "x-kubernetes-preserve-unknown-fields": True},
    }


_API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an "
                    "object. Servers should convert recognized schemas to the latest internal "
                    "value, and may reject unrecognized values. More info: https://git.k8s.io/"
                    "community/contributors/devel/sig-architecture/api-conventions.md#resources")
_KIND_DOC = ("Kind is a string value representing the REST resource this object represents. "
             "Servers may infer this from the endpoint the client submits requests to. Cannot "
             "be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/"
             "devel/sig-architecture/api-conventions.md#types-kinds")
_METADATA_DOC = ("Standard object's metadata. More info: https://git.k8s.io/community/"
                 "contributors/devel/sig-architecture/api-conventions.md#metadata")


def _kind_schema(rt: ResourceType, version: str) -> dict[str, Any]:
    schema = copy.deepcopy(rt.schema(version)) if rt.custom else None
    if schema is None:
        schema = {"type": "object", "description": f"{rt.kind} is a built-in kind; the "
                  "emulator stores it as given.", "x-kubernetes-preserve-unknown-fields": True}
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": _API_VERSION_DOC}
    props["kind"] = {"type": "string", "description": _KIND_DOC}
    props["metadata"] = {"allOf": [{"$ref": f"{_REF_V3}{META}.ObjectMeta"}],
                         "description": _METADATA_DOC}
    schema["x-kubernetes-group-version-kind"] = [
        {"group": rt.group, "kind": rt.kind, "version": version}]
    return schema


def _list_schema(rt: ResourceType, version: str) -> dict[str, Any]:
    return {
        "description": f"{rt.list_kind} is a list of {rt.kind}", "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string", "description": _API_VERSION_DOC},
            "kind": {"type": "string", "description": _KIND_DOC},
            "items": {"type": "array", "description": f"List of {rt.plural}.",
                      "items": {"$ref": f"{_REF_V3}{definition_name(rt, version)}"}},
            "metadata": {"allOf": [{"$ref": f"{_REF_V3}{META}.ListMeta"}],
                         "description": "Standard list metadata."},
        },
        "x-kubernetes-group-version-kind": [
            {"group": rt.group, "kind": rt.list_kind, "version": version}],
    }


def _q(name: str, desc: str, typ: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "query", "description": desc, "schema": {"type": typ},
            "uniqueItems": True}


_DRY_RUN = _q("dryRun", "When present, indicates that modifications should not be persisted.")
_FIELD_MANAGER = _q("fieldManager", "fieldManager is a name associated with the actor or entity "
                    "that is making these changes.")
_FIELD_VALIDATION = _q("fieldValidation", "fieldValidation instructs the server on how to "
                       "handle objects in the request containing unknown or duplicate fields. "
                       "Valid values are: Ignore, Warn (default), Strict.")
_FORCE = _q("force", "Force is going to \"force\" Apply requests.", "boolean")
_LIST_PARAMS = [_q("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type "
                   "BOOKMARK.", "boolean"),
                _q("continue", "The continue option should be set when retrieving more results "
                   "from the server."),
                _q("fieldSelector", "A selector to restrict the list of returned objects by "
                   "their fields."),
                _q("labelSelector", "A selector to restrict the list of returned objects by "
                   "their labels."),
                _q("limit", "limit is a maximum number of responses to return for a list call.",
                   "integer"),
                _q("resourceVersion", "resourceVersion sets a constraint on what resource "
                   "versions a request may be served from."),
                _q("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
                _q("watch", "Watch for changes to the described resources.", "boolean")]


def _op(rt: ResourceType, version: str, action: str, op_id: str, ref: str,
        params: list[dict[str, Any]], body_types: list[str] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "tags": [f"{rt.group or 'core'}_{version}"],
        "description": f"{action} {rt.kind}",
        "operationId": op_id,
        "parameters": params,
        "responses": {"200": {"description": "OK", "content": {
            "application/json": {"schema": {"$ref": f"{_REF_V3}{ref}"}},
            "application/yaml": {"schema": {"$ref": f"{_REF_V3}{ref}"}}}},
            "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": rt.group, "kind": rt.kind,
                                            "version": version},
    }
    if body_types:
        schema_ref = f"{META}.Patch" if action == "patch" else ref
        op["requestBody"] = {"content": {t: {"schema": {"$ref": f"{_REF_V3}{schema_ref}"}}
                                         for t in body_types}, "required": True}
    return op


_PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
                "application/apply-patch+yaml"]


def _paths(rt: ResourceType, version: str) -> dict[str, Any]:
    prefix = f"/apis/{rt.group}/{version}" if rt.group else f"/api/{version}"
    kind_ref = definition_name(rt, version)
    list_ref = definition_name(rt, version, rt.list_kind)
    ns_seg = "/namespaces/{namespace}" if rt.namespaced else ""
    op_base = f"{'Namespaced' if rt.namespaced else ''}{rt.kind}"
    name_param = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"},
                  "description": f"name of the {rt.kind}", "uniqueItems": True}
    ns_param = {"name": "namespace", "in": "path", "required": True,
                "schema": {"type": "string"}, "description": "object name and auth scope",
                "uniqueItems": True}
    path_params = [ns_param] if rt.namespaced else []
    collection = f"{prefix}{ns_seg}/{rt.plural}"
    item = f"{collection}/{{name}}"
    json_body = ["application/json", "application/yaml"]
    paths: dict[str, Any] = {
        collection: {
            "get": _op(rt, version, "list", f"list{op_base}", list_ref, _LIST_PARAMS),
            "post": _op(rt, version, "post", f"create{op_base}", kind_ref,
                        [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], json_body),
            "delete": _op(rt, version, "deletecollection", f"deleteCollection{op_base}",
                          f"{META}.Status", [_DRY_RUN, *_LIST_PARAMS]),
            "parameters": path_params,
        },
        item: {
            "get": _op(rt, version, "get", f"read{op_base}", kind_ref, []),
            "put": _op(rt, version, "put", f"replace{op_base}", kind_ref,
                       [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], json_body),
            "patch": _op(rt, version, "patch", f"patch{op_base}", kind_ref,
                         [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE], _PATCH_TYPES),
            "delete": _op(rt, version, "delete", f"delete{op_base}", kind_ref, [_DRY_RUN]),
            "parameters": [name_param, *path_params],
        },
    }
    if rt.has_status(version):
        paths[f"{item}/status"] = {
            "get": _op(rt, version, "get", f"read{op_base}Status", kind_ref, []),
            "put": _op(rt, version, "put", f"replace{op_base}Status", kind_ref,
                       [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION], json_body),
            "patch": _op(rt, version, "patch", f"patch{op_base}Status", kind_ref,
                         [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION, _FORCE], _PATCH_TYPES),
            "parameters": [name_param, *path_params],
        }
    if rt.namespaced:
        paths[f"{prefix}/{rt.plural}"] = {
            "get": _op(rt, version, "list", f"list{rt.kind}ForAllNamespaces", list_ref,
                       _LIST_PARAMS)}
    return paths


def group_version_doc(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    schemas = _meta_schemas()
    paths: dict[str, Any] = {}
    for rt in types:
        schemas[definition_name(rt, version)] = _kind_schema(rt, version)
        schemas[definition_name(rt, version, rt.list_kind)] = _list_schema(rt, version)
        paths.update(_paths(rt, version))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBE_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {"BearerToken": {
            "type": "apiKey", "description": "Bearer Token authentication",
            "name": "authorization", "in": "header"}}},
    }


def doc_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(doc, sort_keys=True).encode()).hexdigest().upper()


def gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def v3_root(registry: Registry) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            doc = group_version_doc(registry, group, version)
            if doc is None:
                continue
            key = gv_path(group, version)
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={doc_hash(doc)}"}
    return {"paths": paths}


def _v2_refs(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "$ref" and isinstance(v, str):
                out[k] = v.replace(_REF_V3, "#/definitions/")
            else:
                out[k] = _v2_refs(v)
        return out
    if isinstance(value, list):
        return [_v2_refs(v) for v in value]
    return value


def v2_doc(registry: Registry) -> dict[str, Any]:
    """Swagger 2.0: definitions plus operations with their GVK and query parameters."""
    definitions: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for group, versions in registry.group_versions().items():
        for version in versions:
            doc = group_version_doc(registry, group, version)
            if doc is None:
                continue
            definitions.update(_v2_refs(doc["components"]["schemas"]))
            for path, item in doc["paths"].items():
                v2_item: dict[str, Any] = {}
                for method, op in item.items():
                    if method == "parameters":
                        v2_item["parameters"] = [_v2_param(p) for p in op]
                        continue
                    v2_op = {k: v for k, v in op.items() if k not in ("requestBody",
                                                                      "responses")}
                    v2_op["parameters"] = [_v2_param(p) for p in op.get("parameters", [])]
                    if "requestBody" in op:
                        v2_op["consumes"] = list(op["requestBody"]["content"])
                        v2_op["parameters"].append({"name": "body", "in": "body",
                                                    "required": True, "schema": {"type":
                                                                                 "object"}})
                    v2_op["produces"] = ["application/json", "application/yaml"]
                    v2_op["responses"] = {"200": {"description": "OK"}}
                    v2_item[method] = _v2_refs(v2_op)
                paths[path] = v2_item
    return {"swagger": "2.0", "info": {"title": "Kubernetes",
                                       "version": KUBE_VERSION["gitVersion"]},
            "paths": paths, "definitions": definitions,
            "securityDefinitions": {"BearerToken": {"type": "apiKey", "name": "authorization",
                                                    "in": "header"}},
            "security": [{"BearerToken": []}]}


def _v2_param(p: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in p.items() if k != "schema"}
    out["type"] = p.get("schema", {}).get("type", "string")
    return out
