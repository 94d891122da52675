"""Public catalogue endpoints, API-key auth and the error envelope."""

from __future__ import annotations

import httpx

from cloudsim import KrovaSimulator
from cloudsim.testing import (
    DEFAULT_API_KEY,
    DEFAULT_SPACE_ID,
    OTHER_API_KEY,
    OTHER_SPACE_ID,
    VIEWER_API_KEY,
    sample_cube_request,
)


async def test_public_endpoints_need_no_key(root: httpx.AsyncClient) -> None:
    regions = (await root.get("/regions")).json()["regions"]
    assert {r["slug"] for r in regions} >= {"eu-nuremberg", "us-east", "ap-singapore"}
    assert all({"id", "name", "slug"} <= set(r) for r in regions)

    images = (await root.get("/images")).json()["images"]
    assert {i["id"] for i in images} >= {"ubuntu-24.04", "ubuntu-22.04", "debian-12"}
    assert all(i["defaultUser"] for i in images)

    pricing = (await root.get("/pricing")).json()
    assert pricing["currency"] == "USD"
    assert pricing["rates"] == {
        "vcpuPerHour": 0.001, "ramGbPerHour": 0.0025, "diskGbPerHour": 0.00005,
    }
    assert [t["multiplier"] for t in pricing["tiers"]] == [1.0, 0.95, 0.85, 0.8]
    assert pricing["tiers"][-1]["maxVcpus"] is None


async def test_missing_and_unknown_keys_are_401(root: httpx.AsyncClient) -> None:
    path = f"/spaces/{DEFAULT_SPACE_ID}/cubes"
    missing = await root.get(path)
    assert missing.status_code == 401
    assert "X-API-KEY" in missing.json()["error"]
    unknown = await root.get(path, headers={"X-API-KEY": "kro_nope"})
    assert unknown.status_code == 401
    assert set(unknown.json()) == {"error"}
    assert (await root.get("/space")).status_code == 401


async def test_key_of_another_space_is_403(root: httpx.AsyncClient) -> None:
    other = {"X-API-KEY": OTHER_API_KEY}
    assert (await root.get(f"/spaces/{OTHER_SPACE_ID}/cubes", headers=other)).status_code == 200
    denied = await root.get(f"/spaces/{DEFAULT_SPACE_ID}/cubes", headers=other)
    assert denied.status_code == 403
    assert denied.json()["error"]
    create = await root.post(
        f"/spaces/{DEFAULT_SPACE_ID}/cubes", headers=other, json=sample_cube_request()
    )
    assert create.status_code == 403


async def test_cube_of_another_space_is_not_visible(root: httpx.AsyncClient) -> None:
    mine = {"X-API-KEY": DEFAULT_API_KEY}
    created = await root.post(
        f"/spaces/{DEFAULT_SPACE_ID}/cubes", headers=mine, json=sample_cube_request()
    )
    cube_id = created.json()["cube"]["id"]
    other = {"X-API-KEY": OTHER_API_KEY}
    response = await root.get(f"/spaces/{OTHER_SPACE_ID}/cubes/{cube_id}", headers=other)
    assert response.status_code == 404
    listed = await root.get(f"/spaces/{OTHER_SPACE_ID}/cubes", headers=other)
    assert listed.json()["cubes"] == []


async def test_read_only_key_can_view_but_not_manage(root: httpx.AsyncClient) -> None:
    viewer = {"X-API-KEY": VIEWER_API_KEY}
    assert (await root.get(f"/spaces/{DEFAULT_SPACE_ID}/cubes", headers=viewer)).status_code == 200
    response = await root.post(
        f"/spaces/{DEFAULT_SPACE_ID}/cubes", headers=viewer, json=sample_cube_request()
    )
    assert response.status_code == 403
    assert "cube.manage" in response.json()["error"]


async def test_get_space_returns_the_keys_space(root: httpx.AsyncClient) -> None:
    space = (await root.get("/space", headers={"X-API-KEY": OTHER_API_KEY})).json()
    assert space["id"] == OTHER_SPACE_ID
    assert {"id", "name", "tier", "createdAt"} <= set(space)


async def test_error_envelope_for_unknown_route_method_and_bad_json(
    sim: KrovaSimulator, api: httpx.AsyncClient
) -> None:
    unknown = await api.get("/no-such-thing")
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "Not found"}

    wrong_method = await api.put("/cubes")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]

    bad_json = await api.post(
        "/cubes", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json() == {"error": "Invalid JSON body"}

    not_object = await api.post("/cubes", json=["a", "list"])
    assert not_object.status_code == 400
    assert "JSON object" in not_object.json()["error"]

    empty = await api.post("/cubes")
    assert empty.status_code == 400
