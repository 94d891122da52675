"""The API machinery independent of HTTP: create/get/list/update/patch/delete with the
semantics of kube-apiserver's generic registry, plus CRD registration and namespace and CRD
finalization."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import errors
from .builtins import builtin_types
from .crd import CLEANUP_FINALIZER, accepted_status, crd_type, resource_type_from_crd
from .errors import APIError, Cause
from .meta import rfc3339, validate_metadata, validate_name
from .patch import (
    MalformedPatch,
    PatchError,
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from .resources import Obj, Registry, ResourceType
from .schema import apply_defaults, prune, validate
from .selectors import FieldSelector, LabelSelector, field_value
from .store import Event, Store, TooOld

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_SERVER_META = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                "deletionGracePeriodSeconds", "generation", "selfLink", "managedFields")
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's SimpleNameGenerator alphabet
_MISSING = object()


@dataclass
class WriteResult:
    obj: Obj
    created: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class ListResult:
    items: list[Obj]
    resource_version: str
    continue_token: str | None = None
    remaining: int | None = None


#: Kinds whose DELETE answers the deleted object even when it is removed at once (their
#: kube-apiserver registries set ReturnDeletedObject); the others answer a Success Status.
RETURNS_DELETED_OBJECT = {("", "pods"), ("", "services"), ("", "serviceaccounts")}


def _strip_meta(obj: Obj, *keys: str) -> Obj:
    return {k: v for k, v in obj.items() if k not in keys}


class Cluster:
    def __init__(self, history_size: int = 5000) -> None:
        self.store = Store(history_size)
        self.registry = Registry()
        for rt in builtin_types():
            self.registry.add(rt)
        self.crds = crd_type()
        self.registry.add(self.crds)
        self.namespaces = self.registry.get("", "namespaces")
        assert self.namespaces is not None
        for ns in INITIAL_NAMESPACES:
            self.create(self.namespaces, "v1", None, {"metadata": {"name": ns}})

    # -- representation ------------------------------------------------------------------------

    def render(self, rt: ResourceType, version: str, stored: Obj) -> Obj:
        """Storage -> the response representation of ``version`` (read-time defaulting)."""
        obj = rt.strategy.to_version(copy.deepcopy(stored), version)
        obj["apiVersion"] = rt.api_version(version)
        obj["kind"] = rt.kind
        if rt.custom:
            schema = rt.schema(version)
            prune(obj, schema)
            apply_defaults(obj, schema)
        return _ordered(obj)

    def _to_storage(self, rt: ResourceType, version: str, obj: Obj) -> Obj:
        stored = rt.strategy.from_version(copy.deepcopy(obj), version)
        if rt.key == (rt.group, rt.plural):
            stored["apiVersion"] = rt.api_version(rt.storage_version)
            stored["kind"] = rt.kind
        return stored

    def _decode(self, rt: ResourceType, version: str, obj: Obj,
                field_validation: str) -> tuple[Obj, list[str]]:
        """Prune unknown fields and default, as the CR codec does on every write."""
        dropped = prune(obj, rt.schema(version) if rt.custom else None)
        if rt.custom:
            apply_defaults(obj, rt.schema(version))
        if dropped and field_validation == "Strict":
            unknown = ", ".join(f'unknown field "{p}"' for p in dropped)
            raise errors.bad_request(f'{rt.kind} in version "{version}" cannot be handled as a '
                                     f"{rt.kind}: strict decoding error: {unknown}")
        if field_validation == "Ignore":
            return obj, []
        return obj, [f'unknown field "{p}"' for p in dropped]

    # -- helpers ---------------------------------------------------------------------------------

    def _stored(self, rt: ResourceType, ns: str | None, name: str) -> Obj:
        obj = self.store.get(rt.key, ns or "" if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return obj

    def get(self, rt: ResourceType, version: str, ns: str | None, name: str) -> Obj:
        return self.render(rt, version, self._stored(rt, ns, name))

    def _check_type_meta(self, rt: ResourceType, version: str, body: Any) -> None:
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        api_version = body.get("apiVersion")
        if api_version and api_version != rt.api_version(version):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version(version)})")
        kind = body.get("kind")
        if kind and kind != rt.kind:
            raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a '
                                     f'{rt.kind}: the kind in the data ({kind}) does not match '
                                     f"the expected kind ({rt.kind})")
        if "metadata" in body and not isinstance(body["metadata"], dict):
            raise errors.bad_request(f'{rt.kind} in version "{version}" cannot be handled as a '
                                     f"{rt.kind}: metadata must be an object")

    def _check_namespace(self, rt: ResourceType, ns: str | None, name: str) -> None:
        if not rt.namespaced:
            return
        if not ns:
            raise errors.bad_request("the namespace of the object must be set")
        nso = self.store.get(self.namespaces.key, "", ns)  # type: ignore[union-attr]
        if nso is None:
            raise errors.not_found("namespaces", "", ns)
        if nso["metadata"].get("deletionTimestamp"):
            err = errors.forbidden(
                rt.plural, rt.group, name,
                f"unable to create new content in namespace {ns} because it is being terminated")
            err.causes = [Cause("NamespaceTerminating", f"namespace {ns} is being terminated",
                                "metadata.namespace")]
            raise err

    def _name_causes(self, rt: ResourceType, name: Any) -> list[Cause]:
        if rt.group == "rbac.authorization.k8s.io":
            # RBAC names are path segments (e.g. "system:controller:foo").
            if not isinstance(name, str) or not name:
                return [Cause("FieldValueRequired", "Required value: name or generateName is "
                              "required", "metadata.name")]
            if name in (".", "..") or "/" in name or "%" in name:
                return [Cause("FieldValueInvalid", f'Invalid value: "{name}": may not contain '
                              "'/' or '%'", "metadata.name")]
            return []
        return validate_name(name, "metadata.name",
                             label=rt.group == "" and rt.plural == "namespaces")

    def _crd_terminating(self, rt: ResourceType) -> bool:
        if not rt.custom or rt.crd_name is None:
            return False
        crd = self.store.get(self.crds.key, "", rt.crd_name)
        return bool(crd and crd["metadata"].get("deletionTimestamp"))

    # -- create ----------------------------------------------------------------------------------

    def create(self, rt: ResourceType, version: str, ns: str | None, body: Any, *,
               dry_run: bool = False, field_validation: str = "Warn") -> WriteResult:
        self._check_type_meta(rt, version, body)
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace") and ns and meta["namespace"] != ns:
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            meta["namespace"] = ns or meta.get("namespace")
            ns = meta["namespace"]
        else:
            meta.pop("namespace", None)
        for key in _SERVER_META:
            meta.pop(key, None)
        generate = meta.get("generateName")
        if not meta.get("name") and isinstance(generate, str) and generate:
            meta["name"] = self._generate_name(rt, ns, generate)
        name = meta.get("name") or ""
        self._check_namespace(rt, ns, name)
        if self._crd_terminating(rt):
            raise errors.method_not_allowed("create not allowed while custom resource "
                                            "definition is terminating")
        obj, warnings = self._decode(rt, version, obj, field_validation)
        if rt.has_status(version):
            obj.pop("status", None)  # create cannot set status
        obj["apiVersion"], obj["kind"] = rt.api_version(version), rt.kind
        causes = self._name_causes(rt, meta.get("name"))
        if causes:
            raise errors.invalid(rt.kind, rt.group, name, causes)
        rt.strategy.prepare_create(obj)
        causes = validate_metadata(obj["metadata"]) + rt.strategy.validate(obj, None)
        if rt.custom:
            causes += validate(obj, rt.schema(version))
        if causes:
            raise errors.invalid(rt.kind, rt.group, name, causes)
        if self.store.get(rt.key, ns or "" if rt.namespaced else "", name) is not None:
            raise errors.already_exists(rt.plural, rt.group, name)
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = rfc3339()
        if rt.has_generation:
            meta["generation"] = 1
        stored = self._to_storage(rt, version, obj)
        if not dry_run:
            self.store.create(rt.key, stored)
            self._after_write(rt, stored)
        return WriteResult(self.render(rt, version, stored), True, warnings)

    def _generate_name(self, rt: ResourceType, ns: str | None, prefix: str) -> str:
        prefix = prefix[:58]
        for _ in range(20):
            name = prefix + "".join(random.choice(_NAME_CHARS) for _ in range(5))
            if self.store.get(rt.key, ns or "" if rt.namespaced else "", name) is None:
                return name
        return name

    # -- update ----------------------------------------------------------------------------------

    def update(self, rt: ResourceType, version: str, ns: str | None, name: str, body: Any, *,
               subresource: str | None = None, dry_run: bool = False,
               field_validation: str = "Warn", _from_patch: bool = False) -> WriteResult:
        current = self._stored(rt, ns, name)
        self._check_type_meta(rt, version, body)
        new = copy.deepcopy(body)
        meta = new.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match "
                                     f"the name on the URL ({name})")
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != ns:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        current_rv = current["metadata"]["resourceVersion"]
        rv = meta.get("resourceVersion")
        if rv not in (None, ""):
            if str(rv) != current_rv:
                raise errors.conflict(rt.plural, rt.group, name)
        elif rt.custom and not _from_patch:
            raise errors.invalid(rt.kind, rt.group, name, [Cause(
                "FieldValueInvalid", "Invalid value: 0x0: must be specified for an update",
                "metadata.resourceVersion")])
        old = self.render(rt, version, current)
        new, warnings = self._decode(rt, version, new, field_validation)
        new["apiVersion"], new["kind"] = rt.api_version(version), rt.kind
        if subresource == "status":
            status = new.get("status", _MISSING)
            new = copy.deepcopy(old)
            if status is _MISSING:
                new.pop("status", None)
            else:
                new["status"] = status
        elif rt.has_status(version):
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        nm, om = new.setdefault("metadata", {}), old["metadata"]
        for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                    "deletionGracePeriodSeconds", "generation"):
            if key in om:
                nm[key] = om[key]
            else:
                nm.pop(key, None)
        nm["resourceVersion"] = current_rv
        nm.pop("selfLink", None)
        nm.pop("managedFields", None)
        if subresource is None:
            rt.strategy.prepare_update(new, old)
        causes = validate_metadata(nm)
        if om.get("deletionTimestamp"):
            added = [f for f in nm.get("finalizers") or [] if f not in (om.get("finalizers") or [])]
            if added:
                causes.append(Cause("FieldValueForbidden", "Forbidden: no new finalizers can be "
                                    "added if the object is being deleted, found new finalizers "
                                    f"[]string{{{', '.join(json.dumps(f) for f in added)}}}",
                                    "metadata.finalizers"))
        causes += rt.strategy.validate(new, old)
        if rt.custom:
            causes += validate(new, rt.schema(version), old)
        if causes:
            raise errors.invalid(rt.kind, rt.group, name, causes)
        if rt.has_generation:
            ignored = ("metadata", "status") if rt.has_status(version) else ("metadata",)
            if _strip_meta(new, *ignored) != _strip_meta(old, *ignored):
                nm["generation"] = int(om.get("generation") or 1) + 1
        if not nm.get("finalizers"):
            nm.pop("finalizers", None)
        if _ordered(new) == old:
            return WriteResult(old, False, warnings)  # no-op: no new resourceVersion, no event
        stored = self._to_storage(rt, version, new)
        if dry_run:
            return WriteResult(self.render(rt, version, stored), False, warnings)
        if nm.get("deletionTimestamp") and not nm.get("finalizers") and not \
                self._has_spec_finalizers(rt, stored):
            final = self.store.remove(rt.key, stored)
            self._after_remove(rt, final)
            # The answer is the object as updated, with the resourceVersion it had before
            # (kube-apiserver's deleteWithoutFinalizers), not the deletion's.
            return WriteResult(self.render(rt, version, stored), False, warnings)
        self.store.update(rt.key, stored, current)
        self._after_write(rt, stored)
        return WriteResult(self.render(rt, version, stored), False, warnings)

    # -- patch -----------------------------------------------------------------------------------

    def patch(self, rt: ResourceType, version: str, ns: str | None, name: str,
              content_type: str, raw: bytes, *, subresource: str | None = None,
              dry_run: bool = False, field_manager: str | None = None, force: bool = False,
              field_validation: str = "Warn") -> WriteResult:
        ctype = content_type.split(";")[0].strip().lower()
        accepted = [JSON_PATCH, MERGE, APPLY] if rt.custom else [JSON_PATCH, MERGE, STRATEGIC,
                                                                  APPLY]
        if ctype not in accepted:
            raise errors.unsupported_media_type(ctype, accepted)
        try:
            patch = yaml.safe_load(raw) if ctype == APPLY else json.loads(raw or b"null")
        except (ValueError, yaml.YAMLError) as e:
            raise errors.bad_request(f"error decoding patch: {e}") from None
        if ctype == APPLY:
            if not field_manager:
                # As kube-apiserver's PatchOptions validation says it: 422, not 400.
                raise errors.invalid("PatchOptions", "meta.k8s.io", "", [errors.Cause(
                    "FieldValueRequired", "Required value: is required for apply patch", "fieldManager")])
            self._check_type_meta(rt, version, patch)
            if not patch.get("apiVersion") or not patch.get("kind"):
                raise errors.bad_request("apiVersion and kind must be set in an apply request")
            pname = (patch.get("metadata") or {}).get("name")
            if pname and pname != name:
                raise errors.bad_request(f"the name of the object ({pname}) does not match the "
                                         f"name on the URL ({name})")
        current = self.store.get(rt.key, ns or "" if rt.namespaced else "", name)
        if current is None:
            if ctype == APPLY and subresource is None:
                body = copy.deepcopy(patch)
                body.setdefault("metadata", {})["name"] = name
                return self.create(rt, version, ns, body, dry_run=dry_run,
                                   field_validation=field_validation)
            raise errors.not_found(rt.plural, rt.group, name)
        old = self.render(rt, version, current)
        try:
            if ctype == MERGE:
                if not isinstance(patch, dict):
                    raise errors.bad_request("json: cannot unmarshal into Go value of type "
                                             "map[string]interface {}")
                patched = merge_patch(old, patch)
            elif ctype == JSON_PATCH:
                patched = json_patch(old, patch)
            elif ctype == STRATEGIC:
                patched = strategic_merge_patch(old, patch)
            else:
                patched = apply_patch(old, patch)
        except PatchError as e:
            raise errors.unprocessable(str(e)) from None
        except MalformedPatch as e:
            raise errors.bad_request(str(e)) from None
        if not isinstance(patched, dict):
            raise errors.unprocessable("the patch result is not an object")
        meta = patched.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.unprocessable("metadata must be an object")
        prv = meta.get("resourceVersion")
        if prv not in (None, "") and str(prv) != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, name)
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self.update(rt, version, ns, name, patched, subresource=subresource,
                           dry_run=dry_run, field_validation=field_validation,
                           _from_patch=True)

    # -- delete ----------------------------------------------------------------------------------

    def delete(self, rt: ResourceType, version: str, ns: str | None, name: str,
               options: dict[str, Any] | None = None, *, dry_run: bool = False) -> Obj:
        current = self._stored(rt, ns, name)
        meta = current["metadata"]
        pre = (options or {}).get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(rt.plural, rt.group, name,
                                  f"Precondition failed: UID in precondition: {pre['uid']}, "
                                  f"UID in object meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise errors.conflict(rt.plural, rt.group, name,
                                  "Precondition failed: ResourceVersion in precondition: "
                                  f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                  f"{meta.get('resourceVersion')}")
        if rt is self.namespaces and name in PROTECTED_NAMESPACES:
            raise errors.forbidden("namespaces", "", name, "this namespace may not be deleted")
        if meta.get("deletionTimestamp"):
            return self.render(rt, version, current)
        if meta.get("finalizers") or self._has_spec_finalizers(rt, current):
            new = copy.deepcopy(current)
            new["metadata"]["deletionTimestamp"] = rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if rt.has_generation:
                # kube-apiserver counts the graceful deletion as a change of the object.
                new["metadata"]["generation"] = int(new["metadata"].get("generation") or 1) + 1
            if rt is self.namespaces:
                new.setdefault("status", {})["phase"] = "Terminating"
            if rt is self.crds:
                new["status"] = accepted_status(new, new.get("status"))
            if dry_run:
                return self.render(rt, version, new)
            self.store.update(rt.key, new, current)
            self._start_termination(rt, new)
            latest = self.store.get(rt.key, ns or "" if rt.namespaced else "", name)
            return self.render(rt, version, latest or new)
        if dry_run:
            return self.render(rt, version, current)
        final = self.store.remove(rt.key, current)
        self._after_remove(rt, final)
        return self.render(rt, version, final)

    @staticmethod
    def delete_answer(rt: ResourceType, deleted: Obj) -> Obj:
        """What a DELETE answers, given what :meth:`delete` returned: kube-apiserver returns
        the object when the deletion is graceful (finalizers: it has a deletionTimestamp) or
        for the few kinds whose registry sets ReturnDeletedObject, and otherwise, for an
        object removed at once, a ``Status`` of ``Success``."""
        meta = deleted.get("metadata") or {}
        if meta.get("deletionTimestamp") or (rt.group, rt.plural) in RETURNS_DELETED_OBJECT:
            return deleted
        details: dict[str, Any] = {"name": meta.get("name", "")}
        if rt.group:
            details["group"] = rt.group
        details["kind"] = rt.plural
        if meta.get("uid"):
            details["uid"] = meta["uid"]
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": details}

    def delete_collection(self, rt: ResourceType, version: str, ns: str | None,
                          labels: LabelSelector, fields: FieldSelector,
                          options: dict[str, Any] | None = None, *,
                          dry_run: bool = False) -> list[Obj]:
        listed = self.list(rt, version, ns, labels, fields)
        out = []
        for item in listed.items:
            meta = item["metadata"]
            try:
                out.append(self.delete(rt, version, meta.get("namespace"), meta["name"],
                                       options, dry_run=dry_run))
            except APIError as e:
                if e.code != 404:
                    raise
        return out

    def _has_spec_finalizers(self, rt: ResourceType, obj: Obj) -> bool:
        return rt is self.namespaces and bool((obj.get("spec") or {}).get("finalizers"))

    # -- container lifecycles (namespace contents, CRD instances) -------------------------------

    def _start_termination(self, rt: ResourceType, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if rt is self.namespaces:
            for key in self.store.storage_keys():
                types = self.registry.for_storage(key)
                owner = next((t for t in types if (t.group, t.plural) == key), None)
                if owner is None or not owner.namespaced:
                    continue
                for item in self.store.objects(key, name):
                    self._delete_quietly(owner, item)
            self._maybe_finalize_namespace(name)
        elif rt is self.crds:
            served = self._type_of_crd(obj)
            if served is not None:
                for item in self.store.objects(served.key):
                    self._delete_quietly(served, item)
            self._maybe_finalize_crd(name)

    def _delete_quietly(self, rt: ResourceType, stored: Obj) -> None:
        meta = stored["metadata"]
        try:
            self.delete(rt, rt.storage_version, meta.get("namespace"), meta["name"])
        except APIError:
            pass

    def _type_of_crd(self, crd: Obj) -> ResourceType | None:
        spec = crd.get("spec", {})
        plural = ((crd.get("status") or {}).get("acceptedNames") or {}).get("plural") or \
            (spec.get("names") or {}).get("plural")
        rt = self.registry.get(spec.get("group", ""), plural or "")
        return rt if rt is not None and rt.custom else None

    def _maybe_finalize_namespace(self, ns: str) -> None:
        nso = self.store.get(self.namespaces.key, "", ns)  # type: ignore[union-attr]
        if nso is None or not nso["metadata"].get("deletionTimestamp"):
            return
        if any(self.store.objects(key, ns) for key in self.store.storage_keys()
               if key != self.namespaces.key):  # type: ignore[union-attr]
            return
        new = copy.deepcopy(nso)
        new.setdefault("spec", {})["finalizers"] = []
        if new["metadata"].get("finalizers"):
            self.store.update(self.namespaces.key, new, nso)  # type: ignore[union-attr]
            return
        final = self.store.remove(self.namespaces.key, new)  # type: ignore[union-attr]
        self._after_remove(self.namespaces, final)  # type: ignore[arg-type]

    def _maybe_finalize_crd(self, crd_name: str) -> None:
        crd = self.store.get(self.crds.key, "", crd_name)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return
        served = self._type_of_crd(crd)
        if served is not None and self.store.count(served.key):
            return
        new = copy.deepcopy(crd)
        finalizers = [f for f in new["metadata"].get("finalizers") or []
                      if f != CLEANUP_FINALIZER]
        if finalizers:
            new["metadata"]["finalizers"] = finalizers
            self.store.update(self.crds.key, new, crd)
            return
        new["metadata"].pop("finalizers", None)
        final = self.store.remove(self.crds.key, new)
        self._after_remove(self.crds, final)

    def _after_write(self, rt: ResourceType, stored: Obj) -> None:
        if rt is self.crds:
            served = resource_type_from_crd(stored)
            existing = self._type_of_crd(stored)
            if served is None:
                if existing is not None:
                    self.registry.remove(existing.group, existing.plural)
                return
            clash = self.registry.get(served.group, served.plural)
            if clash is not None and not clash.custom:
                return  # never shadow a built-in
            if existing is None:
                self.store.start_window(served.key)
            self.registry.add(served)

    def _after_remove(self, rt: ResourceType, final: Obj) -> None:
        meta = final["metadata"]
        if rt is self.crds:
            served = self._type_of_crd(final)
            if served is not None:
                self.registry.remove(served.group, served.plural)
                self.store.drop_storage(served.key)
                self.store.close_watchers(served.key)
            return
        if rt.namespaced and meta.get("namespace"):
            self._maybe_finalize_namespace(meta["namespace"])
        if rt.custom and rt.crd_name:
            self._maybe_finalize_crd(rt.crd_name)

    # -- list ------------------------------------------------------------------------------------

    def check_field_selector(self, rt: ResourceType, fields: FieldSelector) -> None:
        if rt.field_selectors is None:
            return
        for f in fields.fields():
            if f not in rt.field_selectors:
                raise errors.bad_request(f'field label not supported: {f}')

    def matches(self, obj: Obj, labels: LabelSelector, fields: FieldSelector) -> bool:
        return labels.matches(obj.get("metadata", {}).get("labels")) and \
            fields.matches(lambda path: field_value(obj, path))

    def list(self, rt: ResourceType, version: str, ns: str | None, labels: LabelSelector,
             fields: FieldSelector, *, limit: int = 0, continue_token: str | None = None,
             exact_rv: int | None = None) -> ListResult:
        """A list; with ``exact_rv`` (``resourceVersionMatch=Exact``) as of that RV."""
        self.check_field_selector(rt, fields)
        start: tuple[str, str] | None = None
        list_rv = self.store.rv
        if continue_token:
            try:
                token = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                start = (str(token["ns"]), str(token["name"]))
                list_rv = int(token["rv"])
            except (ValueError, KeyError, TypeError, binascii.Error):
                raise errors.bad_request("continue key is not valid: malformed token") from None
            if list_rv < self.store.compacted_rv:
                raise errors.expired("The provided continue parameter is too old to display a "
                                     "consistent list result. You can start a new list without "
                                     "the continue parameter.")
        in_ns = ns if rt.namespaced and ns else None
        if exact_rv is not None and not continue_token:
            try:
                stored = self.store.objects_at(rt.key, exact_rv, in_ns)
            except TooOld:
                raise errors.expired("The resourceVersion for the provided list is too old.") \
                    from None
            list_rv = exact_rv
        else:
            stored = self.store.objects(rt.key, in_ns)
        items: list[Obj] = []
        last: tuple[str, str] | None = None
        remaining = 0
        for s in stored:
            m = s["metadata"]
            key = (m.get("namespace") or "", m["name"])
            if start is not None and key <= start:
                continue
            obj = self.render(rt, version, s)
            if not self.matches(obj, labels, fields):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(obj)
            last = key
        token = None
        if limit and remaining and last is not None:
            token = base64.urlsafe_b64encode(json.dumps(
                {"rv": list_rv, "ns": last[0], "name": last[1]}).encode()).decode()
        return ListResult(items, str(self.store.rv if exact_rv is None else list_rv), token,
                          remaining if token else None)

    # -- watch support ---------------------------------------------------------------------------

    def watch_event(self, rt: ResourceType, version: str, ns: str | None,
                    labels: LabelSelector, fields: FieldSelector,
                    event: Event) -> tuple[str, Obj] | None:
        """Translate a storage event for one watcher, with selector-transition semantics."""
        meta = event.obj.get("metadata", {})
        if rt.namespaced and ns and meta.get("namespace") != ns:
            return None
        new = self.render(rt, version, event.obj)
        if event.type == "DELETED":
            return ("DELETED", new) if self.matches(new, labels, fields) else None
        now_match = self.matches(new, labels, fields)
        if event.type == "ADDED":
            return ("ADDED", new) if now_match else None
        old = self.render(rt, version, event.old) if event.old is not None else None
        was_match = old is not None and self.matches(old, labels, fields)
        if now_match and was_match:
            return ("MODIFIED", new)
        if now_match:
            return ("ADDED", new)
        if was_match:
            return ("DELETED", new)
        return None


def _ordered(obj: Obj) -> Obj:
    """apiVersion, kind, metadata first — the order Go's structs serialise in."""
    head: Obj = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
    head.update((k, v) for k, v in obj.items() if k not in head)
    return head
