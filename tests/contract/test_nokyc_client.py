"""The NoKYC client against the NoKYC simulator over real HTTP: every call the operator
makes, cursor paging across pages, idempotent replays, a reused key with another body,
unknown keys never sent, scopes, and the token bucket turning into a wait."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from cloudsim.testing import RunningSimulator, running_simulator
from cube_operator.providers import (
    CallKind,
    Conflict,
    CreateAttempt,
    Forbidden,
    RateBudget,
    RateLimiter,
    Unauthorized,
    VMSpec,
    VMState,
)
from cube_operator.providers.nokyc import NoKycClient, NoKycProvider
from cube_operator.providers.nokyc.models import FirewallRule

pytestmark = pytest.mark.timeout(90)

TOKEN = "nkv_live_" + ("contract" + "0123456789abcdef" * 4)[:52]
READ_TOKEN = "nkv_live_" + ("readonly" + "0123456789abcdef" * 4)[:52]
TIME_SCALE = 60.0


def ssh_key(seed: str) -> str:
    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b
    return "ssh-ed25519 " + base64.b64encode(s(b"ssh-ed25519") + s(hashlib.sha256(seed.encode()).digest())).decode()


@pytest.fixture
def sim() -> Iterator[RunningSimulator]:
    with running_simulator("nokyc", tokens={TOKEN: "billing", READ_TOKEN: "read"}, time_scale=TIME_SCALE) as server:
        yield server


def budgets() -> tuple[RateBudget, ...]:
    return (RateBudget(RateLimiter(10, 10.0 / TIME_SCALE), frozenset({CallKind.READ, CallKind.MUTATE})),
            RateBudget(RateLimiter(200, 60.0 / TIME_SCALE), frozenset({CallKind.PROVISION})))


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[NoKycClient]:
    made = NoKycClient(token=TOKEN, endpoint=sim.url, budgets=budgets(), page_size=2)
    yield made
    await made.aclose()


@pytest.fixture
async def provider(client: NoKycClient) -> NoKycProvider:
    return NoKycProvider(client)


async def stats(sim: RunningSimulator) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=sim.admin_url) as admin:
        rows: list[dict[str, Any]] = (await admin.get("/stats")).json()["requests"]
        return rows


def spec(name: str, **kw: Any) -> VMSpec:
    base: dict[str, Any] = {"name": name, "image": "debian-13-minimal", "region": "par", "plan": "vps-s1",
                            "ssh_public_key": ssh_key("contract")}
    base.update(kw)
    return VMSpec(**base)


async def until(probe: Any, accept: Any, timeout: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        assert asyncio.get_running_loop().time() < deadline, value
        await asyncio.sleep(0.05)


async def test_create_is_idempotent_labelled_and_found(provider: NoKycProvider, sim: RunningSimulator) -> None:
    uid = str(uuid.uuid4())
    attempt = CreateAttempt(uid)
    first = await provider.create_vm(spec("edge"), attempt)
    again = await provider.create_vm(spec("edge"), attempt)
    assert first.id == again.id and first.owner_uid == uid and first.plan == "vps-s1"
    servers = await provider.client.list_servers()
    assert [s.id for s in servers if s.labels.get("cube-operator-uid") == uid] == [first.id]
    assert [vm.id for vm in await provider.find_vms("edge", attempt)] == [first.id]
    assert await provider.find_vms("edge", CreateAttempt(str(uuid.uuid4()))) == []
    running = await until(lambda: provider.get_vm(first.id), lambda vm: vm.state is VMState.RUNNING)
    assert running.public_ipv4 and running.public_ipv6 and running.cost_per_hour
    assert not any(r["status"] == 400 for r in await stats(sim)), "the client sent something NoKYC rejects"


async def test_a_reused_key_with_another_body_is_a_conflict(client: NoKycClient) -> None:
    keys = await NoKycProvider(client).ssh_key_id(ssh_key("conflict"))
    body = {"name": "one", "plan": "vps-s1", "region": "par", "image": "debian-13-minimal", "ssh_keys": [keys]}
    await client.create_server(body, idempotency_key="key-1")
    with pytest.raises(Conflict) as info:
        await client.create_server({**body, "name": "two"}, idempotency_key="key-1")
    assert info.value.code == "conflict_state" and "request_id" in info.value.message


async def test_paging_walks_every_page(provider: NoKycProvider) -> None:
    made = [await provider.create_vm(spec(f"page-{i}"), CreateAttempt(str(uuid.uuid4()))) for i in range(5)]
    listed = await provider.list_vms()  # page_size=2: three pages
    assert {vm.id for vm in made} <= {vm.id for vm in listed}
    assert len(listed) == len({vm.id for vm in listed})


async def test_one_ssh_key_per_fingerprint(provider: NoKycProvider) -> None:
    key = ssh_key("shared")
    first = await provider.ssh_key_id(key)
    provider._ssh_keys.clear()  # a restarted operator
    assert await provider.ssh_key_id(key) == first
    fingerprints = [k.fingerprint for k in await provider.client.list_ssh_keys()]
    assert len(fingerprints) == len(set(fingerprints))


async def test_power_snapshot_restore_firewall_and_delete(provider: NoKycProvider) -> None:
    vm = await provider.create_vm(spec("full"), CreateAttempt(str(uuid.uuid4())))
    await until(lambda: provider.get_vm(vm.id), lambda v: v.state is VMState.RUNNING)
    await provider.set_power(vm.id, False)
    await until(lambda: provider.get_vm(vm.id), lambda v: v.state is VMState.STOPPED)
    await provider.set_power(vm.id, True)
    await until(lambda: provider.get_vm(vm.id), lambda v: v.state is VMState.RUNNING)

    snap = await provider.create_snapshot(vm.id, "full-snap", CreateAttempt(str(uuid.uuid4())))
    provider._snapshots_at = 0.0
    done = await until(lambda: provider.list_snapshots(vm.id),
                       lambda s: any(x.id == snap.id and x.state.value == "complete" for x in s))
    assert done
    await provider.restore_snapshot(vm.id, snap.id)
    await until(lambda: provider.get_vm(vm.id), lambda v: v.state is VMState.RUNNING)

    exposure = await provider.expose(vm.id, vm_port=8080, label="web", allowed_cidrs=["10.0.0.0/8"],
                                     attempt=CreateAttempt(str(uuid.uuid4())))
    assert exposure.vm_port == 8080 and exposure.allowed_cidrs == ("10.0.0.0/8",) and exposure.active
    assert [e.vm_port for e in await provider.list_exposures(vm.id)] == [8080]
    await provider.unexpose(vm.id, exposure.id)
    assert await provider.list_exposures(vm.id) == []

    await provider.delete_snapshot(vm.id, snap.id)
    await provider.delete_vm(vm.id)
    await until(lambda: provider.client.list_servers(), lambda s: vm.id not in {x.id for x in s})


async def test_rules_are_replaced_atomically(client: NoKycClient) -> None:
    group = await client.create_firewall_group(name="atomic", applied_to=[], default_action="accept",
                                               idempotency_key=str(uuid.uuid4()))
    rules = [FirewallRule(direction="in", proto="tcp", port="22", source="192.0.2.0/24", action="accept")]
    replaced = await client.replace_rules(group.id, rules)
    assert [(r.port, r.source) for r in replaced.rules] == [("22", "192.0.2.0/24")] and replaced.rules[0].id
    await client.delete_firewall_group(group.id)


async def test_scopes_and_tokens(sim: RunningSimulator) -> None:
    async with NoKycClient(token=READ_TOKEN, endpoint=sim.url) as reader:
        await reader.check_token()  # a read token may look
        with pytest.raises(Forbidden) as info:
            await reader.create_ssh_key(name="x", public_key=ssh_key("x"))
        assert info.value.code == "forbidden_scope"
        with pytest.raises(Forbidden):
            await reader.balance()
    async with NoKycClient(token="nkv_live_" + "z" * 52, endpoint=sim.url) as stranger:
        with pytest.raises(Unauthorized) as denied:
            await stranger.check_token()
        assert "z" * 52 not in str(denied.value)
    async with NoKycClient(token=TOKEN, endpoint=sim.url) as owner:
        balance = await owner.balance()
        assert balance.usd >= 0


async def test_an_exhausted_burst_is_waited_out(sim: RunningSimulator) -> None:
    # No client-side budget at all: the 429s must become waits, not errors.
    async with NoKycClient(token=TOKEN, endpoint=sim.url, max_rate_limit_wait=30.0) as greedy:
        await asyncio.gather(*(greedy.list_plans() for _ in range(25)))
    rows = await stats(sim)
    assert any(r["status"] == 429 for r in rows), "the burst was never exhausted"


async def test_the_budgets_keep_the_client_under_the_bucket(sim: RunningSimulator) -> None:
    async with NoKycClient(token=TOKEN, endpoint=sim.url, budgets=budgets()) as polite:
        await asyncio.gather(*(polite.list_plans() for _ in range(25)))
    assert not any(r["status"] == 429 for r in await stats(sim))




async def test_webhook_subscriptions(sim: RunningSimulator, provider: NoKycProvider) -> None:
    async with httpx.AsyncClient(base_url=sim.admin_url) as admin:
        (await admin.put("/config", json={"allow_http_webhooks": True})).raise_for_status()
    hook = await provider.create_webhook(url="http://127.0.0.1:9/hook", events=["cube.running", "cube.deleted"])
    assert hook.secret and hook.events == ("cube.running", "cube.deleted")
    listed = await provider.list_webhooks()
    assert [(w.id, sorted(w.events)) for w in listed] == [(hook.id, ["cube.deleted", "cube.running"])]
    assert (await provider.get_webhook(hook.id)).url == "http://127.0.0.1:9/hook"
    await provider.delete_webhook(hook.id)
    assert await provider.list_webhooks() == []


async def test_https_only_webhooks_are_refused_naming_the_field(provider: NoKycProvider) -> None:
    from cube_operator.providers import Invalid

    with pytest.raises(Invalid) as info:
        await provider.create_webhook(url="http://example.test/hook", events=["cube.running"])
    assert "url" in info.value.message
