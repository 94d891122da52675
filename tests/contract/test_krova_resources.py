"""TCP mappings, SSH port, snapshots and restore, domains, webhooks."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from cloudsim.testing import verify_signature, webhook_receiver
from cube_operator.providers import (
    Conflict,
    Invalid,
    NotFound,
)
from cube_operator.providers.krova import (
    KROVA_DNS_TARGET,
    CreateCubeRequest,
    CubeState,
    KrovaClient,
    KrovaCube,
    Webhook,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def running_cube(
    client: KrovaClient, new_cube: Callable[..., CreateCubeRequest], wait_for: Any
) -> KrovaCube:
    created = await client.create_cube(new_cube("db-1"), idempotency_key="fixture-db-1")
    return await wait_for(
        lambda: client.get_cube(created.id), lambda c: c.state is CubeState.RUNNING
    )


async def test_tcp_mappings_round_trip(client: KrovaClient, running_cube: KrovaCube) -> None:
    cube_id = running_cube.id
    initial = await client.list_tcp_mappings(cube_id)
    ssh = [m for m in initial if m.is_ssh]
    assert len(ssh) == 1 and ssh[0].cube_port == 22

    mapping = await client.create_tcp_mapping(
        cube_id,
        cube_port=5432,
        label="postgres",
        whitelisted_ips=["1.2.3.4/32", "10.0.0.0/8"],
        idempotency_key="map-5432",
    )
    assert mapping.cube_id == cube_id
    assert mapping.cube_port == 5432
    assert mapping.host_port
    assert mapping.label == "postgres"
    assert mapping.is_ssh is False
    assert mapping.whitelisted_ips == ["1.2.3.4/32", "10.0.0.0/8"]

    replay = await client.create_tcp_mapping(
        cube_id,
        cube_port=5432,
        label="postgres",
        whitelisted_ips=["1.2.3.4/32", "10.0.0.0/8"],
        idempotency_key="map-5432",
    )
    assert replay.id == mapping.id

    open_port = await client.create_tcp_mapping(
        cube_id, cube_port=8080, label=None, whitelisted_ips=[], idempotency_key="map-8080"
    )
    assert open_port.whitelisted_ips == []

    listed = {m.id: m for m in await client.list_tcp_mappings(cube_id)}
    assert set(listed) == {ssh[0].id, mapping.id, open_port.id}
    assert listed[mapping.id].whitelisted_ips == ["1.2.3.4/32", "10.0.0.0/8"]

    await client.delete_tcp_mapping(cube_id, mapping.id)
    assert mapping.id not in {m.id for m in await client.list_tcp_mappings(cube_id)}
    with pytest.raises(NotFound):
        await client.delete_tcp_mapping(cube_id, mapping.id)


async def test_ssh_port(client: KrovaClient, running_cube: KrovaCube, wait_for: Any) -> None:
    cube_id = running_cube.id
    await client.set_ssh_port(cube_id, 2222)

    def ssh_row(mappings: list[Any]) -> Any:
        return next(m for m in mappings if m.is_ssh)

    settled = await wait_for(
        lambda: client.list_tcp_mappings(cube_id),
        lambda ms: ssh_row(ms).cube_port == 2222 and ssh_row(ms).status == "active",
    )
    assert ssh_row(settled).host_port
    with pytest.raises(Invalid):
        await client.set_ssh_port(cube_id, 70000)


async def test_ssh_port_clash_is_conflict(client: KrovaClient, running_cube: KrovaCube) -> None:
    await client.create_tcp_mapping(
        running_cube.id,
        cube_port=8443,
        label="web",
        whitelisted_ips=[],
        idempotency_key="map-8443",
    )
    with pytest.raises(Conflict):
        await client.set_ssh_port(running_cube.id, 8443)


async def test_snapshots_and_restore(
    client: KrovaClient, running_cube: KrovaCube, wait_for: Any
) -> None:
    cube_id = running_cube.id
    snap = await client.create_snapshot(cube_id, name="before-upgrade", idempotency_key="snap-1")
    assert snap.cube_id == cube_id
    assert snap.name == "before-upgrade"
    replay = await client.create_snapshot(cube_id, name="before-upgrade", idempotency_key="snap-1")
    assert replay.id == snap.id

    done = await wait_for(
        lambda: client.list_snapshots(cube_id),
        lambda snaps: any(s.id == snap.id and s.status == "complete" for s in snaps),
    )
    complete = next(s for s in done if s.id == snap.id)
    assert complete.completed_at is not None
    assert complete.size_bytes

    unnamed = await client.create_snapshot(cube_id, name=None, idempotency_key="snap-2")
    assert unnamed.name  # auto-generated
    await wait_for(
        lambda: client.list_snapshots(cube_id),
        lambda snaps: all(s.status == "complete" for s in snaps),
    )

    await client.restore_snapshot(cube_id, snap.id)
    await wait_for(lambda: client.get_cube(cube_id), lambda c: c.state is CubeState.RUNNING)

    await client.delete_snapshot(cube_id, unnamed.id)
    assert {s.id for s in await client.list_snapshots(cube_id)} == {snap.id}
    with pytest.raises(NotFound):
        await client.delete_snapshot(cube_id, unnamed.id)
    with pytest.raises(NotFound):
        await client.restore_snapshot(cube_id, "snap_missing")


async def test_domains_round_trip(client: KrovaClient, running_cube: KrovaCube) -> None:
    cube_id = running_cube.id
    domain = await client.add_domain(
        cube_id, domain="api.example.com", port=8080, idempotency_key="dom-1"
    )
    assert domain.cube_id == cube_id
    assert domain.domain == "api.example.com"
    assert domain.port == 8080
    assert domain.status
    if domain.records:
        assert any(r.value == KROVA_DNS_TARGET for r in domain.records)
    replay = await client.add_domain(
        cube_id, domain="api.example.com", port=8080, idempotency_key="dom-1"
    )
    assert replay.id == domain.id

    assert [d.id for d in await client.list_domains(cube_id)] == [domain.id]
    await client.delete_domain(cube_id, domain.id)
    assert await client.list_domains(cube_id) == []
    with pytest.raises(NotFound):
        await client.delete_domain(cube_id, domain.id)
    with pytest.raises(Invalid):
        await client.add_domain(cube_id, domain="not a domain", port=80, idempotency_key="dom-2")


async def test_webhooks_round_trip(client: KrovaClient) -> None:
    events = ["cube.running", "cube.sleeping", "cube.error", "cube.deleted"]
    created = await client.create_webhook(url="https://example.com/hooks/krova", events=events)
    secret = created.secret.get_secret_value()
    assert secret
    assert secret not in repr(created)
    assert created.events == events
    assert created.enabled is True

    fetched = await client.get_webhook(created.id)
    assert type(fetched) is Webhook
    assert fetched.id == created.id
    assert fetched.url == "https://example.com/hooks/krova"

    assert [w.id for w in await client.list_webhooks()] == [created.id]
    assert await client.list_deliveries(created.id) == []
    assert await client.list_deliveries(created.id, limit=5) == []

    await client.delete_webhook(created.id)
    assert await client.list_webhooks() == []
    with pytest.raises(NotFound):
        await client.get_webhook(created.id)


async def test_webhook_rejects_unknown_events(client: KrovaClient) -> None:
    with pytest.raises(Invalid):
        await client.create_webhook(url="https://example.com/h", events=["cube.exploded"])


async def test_deliveries_are_listed_and_signed_with_the_returned_secret(
    client: KrovaClient,
    new_cube: Callable[..., CreateCubeRequest],
    wait_for: Any,
) -> None:
    async with webhook_receiver(statuses=[204]) as receiver:
        hook = await client.create_webhook(url=receiver.url, events=["cube.running"])
        cube = await client.create_cube(new_cube("hooked"), idempotency_key="hooked-1")
        deliveries = await wait_for(
            lambda: client.list_deliveries(hook.id),
            lambda ds: any(d.status == "delivered" for d in ds),
        )
        received = await receiver.wait_for(1)

    delivery = next(d for d in deliveries if d.status == "delivered")
    assert delivery.event == "cube.running"
    assert delivery.attempts >= 1
    assert delivery.response_status == 204
    assert delivery.last_attempt_at is not None
    first = received[0]
    signature = first.headers.get("X-Krova-Signature")
    assert verify_signature(hook.secret.get_secret_value(), first.body, signature)
    assert json.loads(first.body)["data"]["id"] == cube.id
