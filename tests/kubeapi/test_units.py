"""Unit tests of the emulator's pure functions."""

from __future__ import annotations

from typing import Any

import pytest

from kubeapi import cel, jsonpath
from kubeapi.errors import APIError
from kubeapi.meta import human_duration
from kubeapi.patch import (
    PatchError,
    apply_patch,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from kubeapi.schema import apply_defaults, prune, validate
from kubeapi.selectors import FieldSelector, LabelSelector


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("a=1", {"a": "1"}, True), ("a==1", {"a": "2"}, False), ("a!=1", {}, True),
    ("a in (1, 2)", {"a": "2"}, True), ("a notin (1,2)", {"a": "3"}, True),
    ("a notin (1,2)", {}, True), ("a", {"a": ""}, True), ("!a", {"a": "x"}, False),
    ("a=1,b in (x)", {"a": "1", "b": "x"}, True), ("a=1,b in (x)", {"a": "1"}, False),
    ("n>3", {"n": "4"}, True), ("n<3", {"n": "4"}, False), ("", {}, True),
])
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(selector).matches(labels) is expected


def test_label_selector_errors() -> None:
    with pytest.raises(APIError):
        LabelSelector.parse("a in ()")
    with pytest.raises(APIError):
        LabelSelector.parse("a=1,,b=2")


def test_field_selectors() -> None:
    obj = {"metadata": {"name": "x,y", "namespace": "ns"}, "spec": {"on": True}}

    def get(path: str) -> str:
        from kubeapi.selectors import field_value
        return field_value(obj, path)

    assert FieldSelector.parse(r"metadata.name=x\,y").matches(get)
    assert FieldSelector.parse("metadata.namespace!=other,spec.on=true").matches(get)
    assert not FieldSelector.parse("metadata.namespace==other").matches(get)
    assert FieldSelector.parse("a=b,c!=d").fields() == ["a", "c"]


def test_merge_patch_rfc7386() -> None:
    target = {"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]}
    patch = {"a": "z", "c": {"f": None}, "l": [3], "n": {"x": None}}
    assert merge_patch(target, patch) == {"a": "z", "c": {"d": "e"}, "l": [3], "n": {}}
    assert target["c"] == {"d": "e", "f": "g"}  # not mutated


def test_json_patch_rfc6902() -> None:
    doc = {"a": {"b": [1, 2]}, "c": 1}
    ops = [{"op": "add", "path": "/a/b/1", "value": 9}, {"op": "remove", "path": "/c"},
           {"op": "copy", "from": "/a/b", "path": "/d"}, {"op": "move", "from": "/d",
                                                         "path": "/e"},
           {"op": "replace", "path": "/a/b/0", "value": 0}, {"op": "test", "path": "/e",
                                                              "value": [1, 9, 2]},
           {"op": "add", "path": "/k~1x", "value": True}]
    assert json_patch(doc, ops) == {"a": {"b": [0, 9, 2]}, "e": [1, 9, 2], "k/x": True}
    with pytest.raises(PatchError, match="test failed"):
        json_patch(doc, [{"op": "test", "path": "/c", "value": 2}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "replace", "path": "/missing", "value": 2}])
    with pytest.raises(PatchError):
        json_patch(doc, [{"op": "test", "path": "/c", "value": True}])  # 1 is not true


def test_strategic_merge_patch_directives() -> None:
    doc = {"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}],
                    "finalizers": ["x"], "args": ["--a"]},
           "metadata": {"finalizers": ["x"]}}
    patch = {"spec": {"containers": [{"name": "b", "$patch": "delete"},
                                     {"name": "c", "image": "2"}],
                      "args": ["--b"]},
             "metadata": {"finalizers": ["y"]}}
    out = strategic_merge_patch(doc, patch)
    assert out["spec"]["containers"] == [{"name": "a", "image": "1"}, {"name": "c", "image": "2"}]
    assert out["spec"]["args"] == ["--b"]  # lists without merge keys are replaced
    assert out["metadata"]["finalizers"] == ["x", "y"]  # primitive merge list
    assert strategic_merge_patch({"a": {"b": 1}}, {"a": {"$patch": "replace", "c": 2}}) == \
        {"a": {"c": 2}}
    order = strategic_merge_patch(
        {"env": [{"name": "A"}, {"name": "B"}]},
        {"$setElementOrder/env": [{"name": "B"}, {"name": "A"}], "env": [{"name": "A", "v": 1}]})
    assert order["env"] == [{"name": "B"}, {"name": "A", "v": 1}]


def test_apply_patch_merges_and_ignores_nulls() -> None:
    assert apply_patch({"spec": {"a": 1, "b": [1]}}, {"spec": {"b": [2], "c": None}}) == \
        {"spec": {"a": 1, "b": [2]}}


@pytest.mark.parametrize(("path", "expected"), [
    (".spec.size", [3]),
    ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
    (".status.conditions[?(@.type!='Ready')].type", ["Synced"]),
    (".status.conditions[*].type", ["Synced", "Ready"]),
    (".status.conditions[-1].type", ["Ready"]),
    (".status.conditions[0:1].type", ["Synced"]),
    (".metadata.labels['app.kubernetes.io/name']", ["web"]),
    ("..observedGeneration", [1, 2]),
    (".spec.missing", []),
    (".status.conditions[?(@.observedGeneration>1)].type", ["Ready"]),
])
def test_jsonpath(path: str, expected: list[Any]) -> None:
    obj = {"metadata": {"labels": {"app.kubernetes.io/name": "web"}}, "spec": {"size": 3},
           "status": {"conditions": [{"type": "Synced", "status": "False",
                                      "observedGeneration": 1},
                                     {"type": "Ready", "status": "True",
                                      "observedGeneration": 2}]}}
    assert jsonpath.find(obj, path) == expected


@pytest.mark.parametrize(("rule", "self_", "old", "expected"), [
    ("self == oldSelf", "a", "a", True),
    ("self == oldSelf", "a", "b", False),
    ("self.min <= self.max", {"min": 1, "max": 2}, None, True),
    ("!has(self.x) || self.x > 0", {}, None, True),
    ("has(self.x) && self.x.startsWith('ab')", {"x": "abc"}, None, True),
    ("size(self.items) <= 2 && self.items.all(i, i in ['a', 'b'])", {"items": ["a", "b"]},
     None, True),
    ("self.items.exists(i, i == 'z')", {"items": ["a"]}, None, False),
    ("self.items.map(i, i + '!').size() == 1", {"items": ["a"]}, None, True),
    ("self.n % 2 == 0 ? self.s.matches('^[a-z]+$') : false", {"n": 4, "s": "abc"}, None, True),
    ("self.a / 2 == 1 && -self.a < 0 && double(self.a) == 2.0", {"a": 2}, None, True),
    ("self.m['k'] == 'v' && 'k' in self.m", {"m": {"k": "v"}}, None, True),
    ("type(self) == string", "x", None, True),
])
def test_cel_subset(rule: str, self_: Any, old: Any, expected: bool) -> None:
    program = cel.compile_rule(rule)
    if rule == "type(self) == string":
        assert program is None  # type identifiers are outside the subset: ignored
        return
    assert program is not None
    assert program.evaluate(self_, old) is expected
    assert program.is_transition == ("oldSelf" in rule)


def test_cel_runtime_error_and_unsupported() -> None:
    program = cel.compile_rule("self.missing == 1")
    assert program is not None
    with pytest.raises(cel.EvalError, match="no such key: missing"):
        program.evaluate({}, None)
    assert cel.compile_rule("self.x.quantity() > 1") is None
    assert cel.compile_rule("self == ") is None
    # CEL's commutative ||: an error on one side is absorbed by a true other side.
    ok = cel.compile_rule("self.missing == 1 || true")
    assert ok is not None and ok.evaluate({}, None) is True


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {"type": "object", "required": ["n"], "properties": {
            "n": {"type": "integer", "minimum": 1, "exclusiveMaximum": True, "maximum": 5},
            "s": {"type": "string", "default": "d", "minLength": 2, "format": "email"},
            "list": {"type": "array", "minItems": 1, "x-kubernetes-list-type": "set",
                     "items": {"type": "string"}},
            "map": {"type": "object", "additionalProperties": {"type": "integer"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "nul": {"type": "string", "nullable": True},
            "drop": {"type": "string"},
            "nested": {"type": "object", "default": {}, "properties": {
                "deep": {"type": "integer", "default": 7}}},
            "ios": {"x-kubernetes-int-or-string": True, "pattern": "^x"},
        }},
    },
}


def test_schema_prune_and_default() -> None:
    obj = {"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "a", "junk": 1},
           "spec": {"n": 1, "zzz": 1, "free": {"any": {"thing": 1}}, "map": {"a": 1},
                    "nul": None, "drop": None}, "other": 1}
    dropped = prune(obj, SCHEMA)
    assert sorted(dropped) == ["metadata.junk", "other", "spec.zzz"]
    apply_defaults(obj, SCHEMA)
    assert obj["spec"]["s"] == "d" and obj["spec"]["nested"] == {"deep": 7}
    assert obj["spec"]["nul"] is None and "drop" not in obj["spec"]
    assert obj["spec"]["free"] == {"any": {"thing": 1}}


def _messages(obj: dict[str, Any], old: Any = None) -> list[str]:
    causes = validate(obj, SCHEMA) if old is None else validate(obj, SCHEMA, old)
    return [f"{c.field}: {c.message}" for c in causes]


def test_schema_validation_messages() -> None:
    assert _messages({"spec": {"n": 5}}) == [
        "spec.n: Invalid value: 5: spec.n in body should be less than 5"]
    assert _messages({"spec": {"n": 1, "s": "x"}}) == [
        'spec.s: Invalid value: "x": spec.s in body should be at least 2 chars long',
        'spec.s: Invalid value: "x": spec.s in body must be of type email: "x"']
    assert _messages({"spec": {"n": 1, "list": []}}) == [
        "spec.list: Invalid value: 0: spec.list in body should have at least 1 items"]
    assert _messages({"spec": {"n": 1, "list": ["a", "a"]}}) == [
        'spec.list[1]: Duplicate value: "a"']
    assert _messages({"spec": {"n": 1, "map": {"k": "v"}}}) == [
        ('spec.map.k: Invalid value: "string": spec.map.k in body must be of type integer: '
         '"string"')]
    assert _messages({"spec": {"n": 1, "ios": "yes"}}) == [
        "spec.ios: Invalid value: \"yes\": spec.ios in body should match '^x'"]
    assert _messages({"spec": {"n": 1, "ios": 3}}) == []
    assert _messages({"spec": {}}) == ["spec.n: Required value"]
    assert _messages({"spec": "x"}) == [
        'spec: Invalid value: "string": spec in body must be of type object: "string"']


def test_schema_ratcheting_keeps_unchanged_invalid_values() -> None:
    old = {"spec": {"n": 0, "s": "ok@example.com"}}
    assert _messages({"spec": {"n": 0, "s": "ok@example.com"}}, old) == []
    assert _messages({"spec": {"n": 0, "s": "y"}}, old)[0].startswith("spec.s:")


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-1, "0s"), (5, "5s"), (119, "119s"), (125, "2m5s"), (600, "10m"),
    (3 * 3600 + 60, "3h1m"), (30 * 3600, "30h"), (3 * 86400 + 3600, "3d1h"),
    (40 * 86400, "40d"), (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y"),
])
def test_human_duration(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def _field(number: int, payload: bytes | str | int) -> bytes:
    """Encode one protobuf field (length-delimited or varint) for the decoder tests."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def test_protobuf_secret_decoding() -> None:
    from kubeapi import protobuf

    meta = _field(1, "creds") + _field(3, "team-a") + _field(11, _field(1, "a") + _field(2, "b"))
    secret = (_field(1, meta) + _field(2, _field(1, "apiKey") + _field(2, b"kro_1")) +
              _field(3, "Opaque") + _field(5, 1) + _field(99, "ignored"))
    unknown = _field(1, _field(1, "v1") + _field(2, "Secret")) + _field(2, secret)
    assert protobuf.decode(protobuf.MAGIC + unknown) == {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "team-a", "labels": {"a": "b"}},
        "data": {"apiKey": "a3JvXzE="}, "type": "Opaque", "immutable": True}
    with pytest.raises(protobuf.ProtobufError, match="not supported for apps/v1/Deployment"):
        protobuf.decode(protobuf.MAGIC + _field(1, _field(1, "apps/v1") +
                                                _field(2, "Deployment")))
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(b"{}")
