"""The reconcilers' state machine against an in-memory provider, once per provider
profile: create, crashes before and after the provider answered, find with 0/1/2
matches, power drift, out-of-band delete, delete with and without an id, unsupported
capabilities, rate limits and pause. No kubectl, no HTTP: each case runs in milliseconds.
"""
from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import kopf
import pytest

from cube_operator.controllers._conditions import now_rfc3339, seconds_since
from cube_operator.controllers._kube import KubeError
from cube_operator.controllers.cube import CREATE_GRACE_SECONDS, CubeReconciler
from cube_operator.controllers.tcpmapping import TcpMappingReconciler
from cube_operator.providers import (
    Capability,
    Conflict,
    Provisioning,
    RateLimited,
    Transient,
    VMState,
)
from support.fake_provider import NAMESPACE, PROFILES, Crash, Harness


async def reconcile(h: Harness, obj: dict[str, Any], times: int = 1) -> float:
    """``times`` passes of one daemon (one reconciler instance, as in the operator), each
    once its delay has passed: a backoff recorded in status is over."""
    reconciler = h.reconciler(CubeReconciler, obj)
    delay = 0.0
    for _ in range(times):
        (obj.get("status") or {}).pop("nextRetryAt", None)
        delay = await reconciler.reconcile()
    return delay


async def restart_and_reconcile(h: Harness, obj: dict[str, Any], times: int = 1) -> float:
    """A fresh reconciler on the same object: the operator restarted."""
    return await reconcile(h, obj, times)


def idempotent(h: Harness) -> bool:
    return Capability.IDEMPOTENT_CREATE in h.provider.capabilities


async def test_create_records_the_attempt_before_calling_the_provider(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    seen: list[dict[str, Any]] = []
    h.provider.on_create = lambda: seen.append(dict(h.kube.body("cubes", NAMESPACE, "web-1")["status"]))
    await reconcile(h, cube)
    assert seen and seen[0].get("createRequestedAt") and seen[0].get("createAttempt") == 1
    assert h.provider.called("create_vm") == 1
    vm = h.provider.alive()[0]
    assert cube["status"]["id"] == vm.id and vm.owner_uid == cube["metadata"]["uid"]
    assert "Created" in h.events.reasons("web-1")


async def test_crash_after_the_provider_committed_makes_no_second_vm(harness: Harness) -> None:
    # The provider made the VM, but its answer never arrived (operator killed, timeout).
    h = harness
    cube = h.cube()
    h.provider.fail_after_commit = Crash("killed while waiting for the answer")
    with pytest.raises(Crash):
        await reconcile(h, cube)
    assert not cube["status"].get("id") and cube["status"].get("createRequestedAt")
    await restart_and_reconcile(h, cube)
    assert len(h.provider.alive()) == 1, h.provider.alive()
    assert cube["status"]["id"] == h.provider.alive()[0].id
    if idempotent(h):
        assert h.provider.called("create_vm") == 2  # the same key, replayed
        assert h.provider.called("find_vms") == 0
    else:
        assert h.provider.called("create_vm") == 1  # found, not created again
        assert h.provider.called("find_vms") == 1
        assert "Found" in h.events.reasons("web-1")


async def test_crash_before_the_status_write_makes_no_second_vm(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    # The first status write (the attempt) lands; the one carrying the id does not.
    h.kube.status_faults = []
    original = h.kube.patch_status
    writes = 0

    async def crash_on_second(*args: Any, **kwargs: Any) -> dict[str, Any]:
        nonlocal writes
        writes += 1
        if writes == 2:
            raise Crash("killed before the id reached status")
        return await original(*args, **kwargs)

    h.kube.patch_status = crash_on_second  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await reconcile(h, cube)
    h.kube.patch_status = original  # type: ignore[method-assign]
    assert len(h.provider.alive()) == 1 and not cube["status"].get("id")
    await restart_and_reconcile(h, cube)
    assert len(h.provider.alive()) == 1
    assert cube["status"]["id"] == h.provider.alive()[0].id


async def test_crash_before_the_provider_answered_creates_once(harness: Harness) -> None:
    # The create never reached the provider (connection refused): the next try creates.
    h = harness
    cube = h.cube()
    h.provider.faults["create_vm"] = [Transient("connection refused", provider=h.provider.name)]
    await reconcile(h, cube)
    assert not h.provider.alive()
    assert h.condition(cube, "Synced")["reason"] == "ProviderUnavailable"
    await restart_and_reconcile(h, cube)
    assert len(h.provider.alive()) == 1 and cube["status"]["id"] == h.provider.alive()[0].id


@pytest.mark.parametrize("matches", [0, 1, 2])
async def test_restart_without_id_finds_zero_one_or_two(harness: Harness, matches: int) -> None:
    h = harness
    cube = h.cube()
    uid = cube["metadata"]["uid"]
    cube["status"] = {"createAttempt": 1, "createRequestedAt": now_rfc3339()}
    made = [h.provider.make_vm("web-1", uid) for _ in range(matches)]
    await reconcile(h, cube)
    if idempotent(h):
        # The key is replayed; the provider's idempotency decides, not a lookup.
        assert h.provider.called("find_vms") == 0 and h.provider.called("create_vm") == 1
        return
    assert h.provider.called("find_vms") == 1
    if matches == 0:
        assert h.provider.called("create_vm") == 1 and len(h.provider.alive()) == 1
    elif matches == 1:
        assert h.provider.called("create_vm") == 0 and cube["status"]["id"] == made[0].id
    else:
        ready = h.condition(cube)
        assert ready["status"] == "False" and ready["reason"] == "DuplicateExternalResource"
        assert all(vm.id in ready["message"] for vm in made)
        assert not cube["status"].get("id")
        assert h.provider.called("create_vm") == 0 and h.provider.called("delete_vm") == 0
        assert len(h.provider.alive()) == 2


async def test_power_drift_is_corrected(harness: Harness) -> None:
    h = harness
    if Capability.POWER not in h.provider.capabilities:
        pytest.skip("no provider profile lacks power")  # pragma: no cover - every profile has it
    cube = h.cube()
    reconciler = h.reconciler(CubeReconciler, cube)
    await reconciler.reconcile()
    vm_id = cube["status"]["id"]
    h.provider.set_state(vm_id, VMState.RUNNING)
    await reconciler.reconcile()
    assert h.condition(cube)["status"] == "True"
    # Stopped from the provider's dashboard while the spec says Running.
    h.provider.set_state(vm_id, VMState.STOPPED)
    reconciler.rt.sessions.find(NAMESPACE, "pc").fleet.fetched_at = 0.0  # the next list is due
    await reconciler.reconcile()
    assert h.provider.calls[-1].name == "set_power" and h.provider.calls[-1].args == (vm_id, True)
    assert h.provider.vms[vm_id].state is VMState.RUNNING
    power_events = [e for e in h.events.events if e.reason == "PowerStateChanged"]
    assert power_events and "outside Kubernetes" in power_events[-1].message


async def test_desired_stop_is_applied(harness: Harness) -> None:
    h = harness
    cube = h.cube(powerState="Stopped")
    reconciler = h.reconciler(CubeReconciler, cube)
    await reconciler.reconcile()
    h.provider.set_state(cube["status"]["id"], VMState.RUNNING)
    await reconciler.reconcile()
    assert h.provider.vms[cube["status"]["id"]].state is VMState.STOPPED
    await reconciler.reconcile()  # the fleet view predates the stop: no second stop
    assert h.provider.called("set_power") == 1
    reconciler.rt.sessions.find(NAMESPACE, "pc").fleet.fetched_at = 0.0  # the next list is due
    await reconciler.reconcile()
    assert h.condition(cube)["reason"] == "Stopped" and h.provider.called("set_power") == 1


async def test_out_of_band_delete_is_reported_and_replaced_once(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    reconciler = h.reconciler(CubeReconciler, cube)
    await reconciler.reconcile()
    first = cube["status"]["id"]
    del h.provider.vms[first]
    reconciler.rt.sessions.find(NAMESPACE, "pc").fleet.fetched_at = 0.0
    await reconciler.reconcile()
    assert "ExternallyDeleted" in h.events.reasons("web-1")
    assert h.condition(cube)["reason"] == "ExternallyDeleted"
    assert not cube["status"].get("id") and cube["status"]["createAttempt"] == 2
    await reconciler.reconcile()
    assert len(h.provider.alive()) == 1 and cube["status"]["id"] != first
    assert h.provider.called("create_vm") == 2


async def finalize(h: Harness, obj: dict[str, Any], memo: dict[str, Any] | None = None) -> None:
    await h.reconciler(CubeReconciler, obj).finalize(kopf.Memo(memo or {}))


async def test_delete_with_an_id_waits_for_the_provider(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    await reconcile(h, cube)
    vm_id = cube["status"]["id"]
    await finalize(h, cube)
    assert h.provider.called("delete_vm") == 1 and vm_id not in h.provider.vms
    assert "Deleted" in h.events.reasons("web-1")


async def test_delete_keeps_the_finalizer_through_an_outage(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    await reconcile(h, cube)
    h.provider.faults["delete_vm"] = [Transient("503", provider=h.provider.name, status=503)]
    with pytest.raises(kopf.TemporaryError):
        await finalize(h, cube)
    assert h.condition(cube)["reason"] == "DeletionBlocked"
    assert cube["status"]["id"] in h.provider.vms


async def test_delete_without_an_id_finds_and_never_creates(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    uid = cube["metadata"]["uid"]
    cube["status"] = {"createAttempt": 1, "createRequestedAt": now_rfc3339()}
    vm = h.provider.make_vm(h.provider.vm_name("web-1", uid), uid)
    await finalize(h, cube)
    assert h.provider.called("create_vm") == 0
    assert h.provider.called("find_vms") == 1 and vm.id not in h.provider.vms


async def test_delete_without_an_id_waits_out_the_grace_then_counts_it_gone(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    cube["status"] = {"createAttempt": 1, "createRequestedAt": now_rfc3339()}
    with pytest.raises(kopf.TemporaryError):
        await finalize(h, cube)  # the VM may still show up in the list
    cube["status"]["createRequestedAt"] = "2000-01-01T00:00:00Z"
    assert CREATE_GRACE_SECONDS < 10**9
    await finalize(h, cube)
    assert h.provider.called("create_vm") == 0 and h.provider.called("delete_vm") == 0


async def test_delete_with_two_matches_deletes_nothing(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    uid = cube["metadata"]["uid"]
    cube["status"] = {"createAttempt": 1, "createRequestedAt": now_rfc3339()}
    h.provider.make_vm("web-1", uid)
    h.provider.make_vm("web-1", uid)
    with pytest.raises(kopf.TemporaryError):
        await finalize(h, cube)
    assert h.condition(cube)["reason"] == "DuplicateExternalResource"
    assert h.provider.called("delete_vm") == 0 and len(h.provider.alive()) == 2


async def test_orphan_and_never_created_make_no_call(harness: Harness) -> None:
    h = harness
    await finalize(h, h.cube("never"))
    orphan = h.cube("orphan", deletionPolicy="Orphan")
    await reconcile(h, orphan)
    calls = len(h.provider.calls)
    await finalize(h, orphan)
    assert len(h.provider.calls) == calls and len(h.provider.alive()) == 1


async def test_unsupported_capability_is_reported_before_any_call(harness: Harness) -> None:
    h = harness
    caps = h.provider.capabilities
    cube = h.cube("moved-ssh", sshPort=2222)
    await reconcile(h, cube)
    if Capability.SSH_PORT in caps:
        assert h.provider.called("create_vm") == 1
    else:
        ready = h.condition(cube)
        assert ready["reason"] == "Unsupported" and h.provider.name in ready["message"]
        assert "spec.sshPort" in ready["message"]
        assert h.provider.calls == []

    # A TcpMapping on a running Cube.
    web = h.cube("web")
    reconciler = h.reconciler(CubeReconciler, web)
    await reconciler.reconcile()
    h.provider.set_state(web["status"]["id"], VMState.RUNNING)
    web["status"]["state"] = web["status"]["vmState"] = "running"
    before = len(h.provider.calls)
    mapping = h.kube.add("tcpmappings", {"kind": "TcpMapping", "metadata": {"name": "db", "namespace": NAMESPACE},
                                         "spec": {"cubeRef": {"name": "web"}, "cubePort": 5432}})
    await h.reconciler(TcpMappingReconciler, mapping).reconcile()
    if Capability.TCP_EXPOSURE in caps:
        assert h.provider.called("expose") == 1 and mapping["status"]["id"]
    else:
        ready = h.condition(mapping)
        assert ready["reason"] == "Unsupported" and h.provider.name in ready["message"]
        assert len(h.provider.calls) == before


async def test_a_rate_limit_is_a_wait_not_a_failure(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    h.provider.faults["create_vm"] = [RateLimited("slow down", provider=h.provider.name, retry_after=7.0)]
    delay = await reconcile(h, cube)
    assert delay >= 7.0
    ready = h.condition(cube)
    assert ready["reason"] == "RateLimited" and "retrying" in ready["message"]
    await reconcile(h, cube)
    assert len(h.provider.alive()) == 1 and cube["status"]["id"]


async def test_paused_objects_are_left_alone(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    cube["metadata"]["annotations"] = {"cube-operator.io/paused": "true"}
    await reconcile(h, cube)
    assert h.provider.calls == []
    assert h.condition(cube, "Synced")["reason"] == "ReconcilePaused"


async def test_user_data_where_the_provider_takes_none_is_unsupported(harness: Harness) -> None:
    h = harness
    cube = h.cube("init", userData="#cloud-config\n")
    await reconcile(h, cube)
    if Capability.USER_DATA in h.provider.capabilities:
        assert h.provider.called("create_vm") == 1
    else:
        ready = h.condition(cube)
        assert ready["reason"] == "Unsupported" and "spec.userData" in ready["message"]
        assert h.provider.calls == []


async def test_a_404_to_delete_is_gone_only_when_a_look_confirms(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    await reconcile(h, cube)
    vm_id = cube["status"]["id"]
    from cube_operator.providers import NotFound

    h.provider.faults["delete_vm"] = [NotFound("not found (a lie)", provider=h.provider.name, status=404)]
    memo = kopf.Memo()
    with pytest.raises(kopf.TemporaryError):
        await h.reconciler(CubeReconciler, cube).finalize(memo)  # still there: keep the finalizer
    assert vm_id in h.provider.vms and memo.get("delete_requested") is False
    await h.reconciler(CubeReconciler, cube).finalize(memo)
    assert vm_id not in h.provider.vms and h.provider.called("delete_vm") == 2


@pytest.mark.parametrize("name", [".", "..", "../cubes", "a/b", ""])
async def test_an_invalid_external_name_is_refused_and_never_deleted(harness: Harness, name: str) -> None:
    h = harness
    cube = h.cube("adopt")
    cube["metadata"]["annotations"] = {"cube-operator.io/external-name": name}
    other = h.provider.make_vm("someone-elses", "uid-x", VMState.RUNNING)
    await reconcile(h, cube)
    if name:
        ready = h.condition(cube)
        assert ready["reason"] == "InvalidSpec" and "external-name" in ready["message"]
    assert h.provider.called("get_vm") == 0 and h.provider.called("create_vm") == (0 if name else 1)
    before = len(h.provider.calls)
    if not name:
        return
    await finalize(h, cube)  # never adopted: nothing is ours to delete
    assert h.provider.called("delete_vm") == 0 and other.id in h.provider.vms
    assert len(h.provider.calls) == before


async def test_an_external_name_that_was_never_adopted_is_not_deleted(harness: Harness) -> None:
    h = harness
    theirs = h.provider.make_vm("theirs", "uid-y", VMState.RUNNING)
    cube = h.cube("claims-it")
    cube["metadata"]["annotations"] = {"cube-operator.io/external-name": theirs.id}
    h.provider.faults["get_vm"] = [Transient("down", provider=h.provider.name)]
    await reconcile(h, cube)  # adoption did not happen
    assert not cube["status"].get("id")
    await finalize(h, cube)
    assert theirs.id in h.provider.vms and h.provider.called("delete_vm") == 0


# -- root passwords, deployment progress, list rows without details -------------------------

def profiles_with(capability: Capability, present: bool = True) -> list[str]:
    return sorted(p for p, caps in PROFILES.items() if (capability in caps) == present)


def fresh_list(h: Harness) -> None:
    h.runtime.sessions.find(NAMESPACE, "pc").fleet.fetched_at = 0.0  # the next list is due


@pytest.mark.parametrize("provider_name", profiles_with(Capability.ROOT_PASSWORD))
async def test_a_root_password_is_generated_once_into_a_secret_the_cube_owns(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    await reconcile(h, cube)
    spec = next(c for c in h.provider.calls if c.name == "create_vm").args[0]
    secret = h.kube.secrets[(NAMESPACE, "web-1-root-password")]
    assert secret["metadata"]["ownerReferences"][0]["uid"] == cube["metadata"]["uid"]
    stored = base64.b64decode(secret["data"]["password"]).decode()
    assert stored == spec.root_password and len(stored) == 24 and stored.isalnum()
    assert cube["status"]["rootPasswordSecret"] == "web-1-root-password"
    assert stored not in repr(spec) and stored not in str(cube)


@pytest.mark.parametrize("provider_name", profiles_with(Capability.ROOT_PASSWORD, present=False))
async def test_a_root_password_where_the_provider_takes_none_is_unsupported(harness: Harness) -> None:
    h = harness
    cube = h.cube(rootPasswordSecretRef={"name": "pw", "key": "password"})
    await reconcile(h, cube)
    assert h.provider.called("create_vm") == 0
    assert h.condition(cube)["reason"] == "Unsupported" and "root password" in h.condition(cube)["message"]


@pytest.mark.parametrize("provider_name", profiles_with(Capability.ROOT_PASSWORD))
async def test_a_foreign_secret_is_never_used_as_the_generated_password(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    h.kube.secrets[(NAMESPACE, "web-1-root-password")] = {
        "metadata": {"name": "web-1-root-password"}, "stringData": {"password": "someone-elses1"}}
    await reconcile(h, cube)
    assert h.provider.called("create_vm") == 0
    assert h.condition(cube)["reason"] == "SecretConflict" and "web-1-root-password" in h.condition(cube)["message"]
    assert h.kube.secrets[(NAMESPACE, "web-1-root-password")]["stringData"] == {"password": "someone-elses1"}


@pytest.mark.parametrize("provider_name", profiles_with(Capability.PROGRESS))
async def test_deployment_progress_shows_in_status_and_the_ready_message(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    reconciler = h.reconciler(CubeReconciler, cube)
    await reconciler.reconcile()
    await reconciler.reconcile()
    assert cube["status"]["provisioning"] == {"progressPercent": 40, "currentTask": "FakeTaskConfigure",
                                              "failed": None}
    assert "task FakeTaskConfigure, 40% done" in h.condition(cube)["message"]
    calls = h.provider.called("provisioning")
    await reconciler.reconcile()
    assert h.provider.called("provisioning") == calls  # throttled: at most one read per PROGRESS_SECONDS
    h.provider.set_state(cube["status"]["id"], VMState.RUNNING)
    fresh_list(h)
    await reconciler.reconcile()
    assert cube["status"].get("provisioning") is None and h.condition(cube)["status"] == "True"


@pytest.mark.parametrize("provider_name", profiles_with(Capability.PROGRESS, present=False))
async def test_no_progress_call_where_the_provider_has_none(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    await reconcile(h, cube, times=2)
    assert h.provider.called("provisioning") == 0 and "provisioning" not in cube["status"]


@pytest.mark.parametrize("provider_name", profiles_with(Capability.PROGRESS))
async def test_a_failed_deployment_names_its_task_and_is_read_once(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    await reconcile(h, cube)
    vm_id = cube["status"]["id"]
    h.provider.vms[vm_id] = replace(h.provider.vms[vm_id], state=VMState.ERROR, provider_state="FakeFailed",
                                    problem=("ProvisioningFailed", "the deployment failed"))
    h.provider.deployment = Provisioning(percent=60, task="FakeTaskNetwork", failed=True)
    fresh_list(h)
    before = h.provider.called("provisioning")
    await restart_and_reconcile(h, cube, times=3)
    await restart_and_reconcile(h, cube)
    assert h.provider.called("provisioning") == before + 1  # kept in status, also across a restart
    assert h.condition(cube)["reason"] == "ProvisioningFailed" and "FakeTaskNetwork" in h.condition(cube)["message"]


# (Krova's server domain is a get_vm of its own, until the domain shows.)
@pytest.mark.parametrize("provider_name", profiles_with(Capability.SERVER_DOMAIN, present=False))
async def test_list_rows_without_details_cost_one_get_and_keep_what_it_said(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    await reconcile(h, cube)
    vm_id = cube["status"]["id"]
    detailed = h.provider.vms[vm_id] = replace(h.provider.vms[vm_id], state=VMState.RUNNING,
                                               provider_state="FakeRunning", cost_per_hour=0.0082, plan="1")
    row = replace(detailed, cost_per_hour=None, plan=None, detailed=False)

    async def rows() -> list[Any]:
        h.provider._call("list_vms")
        return [row]
    h.provider.list_vms = rows  # type: ignore[method-assign]
    gets = h.provider.called("get_vm")
    reconciler = h.reconciler(CubeReconciler, cube)
    for _ in range(3):
        fresh_list(h)
        await reconciler.reconcile()
    assert h.provider.called("get_vm") == gets + 1
    assert cube["status"]["costPerHour"] == "0.0082" and cube["status"]["plan"] == "1"


# -- Secrets a Cube may ship to its VM ------------------------------------------------------

@pytest.mark.parametrize("field", ["sshPublicKeySecretRef", "userDataSecretRef"])
async def test_the_credentials_secret_is_never_shipped_to_a_vm(harness: Harness, field: str) -> None:
    h = harness
    if field == "userDataSecretRef" and Capability.USER_DATA not in h.provider.capabilities:
        field = "sshPublicKeySecretRef"
    cube = h.cube(**{field: {"name": "creds", "key": "apiKey"}})
    await reconcile(h, cube)
    assert h.provider.called("create_vm") == 0
    assert h.condition(cube)["reason"] == "SecretNotAllowed" and "ProviderConfig pc" in h.condition(cube)["message"]


async def test_a_secret_the_operator_made_for_another_object_is_never_shipped(harness: Harness) -> None:
    h = harness
    h.kube.secrets[(NAMESPACE, "hook-secret")] = {
        "metadata": {"name": "hook-secret", "labels": {"app.kubernetes.io/managed-by": "cube-operator"},
                     "ownerReferences": [{"kind": "Webhook", "uid": "someone-else"}]},
        "stringData": {"key": "ssh-ed25519 AAAA signing@secret"}}
    cube = h.cube(sshPublicKeySecretRef={"name": "hook-secret", "key": "key"})
    await reconcile(h, cube)
    assert h.provider.called("create_vm") == 0
    assert h.condition(cube)["reason"] == "SecretNotAllowed" and "another object" in h.condition(cube)["message"]


# -- adoption takes only what no other live Cube owns --------------------------------------

async def test_adoption_refuses_a_vm_whose_owner_marker_names_another_live_cube(harness: Harness) -> None:
    h = harness
    elsewhere = h.kube.add("cubes", {"metadata": {"name": "victim", "namespace": "other-team"},
                                     "spec": {"providerConfigRef": {"name": "pc"}}})
    theirs = h.provider.make_vm("victim", elsewhere["metadata"]["uid"], VMState.RUNNING)
    cube = h.cube("grabber")
    cube["metadata"]["annotations"] = {"cube-operator.io/external-name": theirs.id}
    await reconcile(h, cube)
    assert not cube["status"].get("id") and h.condition(cube)["reason"] == "AdoptionRefused"
    assert "another namespace" in h.condition(cube)["message"] and "victim" not in h.condition(cube)["message"]
    await finalize(h, cube)
    assert theirs.id in h.provider.vms and h.provider.called("delete_vm") == 0 and h.provider.called("set_power") == 0


async def test_two_cubes_cannot_adopt_one_vm_but_an_orphan_can_be_adopted(harness: Harness) -> None:
    h = harness
    orphan = h.provider.make_vm("left-behind", "uid-of-a-deleted-cube", VMState.RUNNING)
    first = h.cube("first")
    first["metadata"]["annotations"] = {"cube-operator.io/external-name": orphan.id}
    await reconcile(h, first)
    assert first["status"]["id"] == orphan.id  # its owner is gone: adoptable
    second = h.cube("second")
    second["metadata"]["annotations"] = {"cube-operator.io/external-name": orphan.id}
    await reconcile(h, second)
    assert not second["status"].get("id") and h.condition(second)["reason"] == "AdoptionRefused"
    assert "already managed by Cube first" in h.condition(second)["message"]


# -- a failing object is loud once, not on every pass --------------------------------------

async def test_a_transition_to_a_problem_is_one_warning_event(harness: Harness) -> None:
    h = harness
    cube = h.cube(image="")  # the schema says min 1: the operator reports it, never crashes
    cube["spec"].pop("sshPublicKey")
    h.provider.faults["create_vm"] = [None]
    await reconcile(h, cube, times=3)
    warnings = [e for e in h.events.events if e.type == "Warning" and e.reason == "InvalidSpec"]
    assert len(warnings) == 1, h.events.events
    assert h.provider.called("create_vm") == 0


async def test_routine_progress_raises_no_warning(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    await reconcile(h, cube, times=2)
    assert not [e for e in h.events.events if e.type == "Warning"], h.events.events


async def test_a_cube_changing_state_wakes_the_objects_waiting_on_it(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    waiting = h.runtime.trigger("tcpmappings", NAMESPACE, "web")
    elsewhere = h.runtime.trigger("tcpmappings", "another-namespace", "web")
    reconciler = h.reconciler(CubeReconciler, cube)
    await reconciler.reconcile()
    await reconciler.reconcile()
    waiting.clear()
    h.provider.set_state(cube["status"]["id"], VMState.RUNNING)
    fresh_list(h)
    await reconciler.reconcile()
    assert waiting.is_set() and not elsewhere.is_set()


# -- a rejected create is not sent again until something changes ----------------------------

async def test_a_rejected_create_is_held_until_the_cube_changes_also_across_a_restart(harness: Harness) -> None:
    from cube_operator.controllers._reconciler import HOLD_SECONDS
    from cube_operator.providers import Invalid

    h = harness
    cube = h.cube()
    h.provider.faults["create_vm"] = [Invalid("image not offered in this region", provider=h.provider.name,
                                              status=400)]
    reconciler = h.reconciler(CubeReconciler, cube)
    assert await reconciler.reconcile() == HOLD_SECONDS
    assert h.condition(cube)["reason"] == "ProviderRejected" and "not sent again" in h.condition(cube)["message"]
    creates = h.provider.called("create_vm")
    for _ in range(3):  # timer passes
        assert await reconciler.reconcile() == HOLD_SECONDS
    assert await restart_and_reconcile(h, cube) == HOLD_SECONDS  # the verdict is in status
    assert h.provider.called("create_vm") == creates
    reconciler.woke(True)  # a change to the Cube (or its ProviderConfig) kicked it
    await reconciler.reconcile()
    assert h.provider.called("create_vm") == creates + 1 and cube["status"].get("id")


async def test_a_new_generation_is_tried_again(harness: Harness) -> None:
    from cube_operator.providers import Invalid

    h = harness
    cube = h.cube()
    h.provider.faults["create_vm"] = [Invalid("no", provider=h.provider.name, status=400)]
    await reconcile(h, cube)
    creates = h.provider.called("create_vm")
    h.kube.body("cubes", NAMESPACE, "web-1")["metadata"]["generation"] = 2
    cube["metadata"]["generation"] = 2
    await restart_and_reconcile(h, cube)
    assert h.provider.called("create_vm") == creates + 1


@pytest.mark.parametrize("provider_name", profiles_with(Capability.CREATE_CALLBACK))
@pytest.mark.parametrize("public", [None, "https://cube-operator.example.com/"])
async def test_a_create_callback_is_given_only_with_a_public_url(harness: Harness, public: str | None) -> None:
    h = harness
    h.runtime.options.webhook_port = 8443
    h.runtime.options.webhook_public_url = public
    cube = h.cube()
    await reconcile(h, cube)
    spec = next(c for c in h.provider.calls if c.name == "create_vm").args[0]
    if public is None:  # the provider could never reach a loopback default
        assert spec.callback_url is None and (NAMESPACE, "web-1-callback") not in h.kube.secrets
    else:
        assert spec.callback_url == f"https://cube-operator.example.com/callbacks/{h.provider.name}/{NAMESPACE}/web-1"
        secret = h.kube.secrets[(NAMESPACE, "web-1-callback")]
        assert base64.b64decode(secret["data"]["secret"]).decode() == spec.callback_secret
        assert secret["metadata"]["ownerReferences"][0]["uid"] == cube["metadata"]["uid"]


# -- dependents of a Cube --------------------------------------------------------------------

async def test_dependents_are_owned_by_their_cube_and_go_with_it(harness: Harness) -> None:
    h = harness
    web = h.cube("web")
    await reconcile(h, web)
    mapping = h.kube.add("tcpmappings", {"kind": "TcpMapping", "metadata": {"name": "db", "namespace": NAMESPACE},
                                         "spec": {"cubeRef": {"name": "web"}, "cubePort": 5432}})
    await h.reconciler(TcpMappingReconciler, mapping).reconcile()
    assert mapping["metadata"]["ownerReferences"] == [
        {"apiVersion": "cube-operator.io/v1alpha1", "kind": "Cube", "name": "web", "uid": web["metadata"]["uid"]}]

    # The Cube was deleted and a new one of the same name made while nobody looked: the
    # mapping belonged to the old one, so it is deleted, as the garbage collector would.
    del h.kube.objects[("cubes", NAMESPACE, "web")]
    again = h.cube("web")
    await h.reconciler(TcpMappingReconciler, mapping).reconcile()
    # By default that is the garbage collector's job; Ready says what is happening.
    assert h.kube.objects[("tcpmappings", NAMESPACE, "db")] is mapping
    assert h.condition(mapping)["reason"] == "CubeDeleted" and "deleted with it" in h.condition(mapping)["message"]
    h.runtime.options.delete_dependents = True  # where no garbage collector runs
    await h.reconciler(TcpMappingReconciler, mapping).reconcile()
    assert ("tcpmappings", NAMESPACE, "db") not in h.kube.objects

    # Deleting a Cube deletes what it owns, and nothing it does not.
    await reconcile(h, again)
    owned = h.kube.add("tcpmappings", {"kind": "TcpMapping", "metadata": {"name": "web-port", "namespace": NAMESPACE},
                                       "spec": {"cubeRef": {"name": "web"}, "cubePort": 80}})
    await h.reconciler(TcpMappingReconciler, owned).reconcile()
    stranger = h.kube.add("tcpmappings", {"kind": "TcpMapping", "metadata": {"name": "other", "namespace": NAMESPACE},
                                          "spec": {"cubeRef": {"name": "elsewhere"}, "cubePort": 80}})
    await finalize(h, again)
    assert ("tcpmappings", NAMESPACE, "web-port") not in h.kube.objects
    assert h.kube.objects[("tcpmappings", NAMESPACE, "other")] is stranger


# -- backoff ----------------------------------------------------------------------------------

async def test_transient_errors_back_off_per_object_and_a_restart_keeps_the_backoff(harness: Harness) -> None:
    h = harness
    cube = h.cube()
    h.provider.faults["create_vm"] = [Transient("502", provider=h.provider.name) for _ in range(3)]
    reconciler = h.reconciler(CubeReconciler, cube)
    delays = []
    for _ in range(3):
        cube["status"].pop("nextRetryAt", None)
        delays.append(await reconciler.reconcile())
    assert [round(d / b, 1) >= 0.8 and d / b <= 1.2 for d, b in zip(delays, (3, 6, 12), strict=True)] == [True] * 3
    assert cube["status"]["providerFailures"] == 3
    synced = h.condition(cube, "Synced")
    assert f"retrying in {delays[-1]:.0f}s (failure 3 in a row)" in synced["message"]
    assert seconds_since(cube["status"]["nextRetryAt"]) < -delays[-1] + 2

    # Restarted: the new daemon waits out what is left instead of calling at once...
    creates = h.provider.called("create_vm")
    restarted = h.reconciler(CubeReconciler, cube)
    wait = await restarted.reconcile()
    assert 0 < wait <= delays[-1] + 1 and h.provider.called("create_vm") == creates
    assert restarted.provider_failures == 3  # and the next failure backs off from there
    # ...unless a change kicks it; success clears the record.
    restarted.woke(True)
    await restarted.reconcile()
    assert h.provider.called("create_vm") == creates + 1
    assert "providerFailures" not in cube["status"] and "nextRetryAt" not in cube["status"]


async def test_a_refused_child_create_is_tried_again_with_a_new_attempt(harness: Harness) -> None:
    # A 409 (the VM is busy) made nothing; retrying the same idempotency key would only get
    # the provider's replay of that 409 (NoKYC keeps it for 24 hours).
    h = harness
    web = h.cube("web")
    await reconcile(h, web)
    h.provider.set_state(web["status"]["id"], VMState.RUNNING)
    web["status"]["state"] = web["status"]["vmState"] = "running"
    h.provider.faults["expose"] = [Conflict("server is provisioning", provider=h.provider.name)]
    mapping = h.kube.add("tcpmappings", {"kind": "TcpMapping", "metadata": {"name": "db", "namespace": NAMESPACE},
                                         "spec": {"cubeRef": {"name": "web"}, "cubePort": 5432}})
    reconciler = h.reconciler(TcpMappingReconciler, mapping)
    await reconciler.reconcile()
    if Capability.TCP_EXPOSURE not in h.provider.capabilities:
        assert h.condition(mapping)["reason"] == "Unsupported"
        return
    assert h.condition(mapping)["reason"] == "WaitingForTurn"
    assert mapping["status"]["createAttempt"] == 2 and "createRequestedAt" not in mapping["status"]
    await reconciler.reconcile()
    assert mapping["status"]["id"] and mapping["status"]["createAttempt"] == 2


async def test_a_refused_owner_reference_is_said_once_and_the_child_goes_on(harness: Harness) -> None:
    # OwnerReferencesPermissionEnforcement wants delete on the object for an ownerReference;
    # the chart does not grant it. The mapping must still be made, and the refusal said.
    h = harness
    web = h.cube("web")
    await reconcile(h, web)
    h.provider.set_state(web["status"]["id"], VMState.RUNNING)
    web["status"]["state"] = web["status"]["vmState"] = "running"
    refusals = 0

    async def refuse(*_: Any) -> dict[str, Any]:
        nonlocal refusals
        refusals += 1
        raise KubeError(403, "Forbidden", "cannot set an ownerRef on a resource you can't delete")
    h.kube.patch_metadata = refuse  # type: ignore[method-assign]
    mapping = h.kube.add("tcpmappings", {"kind": "TcpMapping", "metadata": {"name": "db", "namespace": NAMESPACE},
                                         "spec": {"cubeRef": {"name": "web"}, "cubePort": 5432}})
    reconciler = h.reconciler(TcpMappingReconciler, mapping)
    await reconciler.reconcile()
    await reconciler.reconcile()
    assert refusals == 1 and "ownerReferences" not in mapping["metadata"]
    if Capability.TCP_EXPOSURE in h.provider.capabilities:
        assert mapping["status"]["id"]
