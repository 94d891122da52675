"""Webhook endpoints (secret shown once), signed deliveries, retries and history."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest

from cloudsim.testing import (
    create_cube,
    verify_signature,
    wait_for,
    wait_for_cube_state,
    webhook_receiver,
)


@pytest.fixture(autouse=True)
async def patient_receivers(admin: httpx.AsyncClient) -> None:
    # The 10 s answer deadline is 0.2 s at 50x; give a busy test machine 2 s instead so
    # attempt counts stay exact.
    await admin.put("/config", json={"webhook_timeout": 100})


ALL_CUBE_EVENTS = ["cube.running", "cube.sleeping", "cube.stopped", "cube.error", "cube.deleted"]


async def _deliveries(
    api: httpx.AsyncClient, hook_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await api.get(f"/webhooks/{hook_id}/deliveries", params=params)
    assert response.status_code == 200
    rows: list[dict[str, Any]] = response.json()["deliveries"]
    return rows


async def test_secret_is_returned_only_at_creation(api: httpx.AsyncClient) -> None:
    created = await api.post(
        "/webhooks", json={"url": "https://example.com/hooks/krova", "events": ALL_CUBE_EVENTS}
    )
    assert created.status_code == 201
    hook = created.json()["webhook"]
    assert re.fullmatch(r"[0-9a-f]{64}", hook["secret"])
    assert hook["enabled"] is True and hook["events"] == ALL_CUBE_EVENTS
    one = (await api.get(f"/webhooks/{hook['id']}")).json()["webhook"]
    assert "secret" not in one and one["id"] == hook["id"]
    listed = (await api.get("/webhooks")).json()["webhooks"]
    assert [w["id"] for w in listed] == [hook["id"]] and "secret" not in listed[0]
    assert (await api.get("/webhooks/wh_nope")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["cube.running"]}, "url"),
        ({"url": "ftp://example.com/x", "events": ["cube.running"]}, "url"),
        ({"url": "not a url", "events": ["cube.running"]}, "url"),
        ({"url": "https://example.com/h"}, "events"),
        ({"url": "https://example.com/h", "events": []}, "events"),
        ({"url": "https://example.com/h", "events": ["cube.exploded"]}, "events"),
    ],
)
async def test_webhook_validation(api: httpx.AsyncClient, body: dict[str, Any], field: str) -> None:
    response = await api.post("/webhooks", json=body)
    assert response.status_code == 400
    assert field in response.json()["error"]


async def test_spec_event_names_are_accepted(api: httpx.AsyncClient) -> None:
    events = ["cube.created", "snapshot.created", "tcp_mapping.updated", "domain.active"]
    response = await api.post("/webhooks", json={"url": "http://127.0.0.1:9/h", "events": events})
    assert response.status_code == 201


async def test_deliveries_are_signed_and_shaped(api: httpx.AsyncClient) -> None:
    async with webhook_receiver() as receiver:
        hook = (await api.post(
            "/webhooks", json={"url": receiver.url, "events": ALL_CUBE_EVENTS}
        )).json()["webhook"]
        cube = await create_cube(api)
        await api.post(f"/cubes/{cube['id']}/sleep")
        await wait_for_cube_state(api, cube["id"], "stopped")
        await api.delete(f"/cubes/{cube['id']}")
        # running, sleeping + stopped, deleted
        got = await receiver.wait_for(4)

    by_event = {json.loads(r.body)["event"]: r for r in got}
    assert set(by_event) == {"cube.running", "cube.sleeping", "cube.stopped", "cube.deleted"}
    delivery_ids = set()
    for event, received in by_event.items():
        headers = {k.lower(): v for k, v in received.headers.items()}
        assert verify_signature(hook["secret"], received.body, headers["x-krova-signature"])
        assert not verify_signature("wrong", received.body, headers["x-krova-signature"])
        assert headers["x-krova-event"] == event
        delivery_ids.add(headers["x-krova-delivery"])
        payload = json.loads(received.body)
        assert payload["id"].startswith("evt_") and payload["spaceId"] == "sp_test"
        assert payload["createdAt"].endswith("Z")
        assert set(payload["data"]) == {"id", "name", "state", "publicIpv4"}
        assert payload["data"]["id"] == cube["id"]
    assert len(delivery_ids) == 4
    assert json.loads(by_event["cube.running"].body)["data"]["state"] == "running"
    assert json.loads(by_event["cube.sleeping"].body)["data"]["state"] == "stopped"
    assert json.loads(by_event["cube.deleted"].body)["data"]["state"] == "deleted"

    history = await _deliveries(api, hook["id"])
    assert len(history) == 4
    assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in history)
    assert all(d["responseStatus"] == 200 and d["lastAttemptAt"] for d in history)
    assert {d["id"] for d in history} == delivery_ids


async def test_only_subscribed_events_are_sent(api: httpx.AsyncClient) -> None:
    async with webhook_receiver() as receiver:
        await api.post("/webhooks", json={"url": receiver.url, "events": ["cube.error"]})
        cube = await create_cube(api)
        await api.post(f"/cubes/{cube['id']}/sleep")
        await wait_for_cube_state(api, cube["id"], "stopped")
        await asyncio.sleep(0.1)
        assert receiver.received == []


async def test_failed_attempts_are_retried_and_recorded(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    # Retries 5 simulated seconds apart (0.1 s at 50x) instead of 60.
    await admin.put("/config", json={"webhook_retry_delay": 5})
    async with webhook_receiver(statuses=[500, 503]) as receiver:
        hook = (await api.post(
            "/webhooks", json={"url": receiver.url, "events": ["cube.running"]}
        )).json()["webhook"]
        await create_cube(api)
        got = await receiver.wait_for(3)

    assert [r.status for r in got] == [500, 503, 200]
    assert len({r.headers["X-Krova-Delivery"] for r in got}) == 1
    assert len({r.body for r in got}) == 1

    async def settled() -> list[dict[str, Any]] | None:
        rows = await _deliveries(api, hook["id"])
        return rows if rows and rows[0]["status"] == "delivered" else None

    (delivery,) = await wait_for(settled)
    assert delivery["attempts"] == 3 and delivery["responseStatus"] == 200


async def test_delivery_fails_after_four_retries(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.put("/config", json={"webhook_retry_delay": 2})
    async with webhook_receiver(default_status=500) as receiver:
        hook = (await api.post(
            "/webhooks", json={"url": receiver.url, "events": ["cube.running"]}
        )).json()["webhook"]
        await create_cube(api)
        await receiver.wait_for(5)

        async def failed() -> list[dict[str, Any]] | None:
            rows = await _deliveries(api, hook["id"])
            return rows if rows and rows[0]["status"] == "failed" else None

        (delivery,) = await wait_for(failed)
    assert delivery["attempts"] == 5 and delivery["responseStatus"] == 500
    assert len(receiver.received) == 5


async def test_unreachable_endpoint_records_no_status(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.put("/config", json={"webhook_retries": 0})
    hook = (await api.post(
        "/webhooks", json={"url": "http://127.0.0.1:9/closed", "events": ["cube.running"]}
    )).json()["webhook"]
    await create_cube(api)

    async def failed() -> list[dict[str, Any]] | None:
        rows = await _deliveries(api, hook["id"])
        return rows if rows and rows[0]["status"] == "failed" else None

    (delivery,) = await wait_for(failed)
    assert delivery["attempts"] == 1 and delivery["responseStatus"] is None


async def test_deliveries_limit_and_cascade(api: httpx.AsyncClient) -> None:
    async with webhook_receiver() as receiver:
        hook = (await api.post(
            "/webhooks", json={"url": receiver.url, "events": ["cube.created"]}
        )).json()["webhook"]
        for i in range(3):
            await create_cube(api, wait=None, name=f"c{i}")
        await receiver.wait_for(3)
    assert len(await _deliveries(api, hook["id"])) == 3
    assert len(await _deliveries(api, hook["id"], limit=2)) == 2
    assert len(await _deliveries(api, hook["id"], limit=100)) == 3
    for bad in (101, 0, "x"):
        response = await api.get(f"/webhooks/{hook['id']}/deliveries", params={"limit": bad})
        assert response.status_code == 400, bad
        assert "limit" in response.json()["error"]

    deleted = await api.delete(f"/webhooks/{hook['id']}")
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    assert (await api.get(f"/webhooks/{hook['id']}/deliveries")).status_code == 404
    assert (await api.get(f"/webhooks/{hook['id']}")).status_code == 404
    assert (await api.get("/webhooks")).json()["webhooks"] == []


async def test_error_and_restore_events(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    async with webhook_receiver() as receiver:
        await api.post("/webhooks", json={
            "url": receiver.url, "events": ["cube.error", "snapshot.created", "snapshot.restored"],
        })
        cube = await create_cube(api)
        snap = (await api.post(f"/cubes/{cube['id']}/snapshots")).json()["snapshot"]
        await receiver.wait_for(1)  # snapshot.created
        await admin.post(f"/cubes/{cube['id']}/state", json={"state": "error"})
        await receiver.wait_for(2)
        await api.post(f"/cubes/{cube['id']}/restore", json={"snapshotId": snap["id"]})
        got = await receiver.wait_for(3)
    events = [json.loads(r.body)["event"] for r in got]
    assert events == ["snapshot.created", "cube.error", "snapshot.restored"]
    assert json.loads(got[1].body)["data"]["state"] == "error"

