"""Every deploy/argocd/cube-operator.io/<Kind>/health.lua run the way Argo CD runs it —
gopher-lua (Lua 5.1) in Argo CD's sandbox, through .tools/bin/health (testbed/health) —
over the sample objects of test_argocd_health.py, against the verdicts lua5.4 gives.

Argo CD opens no standard library for a resource.customizations.health script unless
resource.customizations.useOpenLibs.<group>_<Kind> is true (deploy/argocd/argocd-cm.yaml
sets none): only base, table, package and a two-function os. So `string.format` is an
error there, which Argo CD shows as health Unknown; lua5.4 has the whole library."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import test_argocd_health as lua54
from deploy_helpers import ARGOCD, KINDS, ROOT

from cube_operator.controllers._common import TERMINAL_REASONS

HEALTH = ROOT / ".tools" / "bin" / "health"

Case = tuple[str, str, dict[str, Any]]  # (id, kind, object)


def _cases() -> list[Case]:
    make = lua54.make
    cases: list[Case] = []
    for kind in KINDS:
        for name, factory, _status, _message in lua54.COMMON_CASES:
            cases.append((f"{kind}-{name}", kind, factory(kind)))
        for reason in TERMINAL_REASONS:
            cases.append((f"{kind}-terminal-{reason}", kind,
                          make(kind, ready={"type": "Ready", "status": "False", "reason": reason,
                                            "message": "the provider said no"})))
        if kind != "Cube":
            cases.append((f"{kind}-power-state-means-nothing", kind,
                          make(kind, spec=lua54.STOPPED, ready=lua54.READY_TRUE)))
    cube_ready = {"type": "Ready", "status": "True", "reason": "Stopped", "message": "VM is stopped"}
    restore = lua54.RESTORE_SPEC
    cases += [
        ("Cube-terminal-without-message", "Cube",
         make("Cube", ready={"type": "Ready", "status": "False", "reason": "InvalidCredentials"})),
        ("Cube-terminal-reason-status-unknown", "Cube",
         make("Cube", ready={"type": "Ready", "status": "Unknown", "reason": "Failed", "message": "x"})),
        ("Cube-stopped", "Cube", make("Cube", spec=lua54.STOPPED, ready=cube_ready)),
        ("Cube-stopping", "Cube", make("Cube", spec=lua54.STOPPED, ready={
            "type": "Ready", "status": "False", "reason": "Stopping", "message": "going to sleep"})),
        ("Cube-running", "Cube", make("Cube", spec={**lua54.STOPPED, "powerState": "Running"},
                                      ready=lua54.READY_TRUE)),
        ("Restore-succeeded", "Restore", make("Restore", spec=restore, status={"phase": "Succeeded"}, ready={
            "type": "Ready", "status": "True", "reason": "Succeeded",
            "message": "Restored snapshot nightly onto web-1"})),
        ("Restore-succeeded-no-conditions", "Restore",
         make("Restore", spec=restore, status={"phase": "Succeeded"})),
        ("Restore-failed", "Restore", make("Restore", spec=restore, status={"phase": "Failed"}, ready={
            "type": "Ready", "status": "False", "reason": "RestoreFailed",
            "message": "provider reported error"})),
        ("Restore-failed-no-conditions", "Restore", make("Restore", spec=restore, status={"phase": "Failed"})),
        *[(f"Restore-{phase}", "Restore", make("Restore", spec=restore, status={"phase": phase}, ready={
            "type": "Ready", "status": "False", "reason": phase, "message": "restoring"}))
          for phase in ("Pending", "Running")],
        ("Restore-paused-failed", "Restore", make("Restore", spec=restore, status={"phase": "Failed"},
                                                  annotations={"cube-operator.io/paused": "true"})),
        ("Snapshot-phase-means-nothing", "Snapshot", make("Snapshot", status={"phase": "Succeeded"})),
        ("Cube-no-generation-no-conditions", "Cube", {
            "apiVersion": "cube-operator.io/v1alpha1", "kind": "Cube", "metadata": {"name": "x"},
            "status": {"observedGeneration": 1}}),
    ]
    return cases


CASES = _cases()
IDS = [c[0] for c in CASES]


def run_health(objects: list[dict[str, Any]] | dict[str, Any], *args: str,
               argocd_dir: Path = ARGOCD) -> list[dict[str, Any]]:
    """.tools/bin/health over a list of objects or a kubectl List."""
    if not HEALTH.exists():
        pytest.fail(f"{HEALTH} is missing: run `make tools` (scripts/install-test-tools.sh builds it "
                    "from testbed/health with Go)")
    result = subprocess.run([str(HEALTH), "--argocd-dir", str(argocd_dir), *args], input=json.dumps(objects),
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    verdicts = json.loads(result.stdout)
    assert len(verdicts) == len(objects["items"] if isinstance(objects, dict) else objects)
    return list(verdicts)


@pytest.fixture(scope="module")
def sandboxed() -> dict[str, dict[str, Any]]:
    """Every case in one run, with the libraries argocd-cm.yaml gives (Argo CD's default)."""
    return dict(zip(IDS, run_health([c[2] for c in CASES]), strict=True))


@pytest.fixture(scope="module")
def open_libs() -> dict[str, dict[str, Any]]:
    """The same with useOpenLibs forced on (the whole gopher-lua library)."""
    return dict(zip(IDS, run_health([c[2] for c in CASES], "--open-libs=true"), strict=True))


@pytest.mark.parametrize("case_id, kind, obj", CASES, ids=IDS)
def test_argo_sandbox_agrees_with_lua54(lua, tmp_path, sandboxed, case_id, kind, obj):
    verdict = sandboxed[case_id]
    assert verdict["script"] == f"cube-operator.io/{kind}/health.lua"
    assert verdict["luaLibs"] == "sandbox"  # deploy/argocd/argocd-cm.yaml turns on no useOpenLibs
    expected = lua54.health(lua, kind, obj, tmp_path)
    assert not verdict.get("argocdError"), (
        f"lua5.4 says {expected}, Argo CD would show Unknown: {verdict['argocdError']}")
    assert (verdict["argocd"], verdict["argocdMessage"]) == expected


@pytest.mark.parametrize("case_id, kind, obj", CASES, ids=IDS)
def test_open_libs_agree_with_lua54(lua, tmp_path, open_libs, case_id, kind, obj):
    verdict = open_libs[case_id]
    assert verdict["luaLibs"] == "open"
    assert not verdict.get("argocdError"), verdict["argocdError"]
    assert (verdict["argocd"], verdict["argocdMessage"]) == lua54.health(lua, kind, obj, tmp_path)


# --- the harness itself: what it does is what Argo CD does ---------------------------------

PROBE = {"apiVersion": "example.com/v1", "kind": "Probe",
         "metadata": {"name": "p", "generation": 7, "labels": {"a": "b"}},
         "spec": {"ratio": 0.5, "items": [1, 2, 3], "on": True, "empty": {}}}


def probe(tmp_path: Path, script: str, cm: str | None = None, *args: str) -> dict[str, Any]:
    scripts = tmp_path / "argocd"
    (scripts / "example.com" / "Probe").mkdir(parents=True, exist_ok=True)
    (scripts / "example.com" / "Probe" / "health.lua").write_text(script)
    if cm is not None:
        (scripts / "argocd-cm.yaml").write_text(cm)
    return run_health([PROBE], *args, argocd_dir=scripts)[0]


def status_of(expr: str) -> str:
    return f'local hs = {{}}\nhs.status = "Healthy"\nhs.message = tostring({expr})\nreturn hs\n'


@pytest.mark.parametrize("expr, value", [
    ("type(string)", "nil"), ("type(math)", "nil"), ("type(io)", "nil"), ("type(os)", "nil"),
    ("type(coroutine)", "nil"), ("type(debug)", "nil"), ("type(table.insert)", "function"),
    ("type(ipairs)", "function"), ("type(pcall)", "function"), ("type(require)", "function"),
    # Argo CD's safe os (time, date) only through `require("os")`: its OpenSafeOs registers
    # them under the table library's name, which gopher-lua then leaves as it is.
    ("type(require('os').time())", "number"), ("type(require('os').exit)", "nil"),
    ("type(table.time)", "nil"),
    # The object as decodeValue makes it: numbers are Lua numbers, arrays 1-based tables.
    ("obj.metadata.generation + 1", "8"), ("obj.spec.ratio * 2", "1"), ("#obj.spec.items", "3"),
    ("obj.spec.items[1]", "1"), ("obj.spec.on", "true"), ("next(obj.spec.empty)", "nil"),
    ("_VERSION", "Lua 5.1"),
])
def test_sandbox_libraries_and_object(tmp_path, expr, value):
    verdict = probe(tmp_path, status_of(expr))
    assert (verdict["argocd"], verdict["argocdMessage"], verdict["luaLibs"]) == ("Healthy", value, "sandbox")


def test_string_library_is_an_error_in_the_sandbox(tmp_path):
    verdict = probe(tmp_path, 'return {status = "Healthy", message = string.format("g%d", obj.metadata.generation)}')
    assert verdict["argocd"] == "Unknown"
    assert "attempt to index a non-table object(nil) with key 'format'" in verdict["argocdError"]


@pytest.mark.parametrize("cm", [
    'data:\n  resource.customizations.useOpenLibs.example.com_Probe: "true"\n',
    "data:\n  resource.customizations: |\n    example.com/Probe:\n      useOpenLibs: true\n",
])
def test_use_open_libs_in_argocd_cm_opens_them(tmp_path, cm):
    verdict = probe(tmp_path, 'return {status = "Healthy", message = string.format("g%d", obj.metadata.generation)}',
                    cm)
    assert (verdict["argocd"], verdict["argocdMessage"], verdict["luaLibs"]) == ("Healthy", "g7", "open")


@pytest.mark.parametrize("script, message", [
    ("local hs = {}\nreturn hs", "json: cannot unmarshal array into Go value of type main.HealthStatus"),
    ("return nil", "expect table output from Lua script, not nil"),
    ('return "Healthy"', "expect table output from Lua script, not string"),
    ('return {status = "Fine"}', "Lua returned an invalid health status"),
    # Lua 5.1 syntax: no integer division, no bitwise operators (lua5.4 takes both;
    # gopher-lua does take goto).
    ("return {status = 'Healthy', message = tostring(7 // 2)}", "syntax error"),
    ("return {status = 'Healthy', message = tostring(5 & 3)}", "Invalid token"),
])
def test_what_argo_cd_turns_into_unknown(tmp_path, script, message):
    verdict = probe(tmp_path, script)
    assert verdict["argocd"] == "Unknown"
    assert message in verdict["argocdMessage"]


def test_no_script_no_argo_verdict_and_kstatus_for_any_kind(tmp_path):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"}}
    verdict = run_health([secret])[0]
    assert (verdict["argocd"], verdict["argocdMessage"]) == ("", "no health.lua for Secret")
    assert verdict["kstatus"] == "Current"


def test_kubectl_list_input_and_kstatus(tmp_path):
    ready = lua54.make("Cube", ready=lua54.READY_TRUE)
    stale = lua54.make("Cube", generation=4, observed=3, ready=lua54.READY_TRUE)
    stalled = lua54.make("Cube", ready={"type": "Ready", "status": "False", "reason": "InvalidSpec",
                                        "message": "bad"})
    stalled["status"]["conditions"].append({"type": "Stalled", "status": "True", "reason": "InvalidSpec",
                                            "message": "bad"})
    reconciling = lua54.make("Cube", ready={"type": "Ready", "status": "False", "reason": "Provisioning",
                                            "message": "booting"})
    reconciling["status"]["conditions"].append({"type": "Reconciling", "status": "True",
                                                "reason": "Provisioning", "message": "booting"})
    deleting = lua54.make("Cube", ready=lua54.READY_TRUE)
    deleting["metadata"]["deletionTimestamp"] = "2026-11-23T10:00:00Z"
    listed = {"apiVersion": "v1", "kind": "List", "items": [ready, stale, stalled, reconciling, deleting]}
    verdicts = run_health(listed)
    assert [v["kstatus"] for v in verdicts] == ["Current", "InProgress", "Failed", "InProgress", "Terminating"]
    assert verdicts[2]["kstatusMessage"] == "bad"
