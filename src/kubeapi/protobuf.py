"""Decoding of the Kubernetes protobuf wire format for a few built-in kinds.

kubectl's typed clients (``kubectl create namespace|configmap|secret|serviceaccount|role|
rolebinding|clusterrole|clusterrolebinding``) send ``application/vnd.kubernetes.protobuf``
request bodies. The emulator answers in JSON (those clients also accept it), but has to read
these bodies. Only the kinds listed in ``KINDS`` are understood; others get 415.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"

# A message descriptor: field number -> (json name, kind, nested descriptor or None).
# Kinds: str, bytes, int, bool, msg, time, map_str, map_bytes, rep_str, rep_msg.
Desc = dict[int, tuple[str, str, Any]]

TIME: Desc = {}  # metav1.Time {seconds=1, nanos=2}; handled specially
OWNER_REFERENCE: Desc = {1: ("kind", "str", None), 3: ("name", "str", None),
                         4: ("uid", "str", None), 5: ("apiVersion", "str", None),
                         6: ("controller", "bool", None),
                         7: ("blockOwnerDeletion", "bool", None)}
OBJECT_META: Desc = {
    1: ("name", "str", None), 2: ("generateName", "str", None), 3: ("namespace", "str", None),
    4: ("selfLink", "str", None), 5: ("uid", "str", None), 6: ("resourceVersion", "str", None),
    7: ("generation", "int", None), 8: ("creationTimestamp", "time", None),
    9: ("deletionTimestamp", "time", None), 10: ("deletionGracePeriodSeconds", "int", None),
    11: ("labels", "map_str", None), 12: ("annotations", "map_str", None),
    13: ("ownerReferences", "rep_msg", OWNER_REFERENCE), 14: ("finalizers", "rep_str", None),
}
OBJECT_REFERENCE: Desc = {1: ("kind", "str", None), 2: ("namespace", "str", None),
                          3: ("name", "str", None), 4: ("uid", "str", None),
                          5: ("apiVersion", "str", None), 6: ("resourceVersion", "str", None),
                          7: ("fieldPath", "str", None)}
LOCAL_OBJECT_REFERENCE: Desc = {1: ("name", "str", None)}
POLICY_RULE: Desc = {1: ("verbs", "rep_str", None), 2: ("apiGroups", "rep_str", None),
                     3: ("resources", "rep_str", None), 4: ("resourceNames", "rep_str", None),
                     5: ("nonResourceURLs", "rep_str", None)}
SUBJECT: Desc = {1: ("kind", "str", None), 2: ("apiGroup", "str", None),
                 3: ("name", "str", None), 4: ("namespace", "str", None)}
ROLE_REF: Desc = {1: ("apiGroup", "str", None), 2: ("kind", "str", None),
                  3: ("name", "str", None)}
ROLE: Desc = {1: ("metadata", "msg", OBJECT_META), 2: ("rules", "rep_msg", POLICY_RULE)}
BINDING: Desc = {1: ("metadata", "msg", OBJECT_META), 2: ("subjects", "rep_msg", SUBJECT),
                 3: ("roleRef", "msg", ROLE_REF)}

KINDS: dict[tuple[str, str], Desc] = {
    ("v1", "Namespace"): {1: ("metadata", "msg", OBJECT_META),
                          2: ("spec", "msg", {1: ("finalizers", "rep_str", None)}),
                          3: ("status", "msg", {1: ("phase", "str", None)})},
    ("v1", "ConfigMap"): {1: ("metadata", "msg", OBJECT_META), 2: ("data", "map_str", None),
                          3: ("binaryData", "map_bytes", None), 4: ("immutable", "bool", None)},
    ("v1", "Secret"): {1: ("metadata", "msg", OBJECT_META), 2: ("data", "map_bytes", None),
                       3: ("type", "str", None), 4: ("stringData", "map_str", None),
                       5: ("immutable", "bool", None)},
    ("v1", "ServiceAccount"): {1: ("metadata", "msg", OBJECT_META),
                               2: ("secrets", "rep_msg", OBJECT_REFERENCE),
                               3: ("imagePullSecrets", "rep_msg", LOCAL_OBJECT_REFERENCE),
                               4: ("automountServiceAccountToken", "bool", None)},
    ("rbac.authorization.k8s.io/v1", "Role"): ROLE,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ROLE,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): BINDING,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): BINDING,
}


class ProtobufError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) triples; length-delimited values stay bytes."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _time(buf: bytes) -> str:
    seconds = next((v for n, _, v in fields(buf) if n == 1), 0)
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_message(buf: bytes, desc: Desc) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for number, _, value in fields(buf):
        if number not in desc:
            continue  # fields the emulator does not model
        name, kind, sub = desc[number]
        if kind in ("str", "int") and not value:
            continue  # Go's JSON encoding omits empty scalars (omitempty)
        if kind == "str":
            obj[name] = bytes(value).decode()
        elif kind == "bytes":
            obj[name] = base64.b64encode(bytes(value)).decode()
        elif kind == "int":
            obj[name] = value - (1 << 64) if value >= 1 << 63 else value
        elif kind == "bool":
            obj[name] = bool(value)
        elif kind == "time":
            obj[name] = _time(bytes(value))
        elif kind == "msg":
            obj[name] = decode_message(bytes(value), sub)
        elif kind == "rep_str":
            obj.setdefault(name, []).append(bytes(value).decode())
        elif kind == "rep_msg":
            obj.setdefault(name, []).append(decode_message(bytes(value), sub))
        elif kind in ("map_str", "map_bytes"):
            entry = {n: v for n, _, v in fields(bytes(value))}
            key = bytes(entry.get(1, b"")).decode()
            raw = bytes(entry.get(2, b""))
            obj.setdefault(name, {})[key] = raw.decode() if kind == "map_str" \
                else base64.b64encode(raw).decode()
    return obj


def decode(body: bytes) -> dict[str, Any]:
    """A ``k8s\\0``-framed runtime.Unknown -> the object as JSON-shaped data."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    unknown = {n: v for n, _, v in fields(body[len(MAGIC):])}
    type_meta = {n: bytes(v).decode() for n, _, v in fields(bytes(unknown.get(1, b"")))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    desc = KINDS.get((api_version, kind))
    if desc is None:
        raise ProtobufError(f"protobuf bodies are not supported for {api_version}/{kind}")
    obj = decode_message(bytes(unknown.get(2, b"")), desc)
    return {"apiVersion": api_version, "kind": kind, **obj}
