"""Idempotency-Key on every POST: replay, conflicts, expiry."""

from __future__ import annotations

import asyncio
import json

import httpx

from cloudsim.testing import nokyc_ssh_public_key, sample_server_request

from .test_nokyc_auth import assert_envelope


async def test_same_key_same_body_replays(api: httpx.AsyncClient, ssh_key: str) -> None:
    body = sample_server_request(ssh_key)
    headers = {"Idempotency-Key": "0b8e1c9e-0b36-4b63-9d7c-0d4b1f3b5e11"}
    first = await api.post("/servers", json=body, headers=headers)
    assert first.status_code == 201 and "Idempotency-Replayed" not in first.headers
    # The same body with its keys in another order is the same request.
    reordered = json.dumps(dict(reversed(list(body.items()))))
    again = await api.post("/servers", content=reordered,
                           headers={**headers, "Content-Type": "application/json"})
    assert again.status_code == 201
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.content == first.content
    assert again.headers["X-Request-Id"] == first.headers["X-Request-Id"]
    listed = (await api.get("/servers")).json()["data"]
    assert [s["id"] for s in listed] == [first.json()["id"]]


async def test_same_key_other_body_is_409(api: httpx.AsyncClient, ssh_key: str) -> None:
    headers = {"Idempotency-Key": "k-1"}
    assert (await api.post("/servers", json=sample_server_request(ssh_key),
                           headers=headers)).status_code == 201
    other = await api.post("/servers", json=sample_server_request(ssh_key, name="other"),
                           headers=headers)
    error = assert_envelope(other, 409, "conflict_state")
    assert error["errors"] == [{"field": "Idempotency-Key", "issue": "reused_with_different_body"}]
    # Same body on another endpoint is another request too.
    assert (await api.post("/firewall/groups", json={"name": "edge-paris"},
                           headers=headers)).status_code == 409
    assert len((await api.get("/servers")).json()["data"]) == 1
    # A fresh key works.
    assert (await api.post("/servers", json=sample_server_request(ssh_key, name="other"),
                           headers={"Idempotency-Key": "k-2"})).status_code == 201


async def test_errors_are_replayed_too(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "bad-one"}
    first = await api.post("/ssh-keys", json={"name": "x", "public_key": "nope"},
                           headers=headers)
    assert_envelope(first, 400, "invalid_request")
    again = await api.post("/ssh-keys", json={"name": "x", "public_key": "nope"},
                           headers=headers)
    assert again.content == first.content and again.headers["Idempotency-Replayed"] == "true"
    assert again.headers["X-Request-Id"] == first.json()["error"]["request_id"]


async def test_every_post_honours_the_key(api: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "key-for-ssh"}
    body = {"name": "k", "public_key": nokyc_ssh_public_key()}
    first = await api.post("/ssh-keys", json=body, headers=headers)
    again = await api.post("/ssh-keys", json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and first.content == again.content
    assert len((await api.get("/ssh-keys")).json()["data"]) == 1
    hook = {"url": "https://example.com/h", "events": ["*"]}
    one = await api.post("/webhooks", json=hook, headers={"Idempotency-Key": "w"})
    two = await api.post("/webhooks", json=hook, headers={"Idempotency-Key": "w"})
    assert one.json()["secret"] == two.json()["secret"]
    assert len((await api.get("/webhooks")).json()["data"]) == 1


async def test_replays_are_not_audited_again(api: httpx.AsyncClient, ssh_key: str) -> None:
    headers = {"Idempotency-Key": "audit-once"}
    for _ in range(3):
        await api.post("/servers", json=sample_server_request(ssh_key), headers=headers)
    actions = [e["action"] for e in (await api.get("/audit/events")).json()["data"]]
    assert actions == ["ssh_key.create", "server.create"]


async def test_keys_expire_after_the_ttl(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, ssh_key: str
) -> None:
    await admin.put("/config", json={"idempotency_ttl": 5})  # 0.1 s at 50x
    headers = {"Idempotency-Key": "short-lived"}
    first = await api.post("/servers", json=sample_server_request(ssh_key), headers=headers)
    await asyncio.sleep(0.2)
    second = await api.post("/servers", json=sample_server_request(ssh_key), headers=headers)
    assert second.status_code == 201 and "Idempotency-Replayed" not in second.headers
    assert second.json()["id"] != first.json()["id"]
    # The admin API can forget every key at once.
    assert (await admin.delete("/idempotency")).status_code == 200
