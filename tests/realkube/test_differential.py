"""One request sequence against the emulator (src/kubeapi) and a real kube-apiserver
(.tools/bin/realkube), answers compared after normalising what legitimately differs (uids,
resourceVersion values, timestamps, message wording). Every difference is either fixed in the
emulator or listed in KNOWN_DIFFERENCES (and in src/kubeapi/README.md): a new difference fails
the test, and so does a listed one that has gone away."""
from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubeapi.testing import running_emulator
from support.realkube import running_realkube

GROUP = "diff.example.com"
NS = "diff"
BASE = f"/apis/{GROUP}/v1/namespaces/{NS}/widgets"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP, "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            ],
            "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object", "required": ["size"],
                        "properties": {
                            "size": {"type": "integer", "minimum": 1, "maximum": 10},
                            "color": {"type": "string", "enum": ["red", "blue"]},
                            "min": {"type": "integer"},
                            "max": {"type": "integer"},
                        },
                        "x-kubernetes-validations": [
                            {"rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
                             "message": "min must not exceed max"}],
                    },
                    "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
                },
            }},
        }],
    },
}


def widget(name: str, size: int = 1, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": NS, **({"labels": labels} if labels else {})},
            "spec": {"size": size, **spec}}


# ---- normalising ----------------------------------------------------------------------

def norm_status(body: dict[str, Any]) -> dict[str, Any]:
    details = body.get("details") or {}
    return {"kind": body.get("kind"), "status": body.get("status"), "reason": body.get("reason"),
            "code": body.get("code"),
            "details": {k: details.get(k) for k in ("name", "group", "kind") if details.get(k)},
            "causes": sorted({c.get("field", "") for c in details.get("causes") or []})}


def norm_object(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                         "labels": meta.get("labels"), "finalizers": meta.get("finalizers"),
                         "generation": meta.get("generation"),
                         "deleting": "deletionTimestamp" in meta,
                         "has_uid_rv_created": all(k in meta for k in ("uid", "resourceVersion",
                                                                        "creationTimestamp"))},
            "spec": body.get("spec"), "status": body.get("status")}


def norm_list(body: dict[str, Any]) -> dict[str, Any]:
    return {"kind": body.get("kind"), "apiVersion": body.get("apiVersion"),
            "has_rv": bool((body.get("metadata") or {}).get("resourceVersion")),
            "continues": bool((body.get("metadata") or {}).get("continue")),
            "items": [(i["metadata"]["name"], i.get("kind")) for i in body.get("items") or []]}


def norm_table(body: dict[str, Any]) -> dict[str, Any]:
    columns = [c["name"] for c in body.get("columnDefinitions") or []]
    keep = [i for i, c in enumerate(columns) if c != "Age"]  # ages differ by a second
    return {"kind": body.get("kind"), "columns": [columns[i] for i in keep],
            "rows": [[row["cells"][i] for i in keep] for row in body.get("rows") or []]}


def answer(response: httpx.Response) -> tuple[int, Any]:
    """(status code, normalised body) of any answer."""
    try:
        body = response.json()
    except ValueError:
        return response.status_code, response.text[:0]
    kind = body.get("kind") if isinstance(body, dict) else None
    if kind == "Status":
        return response.status_code, norm_status(body)
    if kind == "Table":
        return response.status_code, norm_table(body)
    if isinstance(kind, str) and kind.endswith("List"):
        return response.status_code, norm_list(body)
    return response.status_code, norm_object(body)


# ---- one server -------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    client: httpx.Client
    answers: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)

    def call(self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None,
             params: dict[str, str] | None = None) -> httpx.Response:
        content = None
        if body is not None:
            content = body if isinstance(body, str) else json.dumps(body)
        return self.client.request(method, path, content=content, params=params,
                                   headers={"Content-Type": "application/json", **(headers or {})})

    def record(self, step: str, value: Any) -> None:
        assert step not in self.answers, f"step {step} twice"
        self.answers[step] = value

    def watch(self, params: dict[str, str]) -> Any:
        """A watch read to its end (timeoutSeconds): its events, (type, name) or the error."""
        events: list[Any] = []
        with self.client.stream("GET", BASE, params={"watch": "true", **params}, timeout=15) as stream:
            if stream.status_code != 200:
                stream.read()
                return stream.status_code, answer(stream)[1]
            for line in stream.iter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                if event["type"] == "ERROR":
                    events.append(("ERROR", obj.get("code"), obj.get("reason")))
                elif event["type"] != "BOOKMARK":
                    events.append((event["type"], obj["metadata"]["name"], (obj.get("spec") or {}).get("size")))
        return 200, events


def sequence(s: Server) -> None:
    """The request sequence; each s.record() is one compared answer."""
    r = s.call("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                    "metadata": {"name": NS}})
    s.record("namespace create", r.status_code)
    r = s.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=CRD)
    s.record("crd create", (r.status_code, r.json()["metadata"]["name"]))
    wait_established(s)
    r = s.call("GET", f"/apis/{GROUP}/v1")
    resources = sorted((x["name"], x["namespaced"], x["kind"], tuple(sorted(x.get("verbs") or [])))
                       for x in r.json()["resources"])
    s.record("discovery", (r.status_code, resources))

    r = s.call("POST", BASE, body=widget("a", 2, {"app": "web", "tier": "front"}, color="red"))
    s.record("create a", answer(r))
    s.state["rv_a"] = r.json()["metadata"]["resourceVersion"]
    s.record("create b", answer(s.call("POST", BASE, body=widget("b", 3, {"app": "db"}))))
    s.record("create c", answer(s.call("POST", BASE, body=widget("c", 4))))
    s.record("create existing", answer(s.call("POST", BASE, body=widget("a"))))
    s.record("get a", answer(s.call("GET", f"{BASE}/a")))
    s.record("get missing", answer(s.call("GET", f"{BASE}/nope")))
    s.record("schema: required missing", answer(s.call("POST", BASE, body={
        **widget("bad1"), "spec": {"color": "red"}})))
    s.record("schema: enum and maximum", answer(s.call("POST", BASE, body=widget("bad2", 11, color="green"))))
    s.record("schema: wrong type", answer(s.call("POST", BASE, body=widget("bad3", "big"))))  # type: ignore[arg-type]
    s.record("cel rule", answer(s.call("POST", BASE, body=widget("bad4", 1, min=5, max=2))))
    s.record("name not a DNS subdomain", answer(s.call("POST", BASE, body=widget("Bad_Name"))))

    r = s.call("GET", BASE)
    s.record("list", answer(r))
    s.state["rv_list"] = r.json()["metadata"]["resourceVersion"]
    for selector in ("app=web", "app!=web", "app in (web,db)", "app notin (web)", "app", "!app",
                     "app=web,tier=front"):
        s.record(f"labelSelector {selector}", answer(s.call("GET", BASE, params={"labelSelector": selector})))
    for selector in ("metadata.name=b", "metadata.name!=b", f"metadata.namespace={NS}"):
        s.record(f"fieldSelector {selector}", answer(s.call("GET", BASE, params={"fieldSelector": selector})))
    s.record("fieldSelector on spec (unsupported)",
             answer(s.call("GET", BASE, params={"fieldSelector": "spec.size=2"}))[0])
    r = s.call("GET", BASE, params={"limit": "2"})
    s.record("list limit 2", answer(r))
    token = (r.json().get("metadata") or {}).get("continue")
    s.record("list continue", answer(s.call("GET", BASE, params={"limit": "2", "continue": token or ""})))

    s.record("merge patch", answer(s.call("PATCH", f"{BASE}/a", body={"spec": {"size": 5}}, headers=MERGE)))
    s.record("json patch", answer(s.call("PATCH", f"{BASE}/a", headers=JSON_PATCH, body=[
        {"op": "replace", "path": "/spec/color", "value": "blue"},
        {"op": "add", "path": "/metadata/labels/extra", "value": "yes"}])))
    s.record("json patch test fails", answer(s.call("PATCH", f"{BASE}/a", headers=JSON_PATCH, body=[
        {"op": "test", "path": "/spec/size", "value": 99}]))[0])
    s.record("merge patch violating schema", answer(s.call("PATCH", f"{BASE}/a", body={"spec": {"size": 0}},
                                                           headers=MERGE)))
    s.record("strategic merge on a custom resource",
             answer(s.call("PATCH", f"{BASE}/a", body={"spec": {"size": 6}}, headers=STRATEGIC))[0])
    stale = {**widget("a", 7), "metadata": {"name": "a", "namespace": NS, "resourceVersion": s.state["rv_a"]}}
    s.record("update with stale resourceVersion", answer(s.call("PUT", f"{BASE}/a", body=stale)))
    current = s.call("GET", f"{BASE}/a").json()
    current["spec"]["size"] = 7
    s.record("update with current resourceVersion", answer(s.call("PUT", f"{BASE}/a", body=current)))

    s.record("status patch", answer(s.call("PATCH", f"{BASE}/a/status", headers=MERGE, body={
        "status": {"phase": "Up"}, "spec": {"size": 9}})))
    s.record("main patch ignores status", answer(s.call("PATCH", f"{BASE}/a", headers=MERGE, body={
        "status": {"phase": "Down"}, "metadata": {"labels": {"touched": "yes"}}})))
    s.record("get status subresource", answer(s.call("GET", f"{BASE}/a/status")))

    applied = "\n".join([f"apiVersion: {GROUP}/v1", "kind: Widget",
                         f"metadata: {{name: d, namespace: {NS}}}", "spec: {size: 2, color: red}"])
    s.record("apply create", answer(s.call("PATCH", f"{BASE}/d", body=applied, headers=APPLY,
                                           params={"fieldManager": "one"})))
    other = applied.replace("size: 2", "size: 3")
    s.record("apply conflict", answer(s.call("PATCH", f"{BASE}/d", body=other, headers=APPLY,
                                             params={"fieldManager": "two"})))
    s.record("apply force", answer(s.call("PATCH", f"{BASE}/d", body=other, headers=APPLY,
                                          params={"fieldManager": "two", "force": "true"})))
    s.record("apply without fieldManager", answer(s.call("PATCH", f"{BASE}/d", body=other, headers=APPLY))[0])
    managers = s.call("GET", f"{BASE}/d").json()["metadata"].get("managedFields") or []
    s.record("managedFields managers", sorted((m.get("manager"), m.get("operation")) for m in managers))

    s.record("watch from list resourceVersion",
             s.watch({"resourceVersion": s.state["rv_list"], "timeoutSeconds": "1"}))
    s.record("watch from a too old resourceVersion", s.watch({"resourceVersion": "1", "timeoutSeconds": "1"}))

    s.record("table", answer(s.call("GET", BASE, headers=TABLE)))
    s.record("table of one", answer(s.call("GET", f"{BASE}/b", headers=TABLE)))

    s.record("add finalizer", answer(s.call("PATCH", f"{BASE}/b", headers=MERGE, body={
        "metadata": {"finalizers": ["diff.example.com/hold"]}})))
    s.record("delete with finalizer", answer(s.call("DELETE", f"{BASE}/b")))
    s.record("get while deleting", answer(s.call("GET", f"{BASE}/b")))
    s.record("new finalizer while deleting", answer(s.call("PATCH", f"{BASE}/b", headers=MERGE, body={
        "metadata": {"finalizers": ["diff.example.com/hold", "diff.example.com/more"]}}))[0])
    s.record("remove finalizer", answer(s.call("PATCH", f"{BASE}/b", headers=MERGE, body={
        "metadata": {"finalizers": None}}))[0])
    s.record("get after finalizer removed", answer(s.call("GET", f"{BASE}/b")))
    s.record("delete without finalizer", answer(s.call("DELETE", f"{BASE}/c"))[0])
    s.record("delete missing", answer(s.call("DELETE", f"{BASE}/c")))
    s.record("list at the end", answer(s.call("GET", BASE)))


def wait_established(s: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = s.call("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{GROUP}")
        conditions = (r.json().get("status") or {}).get("conditions") or []
        # Served only once discovery has it too (the real server lags Established a little).
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions) and \
                s.call("GET", f"/apis/{GROUP}/v1").status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"{s.name}: widgets CRD not Established after {timeout:.0f}s")


HISTORY = 12

#: Steps whose answers differ, with why (mirrored in src/kubeapi/README.md).
KNOWN_DIFFERENCES: dict[str, str] = {
    "apply conflict": "no managedFields, so no apply conflicts: a second field manager's apply "
                      "of a field another manager owns succeeds (200) instead of 409 Conflict",
    "managedFields managers": "no metadata.managedFields are kept (kube-apiserver lists each "
                              "manager and operation)",
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    # The emulator's watch history is a window of events (its model of etcd compaction and
    # the watch cache): small here, so resourceVersion 1 has left it by the time it is asked for.
    with running_emulator(tmp_path_factory.mktemp("emulator"), history_size=HISTORY) as emu, \
            running_realkube(tmp_path_factory.mktemp("real")) as real:
        emulator = Server("emulator", httpx.Client(base_url=emu.url, timeout=10,
                                                    headers={"Authorization": "Bearer any"}))
        apiserver = Server("real", httpx.Client(base_url=real.url, timeout=10,
                                                verify=ssl.create_default_context(cafile=str(real.ca)),
                                                headers={"Authorization": f"Bearer {real.token}"}))
        try:
            yield emulator, apiserver
        finally:
            emulator.client.close()
            apiserver.client.close()


def test_the_emulator_answers_as_the_real_api_server(servers: tuple[Server, Server],
                                                      record_property: Callable[[str, Any], None]) -> None:
    emulator, real = servers
    sequence(real)
    sequence(emulator)
    assert list(emulator.answers) == list(real.answers)
    differing = {step for step in real.answers if emulator.answers[step] != real.answers[step]}
    identical = len(real.answers) - len(differing)
    summary = f"differential: {identical} of {len(real.answers)} answers identical"
    print(f"\n{summary}")
    record_property("differential", summary)
    for step in sorted(differing):
        print(f"- {step}:\n    real:     {real.answers[step]}\n    emulator: {emulator.answers[step]}")
    assert differing == set(KNOWN_DIFFERENCES), (
        f"new differences: {sorted(differing - set(KNOWN_DIFFERENCES))}; "
        f"listed but gone: {sorted(set(KNOWN_DIFFERENCES) - differing)}")


def test_the_readme_lists_every_known_difference() -> None:
    readme = (Path(__file__).resolve().parents[2] / "src" / "kubeapi" / "README.md").read_text()
    missing = [step for step in KNOWN_DIFFERENCES if f"`{step}`" not in readme]
    assert not missing, f"src/kubeapi/README.md does not list: {missing}"
