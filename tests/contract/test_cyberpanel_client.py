"""The CyberPanel client against the CyberPanel simulator over real HTTP: every call the
operator makes, offset paging, the envelope's codes picking the exception, scopes, the
catalogue choice, deployment progress and failure, snapshots, and both rate-limit windows
(per minute and per hour) handled as waits."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from cloudsim.testing import RunningSimulator, cyberpanel_key, running_simulator
from cube_operator.providers import (
    CallKind,
    CreateAttempt,
    Forbidden,
    InvalidState,
    NotFound,
    RateBudget,
    RateLimiter,
    Resources,
    SpecRejected,
    Unauthorized,
    VMSpec,
    VMState,
)
from cube_operator.providers.cyberpanel import (
    CyberPanelClient,
    CyberPanelProvider,
    check_password,
    error_envelope,
    hostname,
    snapshot_name,
)
from support.contract import admin, until

pytestmark = pytest.mark.timeout(120)

KEY = "cyp_live_" + "c0ffee00" * 8
TIME_SCALE = 60.0
SSH = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIContractCyberPanel contract@test"
PASSWORD = "Contract2pass"
DOMAIN = "vms.example.com"
# Deployment 30 simulated seconds (0.5 s here), power changes 1.
FAST = {"deploy_delay": 30.0, "start_delay": 1.0, "stop_delay": 1.0, "restart_delay": 1.0}


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator("cyberpanel", api_key=KEY, time_scale=TIME_SCALE, rate_limit=0, settings=FAST) as server:
        yield server


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[CyberPanelClient]:
    made = CyberPanelClient(api_key=KEY, endpoint=sim.url, page_size=2)
    yield made
    await made.aclose()


@pytest.fixture
def provider(client: CyberPanelClient) -> CyberPanelProvider:
    return CyberPanelProvider(client, hostname_domain=DOMAIN)


def spec(name: str, **kw: Any) -> VMSpec:
    base: dict[str, Any] = {"name": name, "image": "9000", "region": "la", "plan": "1",
                            "ssh_public_key": SSH, "root_password": PASSWORD}
    base.update(kw)
    return VMSpec(**base)






async def count(sim: RunningSimulator, method: str, route: str, status: int | None = None) -> int:
    rows = (await admin(sim, "GET", "/stats")).json()["requests"]
    return sum(r["count"] for r in rows if r["method"] == method and r["route"] == route
               and (status is None or r["status"] == status))


def test_names_passwords_and_the_envelope_offline() -> None:
    uid = "3f2a9c1e-0000-4000-8000-000000000000"
    assert hostname("web-1", uid, DOMAIN) == "web-1-3f2a9c1e.vms.example.com"
    assert hostname("a.b.c", uid, DOMAIN) == "a-b-c-3f2a9c1e.vms.example.com"
    long = hostname("x" * 200, uid, DOMAIN)
    assert len(long.split(".")[0]) == 63 and long.split(".")[0].endswith("-3f2a9c1e")
    assert snapshot_name("team-a-pre.upgrade") == "team_a_pre_upgrade" and len(snapshot_name("y" * 99)) == 40
    assert check_password("short1") and check_password("lettersonly") and check_password("12345678")
    assert check_password("Good2Password") is None
    assert error_envelope(b'{"success": false, "error": "x", "error_code": "VPS_NOT_FOUND", "message": "gone"}') == (
        "gone (VPS_NOT_FOUND)", "VPS_NOT_FOUND")
    assert error_envelope(b"<html>404</html>") == (None, None)
    assert error_envelope(b'{"success": true, "data": {}}') == (None, None)


async def test_create_deploys_with_progress_is_found_by_hostname_powered_and_deleted(
        sim: RunningSimulator, provider: CyberPanelProvider) -> None:
    uid = str(uuid.uuid4())
    name = provider.vm_name("contract", uid)
    created = await provider.create_vm(spec(name), CreateAttempt(uid))
    assert created.state is VMState.PROVISIONING and created.plan == "1" and created.region == "la"
    assert created.extras["imageName"] == "Ubuntu 22.04" and created.cost_per_hour == pytest.approx(0.0082)
    progress = await provider.provisioning(created.id)
    assert progress.task and not progress.failed and not progress.done
    assert [vm.id for vm in await provider.find_vms(name, CreateAttempt(uid))] == [created.id]
    assert await provider.find_vms(provider.vm_name("contract", str(uuid.uuid4())), CreateAttempt("x")) == []

    running = await until(lambda: provider.get_vm(created.id), lambda vm: vm.state is VMState.RUNNING)
    assert running.detailed and running.cost_per_hour == pytest.approx(0.0082) and running.public_ipv4
    assert (await provider.provisioning(created.id)).done
    row = next(vm for vm in await provider.list_vms() if vm.id == created.id)
    assert not row.detailed and row.cost_per_hour is None and row.state is VMState.RUNNING

    await provider.set_power(created.id, False)
    await until(lambda: provider.get_vm(created.id), lambda vm: vm.state is VMState.STOPPED)
    await provider.set_power(created.id, False)  # idempotent
    await provider.set_power(created.id, True)
    await until(lambda: provider.get_vm(created.id), lambda vm: vm.state is VMState.RUNNING)

    await provider.delete_vm(created.id)
    assert await count(sim, "POST", "/api/v1/vps/{id}/delete") == 1
    with pytest.raises(NotFound):  # 400 VPS_DELETED is "gone"
        await provider.get_vm(created.id)
    with pytest.raises(NotFound):  # 400 VPS_ALREADY_DELETED too
        await provider.delete_vm(created.id)
    with pytest.raises(NotFound):  # 404 VPS_NOT_FOUND
        await provider.get_vm("999999")


async def test_the_plan_is_chosen_and_a_bad_spec_names_the_field(sim: RunningSimulator,
                                                                 provider: CyberPanelProvider) -> None:
    plans, locations, templates = await provider.offerings()
    assert plans and {loc.code for loc in locations} >= {"la", "de"} and any(t.id == "9000" for t in templates)
    fitted = await provider.create_vm(spec(provider.vm_name("fit", "u1"), plan=None, resources=Resources(2, 2, 40)),
                                      CreateAttempt("u1"))
    chosen = next(p for p in plans if str(p.id) == fitted.plan)
    assert chosen.cpu_cores >= 2 and chosen.ram_mb >= 2048 and chosen.disk_gb >= 40
    cheaper = [p for p in plans if p.cpu_cores >= 2 and p.ram_mb >= 2048 and p.disk_gb >= 40 and p.hourly < chosen.hourly]
    assert not cheaper
    creates = await count(sim, "POST", "/api/v1/vps/create")
    for bad, field in ((spec("x.example.com", plan="77"), "spec.plan"), (spec("x.example.com", region="mars"),
                       "spec.region"), (spec("x.example.com", image="ubuntu-24.04"), "spec.image"),
                       (spec("x.example.com", plan=None, resources=Resources(256, 2048, 65536)), "spec.resources")):
        with pytest.raises(SpecRejected) as rejected:
            await provider.create_vm(bad, CreateAttempt("u2"))
        assert rejected.value.message.startswith(field), rejected.value.message
    assert await count(sim, "POST", "/api/v1/vps/create") == creates, "a bad spec reached the provider"
    assert provider.validate_spec(VMSpec(name="n", image="9000")) == [
        "spec.plan (a cyberpanel plan id) or spec.resources is required for provider cyberpanel",
        "spec.region (a cyberpanel location code, e.g. la or de) is required for provider cyberpanel"]
    assert any("rootPasswordSecretRef" in p for p in provider.validate_spec(spec("n", root_password="weakweak")))


async def test_paging_walks_every_page(provider: CyberPanelProvider) -> None:
    made = {(await provider.create_vm(spec(provider.vm_name(f"page-{i}", f"uid{i}")), CreateAttempt(f"uid{i}"))).id
            for i in range(5)}
    assert made <= {vm.id for vm in await provider.list_vms()}  # page_size 2: three pages


async def test_a_failed_deployment_names_its_task(sim: RunningSimulator, provider: CyberPanelProvider) -> None:
    await admin(sim, "PUT", "/config", json={"fail_next_deployments": 1, "fail_at_task": "configure_network"})
    created = await provider.create_vm(spec(provider.vm_name("doomed", "u3")), CreateAttempt("u3"))
    failed = await until(lambda: provider.get_vm(created.id), lambda vm: vm.state is VMState.ERROR)
    assert failed.problem and failed.problem[0] == "ProvisioningFailed"
    progress = await provider.provisioning(created.id)
    assert progress.failed and progress.task == "configure_network" and "configure_network" in (progress.message or "")
    with pytest.raises(InvalidState):  # 500 DEPLOYMENT_FAILED: final, not retried as a 5xx
        await provider.set_power(created.id, True)
    assert await count(sim, "POST", "/api/v1/vps/{id}/start") == 1


async def test_suspension_is_the_vps_state_not_the_key(sim: RunningSimulator, provider: CyberPanelProvider) -> None:
    created = await provider.create_vm(spec(provider.vm_name("owed", "u4")), CreateAttempt("u4"))
    await until(lambda: provider.get_vm(created.id), lambda vm: vm.state is VMState.RUNNING)
    await admin(sim, "POST", f"/vps/{created.id}/status", json={"status": "suspended", "reason": "unpaid"})
    assert (await provider.get_vm(created.id)).state is VMState.SUSPENDED
    with pytest.raises(InvalidState) as refused:
        await provider.set_power(created.id, False)
    assert refused.value.code == "VPS_SUSPENDED" and "unpaid" in refused.value.message


async def test_snapshots_are_created_and_listed_under_cyberpanel_names(provider: CyberPanelProvider) -> None:
    created = await provider.create_vm(spec(provider.vm_name("snap", "u5")), CreateAttempt("u5"))
    await until(lambda: provider.get_vm(created.id), lambda vm: vm.state is VMState.RUNNING)
    snapshot = await provider.create_snapshot(created.id, "team-a-before.upgrade", CreateAttempt("s1"))
    assert snapshot.id == snapshot.name == "team_a_before_upgrade"
    assert [s.name for s in await provider.list_snapshots(created.id)] == ["team_a_before_upgrade"]
    assert provider.snapshot_name("team-a-before.upgrade") == snapshot.name


async def test_keys_scopes_expiry_and_whitelist(sim: RunningSimulator) -> None:
    async def key(**fields: Any) -> str:
        return str((await admin(sim, "POST", "/keys", json=fields)).json()["api_key"])

    async with CyberPanelClient(api_key=KEY, endpoint=sim.url) as good:
        info = await good.test()
        assert info.scopes == ["all"] and info.key_prefix == KEY[:12]
        assert "balance" in await good.account()
    reader = await key(name="reader", scopes=["vps:read"])
    provider = CyberPanelProvider(CyberPanelClient(api_key=reader, endpoint=sim.url), hostname_domain=DOMAIN)
    with pytest.raises(Forbidden) as lacking:
        await provider.check_credentials()
    assert lacking.value.code == "INSUFFICIENT_SCOPE" and "vps:write" in lacking.value.message
    assert "reader" in lacking.value.message and reader not in lacking.value.message
    with pytest.raises(Forbidden) as scoped:  # the provider's own refusal of a write
        await provider.create_vm(spec("r.example.com"), CreateAttempt("u6"))
    assert scoped.value.code == "INSUFFICIENT_SCOPE"
    await provider.aclose()
    for fields, code, error in (({"expires_in": -10}, "EXPIRED_API_KEY", Unauthorized),
                                ({"is_active": False}, "INACTIVE_API_KEY", Unauthorized),
                                ({"ip_whitelist": ["203.0.113.9"]}, "IP_NOT_ALLOWED", Forbidden)):
        async with CyberPanelClient(api_key=await key(**fields), endpoint=sim.url) as refused:
            with pytest.raises(error) as caught:
                await refused.test()
            assert caught.value.code == code
    async with CyberPanelClient(api_key=cyberpanel_key(), endpoint=sim.url) as unknown:
        with pytest.raises(Unauthorized) as caught:
            await unknown.list_vps()
        assert caught.value.code == "INVALID_API_KEY"


async def test_a_429_in_the_minute_window_becomes_a_wait() -> None:
    # 5 per simulated minute (1 s here), 1000 per hour: 12 reads must wait, not fail.
    with running_simulator("cyberpanel", api_key=KEY, time_scale=TIME_SCALE, rate_limit=5) as sim:
        async with CyberPanelClient(api_key=KEY, endpoint=sim.url) as greedy:
            listed = await asyncio.gather(*(greedy.list_vps() for _ in range(12)))
        assert len(listed) == 12
        assert await count(sim, "GET", "/api/v1/vps", 429) > 0, "the limit was never reached"


async def test_a_429_in_the_hour_window_becomes_a_wait() -> None:
    # 8 per simulated hour; at x1200 an hour is 3 s and the minute window never binds.
    with running_simulator("cyberpanel", api_key=KEY, time_scale=1200.0, rate_limit=1000,
                           settings={"rate_limit_per_hour": 8}) as sim:
        async with CyberPanelClient(api_key=KEY, endpoint=sim.url) as greedy:
            for _ in range(10):
                await greedy.list_vps()
        rows = (await admin(sim, "GET", "/requests", params={"limit": 100})).json()
        assert await count(sim, "GET", "/api/v1/vps", 429) > 0, rows
        assert await count(sim, "GET", "/api/v1/vps", 200) == 10


async def test_the_two_budgets_keep_the_client_under_both_windows() -> None:
    # The plugin's two budgets (per minute and per hour, every call), sized to the key.
    with running_simulator("cyberpanel", api_key=KEY, time_scale=1200.0, rate_limit=1000,
                           settings={"rate_limit_per_hour": 8}) as sim:
        hour = 3600.0 / 1200.0
        budgets = (RateBudget(RateLimiter(1000, 60.0 / 1200.0), frozenset(CallKind)),
                   RateBudget(RateLimiter(8, hour * 1.05), frozenset(CallKind), reports_server_headers=False))
        async with CyberPanelClient(api_key=KEY, endpoint=sim.url, budgets=budgets) as careful:
            for _ in range(12):
                await careful.list_vps()
        assert await count(sim, "GET", "/api/v1/vps", 429) == 0
        assert await count(sim, "GET", "/api/v1/vps", 200) == 12
