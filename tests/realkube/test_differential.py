"""A differential test: one request sequence against the emulator (src/kubeapi) and against a
real kube-apiserver (.tools/bin/realkube), through raw HTTP, the answers compared step by step.

Each step is one compared answer: the status code and the body, normalised first. What is
normalised away is only what two correct servers may legitimately disagree on:

- uid, resourceVersion, creationTimestamp and deletionTimestamp values (their presence is
  compared; that resourceVersions increase with every write is its own step);
- ``metadata.managedFields`` in objects (which managers hold fields is its own step);
- the wording of Status ``message``s: ``kind``, ``status``, ``reason``, ``code``, ``details``
  (``name``, ``group``, ``kind``, ``retryAfterSeconds``) and the ``(reason, field)`` of every
  ``details.causes`` entry (as a set) are compared; messages are collected and their differences printed,
  but do not count (kube-apiserver's messages embed Go error strings the emulator paraphrases);
- the values of Table cells of type ``date`` (ages: the two servers' objects differ in age).

Every differing step is either fixed in the emulator or listed in KNOWN_DIFFERENCES (and in
src/kubeapi/README.md): a new difference fails the test, and so does a listed one that is gone.

    .venv/bin/python -m pytest tests/realkube/test_differential.py -s   # prints the summary
"""
from __future__ import annotations

import json
import re
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kubeapi.testing import running_emulator
from support.realkube import running_realkube

GROUP = "diff.example.com"
NS = "diff"
CRD_PATH = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{GROUP}"
BASE = f"/apis/{GROUP}/v1/namespaces/{NS}/widgets"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
FUTURE_RV = "999999999"
HOLD = f"{GROUP}/hold"

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP, "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                  "listKind": "WidgetList"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [
                {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
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


def widget(name: str, size: Any = 1, labels: dict[str, str] | None = None,
           **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": meta,
            "spec": {"size": size, **spec}}


def applied(size: int) -> str:
    """A server-side apply body (YAML) for widget d."""
    return yaml.safe_dump({"apiVersion": f"{GROUP}/v1", "kind": "Widget",
                           "metadata": {"name": "d", "namespace": NS},
                           "spec": {"size": size, "color": "red"}})


# ---- normalising --------------------------------------------------------------------------

#: Metadata whose values differ between any two servers: compared as present or not.
VOLATILE_META = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp")


def norm_status(body: dict[str, Any]) -> dict[str, Any]:
    details = body.get("details") or {}
    return {"kind": body.get("kind"), "status": body.get("status"),
            "reason": body.get("reason"), "code": body.get("code"),
            "details": {k: details[k] for k in ("name", "group", "kind", "retryAfterSeconds")
                        if details.get(k)},
            # A set: kube-apiserver reports some causes twice (e.g. a new finalizer on an
            # object being deleted, from two validation passes).
            "causes": sorted({(c.get("reason", ""), c.get("field", ""))
                              for c in details.get("causes") or []})}


def norm_meta(meta: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in meta.items() if k != "managedFields"}
    for k in VOLATILE_META:
        if k in out:
            out[k] = "<set>"
    return out


def norm_object(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "metadata": norm_meta(body.get("metadata") or {})}


def norm_list(body: dict[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    return {**body,
            "metadata": {"resourceVersion": "<set>" if meta.get("resourceVersion") else None,
                         "continue": bool(meta.get("continue")),
                         "remainingItemCount": meta.get("remainingItemCount")},
            "items": [norm_object(i) for i in body.get("items") or []]}


def norm_table(body: dict[str, Any]) -> dict[str, Any]:
    columns = body.get("columnDefinitions") or []
    dates = {i for i, c in enumerate(columns) if c.get("type") == "date"}
    rows = [{"cells": [("<age>" if cell else cell) if i in dates else cell
                       for i, cell in enumerate(row.get("cells") or [])],
             "object": {"kind": (row.get("object") or {}).get("kind"),
                        "metadata": norm_meta((row.get("object") or {}).get("metadata") or {})}}
            for row in body.get("rows") or []]
    return {"kind": body.get("kind"), "apiVersion": body.get("apiVersion"),
            "resourceVersion": bool((body.get("metadata") or {}).get("resourceVersion")),
            "columns": [(c.get("name"), c.get("type"), c.get("format"), c.get("priority"))
                        for c in columns],
            "rows": rows}


def normalise(response: httpx.Response) -> tuple[int, Any]:
    """(status code, normalised body) of any answer."""
    try:
        body = response.json()
    except ValueError:
        return response.status_code, ("not JSON", response.headers.get("Content-Type"))
    kind = body.get("kind") if isinstance(body, dict) else None
    if kind == "Status":
        return response.status_code, norm_status(body)
    if kind == "Table":
        return response.status_code, norm_table(body)
    if isinstance(kind, str) and kind.endswith("List"):
        return response.status_code, norm_list(body)
    if isinstance(body, dict):
        return response.status_code, norm_object(body)
    return response.status_code, body


# ---- one server ---------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    client: httpx.Client
    answers: dict[str, Any] = field(default_factory=dict)
    #: Status messages by step (compared for information only).
    messages: dict[str, str] = field(default_factory=dict)
    #: (step, resourceVersion) of every successful write that returned an object.
    write_rvs: list[tuple[str, int]] = field(default_factory=list)

    def call(self, method: str, path: str, *, body: Any = None,
             headers: dict[str, str] | None = None,
             params: dict[str, str] | None = None) -> httpx.Response:
        content = None
        if body is not None:
            content = body if isinstance(body, str) else json.dumps(body)
        return self.client.request(method, path, content=content, params=params,
                                   headers={"Content-Type": "application/json",
                                            **(headers or {})})

    def record(self, step: str, value: Any) -> None:
        assert step not in self.answers, f"step {step!r} twice"
        self.answers[step] = value

    def ask(self, step: str, method: str, path: str = BASE, *, body: Any = None,
            headers: dict[str, str] | None = None,
            params: dict[str, str] | None = None) -> httpx.Response:
        """One request, its normalised answer recorded as ``step``."""
        r = self.call(method, path, body=body, headers=headers, params=params)
        self.record(step, normalise(r))
        try:
            data = r.json()
        except ValueError:
            return r
        if isinstance(data, dict) and data.get("kind") == "Status":
            self.messages[step] = data.get("message", "")
        elif method != "GET" and r.is_success and isinstance(data, dict):
            rv = (data.get("metadata") or {}).get("resourceVersion")
            if rv and not str(data.get("kind", "")).endswith("List"):
                self.write_rvs.append((step, int(rv)))
        return r

    def watch(self, step: str, params: dict[str, str], max_events: int = 50) -> None:
        """A watch of widgets, read until the server ends it (``timeoutSeconds``) or
        ``max_events`` events: recorded as (code, events as (type, name, size, generation)
        or (ERROR, code, reason), whether their resourceVersions increase)."""
        events: list[tuple[Any, ...]] = []
        rvs: list[int] = []
        with self.client.stream("GET", BASE, params={"watch": "true", **params},
                                timeout=15) as stream:
            if stream.status_code != 200:
                stream.read()
                self.record(step, normalise(stream))
                return
            for line in stream.iter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                obj = event.get("object") or {}
                meta = obj.get("metadata") or {}
                if event["type"] == "ERROR":
                    events.append(("ERROR", obj.get("code"), obj.get("reason")))
                    self.messages[step] = obj.get("message", "")
                elif event["type"] != "BOOKMARK":
                    events.append((event["type"], meta.get("name"),
                                   (obj.get("spec") or {}).get("size"), meta.get("generation")))
                    rvs.append(int(meta["resourceVersion"]))
                if len(events) >= max_events:
                    break
        self.record(step, (200, events, rvs == sorted(set(rvs))))


# ---- the sequence -------------------------------------------------------------------------

def register_crd(s: Server) -> None:
    s.ask("namespace create", "POST", "/api/v1/namespaces",
          body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
    r = s.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=CRD)
    # Only code and name: the status in this answer races the establishing controller.
    s.record("crd create", (r.status_code, r.json()["metadata"]["name"]))
    wait_established(s)
    r = s.call("GET", CRD_PATH)
    crd = r.json()
    conditions = sorted((c["type"], c["status"], c.get("reason"))
                        for c in crd["status"].get("conditions") or [])
    s.record("crd established", (r.status_code, conditions, crd["status"].get("acceptedNames"),
                                 crd["status"].get("storedVersions")))
    s.record("crd spec as stored", crd["spec"])
    r = s.call("GET", f"/apis/{GROUP}/v1")
    resources = sorted((x["name"], x["namespaced"], x["kind"], tuple(sorted(x.get("verbs") or [])))
                       for x in r.json()["resources"])
    s.record("discovery", (r.status_code, resources))


def wait_established(s: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conditions = (s.call("GET", CRD_PATH).json().get("status") or {}).get("conditions") or []
        # Served only once discovery has it too (the real server lags Established a little).
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions) and \
                s.call("GET", f"/apis/{GROUP}/v1").status_code == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"{s.name}: widgets CRD not Established after {timeout:.0f}s")


def create_and_read(s: Server) -> dict[str, str]:
    """Creates a, b, c; returns resourceVersions for later steps."""
    rvs: dict[str, str] = {}
    r = s.ask("create a", "POST", body=widget("a", 2, {"app": "web", "tier": "front"},
                                              color="red"))
    rvs["a"] = r.json()["metadata"]["resourceVersion"]
    s.ask("create b", "POST", body=widget("b", 3, {"app": "db"}))
    s.ask("create c", "POST", body=widget("c", 4))
    s.ask("create existing", "POST", body=widget("a"))
    s.ask("get a", "GET", f"{BASE}/a")
    s.ask("get missing", "GET", f"{BASE}/nope")
    s.ask("get from a future resourceVersion", "GET", f"{BASE}/a",
          params={"resourceVersion": FUTURE_RV})

    s.ask("schema: required missing", "POST", body={**widget("bad1"), "spec": {"color": "red"}})
    s.ask("schema: enum and maximum", "POST", body=widget("bad2", 11, color="green"))
    s.ask("schema: wrong type", "POST", body=widget("bad3", "big"))
    s.ask("cel rule", "POST", body=widget("bad4", 1, min=5, max=2))
    s.ask("name not a DNS subdomain", "POST", body=widget("Bad_Name"))

    r = s.ask("list", "GET")
    rvs["list"] = r.json()["metadata"]["resourceVersion"]
    s.ask("list from resourceVersion 0", "GET", params={"resourceVersion": "0"})
    s.ask("list exact at the resourceVersion of a", "GET",
          params={"resourceVersion": rvs["a"], "resourceVersionMatch": "Exact"})
    s.ask("list from a future resourceVersion", "GET", params={"resourceVersion": FUTURE_RV})
    s.ask("list with a malformed resourceVersion", "GET", params={"resourceVersion": "abc"})
    s.ask("list with resourceVersionMatch alone", "GET",
          params={"resourceVersionMatch": "NotOlderThan"})
    r = s.ask("list limit 2", "GET", params={"limit": "2"})
    token = (r.json().get("metadata") or {}).get("continue") or ""
    s.ask("list continue", "GET", params={"limit": "2", "continue": token})
    return rvs


def selectors(s: Server) -> None:
    for selector in ("app=web", "app!=web", "app in (web,db)", "app notin (web)", "app", "!app",
                     "app=web,tier=front"):
        s.ask(f"labelSelector {selector}", "GET", params={"labelSelector": selector})
    for selector in ("metadata.name=b", "metadata.name!=b", f"metadata.namespace={NS}",
                     "metadata.namespace=other", "spec.size=2"):
        s.ask(f"fieldSelector {selector}", "GET", params={"fieldSelector": selector})


def patches_and_updates(s: Server, rv_a: str) -> None:
    s.ask("merge patch", "PATCH", f"{BASE}/a", body={"spec": {"size": 5}}, headers=MERGE)
    s.ask("json patch", "PATCH", f"{BASE}/a", headers=JSON_PATCH, body=[
        {"op": "replace", "path": "/spec/color", "value": "blue"},
        {"op": "add", "path": "/metadata/labels/extra", "value": "yes"}])
    s.ask("json patch failing test op", "PATCH", f"{BASE}/a", headers=JSON_PATCH,
          body=[{"op": "test", "path": "/spec/size", "value": 99}])
    s.ask("merge patch violating the schema", "PATCH", f"{BASE}/a",
          body={"spec": {"size": 0}}, headers=MERGE)
    s.ask("merge patch violating the cel rule", "PATCH", f"{BASE}/a",
          body={"spec": {"min": 3, "max": 1}}, headers=MERGE)
    s.ask("strategic merge patch on a custom resource", "PATCH", f"{BASE}/a",
          body={"spec": {"size": 6}}, headers=STRATEGIC)
    stale = widget("a", 7)
    stale["metadata"]["resourceVersion"] = rv_a
    s.ask("update with a stale resourceVersion", "PUT", f"{BASE}/a", body=stale)
    current = s.call("GET", f"{BASE}/a").json()
    current["spec"]["size"] = 7
    s.ask("update with the current resourceVersion", "PUT", f"{BASE}/a", body=current)


def status_subresource(s: Server) -> None:
    s.ask("status patch", "PATCH", f"{BASE}/a/status", headers=MERGE,
          body={"status": {"phase": "Up"}, "spec": {"size": 9}})
    s.ask("main patch ignores status", "PATCH", f"{BASE}/a", headers=MERGE,
          body={"status": {"phase": "Down"}, "metadata": {"labels": {"touched": "yes"}}})
    whole = s.call("GET", f"{BASE}/a").json()
    whole["spec"]["size"] = 1
    whole["status"] = {"phase": "Steady"}
    s.ask("status update (PUT)", "PUT", f"{BASE}/a/status", body=whole)
    s.ask("get status subresource", "GET", f"{BASE}/a/status")


def server_side_apply(s: Server) -> None:
    s.ask("apply create", "PATCH", f"{BASE}/d", body=applied(2), headers=APPLY,
          params={"fieldManager": "one"})
    s.ask("apply again unchanged", "PATCH", f"{BASE}/d", body=applied(2), headers=APPLY,
          params={"fieldManager": "one"})
    # A dry run, so that where the conflict is missed (the emulator) the object stays as it
    # is and the forced apply below is a change on both servers.
    s.ask("apply conflict", "PATCH", f"{BASE}/d", body=applied(3), headers=APPLY,
          params={"fieldManager": "two", "dryRun": "All"})
    s.ask("apply force", "PATCH", f"{BASE}/d", body=applied(3), headers=APPLY,
          params={"fieldManager": "two", "force": "true"})
    s.ask("apply without fieldManager", "PATCH", f"{BASE}/d", body=applied(3), headers=APPLY)
    managers = s.call("GET", f"{BASE}/d").json()["metadata"].get("managedFields") or []
    s.record("managedFields managers",
             sorted((m.get("manager"), m.get("operation")) for m in managers))


def watches(s: Server, rv_list: str) -> None:
    s.watch("watch from the list resourceVersion",
            {"resourceVersion": rv_list, "timeoutSeconds": "1"})
    s.watch("watch with a label selector",
            {"resourceVersion": rv_list, "labelSelector": "app=web", "timeoutSeconds": "1"})
    # From before the resource was served (its CRD was created): too old on both servers.
    s.watch("watch from a too old resourceVersion", {"resourceVersion": "1", "timeoutSeconds": "1"})
    s.watch("watch from a future resourceVersion",
            {"resourceVersion": FUTURE_RV, "timeoutSeconds": "1"})


def tables(s: Server) -> None:
    s.ask("table", "GET", headers=TABLE)
    s.ask("table of one", "GET", f"{BASE}/b", headers=TABLE)


def finalizers_and_deletion(s: Server) -> None:
    s.ask("add finalizer", "PATCH", f"{BASE}/b", headers=MERGE,
          body={"metadata": {"finalizers": [HOLD]}})
    s.ask("delete with finalizer", "DELETE", f"{BASE}/b")
    s.ask("get while deleting", "GET", f"{BASE}/b")
    s.ask("delete again while deleting", "DELETE", f"{BASE}/b")
    s.ask("new finalizer while deleting", "PATCH", f"{BASE}/b", headers=MERGE,
          body={"metadata": {"finalizers": [HOLD, f"{GROUP}/more"]}})
    s.ask("remove finalizer", "PATCH", f"{BASE}/b", headers=MERGE,
          body={"metadata": {"finalizers": None}})
    s.ask("get after finalizer removed", "GET", f"{BASE}/b")
    s.ask("delete without finalizer", "DELETE", f"{BASE}/c")
    s.ask("delete missing", "DELETE", f"{BASE}/c")
    s.ask("list at the end", "GET")


def sequence(s: Server) -> None:
    """The request sequence; every recorded step is one compared answer."""
    register_crd(s)
    rvs = create_and_read(s)
    selectors(s)
    patches_and_updates(s, rvs["a"])
    status_subresource(s)
    server_side_apply(s)
    watches(s, rvs["list"])
    tables(s)
    finalizers_and_deletion(s)


def record_write_order(servers: tuple[Server, ...]) -> None:
    """One more compared answer: for each write that succeeded on every server, whether it
    gave a resourceVersion above all earlier ones (False: a no-op write). A write that
    succeeded on one server only already differs in its own step."""
    common = set.intersection(*({step for step, _ in s.write_rvs} for s in servers))
    for s in servers:
        flags: list[tuple[str, bool]] = []
        highest = 0
        for step, rv in s.write_rvs:
            if step in common:
                flags.append((step, rv > highest))
            highest = max(highest, rv)
        s.record("resourceVersions increase with every write", flags)


# ---- the test -----------------------------------------------------------------------------

#: Steps whose answers differ, with why (each also listed in src/kubeapi/README.md).
KNOWN_DIFFERENCES: dict[str, str] = {
    "apply conflict": "no managedFields, so no apply conflicts: a second field manager's apply "
                      "of a field another manager owns succeeds (200) instead of 409 Conflict",
    "managedFields managers": "no metadata.managedFields are kept (kube-apiserver lists each "
                              "manager and operation)",
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    with running_emulator(tmp_path_factory.mktemp("emulator")) as emu, \
            running_realkube(tmp_path_factory.mktemp("real")) as real:
        # The emulator accepts any bearer token; send the one its kubeconfig carries.
        user = yaml.safe_load(emu.kubeconfig.read_text())["users"][0]["user"]
        emulator = Server("emulator", httpx.Client(
            base_url=emu.url, timeout=10, headers={"Authorization": f"Bearer {user['token']}"}))
        # An SSLContext for the CA: httpx 0.28 deprecates verify=<path>.
        apiserver = Server("real", httpx.Client(
            base_url=real.url, timeout=10, verify=ssl.create_default_context(cafile=str(real.ca)),
            headers={"Authorization": f"Bearer {real.token}"}))
        try:
            yield emulator, apiserver
        finally:
            emulator.client.close()
            apiserver.client.close()


def _masked(message: str) -> str:
    return re.sub(r"\d+", "N", message)


def test_the_emulator_answers_as_the_real_api_server(
        servers: tuple[Server, Server], record_property: Callable[[str, Any], None]) -> None:
    emulator, real = servers
    sequence(real)
    sequence(emulator)
    record_write_order((real, emulator))
    assert list(emulator.answers) == list(real.answers)
    differing = {step for step in real.answers if emulator.answers[step] != real.answers[step]}
    identical = len(real.answers) - len(differing)
    summary = f"differential: {identical} of {len(real.answers)} answers identical"
    print(f"\n{summary}")
    record_property("differential", summary)
    for step in real.answers:
        if step in differing:
            print(f"- {step}:\n    real:     {real.answers[step]}\n"
                  f"    emulator: {emulator.answers[step]}")
    worded = [step for step in real.messages if step in emulator.messages
              and _masked(real.messages[step]) != _masked(emulator.messages[step])]
    print(f"Status messages worded differently (not counted): {len(worded)} of "
          f"{len(real.messages)}")
    for step in worded:
        print(f"  {step}:\n    real:     {real.messages[step]}\n"
              f"    emulator: {emulator.messages[step]}")
    assert differing == set(KNOWN_DIFFERENCES), (
        f"new differences: {sorted(differing - set(KNOWN_DIFFERENCES))}; "
        f"listed but gone: {sorted(set(KNOWN_DIFFERENCES) - differing)}")


def test_the_readme_lists_every_known_difference() -> None:
    readme = (Path(__file__).resolve().parents[2] / "src" / "kubeapi" / "README.md").read_text()
    missing = [step for step in KNOWN_DIFFERENCES if f"`{step}`" not in readme]
    assert not missing, f"src/kubeapi/README.md does not list: {missing}"
