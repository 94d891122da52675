"""Cursor paging, filters and sort on the list endpoints."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloudsim.testing import sample_server_request

from .test_nokyc_auth import assert_envelope


@pytest.fixture(autouse=True)
async def servers_stay_provisioning(admin: httpx.AsyncClient) -> None:
    # Statuses must not change under the filters of these tests.
    await admin.put("/config", json={"provision_delay": 100000})


async def _fill(api: httpx.AsyncClient, ssh_key: str, count: int) -> list[dict[str, Any]]:
    servers = []
    for i in range(count):
        region = ("par", "rkv", "zrh")[i % 3]
        body = sample_server_request(ssh_key, name=f"s{i}", region=region,
                                     labels={"team": "a" if i % 2 else "b"},
                                     tags=["even"] if i % 2 == 0 else [])
        response = await api.post("/servers", json=body)
        assert response.status_code == 201
        servers.append(response.json())
    return servers


async def _walk(api: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        response = await api.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"object", "data", "has_more", "next_cursor"}
        assert body["object"] == "list"
        pages.append(body)
        if not body["has_more"]:
            assert body["next_cursor"] is None
            return pages
        query["cursor"] = body["next_cursor"]


async def test_three_pages_default_size(api: httpx.AsyncClient, ssh_key: str) -> None:
    created = await _fill(api, ssh_key, 55)
    pages = await _walk(api, "/servers")
    assert [len(p["data"]) for p in pages] == [25, 25, 5]
    assert [p["has_more"] for p in pages] == [True, True, False]
    ids = [s["id"] for p in pages for s in p["data"]]
    assert ids == [s["id"] for s in created]  # oldest first, no gaps, no repeats

    backwards = await _walk(api, "/servers", sort="-created_at", page_size=20)
    assert [len(p["data"]) for p in backwards] == [20, 20, 15]
    assert [s["id"] for p in backwards for s in p["data"]] == ids[::-1]

    big = await api.get("/servers", params={"page_size": 100})
    assert len(big.json()["data"]) == 55 and big.json()["has_more"] is False


async def test_filters(api: httpx.AsyncClient, ssh_key: str) -> None:
    created = await _fill(api, ssh_key, 30)
    rkv = [s["id"] for s in created if s["region"] == "rkv"]
    pages = await _walk(api, "/servers", **{"filter[region]": "rkv", "page_size": 4})
    assert [len(p["data"]) for p in pages] == [4, 4, 2]
    assert [s["id"] for p in pages for s in p["data"]] == rkv

    team_a = [s["id"] for s in created if s["labels"]["team"] == "a"]
    got = (await api.get("/servers", params={"filter[labels.team]": "a", "page_size": 100}))
    assert [s["id"] for s in got.json()["data"]] == team_a
    combined = await api.get("/servers", params={
        "filter[labels.team]": "b", "filter[region]": "par", "filter[status]": "provisioning",
        "filter[plan]": "vps-s2", "page_size": 100,
    })
    expected = [s["id"] for s in created if s["labels"]["team"] == "b" and s["region"] == "par"]
    assert [s["id"] for s in combined.json()["data"]] == expected
    tagged = await api.get("/servers", params={"filter[tags]": "even", "page_size": 100})
    assert len(tagged.json()["data"]) == 15
    none = await api.get("/servers", params={"filter[labels.nope]": "x"})
    assert none.json() == {"object": "list", "data": [], "has_more": False, "next_cursor": None}


async def test_cursor_is_stable_while_items_are_added(
    api: httpx.AsyncClient, ssh_key: str
) -> None:
    created = await _fill(api, ssh_key, 6)
    first = (await api.get("/servers", params={"page_size": 3})).json()
    newer = await _fill(api, ssh_key, 2)
    await api.delete(f"/servers/{created[1]['id']}")  # still listed while destroying
    rest = (await api.get("/servers", params={"page_size": 10,
                                              "cursor": first["next_cursor"]})).json()
    # next page size differs from the first; the cursor only marks the position.
    assert [s["id"] for s in rest["data"]] == [s["id"] for s in created[3:] + newer]


@pytest.mark.parametrize(
    ("params", "field", "issue"),
    [
        ({"page_size": "101"}, "page_size", "max"),
        ({"page_size": "0"}, "page_size", "min"),
        ({"page_size": "ten"}, "page_size", "type"),
        ({"sort": "name"}, "sort", "enum"),
        ({"sort": "created_at,name"}, "sort", "enum"),
        ({"offset": "10"}, "offset", "unknown_parameter"),
        ({"limit": "10"}, "limit", "unknown_parameter"),
        ({"filter[colour]": "red"}, "filter[colour]", "unsupported_filter"),
        ({"filter[labels.]": "x"}, "filter[labels.]", "unsupported_filter"),
        ({"cursor": "garbage"}, "cursor", "format"),
        ({"cursor": "c_!!!"}, "cursor", "format"),
    ],
)
async def test_bad_list_queries(
    api: httpx.AsyncClient, params: dict[str, str], field: str, issue: str
) -> None:
    error = assert_envelope(await api.get("/servers", params=params), 400, "invalid_request")
    assert error["errors"][0]["field"] == field and error["errors"][0]["issue"] == issue


async def test_cursor_must_match_the_query(api: httpx.AsyncClient, ssh_key: str) -> None:
    await _fill(api, ssh_key, 4)
    first = (await api.get("/servers", params={"page_size": 2})).json()
    for params in ({"filter[region]": "par"}, {"sort": "-created_at"}):
        error = assert_envelope(
            await api.get("/servers", params={"cursor": first["next_cursor"], **params}),
            400, "invalid_request")
        assert error["errors"] == [{"field": "cursor", "issue": "mismatch"}]


async def test_other_lists_page_and_filter(api: httpx.AsyncClient) -> None:
    plans = await _walk(api, "/plans", page_size=2)
    assert [len(p["data"]) for p in plans] == [2, 2, 1]
    dedicated = (await api.get("/plans", params={"filter[category]": "dedicated"})).json()
    assert [p["id"] for p in dedicated["data"]] == ["ded-e24"]
    in_buh = (await api.get("/plans", params={"filter[available_in]": "buh"})).json()["data"]
    assert "vps-l8" not in {p["id"] for p in in_buh} and len(in_buh) == 3
    regions = (await api.get("/regions", params={"filter[available]": "true"})).json()["data"]
    assert [r["id"] for r in regions] == ["par", "rkv", "zrh", "buh"]
    bad = await api.get("/regions", params={"filter[available]": "yes"})
    assert_envelope(bad, 400, "invalid_request")
    arm = (await api.get("/images", params={"filter[arch]": "arm64",
                                            "filter[family]": "ubuntu"})).json()["data"]
    assert {i["id"] for i in arm} == {"ubuntu-24.04-cloud", "ubuntu-22.04-cloud"}
    listed = await api.get("/images", params={"sort": "-created_at", "page_size": 1})
    assert listed.json()["data"][0]["id"] == "rocky-9-cloud"
