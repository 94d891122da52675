"""One contract suite for every provider: each real client, behind the Provider protocol,
against its own simulator over real HTTP. A provider plugs in by adding a row to ROWS
(how to start its simulator, a VMSpec it accepts, bad credentials, a signed delivery).
"""
from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cloudsim.testing import running_simulator
from cube_operator.providers import (
    Capability,
    CreateAttempt,
    NotFound,
    ObservedVM,
    Provider,
    ProviderConnection,
    ProviderPlugin,
    RateBudget,
    RateLimiter,
    Resources,
    Unauthorized,
    VMSpec,
    VMState,
    plugin_for,
)

TIME_SCALE = 60.0
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIContractTestKey contract@test"


@dataclass
class Account:
    """A running simulator and what the plugin needs to talk to it."""

    endpoint: str
    admin_url: str
    credentials: dict[str, str]
    settings: Any
    bad_credentials: dict[str, str]
    spec: Callable[[str], VMSpec]


@contextlib.contextmanager
def krova_account() -> Iterator[Account]:
    from cube_operator.api.providerconfig import KrovaSettings

    key = "kro_contract_" + uuid.uuid4().hex[:16]
    with running_simulator("krova", api_key=key, space_id="sp_contract", time_scale=TIME_SCALE,
                           validate_responses=True) as sim:
        yield Account(
            endpoint=sim.url, admin_url=sim.admin_url, credentials={"apiKey": key},
            settings=KrovaSettings(space_id="sp_contract"), bad_credentials={"apiKey": "kro_wrong"},
            spec=lambda name: VMSpec(name=name, image="ubuntu-24.04", region="eu-nuremberg",
                                     resources=Resources(1, 1, 10), ssh_public_key=SSH_KEY),
        )


@contextlib.contextmanager
def nokyc_account() -> Iterator[Account]:
    import base64
    import hashlib
    import struct

    from cube_operator.api.providerconfig import NoKycSettings

    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    key = "ssh-ed25519 " + base64.b64encode(s(b"ssh-ed25519") + s(hashlib.sha256(b"row").digest())).decode()
    token = "nkv_live_" + uuid.uuid4().hex + "0" * 20
    with running_simulator("nokyc", tokens={token: "write"}, time_scale=TIME_SCALE,
                           settings={"allow_http_webhooks": True}) as sim:
        yield Account(
            endpoint=sim.url, admin_url=sim.admin_url, credentials={"token": token},
            settings=NoKycSettings(), bad_credentials={"token": "nkv_live_" + "q" * 52},
            spec=lambda name: VMSpec(name=name, image="debian-13-minimal", region="par", plan="vps-s1",
                                     ssh_public_key=key),
        )


@contextlib.contextmanager
def lunanode_account() -> Iterator[Account]:
    import base64
    import hashlib
    import struct

    from cube_operator.api.providerconfig import LunaNodeSettings

    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    key = "ssh-ed25519 " + base64.b64encode(s(b"ssh-ed25519") + s(hashlib.sha256(b"row").digest())).decode()
    api_id, api_key = uuid.uuid4().hex[:16], (uuid.uuid4().hex * 4)
    with running_simulator("lunanode", api_id=api_id, api_key=api_key, time_scale=TIME_SCALE) as sim:
        yield Account(
            endpoint=sim.url, admin_url=sim.admin_url, credentials={"apiId": api_id, "apiKey": api_key},
            settings=LunaNodeSettings(), bad_credentials={"apiId": api_id, "apiKey": "0" * 128},
            spec=lambda name: VMSpec(name=name, image="Ubuntu 22.04 64-bit", region="toronto",
                                     resources=Resources(1, 1, 15), ssh_public_key=key),
        )


@contextlib.contextmanager
def voltagepark_account() -> Iterator[Account]:
    from cube_operator.api.providerconfig import VoltageParkSettings
    from cube_operator.providers import Gpus

    key = "vp_row_" + uuid.uuid4().hex
    with running_simulator("voltagepark", api_key=key, time_scale=TIME_SCALE) as sim:
        yield Account(
            endpoint=sim.url, admin_url=sim.admin_url, credentials={"apiKey": key},
            settings=VoltageParkSettings(), bad_credentials={"apiKey": "vp_nobody"},
            spec=lambda name: VMSpec(name=name, image="Ubuntu 22.04 LTS", resources=Resources(4, 16, 40),
                                     gpus=Gpus("h100-sxm5-80gb", 1), ssh_public_key=SSH_KEY),
        )


@contextlib.contextmanager
def cyberpanel_account() -> Iterator[Account]:
    from cloudsim.testing import cyberpanel_key
    from cube_operator.api.providerconfig import CyberPanelSettings

    key = cyberpanel_key()
    with running_simulator("cyberpanel", api_key=key, time_scale=TIME_SCALE, rate_limit=0,
                           settings={"deploy_delay": 60.0, "start_delay": 1.0, "stop_delay": 1.0}) as sim:
        yield Account(
            endpoint=sim.url, admin_url=sim.admin_url, credentials={"apiKey": key},
            settings=CyberPanelSettings(hostname_domain="vms.example.com"),
            bad_credentials={"apiKey": cyberpanel_key()},
            spec=lambda name: VMSpec(name=name, image="9000", region="la", plan="1", ssh_public_key=SSH_KEY,
                                     root_password="Contract2pass"),
        )


#: provider name -> its simulator account. One row per implemented provider.
ROWS: dict[str, Callable[[], contextlib.AbstractContextManager[Account]]] = {
    "krova": krova_account,
    "nokyc": nokyc_account,
    "cyberpanel": cyberpanel_account,
    "lunanode": lunanode_account,
    "voltagepark": voltagepark_account,
}


def test_every_implemented_provider_has_a_row() -> None:
    from cube_operator.providers import implemented_providers

    assert set(implemented_providers()) == set(ROWS)


def build(plugin: ProviderPlugin, account: Account, credentials: dict[str, str] | None = None) -> Provider:
    # The provider's documented limits, time-scaled like the simulator.
    budgets = tuple(RateBudget(RateLimiter(b.limit, b.period / TIME_SCALE), b.kinds) for b in plugin.budgets)
    provider: Provider = plugin.build(ProviderConnection(
        endpoint=account.endpoint, credentials=credentials or account.credentials,
        settings=account.settings, budgets=budgets))
    return provider


@pytest.fixture(params=sorted(ROWS))
def plugin(request: pytest.FixtureRequest) -> ProviderPlugin:
    found = plugin_for(request.param)
    assert found is not None
    return found


@pytest.fixture
def account(plugin: ProviderPlugin) -> Iterator[Account]:
    with ROWS[plugin.name]() as running:
        yield running


@pytest.fixture
async def provider(plugin: ProviderPlugin, account: Account) -> AsyncIterator[Provider]:
    built = build(plugin, account)
    yield built
    await built.aclose()


async def eventually(probe: Callable[[], Awaitable[ObservedVM | None]],
                     accept: Callable[[ObservedVM | None], bool], timeout: float = 15.0) -> ObservedVM | None:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        assert time.monotonic() < deadline, f"last value: {value!r}"
        await _sleep(0.05)


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def listed(provider: Provider, vm_id: str) -> ObservedVM | None:
    return next((vm for vm in await provider.list_vms() if vm.id == vm_id), None)


async def test_it_implements_the_protocol_and_its_declared_facets(plugin: ProviderPlugin,
                                                                  provider: Provider) -> None:
    assert isinstance(provider, Provider)
    assert provider.name == plugin.name and provider.capabilities == plugin.capabilities
    facets = {Capability.POWER: provider.power, Capability.SSH_PORT: provider.ssh,
              Capability.SNAPSHOTS: provider.snapshots, Capability.RESTORE: provider.restore,
              Capability.TCP_EXPOSURE: provider.tcp, Capability.DOMAINS: provider.domains,
              Capability.WEBHOOKS: provider.webhooks}
    for capability, facet in facets.items():
        assert (facet is not None) == (capability in provider.capabilities), capability


async def test_credentials_are_checked_with_one_cheap_call(plugin: ProviderPlugin, account: Account,
                                                           provider: Provider) -> None:
    await provider.check_credentials()
    wrong = build(plugin, account, account.bad_credentials)
    with pytest.raises(Unauthorized) as info:
        await wrong.check_credentials()
    assert all(v not in str(info.value) for v in account.bad_credentials.values())
    await wrong.aclose()


async def test_validate_spec_is_offline_and_names_the_field(account: Account, provider: Provider) -> None:
    assert provider.validate_spec(account.spec("ok")) == []
    problems = provider.validate_spec(VMSpec(name="bad", image="ubuntu-24.04"))
    assert problems and all(p.startswith("spec.") for p in problems)


async def test_create_observe_find_power_delete(account: Account, provider: Provider) -> None:
    uid = str(uuid.uuid4())
    name = provider.vm_name("contract-vm", uid)
    attempt = CreateAttempt(owner_uid=uid)
    created = await provider.create_vm(account.spec(name), attempt)
    assert created.id and created.name == name
    if Capability.IDEMPOTENT_CREATE in provider.capabilities:
        assert (await provider.create_vm(account.spec(name), attempt)).id == created.id
    running = await eventually(lambda: listed(provider, created.id),
                               lambda vm: vm is not None and vm.state is VMState.RUNNING)
    assert running is not None and running.provider_state
    assert (await provider.get_vm(created.id)).id == created.id
    before = len(await provider.list_vms())
    found = await provider.find_vms(name, attempt)
    assert [vm.id for vm in found] == [created.id]
    assert len(await provider.list_vms()) == before, "find created something"
    assert await provider.find_vms(provider.vm_name("nobody", str(uuid.uuid4())),
                                   CreateAttempt(str(uuid.uuid4()))) == []
    if provider.power is not None:
        await provider.power.set_power(created.id, False)
        await eventually(lambda: provider.get_vm(created.id), lambda vm: vm is not None and vm.state is VMState.STOPPED)
        await provider.power.set_power(created.id, True)
        await eventually(lambda: provider.get_vm(created.id), lambda vm: vm is not None and vm.state is VMState.RUNNING)

    await provider.delete_vm(created.id)

    async def gone() -> ObservedVM | None:
        try:
            return await provider.get_vm(created.id)
        except NotFound:
            return None

    await eventually(gone, lambda vm: vm is None)
    with pytest.raises(NotFound):  # the caller's "already gone"
        await provider.delete_vm(created.id)


@pytest.mark.parametrize("plugin", [n for n in sorted(ROWS) if (p := plugin_for(n)) and p.verify_webhook
                                    and Capability.WEBHOOKS in p.capabilities], indirect=True)
async def test_a_real_webhook_delivery_verifies(plugin: ProviderPlugin, account: Account,
                                               provider: Provider, unused_tcp_port: int) -> None:
    assert provider.webhooks is not None and plugin.verify_webhook is not None
    from aiohttp import web

    received: list[tuple[dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        endpoint = await provider.webhooks.create_webhook(
            url=f"http://127.0.0.1:{unused_tcp_port}/hook", events=["cube.running", "cube.stopped"])
        assert endpoint.secret and endpoint.secret not in repr(endpoint)
        vm = await provider.create_vm(account.spec(provider.vm_name("hooked", "u1")), CreateAttempt("u1"))
        deadline = time.monotonic() + 15
        while not received:
            assert time.monotonic() < deadline, "no delivery"
            await _sleep(0.05)
        headers, body = received[0]
        event = plugin.verify_webhook(headers, body, endpoint.secret, time.time())
        assert event.vm_id == vm.id and event.delivery_id
        await provider.webhooks.delete_webhook(endpoint.id)
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("plugin", [n for n in sorted(ROWS) if (p := plugin_for(n))
                                    and Capability.CREATE_CALLBACK in p.capabilities], indirect=True)
async def test_a_real_create_callback_verifies_and_a_forged_one_does_not(
        plugin: ProviderPlugin, account: Account, provider: Provider, unused_tcp_port: int) -> None:
    from dataclasses import replace

    from aiohttp import web

    from cube_operator.providers import WebhookRejected

    assert plugin.verify_webhook is not None
    received: list[tuple[dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/callback", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        secret = uuid.uuid4().hex
        spec = replace(account.spec(provider.vm_name("called", "u1")),
                       callback_url=f"http://127.0.0.1:{unused_tcp_port}/callback", callback_secret=secret)
        assert secret not in repr(spec)
        vm = await provider.create_vm(spec, CreateAttempt("u1"))
        deadline = time.monotonic() + 15
        while not received:
            assert time.monotonic() < deadline, "no callback"
            await _sleep(0.05)
        headers, body = received[0]
        event = plugin.verify_webhook(headers, body, secret, time.time())
        assert event.vm_id == vm.id and event.delivery_id
        with pytest.raises(WebhookRejected):
            plugin.verify_webhook(headers, body, "another-secret", time.time())
        with pytest.raises(WebhookRejected):
            plugin.verify_webhook(headers, body.replace(b"completed", b"failed"), secret, time.time())
    finally:
        await runner.cleanup()


async def test_the_catalogue_lists_what_the_simulator_offers(plugin: ProviderPlugin, account: Account,
                                                             provider: Provider) -> None:
    catalogue = await provider.catalogue()
    example = account.spec("x")
    assert catalogue.images and catalogue.regions
    images = [e.id for e in catalogue.images]
    regions = [e.id for e in catalogue.regions]
    assert all(e.description for e in catalogue.images + catalogue.regions if plugin.name != "lunanode")
    assert example.image in images or example.image.lower() in [i.lower() for i in images], images
    assert example.region is None or example.region in regions, regions
    if plugin.name == "krova":
        assert catalogue.plans is None and catalogue.note and "spec.resources" in catalogue.note
    else:
        assert catalogue.plans and all(e.description for e in catalogue.plans)
        if example.plan:
            plan_ids = [e.id for e in catalogue.plans] + [e.description or "" for e in catalogue.plans]
            assert any(example.plan == p or f" {example.plan}:" in f" {p}" for p in plan_ids), plan_ids


@pytest.mark.parametrize("field", ["image", "region"])
async def test_an_image_or_region_the_provider_lacks_is_rejected_naming_the_choices(
        field: str, account: Account, provider: Provider) -> None:
    from dataclasses import replace

    from cube_operator.providers import CATALOGUE_HINT, SpecRejected

    uid = str(uuid.uuid4())
    good = account.spec(provider.vm_name("unoffered", uid))
    bad = replace(good, image="no-such-image") if field == "image" else replace(good, region="no-such-region")
    with pytest.raises(SpecRejected) as rejected:
        await provider.create_vm(bad, CreateAttempt(uid))
    message = rejected.value.message
    assert message.startswith(f"spec.{field}:") and "choose one of:" in message and CATALOGUE_HINT in message
    valid = good.image if field == "image" else good.region
    assert valid is None or valid in message, message
    assert "/images" not in message and "/regions" not in message
    assert await provider.find_vms(good.name, CreateAttempt(uid)) == [], "a create was sent"
