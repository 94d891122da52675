"""Webhook endpoints (secret shown once), signed deliveries, retries and history."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from typing import Any

import httpx
import pytest

from cloudsim import KrovaSettings
from cloudsim.common.errors import ConfigError
from cloudsim.testing import (
    DEFAULT_API_KEY,
    DEFAULT_SPACE_ID,
    create_cube,
    krova_test_simulator,
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



# ---- the webhook_signature knob ------------------------------------------------------

_V1_HEADER = re.compile(r"t=(\d+),v1=([0-9a-f]{64})")


def _check_v1(secret: str, body: bytes, header: str) -> int:
    """Parse ``t=...,v1=...``, check the HMAC by hand and return t."""
    match = _V1_HEADER.fullmatch(header)
    assert match is not None, header
    timestamp = int(match.group(1))
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(match.group(2), expected)
    wrong = hmac.new(b"wrong", f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert match.group(2) != wrong
    return timestamp


async def test_v1_signature_is_timestamped_and_stable_across_retries(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    config = await admin.put(
        "/config", json={"webhook_signature": "v1", "webhook_retry_delay": 5}
    )
    assert config.status_code == 200 and config.json()["webhook_signature"] == "v1"
    async with webhook_receiver(statuses=[500, 503]) as receiver:
        hook = (await api.post(
            "/webhooks", json={"url": receiver.url, "events": ["cube.running"]}
        )).json()["webhook"]
        before = time.time()
        await create_cube(api)
        got = await receiver.wait_for(3)
        after = time.time()

    assert [r.status for r in got] == [500, 503, 200]
    headers = [{k.lower(): v for k, v in r.headers.items()} for r in got]
    signatures = {h["x-krova-signature"] for h in headers}
    assert len(signatures) == 1  # every retry carries the delivery's original header
    assert len({h["x-krova-delivery"] for h in headers}) == 1
    assert len({r.body for r in got}) == 1
    (signature,) = signatures
    assert not signature.startswith("sha256=")
    assert not verify_signature(hook["secret"], got[0].body, signature)
    timestamp = _check_v1(hook["secret"], got[0].body, signature)
    assert int(before) - 2 <= timestamp <= after + 2
    assert abs(timestamp - time.time()) < 10


async def test_v1_signature_signs_each_delivery(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.put("/config", json={"webhook_signature": "v1"})
    async with webhook_receiver() as receiver, webhook_receiver() as second:
        hooks = [(await api.post(
            "/webhooks", json={"url": r.url, "events": ["cube.created", "cube.running"]}
        )).json()["webhook"] for r in (receiver, second)]
        await create_cube(api)
        got = await receiver.wait_for(2)
        got_second = await second.wait_for(2)
    for hook, received in ((hooks[0], got), (hooks[1], got_second)):
        for r in received:
            _check_v1(hook["secret"], r.body, r.headers["X-Krova-Signature"])
    # Same event, two endpoints: each signed with its own secret.
    first = {json.loads(r.body)["event"]: r for r in got}["cube.created"]
    other = {json.loads(r.body)["event"]: r for r in got_second}["cube.created"]
    assert first.body == other.body
    assert first.headers["X-Krova-Signature"] != other.headers["X-Krova-Signature"]


async def test_default_signature_stays_sha256(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    assert (await admin.get("/config")).json()["webhook_signature"] == "sha256"
    async with webhook_receiver() as receiver:
        hook = (await api.post(
            "/webhooks", json={"url": receiver.url, "events": ["cube.running"]}
        )).json()["webhook"]
        await create_cube(api)
        (received,) = await receiver.wait_for(1)
    header = received.headers["X-Krova-Signature"]
    expected = hmac.new(hook["secret"].encode(), received.body, hashlib.sha256).hexdigest()
    assert header == f"sha256={expected}"
    assert verify_signature(hook["secret"], received.body, header)


async def test_webhook_signature_knob_validation_and_switch_back(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    for bad in ({"webhook_signature": "v2"}, {"webhook_signature": 1},
                {"webhook_signature": None}, {"webhook_signature": "v1", "boot_delay": -1}):
        response = await admin.put("/config", json=bad)
        assert response.status_code == 400, bad
        assert response.json()["error"]
    assert (await admin.get("/config")).json()["webhook_signature"] == "sha256"
    await admin.put("/config", json={"webhook_signature": "v1"})
    assert (await admin.put(
        "/config", json={"webhook_signature": "sha256"}
    )).json()["webhook_signature"] == "sha256"
    async with webhook_receiver() as receiver:
        hook = (await api.post(
            "/webhooks", json={"url": receiver.url, "events": ["cube.running"]}
        )).json()["webhook"]
        await create_cube(api)
        (received,) = await receiver.wait_for(1)
    assert verify_signature(hook["secret"], received.body, received.headers["X-Krova-Signature"])


@pytest.mark.parametrize(
    "settings", [{"webhook_signature": "v1"}, KrovaSettings(webhook_signature="v1")]
)
async def test_webhook_signature_at_construction(settings: Any) -> None:
    async with krova_test_simulator(settings=settings) as sim, httpx.AsyncClient(
        base_url=f"{sim.url}/spaces/{DEFAULT_SPACE_ID}",
        headers={"X-API-KEY": DEFAULT_API_KEY}, timeout=5.0,
    ) as api, webhook_receiver() as receiver:
        assert sim.config()["webhook_signature"] == "v1"
        hook = (await api.post(
            "/webhooks", json={"url": receiver.url, "events": ["cube.created"]}
        )).json()["webhook"]
        await create_cube(api, wait=None)
        (received,) = await receiver.wait_for(1)
    _check_v1(hook["secret"], received.body, received.headers["X-Krova-Signature"])


def test_bad_webhook_signature_at_construction() -> None:
    with pytest.raises(ConfigError):
        KrovaSettings(webhook_signature="md5")
    with pytest.raises(ConfigError):
        krova_test_simulator(settings={"webhook_signature": "md5"})
