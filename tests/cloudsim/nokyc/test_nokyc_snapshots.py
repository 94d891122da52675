"""Snapshots (creating -> ready) and restore."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from cloudsim.nokyc.models import rfc3339
from cloudsim.testing import wait_for, wait_for_server_status

from .conftest import MakeServer
from .test_nokyc_auth import assert_envelope


async def _ready(api: httpx.AsyncClient, snap_id: str, status: str = "ready") -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        snap: dict[str, Any] = (await api.get(f"/snapshots/{snap_id}")).json()
        return snap if snap["status"] == status else None

    return await wait_for(probe)


async def test_snapshot_then_restore(api: httpx.AsyncClient, make_server: MakeServer) -> None:
    server = await make_server()
    taken = await api.post(f"/servers/{server['id']}/snapshots", json={"name": "before-upgrade"})
    assert taken.status_code == 201
    snap = taken.json()
    assert set(snap) == {"id", "object", "server", "name", "size_gb", "status", "expires_at",
                         "created_at"}
    assert snap["id"].startswith("snap_") and snap["object"] == "snapshot"
    assert (snap["server"], snap["status"], snap["size_gb"]) == (server["id"], "creating", None)
    # One snapshot at a time, and no restore from one still being taken.
    assert_envelope(await api.post(f"/servers/{server['id']}/snapshots", json={"name": "b"}),
                    409, "conflict_state")
    assert_envelope(await api.delete(f"/snapshots/{snap['id']}"), 409, "conflict_state")

    ready = await _ready(api, snap["id"])
    assert isinstance(ready["size_gb"], float) and ready["size_gb"] > 0

    await api.post(f"/servers/{server['id']}/rebuild", json={"image": "ubuntu-24.04-cloud"})
    await wait_for_server_status(api, server["id"], "running")
    restoring = await api.post(f"/servers/{server['id']}/restore", json={"snapshot": snap["id"]})
    assert restoring.status_code == 202 and restoring.json()["status"] == "installing"
    restored = await wait_for_server_status(api, server["id"], "running")
    assert restored["image"] == snap["id"]  # "rebuild from snap_…"
    # A snapshot of the restored server works (its disk is still debian underneath).
    again = (await api.post(f"/servers/{server['id']}/snapshots", json={"name": "b"})).json()
    assert (await _ready(api, again["id"]))["size_gb"]


async def test_restore_validation(api: httpx.AsyncClient, make_server: MakeServer) -> None:
    server = await make_server()
    path = f"/servers/{server['id']}/restore"
    error = assert_envelope(await api.post(path, json={"snapshot": "snap_00000000"}), 400,
                            "invalid_request")
    assert error["errors"] == [{"field": "snapshot", "issue": "not_found",
                                "value": "snap_00000000"}]
    error = assert_envelope(await api.post(path, json={"snapshotId": "snap_1"}), 400,
                            "invalid_request")
    assert {e["field"] for e in error["errors"]} == {"snapshotId", "snapshot"}
    # A big server's snapshot does not fit a small plan's disk.
    big = await make_server(name="big", plan="vps-m4")
    snap = (await api.post(f"/servers/{big['id']}/snapshots", json={"name": "big"})).json()
    await _ready(api, snap["id"])
    assert_envelope(await api.post(path, json={"snapshot": snap["id"]}), 422, "unprocessable")
    small = (await api.post(f"/servers/{server['id']}/snapshots", json={"name": "s"})).json()
    await _ready(api, small["id"])
    assert (await api.post(f"/servers/{big['id']}/restore",
                           json={"snapshot": small["id"]})).status_code == 202


async def test_snapshot_body_rules(api: httpx.AsyncClient, make_server: MakeServer) -> None:
    server = await make_server()
    path = f"/servers/{server['id']}/snapshots"
    for body, field in (({}, "name"), ({"name": ""}, "name"), ({"name": "x", "size_gb": 3},
                                                               "size_gb"),
                        ({"name": "x", "expires_at": "tomorrow"}, "expires_at")):
        error = assert_envelope(await api.post(path, json=body), 400, "invalid_request")
        assert error["errors"][0]["field"] == field
    assert_envelope(await api.post(path, json={"name": "x", "expires_at": "2020-01-01T00:00:00Z"}),
                    422, "unprocessable")


async def test_list_filter_delete_and_survival(
    api: httpx.AsyncClient, make_server: MakeServer
) -> None:
    one = await make_server(name="one")
    two = await make_server(name="two")
    snaps = []
    for server in (one, two, one):
        snap = (await api.post(f"/servers/{server['id']}/snapshots", json={"name": "n"})).json()
        await _ready(api, snap["id"])
        snaps.append(snap)
    of_one = (await api.get("/snapshots", params={"filter[server]": one["id"]})).json()["data"]
    assert [s["id"] for s in of_one] == [snaps[0]["id"], snaps[2]["id"]]
    assert len((await api.get("/snapshots")).json()["data"]) == 3

    assert (await api.delete(f"/snapshots/{snaps[2]['id']}")).status_code == 204
    assert_envelope(await api.get(f"/snapshots/{snaps[2]['id']}"), 404, "not_found")

    # Snapshots outlive their server ("server" is frozen at creation).
    await api.delete(f"/servers/{one['id']}")
    await wait_for_server_status(api, one["id"], "gone")
    kept = (await api.get(f"/snapshots/{snaps[0]['id']}")).json()
    assert kept["server"] == one["id"] and kept["status"] == "ready"
    assert (await api.post(f"/servers/{two['id']}/restore",
                           json={"snapshot": snaps[0]["id"]})).status_code == 202


async def test_failed_snapshot_and_expiry(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_server: MakeServer
) -> None:
    await admin.put("/config", json={"fail_next_snapshots": 1})
    server = await make_server()
    path = f"/servers/{server['id']}/snapshots"
    failed = (await api.post(path, json={"name": "bad"})).json()
    await _ready(api, failed["id"], "error")
    assert_envelope(await api.post(f"/servers/{server['id']}/restore",
                                   json={"snapshot": failed["id"]}), 409, "conflict_state")
    assert (await admin.get("/config")).json()["fail_next_snapshots"] == 0

    soon = rfc3339(time.time() + 2)
    expiring = (await api.post(path, json={"name": "tmp", "expires_at": soon})).json()
    assert expiring["expires_at"] == soon
    await asyncio.sleep(2.5)
    assert_envelope(await api.get(f"/snapshots/{expiring['id']}"), 404, "not_found")
