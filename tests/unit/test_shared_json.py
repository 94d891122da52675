"""Watch events decoded with shared strings (controllers/_sharedjson.py)."""
from __future__ import annotations

import inspect
import json

import kopf._cogs.clients.api as kopf_api

from cube_operator.controllers import _sharedjson

BODY = ('{"type": "ADDED", "object": {"apiVersion": "cube-operator.io/v1alpha1", "kind": "Cube", "metadata": {"name": "web-%d", '
        '"namespace": "team-a"}, "status": {"conditions": [{"type": "Ready", "status": "True", '
        '"message": "%s"}], "size": %d, "ok": true, "none": null}}}')


def test_equal_keys_and_short_values_are_one_object_across_bodies() -> None:
    long_text = "x" * (_sharedjson.SHARED_VALUE_CHARS + 1)
    one = _sharedjson.loads(BODY % (1, long_text, 1))["object"]
    two = _sharedjson.loads((BODY % (2, long_text, 2)).encode())["object"]
    assert one == json.loads(BODY % (1, long_text, 1))["object"]  # the same document, decoded
    key_one = next(k for k in one["metadata"] if k == "namespace")
    key_two = next(k for k in two["metadata"] if k == "namespace")
    assert key_one is key_two
    assert one["metadata"]["namespace"] is two["metadata"]["namespace"]
    assert one["status"]["conditions"][0]["type"] is two["status"]["conditions"][0]["type"]
    # Long values (messages, annotations) are left alone: they rarely repeat.
    assert one["status"]["conditions"][0]["message"] is not two["status"]["conditions"][0]["message"]


def test_managed_fields_and_kubectls_copy_are_left_out_of_the_object_only() -> None:
    event = _sharedjson.loads(json.dumps({"type": "MODIFIED", "object": {
        "metadata": {"name": "web", "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
                     "labels": {"managedFields": "kept"},
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"spec": {}}',
                                     "cube-operator.io/paused": "true"}},
        "spec": {"region": "eu", "managedFields": "kept"}}}))
    assert event == {"type": "MODIFIED", "object": {
        "metadata": {"name": "web", "labels": {"managedFields": "kept"},
                     "annotations": {"cube-operator.io/paused": "true"}},
        "spec": {"region": "eu", "managedFields": "kept"}}}
    assert _sharedjson.loads('{"type": "ERROR", "object": {"kind": "Status", "code": 410}}')["object"]["code"] == 410


def test_kopf_watch_streams_decode_with_it() -> None:
    # The hook replaces the `json` kopf's API client calls per watch line; if a kopf
    # upgrade decodes elsewhere, this fails rather than the saving silently going.
    assert "json.loads(line" in inspect.getsource(kopf_api.stream)
    original = kopf_api.json
    try:
        _sharedjson.install()
        assert kopf_api.json.loads is _sharedjson.loads
        assert kopf_api.json.dumps is json.dumps  # the rest of the module is json's own
    finally:
        kopf_api.json = original
