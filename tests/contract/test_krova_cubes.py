"""Cubes end to end: catalogue, credentials, create/get/list/sleep/wake/delete,
idempotent create, pagination."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from cube_operator.providers import (
    Forbidden,
    NotFound,
    Unauthorized,
)
from cube_operator.providers.krova import (
    CreateCubeRequest,
    CubeState,
    KrovaClient,
    KrovaCube,
)

pytestmark = pytest.mark.timeout(60)

CUBES = "/spaces/{spaceId}/cubes"


async def test_public_catalogue(client: KrovaClient) -> None:
    regions = await client.list_regions()
    assert regions and all(r.slug for r in regions)
    assert "eu-nuremberg" in {r.slug for r in regions}
    images = await client.list_images()
    assert "ubuntu-24.04" in {i.id for i in images}
    pricing = await client.get_pricing()
    assert pricing.currency
    assert pricing.rates.vcpu_per_hour > 0
    assert pricing.tiers


async def test_catalogue_needs_no_key(make_client: Callable[..., KrovaClient]) -> None:
    anonymous = make_client(api_key="kro_not_a_real_key")
    assert await anonymous.list_regions()


async def test_check_credentials(client: KrovaClient) -> None:
    await client.check_credentials()


async def test_wrong_key_is_unauthorized(make_client: Callable[..., KrovaClient]) -> None:
    bad = make_client(api_key="kro_wrong_key_0000000000")
    with pytest.raises(Unauthorized) as info:
        await bad.check_credentials()
    assert info.value.status == 401
    assert info.value.provider == "krova"
    with pytest.raises(Unauthorized):
        await bad.list_cubes()


async def test_other_space_is_forbidden(make_client: Callable[..., KrovaClient]) -> None:
    elsewhere = make_client(space_id="sp_someone_else")
    with pytest.raises(Forbidden) as info:
        await elsewhere.check_credentials()
    assert info.value.status == 403


async def test_cube_lifecycle(
    client: KrovaClient,
    new_cube: Callable[..., CreateCubeRequest],
    wait_for: Any,
) -> None:
    created = await client.create_cube(
        new_cube("web-1", user_data="#cloud-config\npackages: [nginx]\n"),
        idempotency_key="lifecycle-web-1",
    )
    assert created.id
    assert created.name == "web-1"
    assert created.image == "ubuntu-24.04"
    assert created.resources.vcpu == 1
    assert created.state in {CubeState.PENDING, CubeState.BOOTING}

    running = await wait_for(
        lambda: client.get_cube(created.id), lambda c: c.state is CubeState.RUNNING
    )
    assert running.public_ipv4
    assert running.server_domain
    assert running.raw_state == "running"

    listed = await client.list_cubes()
    assert [c.id for c in listed] == [created.id]

    await client.sleep_cube(created.id)
    stopped = await wait_for(
        lambda: client.get_cube(created.id), lambda c: c.state is CubeState.STOPPED
    )
    assert stopped.raw_state in {"stopped", "sleeping"}

    await client.wake_cube(created.id)
    await wait_for(lambda: client.get_cube(created.id), lambda c: c.state is CubeState.RUNNING)

    await client.delete_cube(created.id)

    async def gone_or_deleted() -> KrovaCube | None:
        try:
            return await client.get_cube(created.id)
        except NotFound:
            return None

    await wait_for(gone_or_deleted, lambda c: c is None)
    with pytest.raises(NotFound):
        await client.delete_cube(created.id)
    with pytest.raises(NotFound):
        await client.get_cube("cube_does_not_exist")


async def test_idempotent_create_replays_the_same_cube(
    client: KrovaClient, new_cube: Callable[..., CreateCubeRequest], admin: Any
) -> None:
    first = await client.create_cube(new_cube("once"), idempotency_key="uid-1234-create")
    again = await client.create_cube(new_cube("once"), idempotency_key="uid-1234-create")
    assert again.id == first.id
    cubes = await client.list_cubes()
    assert [c.id for c in cubes] == [first.id]
    other = await client.create_cube(new_cube("twice"), idempotency_key="uid-5678-create")
    assert other.id != first.id
    assert await admin.count("POST", CUBES, 201) == 3  # replays answer 201 too


async def test_list_cubes_walks_every_page(
    make_client: Callable[..., KrovaClient],
    new_cube: Callable[..., CreateCubeRequest],
    admin: Any,
) -> None:
    # 230 Cubes make three pages of 100; lift both limits so creating them is quick.
    await admin.config(rate_limit=0)
    client = make_client(rate_limit=10_000)
    total = 230
    semaphore = asyncio.Semaphore(16)

    async def create(i: int) -> str:
        async with semaphore:
            cube = await client.create_cube(new_cube(f"c{i:03d}"), idempotency_key=f"page-{i}")
            return cube.id

    ids = await asyncio.gather(*(create(i) for i in range(total)))
    assert len(set(ids)) == total
    await admin.reset_stats()

    cubes = await client.list_cubes()

    assert sorted(c.id for c in cubes) == sorted(ids)
    assert await admin.count("GET", CUBES, 200) == 3


async def test_empty_space_lists_nothing(client: KrovaClient, admin: Any) -> None:
    assert await client.list_cubes() == []
    assert await admin.count("GET", CUBES) == 1


@pytest.mark.parametrize(
    "raw,state",
    [
        ("resizing", CubeState.RESIZING),
        ("error", CubeState.ERROR),
        ("stopping", CubeState.STOPPING),
        ("stopped", CubeState.STOPPED),
    ],
)
async def test_out_of_band_states_are_normalised(
    client: KrovaClient,
    new_cube: Callable[..., CreateCubeRequest],
    admin: Any,
    raw: str,
    state: CubeState,
) -> None:
    cube = await client.create_cube(new_cube("drifty"), idempotency_key="drifty-1")
    await admin.force_state(cube.id, raw)
    fetched = await client.get_cube(cube.id)
    assert (fetched.state, fetched.raw_state) == (state, raw)
    [listed] = await client.list_cubes()
    assert listed.state is state
