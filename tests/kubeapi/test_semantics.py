"""Object semantics of the emulator over real HTTP (httpx against the thread-run server)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

MERGE = {"Content-Type": "application/merge-patch+json"}
JSONP = {"Content-Type": "application/json-patch+json"}
SMP = {"Content-Type": "application/strategic-merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}


def make_ns(api: httpx.Client, name: str) -> None:
    r = api.post("/api/v1/namespaces", json={"metadata": {"name": name}})
    assert r.status_code == 201, r.text


def widget(name: str, /, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.test/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": {"size": 1, **spec}}


def create(api: httpx.Client, ns: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(f"/apis/example.test/v1/namespaces/{ns}/widgets", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def url(ns: str, name: str = "", sub: str = "") -> str:
    out = f"/apis/example.test/v1/namespaces/{ns}/widgets"
    if name:
        out += f"/{name}"
    if sub:
        out += f"/{sub}"
    return out


@pytest.fixture(scope="module")
def ns(api: httpx.Client, widgets: str) -> str:
    make_ns(api, "sem")
    return "sem"


def test_create_sets_server_fields_and_defaults(api: httpx.Client, ns: str) -> None:
    obj = create(api, ns, widget("fields", extra={"anything": {"goes": 1}}))
    meta = obj["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1 and meta["namespace"] == ns
    assert int(meta["resourceVersion"]) > 0
    assert obj["spec"]["color"] == "red"  # default
    assert obj["spec"]["options"] == {"verbose": False}  # nested defaults under a default
    assert obj["spec"]["extra"] == {"anything": {"goes": 1}}  # preserve-unknown-fields


def test_resource_version_is_global_and_monotonic(api: httpx.Client, ns: str) -> None:
    a = create(api, ns, widget("rv-a"))
    cm = api.post(f"/api/v1/namespaces/{ns}/configmaps", json={"metadata": {"name": "rv-cm"}})
    b = create(api, ns, widget("rv-b"))
    rvs = [int(a["metadata"]["resourceVersion"]), int(cm.json()["metadata"]["resourceVersion"]),
           int(b["metadata"]["resourceVersion"])]
    assert rvs == sorted(rvs) and len(set(rvs)) == 3
    listed = api.get(url(ns)).json()
    assert int(listed["metadata"]["resourceVersion"]) >= rvs[-1]
    assert listed["kind"] == "WidgetList"


def test_generate_name(api: httpx.Client, ns: str) -> None:
    body = widget("")
    body["metadata"] = {"generateName": "gen-"}
    obj = create(api, ns, body)
    assert obj["metadata"]["name"].startswith("gen-") and len(obj["metadata"]["name"]) == 9


def test_already_exists_and_not_found(api: httpx.Client, ns: str) -> None:
    create(api, ns, widget("dup"))
    r = api.post(url(ns), json=widget("dup"))
    assert r.status_code == 409
    status = r.json()
    assert status["kind"] == "Status" and status["reason"] == "AlreadyExists"
    assert status["message"] == 'widgets.example.test "dup" already exists'
    assert status["details"] == {"name": "dup", "group": "example.test", "kind": "widgets"}
    r = api.get(url(ns, "missing"))
    assert r.status_code == 404 and r.json()["reason"] == "NotFound"
    assert r.json()["message"] == 'widgets.example.test "missing" not found'
    r = api.post("/api/v1/namespaces/nope/configmaps", json={"metadata": {"name": "x"}})
    assert r.status_code == 404 and r.json()["message"] == 'namespaces "nope" not found'


def test_generation_rules(api: httpx.Client, ns: str) -> None:
    obj = create(api, ns, widget("gen"))
    r = api.patch(url(ns, "gen"), headers=MERGE, json={"metadata": {"labels": {"a": "b"}}})
    assert r.json()["metadata"]["generation"] == 1  # metadata change: no bump
    r = api.patch(url(ns, "gen", "status"), headers=MERGE, json={"status": {"phase": "x"}})
    assert r.json()["metadata"]["generation"] == 1  # status change: no bump
    r = api.patch(url(ns, "gen"), headers=MERGE, json={"spec": {"size": 2}})
    assert r.json()["metadata"]["generation"] == 2
    before = r.json()["metadata"]["resourceVersion"]
    r = api.patch(url(ns, "gen"), headers=MERGE, json={"spec": {"size": 2}})
    # A no-op write is not stored: same resourceVersion, same generation.
    assert r.json()["metadata"]["resourceVersion"] == before
    assert r.json()["metadata"]["generation"] == 2
    assert obj["metadata"]["uid"] == r.json()["metadata"]["uid"]


def test_put_conflict_on_stale_resource_version(api: httpx.Client, ns: str) -> None:
    obj = create(api, ns, widget("put"))
    fresh = dict(obj, spec={**obj["spec"], "size": 5})
    r = api.put(url(ns, "put"), json=fresh)
    assert r.status_code == 200 and r.json()["spec"]["size"] == 5
    stale = dict(obj, spec={**obj["spec"], "size": 6})
    r = api.put(url(ns, "put"), json=stale)
    assert r.status_code == 409 and r.json()["reason"] == "Conflict"
    assert "the object has been modified" in r.json()["message"]
    no_rv = json.loads(json.dumps(obj))
    del no_rv["metadata"]["resourceVersion"]
    r = api.put(url(ns, "put"), json=no_rv)
    assert r.status_code == 422  # custom resources require a resourceVersion on update
    assert r.json()["details"]["causes"][0]["field"] == "metadata.resourceVersion"
    r = api.put(url(ns, "other-name"), json=r.json() | fresh)
    assert r.status_code in (400, 404)


def test_patches(api: httpx.Client, ns: str) -> None:
    create(api, ns, widget("p", tags=["a"], labels={"x": "1", "y": "2"}))
    r = api.patch(url(ns, "p"), headers=MERGE, json={"spec": {"labels": {"x": None, "z": "3"}}})
    assert r.status_code == 200 and r.json()["spec"]["labels"] == {"y": "2", "z": "3"}
    rv = r.json()["metadata"]["resourceVersion"]
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": rv},
           {"op": "add", "path": "/spec/tags/-", "value": "b"},
           {"op": "replace", "path": "/spec/size", "value": 4}]
    r = api.patch(url(ns, "p"), headers=JSONP, content=json.dumps(ops))
    assert r.status_code == 200, r.text
    assert r.json()["spec"]["tags"] == ["a", "b"] and r.json()["spec"]["size"] == 4
    r = api.patch(url(ns, "p"), headers=JSONP, content=json.dumps(ops))  # stale test op
    assert r.status_code == 422 and r.json()["reason"] == "Invalid"
    r = api.patch(url(ns, "p"), headers=SMP, json={"spec": {"size": 2}})
    assert r.status_code == 415 and r.json()["reason"] == "UnsupportedMediaType"
    r = api.patch(url(ns, "p"), headers=MERGE,
                  json={"metadata": {"resourceVersion": "1"}, "spec": {"size": 3}})
    assert r.status_code == 409  # resourceVersion in a patch is a precondition
    r = api.patch(url(ns, "nope"), headers=MERGE, json={"spec": {"size": 3}})
    assert r.status_code == 404


def test_strategic_merge_on_builtins(api: httpx.Client, ns: str) -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
           "spec": {"template": {"spec": {"containers": [
               {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}}
    r = api.post(f"/apis/apps/v1/namespaces/{ns}/deployments", json=dep)
    assert r.status_code == 201 and r.json()["metadata"]["generation"] == 1
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
        "containers": [{"name": "b", "image": "b:2"}]}}}}
    r = api.patch(f"/apis/apps/v1/namespaces/{ns}/deployments/d", headers=SMP, json=patch)
    assert r.status_code == 200, r.text
    containers = r.json()["spec"]["template"]["spec"]["containers"]
    assert containers == [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]
    assert r.json()["metadata"]["generation"] == 2


def test_server_side_apply_creates_then_merges(api: httpx.Client, ns: str) -> None:
    doc = "apiVersion: example.test/v1\nkind: Widget\nmetadata:\n  name: ssa\nspec:\n  size: 2\n"
    r = api.patch(url(ns, "ssa"), headers=APPLY, params={"fieldManager": "t"}, content=doc)
    assert r.status_code == 201 and r.json()["spec"]["size"] == 2
    r = api.patch(url(ns, "ssa"), headers=APPLY, params={"fieldManager": "t", "force": "true"},
                  content="apiVersion: example.test/v1\nkind: Widget\nmetadata:\n  name: ssa\n"
                          "spec:\n  color: blue\n")
    assert r.status_code == 200
    assert r.json()["spec"]["size"] == 2 and r.json()["spec"]["color"] == "blue"
    r = api.patch(url(ns, "ssa"), headers=APPLY, content=doc)
    assert r.status_code == 422  # fieldManager is required for apply (PatchOptions invalid)
    assert r.json()["details"]["causes"][0]["field"] == "fieldManager"


def test_status_subresource_split(api: httpx.Client, ns: str) -> None:
    body = widget("st")
    body["status"] = {"phase": "ignored"}
    obj = create(api, ns, body)
    assert "status" not in obj  # create cannot set status
    r = api.patch(url(ns, "st", "status"), headers=MERGE,
                  json={"spec": {"size": 9}, "status": {"phase": "Ready"}})
    assert r.json()["status"]["phase"] == "Ready" and r.json()["spec"]["size"] == 1
    full = r.json()
    full["status"]["phase"] = "Changed"
    full["spec"]["size"] = 3
    r = api.put(url(ns, "st"), json=full)
    assert r.json()["status"]["phase"] == "Ready" and r.json()["spec"]["size"] == 3
    r = api.get(url(ns, "st", "status"))
    assert r.status_code == 200 and r.json()["status"]["phase"] == "Ready"
    r = api.patch(url(ns, "st", "status"), headers=MERGE,
                  json={"status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}})
    assert r.status_code == 422  # status writes are validated against the status schema
    assert r.json()["details"]["causes"][0]["field"] == "status.conditions[0].status"
    r = api.get("/apis/apps/v1/namespaces/sem/deployments/none/scale")
    assert r.status_code == 404


def test_finalizers_and_deletion_timestamp(api: httpx.Client, ns: str) -> None:
    body = widget("fin")
    body["metadata"]["finalizers"] = ["example.test/hold"]
    create(api, ns, body)
    r = api.delete(url(ns, "fin"), params={"propagationPolicy": "Background"})
    assert r.status_code == 200 and r.json()["metadata"]["deletionTimestamp"]
    assert api.get(url(ns, "fin")).status_code == 200
    r = api.patch(url(ns, "fin"), headers=MERGE,
                  json={"metadata": {"finalizers": ["example.test/hold", "other/new"]}})
    assert r.status_code == 422 and "no new finalizers" in r.json()["message"]
    r = api.request("DELETE", url(ns, "fin"), json={"gracePeriodSeconds": 0})
    assert r.status_code == 200  # deleting again is fine
    r = api.patch(url(ns, "fin"), headers=MERGE, json={"metadata": {"finalizers": None}})
    assert r.status_code == 200
    assert api.get(url(ns, "fin")).status_code == 404
    create(api, ns, widget("nofin"))
    r = api.delete(url(ns, "nofin"))
    # Removed at once: a Success Status, as kube-apiserver answers for custom resources.
    assert r.status_code == 200 and r.json()["status"] == "Success"
    assert r.json()["details"]["name"] == "nofin"
    assert api.get(url(ns, "nofin")).status_code == 404


def test_delete_preconditions(api: httpx.Client, ns: str) -> None:
    create(api, ns, widget("pre"))
    r = api.request("DELETE", url(ns, "pre"), json={"preconditions": {"uid": "wrong"}})
    assert r.status_code == 409
    assert api.delete(url(ns, "pre"), params={"dryRun": "All"}).status_code == 200
    assert api.get(url(ns, "pre")).status_code == 200


def test_dry_run_create_and_patch(api: httpx.Client, ns: str) -> None:
    r = api.post(url(ns), params={"dryRun": "All"}, json=widget("dry"))
    assert r.status_code == 201 and r.json()["spec"]["color"] == "red"
    assert api.get(url(ns, "dry")).status_code == 404
    create(api, ns, widget("dry2"))
    r = api.patch(url(ns, "dry2"), params={"dryRun": "All"}, headers=MERGE,
                  json={"spec": {"size": 7}})
    assert r.json()["spec"]["size"] == 7
    assert api.get(url(ns, "dry2")).json()["spec"]["size"] == 1


def test_label_and_field_selectors(api: httpx.Client) -> None:
    make_ns(api, "sel")
    for name, labels in [("s1", {"app": "a", "tier": "web"}), ("s2", {"app": "b"}),
                         ("s3", {"tier": "db"})]:
        body = widget(name)
        body["metadata"]["labels"] = labels
        create(api, "sel", body)

    def names(**params: str) -> list[str]:
        r = api.get(url("sel"), params=params)
        assert r.status_code == 200, r.text
        return [i["metadata"]["name"] for i in r.json()["items"]]

    assert names(labelSelector="app=a") == ["s1"]
    assert names(labelSelector="app==b") == ["s2"]
    assert names(labelSelector="app!=a") == ["s2", "s3"]
    assert names(labelSelector="app in (a,b)") == ["s1", "s2"]
    assert names(labelSelector="tier notin (web)") == ["s2", "s3"]
    assert names(labelSelector="tier") == ["s1", "s3"]
    assert names(labelSelector="!tier") == ["s2"]
    assert names(labelSelector="app=a,tier=web") == ["s1"]
    assert names(fieldSelector="metadata.name=s2") == ["s2"]
    assert names(fieldSelector="metadata.name!=s2") == ["s1", "s3"]
    assert names(fieldSelector="metadata.namespace=sel,metadata.name==s3") == ["s3"]
    r = api.get(url("sel"), params={"fieldSelector": "spec.size=1"})
    assert r.status_code == 400 and "field label not supported" in r.json()["message"]
    r = api.get("/apis/example.test/v1/widgets", params={"labelSelector": "app"})
    assert sorted(i["metadata"]["name"] for i in r.json()["items"]) == ["s1", "s2"]


def test_paging_with_limit_and_continue(api: httpx.Client) -> None:
    make_ns(api, "page")
    for i in range(5):
        create(api, "page", widget(f"p{i}"))
    seen: list[str] = []
    params: dict[str, str] = {"limit": "2"}
    pages = 0
    while True:
        body = api.get(url("page"), params=params).json()
        seen += [i["metadata"]["name"] for i in body["items"]]
        pages += 1
        token = body["metadata"].get("continue")
        if not token:
            break
        assert body["metadata"]["remainingItemCount"] == 5 - len(seen)
        params = {"limit": "2", "continue": token}
    assert seen == [f"p{i}" for i in range(5)] and pages == 3
    assert api.get(url("page"), params={"continue": "garbage"}).status_code == 400


def test_schema_validation_messages(api: httpx.Client, ns: str) -> None:
    def invalid(body: dict[str, Any]) -> dict[str, Any]:
        r = api.post(url(ns), json=body)
        assert r.status_code == 422, r.text
        assert r.json()["reason"] == "Invalid"
        return r.json()

    s = invalid(widget("v1", size=0))
    assert s["message"] == ('Widget.example.test "v1" is invalid: spec.size: Invalid value: 0: '
                            "spec.size in body should be greater than or equal to 1")
    assert s["details"]["kind"] == "Widget" and s["details"]["group"] == "example.test"
    assert s["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.size",
                                       "message": "Invalid value: 0: spec.size in body should "
                                                  "be greater than or equal to 1"}]
    assert "should be less than or equal to 10" in invalid(widget("v", size=11))["message"]
    s = invalid(widget("v", size="big"))
    assert 'spec.size in body must be of type integer: "string"' in s["message"]
    assert "must be of type integer" in invalid(widget("v", size=1.5))["message"]
    s = invalid(widget("v", color="pink"))
    assert 'spec.color: Unsupported value: "pink": supported values: "red", "green", "blue"' \
        in s["message"]
    assert "should match '^[a-z][a-z0-9-]*$'" in invalid(widget("v", name="Bad"))["message"]
    assert "Too long: may not be more than 20" in invalid(widget("v", name="a" * 21))["message"]
    assert "spec.tags: Too many: 4: must have at most 3 items" in \
        invalid(widget("v", tags=["a", "b", "c", "d"]))["message"]
    body = widget("v")
    del body["spec"]["size"]
    assert "[spec.size: Required value, <nil>: " in invalid(body)["message"]
    assert "minSize must not exceed size" in invalid(widget("v", size=2, minSize=3))["message"]
    s = invalid(widget("v", size=0, color="pink"))
    assert s["message"].startswith('Widget.example.test "v" is invalid: [') and \
        len(s["details"]["causes"]) == 3  # the two, and that the CEL rules were not evaluated
    assert "must be of type integer,string" in invalid(widget("v", port=True))["message"]
    create(api, ns, widget("okport", port="http", weight=None))
    create(api, ns, widget("okport2", port=8080))
    r = api.post(url(ns), json=widget("Bad_Name"))
    assert r.status_code == 422 and "RFC 1123 subdomain" in r.json()["message"]


def test_immutable_field_transition_rule(api: httpx.Client, ns: str) -> None:
    create(api, ns, widget("imm", shape="round"))
    r = api.patch(url(ns, "imm"), headers=MERGE, json={"spec": {"shape": "square"}})
    assert r.status_code == 422
    assert r.json()["message"] == ('Widget.example.test "imm" is invalid: spec.shape: Invalid '
                                   'value: "string": shape is immutable')
    r = api.patch(url(ns, "imm"), headers=MERGE, json={"spec": {"size": 2}})
    assert r.status_code == 200  # other fields still change


def test_pruning_and_field_validation(api: httpx.Client, ns: str) -> None:
    body = widget("prune", unknown="x")
    body["metadata"]["bogus"] = 1
    body["topLevel"] = True
    r = api.post(url(ns), json=body)
    assert r.status_code == 201
    obj = r.json()
    assert "unknown" not in obj["spec"] and "topLevel" not in obj
    assert "bogus" not in obj["metadata"]
    warnings = r.headers.get_list("Warning")
    assert any('unknown field \\"spec.unknown\\"' in w for w in warnings), warnings
    r = api.post(url(ns), params={"fieldValidation": "Strict"}, json=widget("strict", nope=1))
    assert r.status_code == 400
    assert r.json()["message"] == ('Widget in version "v1" cannot be handled as a Widget: '
                                   'strict decoding error: unknown field "spec.nope"')


def test_secret_string_data(api: httpx.Client, ns: str) -> None:
    r = api.post(f"/api/v1/namespaces/{ns}/secrets", json={
        "metadata": {"name": "creds"}, "data": {"a": base64.b64encode(b"1").decode()},
        "stringData": {"apiKey": "kro_secret"}})
    assert r.status_code == 201
    secret = r.json()
    assert "stringData" not in secret and secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["apiKey"]) == b"kro_secret"
    assert base64.b64decode(secret["data"]["a"]) == b"1"
    r = api.patch(f"/api/v1/namespaces/{ns}/secrets/creds", headers=MERGE,
                  json={"stringData": {"apiKey": "rotated"}})
    assert base64.b64decode(r.json()["data"]["apiKey"]) == b"rotated"
    assert "stringData" not in api.get(f"/api/v1/namespaces/{ns}/secrets/creds").json()


def test_events_both_api_groups(api: httpx.Client, ns: str) -> None:
    r = api.post(f"/api/v1/namespaces/{ns}/events", json={
        "metadata": {"generateName": "ev-"}, "reason": "Tested", "message": "hello",
        "type": "Normal", "involvedObject": {"kind": "Widget", "name": "x", "namespace": ns},
        "firstTimestamp": "2024-05-01T10:00:00.123456+00:00",
        "eventTime": "2024-05-01T10:00:00.123456+00:00"})
    assert r.status_code == 201
    ev = r.json()
    assert ev["firstTimestamp"] == "2024-05-01T10:00:00Z"
    assert ev["eventTime"] == "2024-05-01T10:00:00.123456Z"
    name = ev["metadata"]["name"]
    v1 = api.get(f"/apis/events.k8s.io/v1/namespaces/{ns}/events/{name}").json()
    assert v1["apiVersion"] == "events.k8s.io/v1" and v1["note"] == "hello"
    assert v1["regarding"]["name"] == "x"
    r = api.get(f"/api/v1/namespaces/{ns}/events",
                params={"fieldSelector": "involvedObject.name=x,involvedObject.kind=Widget"})
    assert [e["metadata"]["name"] for e in r.json()["items"]] == [name]


def test_tables_for_printer_columns(api: httpx.Client, ns: str) -> None:
    create(api, ns, widget("tbl", size=4, color="green"))
    api.patch(url(ns, "tbl", "status"), headers=MERGE, json={"status": {"conditions": [
        {"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}})
    accept = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}
    table = api.get(url(ns, "tbl"), headers=accept).json()
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Size", "Color", "Ready",
                                                               "Age"]
    cells = table["rows"][0]["cells"]
    assert cells[:4] == ["tbl", 4, "green", "True"]
    assert cells[4].endswith("s")  # a human-readable age
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    full = api.get(url(ns), headers=accept, params={"includeObject": "Object",
                                                    "fieldSelector": "metadata.name=tbl"}).json()
    assert full["rows"][0]["object"]["spec"]["size"] == 4
    cms = api.get("/api/v1/namespaces", headers=accept).json()
    assert [c["name"] for c in cms["columnDefinitions"]][:2] == ["Name", "Status"]


def test_namespace_deletion_removes_contents(api: httpx.Client, widgets: str) -> None:
    make_ns(api, "doomed")
    create(api, "doomed", widget("a"))
    held = widget("held")
    held["metadata"]["finalizers"] = ["example.test/hold"]
    create(api, "doomed", held)
    api.post("/api/v1/namespaces/doomed/configmaps", json={"metadata": {"name": "c"}})
    r = api.delete("/api/v1/namespaces/doomed")
    assert r.status_code == 200 and r.json()["status"]["phase"] == "Terminating"
    assert api.get(url("doomed", "a")).status_code == 404
    assert api.get("/api/v1/namespaces/doomed/configmaps/c").status_code == 404
    r = api.post(url("doomed"), json=widget("late"))
    assert r.status_code == 403 and "being terminated" in r.json()["message"]
    assert api.get("/api/v1/namespaces/doomed").status_code == 200  # waits for "held"
    api.patch(url("doomed", "held"), headers=MERGE, json={"metadata": {"finalizers": []}})
    assert api.get("/api/v1/namespaces/doomed").status_code == 404
    assert api.delete("/api/v1/namespaces/default").status_code == 403


def test_crd_lifecycle(api: httpx.Client) -> None:
    from kubeapi.testing import widget_crd

    crd = widget_crd(group="gadgets.test", kind="Gadget", plural="gadgets", scope="Cluster")
    r = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
    assert r.status_code == 201
    status = r.json()["status"]
    assert {c["type"]: c["status"] for c in status["conditions"]}["Established"] == "True"
    assert status["acceptedNames"]["listKind"] == "GadgetList"
    assert "customresourcecleanup.apiextensions.k8s.io" in r.json()["metadata"]["finalizers"]
    disc = api.get("/apis/gadgets.test/v1").json()
    entry = next(e for e in disc["resources"] if e["name"] == "gadgets")
    assert entry["namespaced"] is False and entry["kind"] == "Gadget"
    assert entry["shortNames"] == ["gad"] and entry["categories"] == ["examples"]
    assert {e["name"] for e in disc["resources"]} == {"gadgets", "gadgets/status"}
    groups = api.get("/apis").json()["groups"]
    assert any(g["name"] == "gadgets.test" for g in groups)
    body = {"apiVersion": "gadgets.test/v1", "kind": "Gadget", "metadata": {"name": "g1"},
            "spec": {"size": 2}}
    assert api.post("/apis/gadgets.test/v1/gadgets", json=body).status_code == 201
    bad = widget_crd(group="bad.test")
    bad["metadata"]["name"] = "wrong.bad.test"
    r = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=bad)
    assert r.status_code == 422 and "must be spec.names.plural" in r.json()["message"]
    r = api.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gadgets.gadgets.test")
    assert r.status_code == 200
    assert api.get("/apis/gadgets.test/v1/gadgets").status_code == 404
    assert api.get("/apis/gadgets.test/v1").status_code == 404
    assert not any(g["name"] == "gadgets.test" for g in api.get("/apis").json()["groups"])
    # Re-registering the CRD does not bring back the objects of the deleted one.
    api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
    assert api.get("/apis/gadgets.test/v1/gadgets").json()["items"] == []


def test_multiple_served_versions_share_storage(api: httpx.Client) -> None:
    from kubeapi.testing import widget_crd

    crd = widget_crd(group="multi.test")
    v1 = crd["spec"]["versions"][0]
    v1["storage"] = False
    beta = json.loads(json.dumps(v1)) | {"name": "v1beta1", "storage": True}
    beta["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["color"][
        "default"] = "green"
    crd["spec"]["versions"] = [beta, v1]
    r = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=crd)
    assert r.status_code == 201 and r.json()["status"]["storedVersions"] == ["v1beta1"]
    group = api.get("/apis/multi.test").json()
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    assert group["preferredVersion"]["version"] == "v1"
    body = {"apiVersion": "multi.test/v1beta1", "kind": "Widget", "metadata": {"name": "m"},
            "spec": {"size": 1}}
    r = api.post("/apis/multi.test/v1beta1/namespaces/default/widgets", json=body)
    assert r.status_code == 201 and r.json()["spec"]["color"] == "green"
    via_v1 = api.get("/apis/multi.test/v1/namespaces/default/widgets/m").json()
    assert via_v1["apiVersion"] == "multi.test/v1" and via_v1["spec"]["size"] == 1
    r = api.post("/apis/multi.test/v1/namespaces/default/widgets",
                 json=body | {"apiVersion": "multi.test/v1beta1"})
    assert r.status_code == 400  # apiVersion in the body must match the URL


def test_discovery_documents(api: httpx.Client, widgets: str) -> None:
    assert api.get("/api").json()["versions"] == ["v1"]
    core = api.get("/api/v1").json()
    assert core["groupVersion"] == "v1"
    names = {r["name"]: r for r in core["resources"]}
    assert {"namespaces", "secrets", "configmaps", "events", "serviceaccounts",
            "services"} <= set(names)
    assert names["configmaps"]["shortNames"] == ["cm"]
    assert "watch" in names["secrets"]["verbs"] and names["secrets"]["singularName"] == "secret"
    groups = {g["name"]: g for g in api.get("/apis").json()["groups"]}
    for group in ("apps", "events.k8s.io", "coordination.k8s.io", "rbac.authorization.k8s.io",
                  "networking.k8s.io", "apiextensions.k8s.io", "example.test"):
        assert groups[group]["preferredVersion"]["version"] == "v1"
    assert api.get("/apis/example.test").json()["kind"] == "APIGroup"
    for path in ("/healthz", "/livez", "/readyz"):
        assert api.get(path).text == "ok"
    version = api.get("/version").json()
    assert version["major"] == "1" and version["minor"] == "32"


def test_openapi_documents(api: httpx.Client, widgets: str) -> None:
    root = api.get("/openapi/v3").json()["paths"]
    ref = root["apis/example.test/v1"]["serverRelativeURL"]
    doc = api.get(ref).json()
    schema = doc["components"]["schemas"]["test.example.v1.Widget"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "example.test", "kind": "Widget", "version": "v1"}]
    assert schema["properties"]["spec"]["properties"]["size"]["minimum"] == 1
    patch_op = doc["paths"]["/apis/example.test/v1/namespaces/{namespace}/widgets/{name}"][
        "patch"]
    assert any(p["name"] == "fieldValidation" for p in patch_op["parameters"])
    assert "api/v1" in root and "apis/apps/v1" in root
    v2 = api.get("/openapi/v2", headers={"Accept": "application/json"}).json()
    assert "test.example.v1.Widget" in v2["definitions"]
    r = api.get("/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert r.status_code == 406


def test_request_log(emulator: Any, api: httpx.Client, ns: str) -> None:
    api.get(url(ns, "st", "status"))
    api.patch(url(ns, "st", "status"), headers=MERGE, json={"status": {"phase": "Logged"}})
    log = emulator.request_log
    assert ("patch", f"/apis/example.test/v1/namespaces/{ns}/widgets/st/status", "widgets", ns,
            "status", 200) in [r.as_tuple() for r in log]
    served = api.get("/_emulator/requests").json()
    assert any(r["verb"] == "get" and r["subresource"] == "status" and r["group"] ==
               "example.test" for r in served)


# ---------------------------------------------------------------------------------------------
# Watch


def _events(lines: Iterator[str], count: int) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        if line.strip():
            out.append(json.loads(line))
            if len(out) >= count:
                break
    return out


def test_watch_initial_added_only_without_resource_version(api: httpx.Client) -> None:
    make_ns(api, "w1")
    create(api, "w1", widget("a"))
    listed = api.get(url("w1")).json()
    rv = listed["metadata"]["resourceVersion"]
    with api.stream("GET", url("w1"), params={"watch": "1", "timeoutSeconds": "1"}) as r:
        events = [json.loads(x) for x in r.iter_lines() if x.strip()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "a")]
    assert r.headers["content-type"].startswith("application/json")
    with api.stream("GET", url("w1"), params={"watch": "true", "resourceVersion": rv,
                                              "timeoutSeconds": "1"}) as r:
        events = [json.loads(x) for x in r.iter_lines() if x.strip()]
    assert events == []  # nothing happened after rv
    with api.stream("GET", url("w1"), params={"watch": "true", "resourceVersion": "0",
                                              "timeoutSeconds": "1"}) as r:
        assert len([x for x in r.iter_lines() if x.strip()]) == 1


def test_watch_live_events_and_resume(api: httpx.Client, emulator: Any) -> None:
    make_ns(api, "w2")
    rv0 = api.get(url("w2")).json()["metadata"]["resourceVersion"]
    with httpx.Client(base_url=emulator.url, timeout=10) as other, \
            api.stream("GET", "/apis/example.test/v1/widgets",
                       params={"watch": "1", "resourceVersion": rv0}) as r:
        lines = r.iter_lines()
        create(other, "w2", widget("live"))
        other.patch(url("w2", "live"), headers=MERGE, json={"spec": {"size": 2}})
        other.delete(url("w2", "live"))
        events = _events(lines, 3)
    assert [e["type"] for e in events] == ["ADDED", "MODIFIED", "DELETED"]
    assert events[1]["object"]["spec"]["size"] == 2
    assert events[0]["object"]["apiVersion"] == "example.test/v1"
    added_rv = events[0]["object"]["metadata"]["resourceVersion"]
    # Resume from the first event: the later ones are replayed from history.
    with api.stream("GET", url("w2"), params={"watch": "1", "resourceVersion": added_rv,
                                              "timeoutSeconds": "1"}) as r:
        replay = [json.loads(x) for x in r.iter_lines() if x.strip()]
    assert [e["type"] for e in replay] == ["MODIFIED", "DELETED"]


def test_watch_selectors_transitions_and_namespace_scope(api: httpx.Client) -> None:
    make_ns(api, "w3")
    make_ns(api, "w3-other")
    rv0 = api.get(url("w3")).json()["metadata"]["resourceVersion"]
    body = widget("lbl")
    body["metadata"]["labels"] = {"watched": "yes"}
    create(api, "w3", body)
    create(api, "w3-other", body)
    api.patch(url("w3", "lbl"), headers=MERGE, json={"metadata": {"labels": {"watched": "no"}}})
    with api.stream("GET", url("w3"), params={"watch": "1", "resourceVersion": rv0,
                                              "labelSelector": "watched=yes",
                                              "timeoutSeconds": "1"}) as r:
        events = [json.loads(x) for x in r.iter_lines() if x.strip()]
    # Leaving the selector is reported as DELETED; the other namespace is not seen.
    assert [(e["type"], e["object"]["metadata"]["namespace"]) for e in events] == [
        ("ADDED", "w3"), ("DELETED", "w3")]


def test_watch_bookmarks(api: httpx.Client) -> None:
    make_ns(api, "w4")
    # From a listed resourceVersion: "1" predates the Widget CRD, which is 410 (too old).
    listed = api.get(url("w4")).json()["metadata"]["resourceVersion"]
    with api.stream("GET", url("w4"), params={"watch": "1", "allowWatchBookmarks": "true",
                                              "resourceVersion": listed,
                                              "timeoutSeconds": "1"}) as r:
        events = [json.loads(x) for x in r.iter_lines() if x.strip()]
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert bookmarks, events
    assert bookmarks[0]["object"]["kind"] == "Widget"
    assert int(bookmarks[0]["object"]["metadata"]["resourceVersion"]) > 1
    with api.stream("GET", url("w4"), params={"watch": "1", "sendInitialEvents": "true",
                                              "allowWatchBookmarks": "true",
                                              "resourceVersionMatch": "NotOlderThan",
                                              "timeoutSeconds": "1"}) as r:
        events = [json.loads(x) for x in r.iter_lines() if x.strip()]
    assert events[0]["type"] == "BOOKMARK"
    assert events[0]["object"]["metadata"]["annotations"] == {
        "k8s.io/initial-events-end": "true"}


def test_watch_too_old_resource_version_is_410(tmp_path: Any) -> None:
    from kubeapi.testing import running_emulator

    with running_emulator(tmp_path, history_size=5) as emu, \
            httpx.Client(base_url=emu.url, timeout=10) as client:
        for i in range(10):
            client.post("/api/v1/namespaces/default/configmaps",
                        json={"metadata": {"name": f"c{i}"}})
        with client.stream("GET", "/api/v1/namespaces/default/configmaps",
                           params={"watch": "1", "resourceVersion": "2"}) as r:
            assert r.status_code == 200
            events = [json.loads(x) for x in r.iter_lines() if x.strip()]
        assert len(events) == 1 and events[0]["type"] == "ERROR"
        status = events[0]["object"]
        assert status["code"] == 410 and status["reason"] == "Expired"
        assert status["message"].startswith("too old resource version: 2")
        recent = client.get("/api/v1/namespaces/default/configmaps").json()
        rv = recent["metadata"]["resourceVersion"]
        with client.stream("GET", "/api/v1/namespaces/default/configmaps",
                           params={"watch": "1", "resourceVersion": rv,
                                   "timeoutSeconds": "1"}) as r:
            assert [x for x in r.iter_lines() if x.strip()] == []


def test_watch_disconnect_releases_the_watcher(api: httpx.Client, emulator: Any) -> None:
    def count() -> int:
        return len(emulator.server.cluster.store._watchers)

    baseline = emulator.call(count)
    with httpx.Client(base_url=emulator.url, timeout=10) as client, \
            client.stream("GET", "/api/v1/namespaces", params={"watch": "1"}) as r:
        lines = r.iter_lines()  # keep a reference: a dropped iterator closes the connection
        assert json.loads(next(lines))["type"] == "ADDED"
        assert emulator.call(count) == baseline + 1
    deadline = time.monotonic() + 5
    while emulator.call(count) != baseline:
        assert time.monotonic() < deadline, "the watcher was not released"
        time.sleep(0.05)


def test_watch_table_rendering(api: httpx.Client) -> None:
    make_ns(api, "w5")
    create(api, "w5", widget("t", size=3))
    with api.stream("GET", url("w5"), params={"watch": "1", "timeoutSeconds": "1"},
                    headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}) as r:
        events = [json.loads(x) for x in r.iter_lines() if x.strip()]
    assert events[0]["object"]["kind"] == "Table"
    assert events[0]["object"]["rows"][0]["cells"][:2] == ["t", 3]


# ---- found by tests/realkube/test_differential.py (kube-apiserver v1.34 behaves so) ----------

def test_read_resource_version_checks(api: httpx.Client, ns: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import kubeapi.server

    monkeypatch.setattr(kubeapi.server, "FRESHNESS_WAIT", 0.2)
    create(api, ns, widget("rvcheck"))
    for path in (url(ns), url(ns, "rvcheck")):
        r = api.get(path, params={"resourceVersion": "999999999"})
        assert r.status_code == 504, r.text
        body = r.json()
        assert body["reason"] == "Timeout" and body["details"]["retryAfterSeconds"] == 1
        assert body["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
        assert body["message"].startswith("Timeout: Too large resource version: 999999999")
    current = api.get(url(ns)).json()["metadata"]["resourceVersion"]
    assert api.get(url(ns), params={"resourceVersion": current}).status_code == 200
    r = api.get(url(ns), params={"resourceVersion": "abc"})
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    for params in ({"resourceVersionMatch": "NotOlderThan"},
                   {"resourceVersionMatch": "Exact", "resourceVersion": "0"},
                   {"resourceVersionMatch": "Sometime", "resourceVersion": current}):
        r = api.get(url(ns), params=params)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["details"]["kind"] == "ListOptions"
        assert r.json()["details"]["causes"][0]["field"] == "resourceVersionMatch"


def test_list_at_an_exact_resource_version(api: httpx.Client, tmp_path: Any) -> None:
    make_ns(api, "exact")
    first = create(api, "exact", widget("x"))["metadata"]["resourceVersion"]
    second = api.patch(url("exact", "x"), headers=MERGE,
                       json={"spec": {"size": 2}}).json()["metadata"]["resourceVersion"]
    create(api, "exact", widget("y"))
    assert api.delete(url("exact", "x")).status_code == 200

    def at(rv: str) -> dict[str, Any]:
        r = api.get(url("exact"), params={"resourceVersion": rv, "resourceVersionMatch": "Exact"})
        assert r.status_code == 200, r.text
        return r.json()

    listed = at(first)
    assert listed["metadata"]["resourceVersion"] == first
    assert [(i["metadata"]["name"], i["spec"]["size"]) for i in listed["items"]] == [("x", 1)]
    assert [(i["metadata"]["name"], i["spec"]["size"]) for i in at(second)["items"]] == [("x", 2)]
    assert [i["metadata"]["name"] for i in api.get(url("exact")).json()["items"]] == ["y"]
    # NotOlderThan (the default) is the latest state.
    latest = api.get(url("exact"), params={"resourceVersion": first}).json()
    assert [i["metadata"]["name"] for i in latest["items"]] == ["y"]

    from kubeapi.testing import running_emulator
    with running_emulator(tmp_path, history_size=2) as emu, \
            httpx.Client(base_url=emu.url, timeout=10) as client:
        for n in range(4):
            r = client.post("/api/v1/namespaces/default/configmaps",
                            json={"metadata": {"name": f"c{n}"}})
            assert r.status_code == 201
        r = client.get("/api/v1/namespaces/default/configmaps",
                       params={"resourceVersion": "1", "resourceVersionMatch": "Exact"})
        assert r.status_code == 410 and r.json()["reason"] == "Expired"


def test_watch_from_before_a_crd_was_registered_is_410(api: httpx.Client) -> None:
    from kubeapi.testing import widget_crd

    before = api.get("/api/v1/namespaces").json()["metadata"]["resourceVersion"]
    r = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                 json=widget_crd(group="window.test"))
    assert r.status_code == 201, r.text
    path = "/apis/window.test/v1/widgets"
    with api.stream("GET", path, params={"watch": "1", "resourceVersion": before,
                                         "timeoutSeconds": "1"}) as stream:
        events = [json.loads(x) for x in stream.iter_lines() if x.strip()]
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [
        ("ERROR", 410, "Expired")]
    listed = api.get(path).json()["metadata"]["resourceVersion"]
    with api.stream("GET", path, params={"watch": "1", "resourceVersion": listed,
                                         "timeoutSeconds": "1"}) as stream:
        assert [x for x in stream.iter_lines() if x.strip()] == []


def test_delete_answers(api: httpx.Client, ns: str) -> None:
    # Removed at once: a Success Status for most kinds (custom resources included) ...
    created = api.post(f"/api/v1/namespaces/{ns}/configmaps",
                       json={"metadata": {"name": "gone"}}).json()
    r = api.delete(f"/api/v1/namespaces/{ns}/configmaps/gone")
    assert r.status_code == 200
    assert r.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {},
                        "status": "Success", "details": {
                            "name": "gone", "kind": "configmaps",
                            "uid": created["metadata"]["uid"]}}
    # ... the object itself for a few (ReturnDeletedObject in kube-apiserver).
    api.post(f"/api/v1/namespaces/{ns}/serviceaccounts", json={"metadata": {"name": "gone"}})
    r = api.delete(f"/api/v1/namespaces/{ns}/serviceaccounts/gone")
    assert r.status_code == 200 and r.json()["kind"] == "ServiceAccount"
    # A graceful deletion (finalizers) answers the object, being deleted; removing the last
    # finalizer answers the object as updated, with the resourceVersion it had.
    body = widget("held")
    body["metadata"]["finalizers"] = ["example.test/hold"]
    create(api, ns, body)
    deleting = api.delete(url(ns, "held")).json()
    assert deleting["kind"] == "Widget" and deleting["metadata"]["deletionTimestamp"]
    r = api.patch(url(ns, "held"), headers=MERGE, json={"metadata": {"finalizers": None}})
    assert r.status_code == 200
    assert r.json()["metadata"]["resourceVersion"] == deleting["metadata"]["resourceVersion"]
    assert "finalizers" not in r.json()["metadata"]
    assert api.get(url(ns, "held")).status_code == 404
