"""The Argo CD health checks (deploy/argocd/cube-operator.io/<Kind>/health.lua), run by
the real lua5.4 interpreter over sample objects, one case per branch.

Argo CD runs these scripts in gopher-lua with the live object bound to the global `obj`
and uses the returned `hs` table; the harness below does the same, with each sample
object written out as a Lua table constructor."""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pytest
from deploy_helpers import ARGOCD, KINDS

from cube_operator.controllers._common import TERMINAL_REASONS

HARNESS = """
local script = arg[1]
local chunk = assert(loadfile(script))
obj = dofile(arg[2])
local hs = chunk()
assert(type(hs) == "table", "health script returned " .. type(hs))
io.write(tostring(hs.status), "\\n", tostring(hs.message), "\\n")
"""


def lua_literal(value: Any) -> str:
    """A Lua expression for a JSON-like Python value (what Argo CD hands the script)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        assert math.isfinite(value)
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid Lua escapes for this data
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{json.dumps(k)}] = {lua_literal(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(type(value))


def health(lua: str, kind: str, obj: dict[str, Any], tmp_path: Path) -> tuple[str, str]:
    harness = tmp_path / "harness.lua"
    harness.write_text(HARNESS)
    data = tmp_path / "obj.lua"
    data.write_text("return " + lua_literal(obj) + "\n")
    script = ARGOCD / "cube-operator.io" / kind / "health.lua"
    result = subprocess.run([lua, str(harness), str(script), str(data)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    status, message = result.stdout.split("\n")[:2]
    return status, message


def make(kind: str, *, generation: int = 3, observed: int | None = 3,
         ready: dict[str, Any] | None = None, spec: dict[str, Any] | None = None,
         annotations: dict[str, str] | None = None, status: dict[str, Any] | None = None,
         no_status: bool = False) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "cube-operator.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "sample", "namespace": "team-a", "generation": generation,
                     "uid": "8a3c7f1e-0000-4000-8000-000000000001"},
        "spec": spec if spec is not None else {"providerConfigRef": {"name": "krova"}},
    }
    if annotations:
        obj["metadata"]["annotations"] = annotations
    if no_status:
        return obj
    st: dict[str, Any] = dict(status or {})
    if observed is not None:
        st["observedGeneration"] = observed
    conditions = [{"type": "Synced", "status": "True", "reason": "Synced", "message": "",
                   "lastTransitionTime": "2026-11-23T10:00:00Z", "observedGeneration": observed}]
    if ready is not None:
        conditions.append({"lastTransitionTime": "2026-11-23T10:00:00Z",
                           "observedGeneration": observed, **ready})
    st["conditions"] = conditions
    obj["status"] = st
    return obj


READY_TRUE = {"type": "Ready", "status": "True", "reason": "Available", "message": "VM is running"}

# (name, kinds, object factory, expected status, expected message)
COMMON_CASES = [
    ("paused", lambda k: make(k, annotations={"cube-operator.io/paused": "true"},
                              ready={"type": "Ready", "status": "False", "reason": "InvalidSpec",
                                     "message": "bad"}),
     "Suspended", "Reconciliation is paused (annotation cube-operator.io/paused=true)"),
    ("paused-false-is-not-paused", lambda k: make(k, annotations={"cube-operator.io/paused": "false"},
                                                  ready=READY_TRUE),
     "Healthy", "VM is running"),
    ("no-status", lambda k: make(k, no_status=True),
     "Progressing", "Waiting for the operator to report status"),
    ("stale-observed-generation", lambda k: make(k, generation=4, observed=3, ready=READY_TRUE),
     "Progressing", "Waiting for the operator to observe generation 4"),
    ("no-observed-generation", lambda k: make(k, observed=None, ready=READY_TRUE),
     "Progressing", "Waiting for the operator to observe generation 3"),
    ("no-ready-condition", lambda k: make(k),
     "Progressing", "Waiting for the Ready condition"),
    ("stale-ready-condition", lambda k: _stale_ready(make(k, generation=5, observed=5,
                                                          ready=READY_TRUE)),
     "Progressing", "Ready condition is older than generation 5"),
    ("ready", lambda k: make(k, ready=READY_TRUE), "Healthy", "VM is running"),
    ("ready-without-message", lambda k: make(k, ready={"type": "Ready", "status": "True"}),
     "Healthy", "Ready"),
    ("not-ready-transient", lambda k: make(k, ready={"type": "Ready", "status": "False",
                                                     "reason": "Provisioning",
                                                     "message": "VM is booting"}),
     "Progressing", "Provisioning: VM is booting"),
    ("not-ready-rate-limited", lambda k: make(k, ready={"type": "Ready", "status": "False",
                                                        "reason": "RateLimited", "message": ""}),
     "Progressing", "RateLimited"),
    ("ready-unknown", lambda k: make(k, ready={"type": "Ready", "status": "Unknown",
                                               "reason": "ProviderUnavailable",
                                               "message": "Krova API timed out"}),
     "Progressing", "ProviderUnavailable: Krova API timed out"),
]


def _stale_ready(obj: dict[str, Any]) -> dict[str, Any]:
    for c in obj["status"]["conditions"]:
        if c["type"] == "Ready":
            c["observedGeneration"] = 4
    return obj


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name, factory, status, message", COMMON_CASES,
                         ids=[c[0] for c in COMMON_CASES])
def test_common_branches(lua, tmp_path, kind, name, factory, status, message):
    assert health(lua, kind, factory(kind), tmp_path) == (status, message)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reason", TERMINAL_REASONS)
def test_terminal_reasons_are_degraded(lua, tmp_path, kind, reason):
    obj = make(kind, ready={"type": "Ready", "status": "False", "reason": reason,
                            "message": "the provider said no"})
    assert health(lua, kind, obj, tmp_path) == ("Degraded", f"{reason}: the provider said no")


def test_terminal_reason_without_message(lua, tmp_path):
    obj = make("Cube", ready={"type": "Ready", "status": "False", "reason": "InvalidCredentials"})
    assert health(lua, "Cube", obj, tmp_path) == ("Degraded", "InvalidCredentials")


def test_terminal_reason_with_status_unknown_is_not_degraded(lua, tmp_path):
    obj = make("Cube", ready={"type": "Ready", "status": "Unknown", "reason": "Failed",
                              "message": "x"})
    assert health(lua, "Cube", obj, tmp_path) == ("Progressing", "Failed: x")


STOPPED = {"providerConfigRef": {"name": "krova"}, "image": "ubuntu-24.04",
           "powerState": "Stopped"}


def test_stopped_ready_cube_is_suspended(lua, tmp_path):
    obj = make("Cube", spec=STOPPED, ready={"type": "Ready", "status": "True",
                                           "reason": "Stopped", "message": "VM is stopped"})
    assert health(lua, "Cube", obj, tmp_path) == (
        "Suspended", "Cube is stopped (spec.powerState: Stopped)")


def test_stopping_cube_is_progressing(lua, tmp_path):
    obj = make("Cube", spec=STOPPED, ready={"type": "Ready", "status": "False",
                                           "reason": "Stopping", "message": "going to sleep"})
    assert health(lua, "Cube", obj, tmp_path) == ("Progressing", "Stopping: going to sleep")


def test_running_cube_is_healthy(lua, tmp_path):
    obj = make("Cube", spec={**STOPPED, "powerState": "Running"}, ready=READY_TRUE)
    assert health(lua, "Cube", obj, tmp_path) == ("Healthy", "VM is running")


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "Cube"])
def test_power_state_means_nothing_for_other_kinds(lua, tmp_path, kind):
    obj = make(kind, spec=STOPPED, ready=READY_TRUE)
    assert health(lua, kind, obj, tmp_path) == ("Healthy", "VM is running")


RESTORE_SPEC = {"cubeRef": {"name": "web-1"}, "snapshotRef": {"name": "nightly"}}


def test_restore_succeeded_is_healthy(lua, tmp_path):
    obj = make("Restore", spec=RESTORE_SPEC, status={"phase": "Succeeded"},
               ready={"type": "Ready", "status": "True", "reason": "Succeeded",
                      "message": "Restored snapshot nightly onto web-1"})
    assert health(lua, "Restore", obj, tmp_path) == (
        "Healthy", "Restored snapshot nightly onto web-1")


def test_restore_succeeded_without_conditions_is_healthy(lua, tmp_path):
    obj = make("Restore", spec=RESTORE_SPEC, status={"phase": "Succeeded"})
    assert health(lua, "Restore", obj, tmp_path) == ("Healthy", "Restore succeeded")


def test_restore_failed_is_degraded(lua, tmp_path):
    obj = make("Restore", spec=RESTORE_SPEC, status={"phase": "Failed"},
               ready={"type": "Ready", "status": "False", "reason": "RestoreFailed",
                      "message": "provider reported error"})
    assert health(lua, "Restore", obj, tmp_path) == (
        "Degraded", "RestoreFailed: provider reported error")


def test_restore_failed_without_conditions_is_degraded(lua, tmp_path):
    obj = make("Restore", spec=RESTORE_SPEC, status={"phase": "Failed"})
    assert health(lua, "Restore", obj, tmp_path) == ("Degraded", "Restore failed")


@pytest.mark.parametrize("phase", ["Pending", "Running"])
def test_restore_in_flight_is_progressing(lua, tmp_path, phase):
    obj = make("Restore", spec=RESTORE_SPEC, status={"phase": phase},
               ready={"type": "Ready", "status": "False", "reason": phase,
                      "message": "restoring"})
    assert health(lua, "Restore", obj, tmp_path) == ("Progressing", f"{phase}: restoring")


def test_paused_restore_is_suspended_whatever_its_phase(lua, tmp_path):
    obj = make("Restore", spec=RESTORE_SPEC, status={"phase": "Failed"},
               annotations={"cube-operator.io/paused": "true"})
    assert health(lua, "Restore", obj, tmp_path)[0] == "Suspended"


def test_phase_means_nothing_for_other_kinds(lua, tmp_path):
    obj = make("Snapshot", status={"phase": "Succeeded"})
    assert health(lua, "Snapshot", obj, tmp_path) == (
        "Progressing", "Waiting for the Ready condition")


def test_missing_generation_and_conditions_do_not_crash(lua, tmp_path):
    """No metadata.generation and no conditions list: a wait, not a Lua error."""
    obj = {"apiVersion": "cube-operator.io/v1alpha1", "kind": "Cube",
           "metadata": {"name": "x"}, "status": {"observedGeneration": 1}}
    assert health(lua, "Cube", obj, tmp_path) == (
        "Progressing", "Waiting for the Ready condition")


def test_scripts_avoid_lua_5_2_and_later_syntax():
    """Argo CD's gopher-lua implements Lua 5.1: no goto, integer division or bit operators."""
    for kind in KINDS:
        text = (ARGOCD / "cube-operator.io" / kind / "health.lua").read_text()
        code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
        for token in ("goto ", "::", "//", "&", "|", "<<", ">>", "utf8.", "<const>",
                      "<close>", "table.move", "math.tointeger"):
            assert token not in code, f"{kind}/health.lua uses {token!r}"
