"""Webhook subscriptions, signed deliveries, the retry schedule, 410 Gone, HTTPS."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import shutil
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudsim.nokyc.webhooks import RETRY_SCHEDULE
from cloudsim.testing import (
    ReceivedWebhook,
    verify_nokyc_signature,
    wait_for,
    wait_for_server_status,
    webhook_receiver,
)

from .conftest import MakeServer
from .test_nokyc_auth import assert_envelope

_SIGNATURE = re.compile(r"^t=(\d+),v1=([0-9a-f]{64})$")


@pytest.fixture(autouse=True)
async def sandbox_knobs(admin: httpx.AsyncClient) -> None:
    # Receivers here are plain http on loopback; the 10 s answer deadline is 0.2 s at
    # 50x, so give a busy machine 2 s; retries 1 simulated second apart.
    response = await admin.put("/config", json={
        "allow_http_webhooks": True, "webhook_timeout": 100,
        "webhook_retry_schedule": [0, 1, 1],
    })
    assert response.status_code == 200


async def _subscribe(api: httpx.AsyncClient, url: str, events: list[str]) -> dict[str, Any]:
    response = await api.post("/webhooks", json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    hook: dict[str, Any] = response.json()
    return hook


def _check_signature(secret: str, received: ReceivedWebhook) -> int:
    """The seed's formula by hand: v1 = hex HMAC-SHA256(secret, f"{t}." + raw body)."""
    header = received.headers["X-Nokyc-Signature"]
    match = _SIGNATURE.match(header)
    assert match, header
    timestamp = int(match.group(1))
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + received.body,
                        hashlib.sha256).hexdigest()
    assert hmac.compare_digest(match.group(2), expected)
    assert abs(time.time() - timestamp) < 60
    assert verify_nokyc_signature(secret, received.body, header)
    assert not verify_nokyc_signature("whsec_wrong", received.body, header)
    return timestamp


async def _deliveries(api: httpx.AsyncClient, hook_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/webhooks/{hook_id}/deliveries")
    assert response.status_code == 200
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


async def test_https_only_unless_the_sandbox_knob(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    await admin.put("/config", json={"allow_http_webhooks": False})
    error = assert_envelope(await api.post("/webhooks", json={
        "url": "http://example.com/hook", "events": ["*"]}), 400, "invalid_request")
    assert error["errors"] == [{"field": "url", "issue": "https_required"}]
    hook = await _subscribe(api, "https://example.com/hook", ["*"])
    error = assert_envelope(await api.patch(f"/webhooks/{hook['id']}",
                                            json={"url": "http://example.com/h"}),
                            400, "invalid_request")
    assert error["errors"][0]["field"] == "url"
    await admin.put("/config", json={"allow_http_webhooks": True})
    assert (await api.post("/webhooks", json={"url": "http://127.0.0.1:9/h",
                                              "events": ["*"]})).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["*"]}, "url"),
        ({"url": "ftp://example.com/h", "events": ["*"]}, "url"),
        ({"url": "https://", "events": ["*"]}, "url"),
        ({"url": "https://example.com/h"}, "events"),
        ({"url": "https://example.com/h", "events": []}, "events"),
        ({"url": "https://example.com/h", "events": ["server.exploded"]}, "events[0]"),
        ({"url": "https://example.com/h", "events": ["*", "server.running"]}, "events[0]"),
        ({"url": "https://example.com/h", "events": ["ping"]}, "events[0]"),
        ({"url": "https://example.com/h", "events": ["*"], "active": "yes"}, "active"),
        ({"url": "https://example.com/h", "events": ["*"], "secret": "mine"}, "secret"),
    ],
)
async def test_subscription_validation(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    error = assert_envelope(await api.post("/webhooks", json=body), 400, "invalid_request")
    assert error["errors"][0]["field"] == field


async def test_secret_shown_once(api: httpx.AsyncClient) -> None:
    hook = await _subscribe(api, "https://example.com/h", ["server.running", "snapshot.ready"])
    assert set(hook) == {"id", "object", "url", "events", "active", "secret_hint", "secret",
                         "created_at"}
    assert re.fullmatch(r"whsec_[A-Za-z0-9]{32}", hook["secret"])
    assert hook["secret_hint"] == hook["secret"][-4:] and hook["active"] is True
    assert hook["id"].startswith("whk_") and hook["object"] == "webhook"
    one = (await api.get(f"/webhooks/{hook['id']}")).json()
    assert one == {k: v for k, v in hook.items() if k != "secret"}
    assert "secret" not in (await api.get("/webhooks")).json()["data"][0]

    patched = (await api.patch(f"/webhooks/{hook['id']}", json={
        "events": ["*"], "active": False, "url": "https://example.org/x"})).json()
    assert (patched["events"], patched["active"], patched["url"]) == (
        ["*"], False, "https://example.org/x")
    assert (await api.delete(f"/webhooks/{hook['id']}")).status_code == 204
    assert_envelope(await api.get(f"/webhooks/{hook['id']}/deliveries"), 404, "not_found")


async def test_deliveries_are_signed_and_shaped(
    api: httpx.AsyncClient, make_server: MakeServer
) -> None:
    async with webhook_receiver(path="/hooks/nokyc") as receiver:
        hook = await _subscribe(api, receiver.url,
                                ["server.created", "server.running", "server.stopped"])
        server = await make_server()
        await api.post(f"/servers/{server['id']}/stop")
        await wait_for_server_status(api, server["id"], "stopped")
        got = await receiver.wait_for(3)

    payloads = [json.loads(r.body) for r in got]
    assert [p["type"] for p in payloads] == ["server.created", "server.running",
                                             "server.stopped"]
    for received, payload in zip(got, payloads, strict=True):
        _check_signature(hook["secret"], received)
        assert received.headers["Content-Type"] == "application/json"
        assert re.fullmatch(r"del_[0-9a-f]{8}", received.headers["X-Nokyc-Delivery-Id"])
        assert set(payload) == {"id", "object", "type", "created_at", "data"}
        assert payload["object"] == "event" and payload["id"].startswith("evt_")
        assert set(payload["data"]) == {"server"}
        assert payload["data"]["server"]["id"] == server["id"]
        assert payload["data"]["server"]["object"] == "server"
    assert payloads[0]["data"]["server"]["status"] == "provisioning"
    running = payloads[1]["data"]["server"]
    assert running["status"] == "running" and running["ipv4"]["address"]
    assert running["ipv6"]["prefix"].endswith("/64")
    assert payloads[2]["data"]["server"]["status"] == "stopped"
    assert len({r.headers["X-Nokyc-Delivery-Id"] for r in got}) == 3

    rows = await _deliveries(api, hook["id"])
    assert [r["type"] for r in rows] == ["server.created", "server.running", "server.stopped"]
    assert all(r["status"] == "succeeded" and r["attempts"] == 1 and r["response_status"] == 200
               for r in rows)
    assert [r["event"] for r in rows] == [p["id"] for p in payloads]
    assert {r["id"] for r in rows} == {r.headers["X-Nokyc-Delivery-Id"] for r in got}
    assert rows[0]["object"] == "webhook_delivery" and rows[0]["webhook"] == hook["id"]


async def test_retries_follow_the_schedule(
    api: httpx.AsyncClient, make_server: MakeServer
) -> None:
    async with webhook_receiver(statuses=[500, 503]) as receiver:
        hook = await _subscribe(api, receiver.url, ["server.created"])
        await make_server(wait=None)
        got = await receiver.wait_for(3)

    assert [r.status for r in got] == [500, 503, 200]
    assert len({r.headers["X-Nokyc-Delivery-Id"] for r in got}) == 1
    assert len({r.body for r in got}) == 1
    for received in got:
        _check_signature(hook["secret"], received)

    async def settled() -> list[dict[str, Any]] | None:
        rows = await _deliveries(api, hook["id"])
        return rows if rows and rows[0]["status"] == "succeeded" else None

    (delivery,) = await wait_for(settled)
    assert delivery["attempts"] == 3 and delivery["response_status"] == 200


async def test_gives_up_after_the_last_attempt(
    api: httpx.AsyncClient, make_server: MakeServer
) -> None:
    async with webhook_receiver(default_status=500) as receiver:
        hook = await _subscribe(api, receiver.url, ["server.created"])
        await make_server(wait=None)
        await receiver.wait_for(3)

        async def failed() -> list[dict[str, Any]] | None:
            rows = await _deliveries(api, hook["id"])
            return rows if rows and rows[0]["status"] == "failed" else None

        (delivery,) = await wait_for(failed)
        await asyncio.sleep(0.1)
    assert delivery["attempts"] == 3 and delivery["response_status"] == 500
    assert delivery["error"] == "http_500" and delivery["next_attempt_at"] is None
    assert len(receiver.received) == 3


async def test_default_schedule_is_the_seeds(admin: httpx.AsyncClient) -> None:
    await admin.put("/config", json={"webhook_retry_schedule": [0, 60, 300, 1800, 18000, 86400]})
    config = (await admin.get("/config")).json()
    assert config["webhook_retry_schedule"] == [0, 60, 300, 1800, 18000, 86400]
    assert list(RETRY_SCHEDULE) == [0, 60, 300, 1800, 18000, 86400]
    for bad in ([], [-1], "0,60", [0] * 21):
        assert (await admin.put("/config", json={"webhook_retry_schedule": bad})).status_code == 400


async def test_410_pauses_the_subscription(
    api: httpx.AsyncClient, make_server: MakeServer
) -> None:
    async with webhook_receiver(statuses=[410]) as receiver:
        hook = await _subscribe(api, receiver.url, ["server.created", "server.running"])
        server = await make_server()
        await receiver.wait_for(1)
        await api.post(f"/servers/{server['id']}/reboot")
        await asyncio.sleep(0.2)
        assert len(receiver.received) == 1  # no retry, nothing after
    assert (await api.get(f"/webhooks/{hook['id']}")).json()["active"] is False
    (delivery,) = await _deliveries(api, hook["id"])
    assert (delivery["status"], delivery["attempts"], delivery["response_status"]) == (
        "failed", 1, 410)
    assert_envelope(await api.post(f"/webhooks/{hook['id']}/test"), 409, "conflict_state")


async def test_ping(api: httpx.AsyncClient) -> None:
    async with webhook_receiver() as receiver:
        hook = await _subscribe(api, receiver.url, ["snapshot.ready"])
        response = await api.post(f"/webhooks/{hook['id']}/test")
        assert response.status_code == 202
        assert response.json()["type"] == "ping" and response.json()["status"] == "pending"
        (received,) = await receiver.wait_for(1)
    payload = json.loads(received.body)
    assert payload["type"] == "ping" and payload["data"]["webhook"]["id"] == hook["id"]
    _check_signature(hook["secret"], received)


async def test_lifecycle_events(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_server: MakeServer
) -> None:
    async with webhook_receiver() as receiver:
        await _subscribe(api, receiver.url, ["*"])
        server = await make_server()
        sid = server["id"]
        await api.post(f"/servers/{sid}/reboot")
        await receiver.wait_for(3)  # created, running, rebooted
        await api.post(f"/servers/{sid}/rebuild", json={"image": "ubuntu-24.04-cloud"})
        await wait_for_server_status(api, sid, "running")
        snap = (await api.post(f"/servers/{sid}/snapshots", json={"name": "s"})).json()
        await receiver.wait_for(6)  # running, rebuilt, snapshot.ready
        group = (await api.post("/firewall/groups", json={"name": "fw",
                                                          "applied_to": [sid]})).json()
        await admin.put("/config", json={"balance_usd": 0})
        await api.delete(f"/servers/{sid}")
        got = await receiver.wait_for(9)
    events = [json.loads(r.body) for r in got]
    assert [e["type"] for e in events] == [
        "server.created", "server.running", "server.rebooted", "server.running",
        "server.rebuilt", "snapshot.ready", "firewall.applied", "server.suspended",
        "server.destroyed",
    ]
    by_type = {e["type"]: e["data"] for e in events}
    assert by_type["snapshot.ready"]["snapshot"]["id"] == snap["id"]
    assert by_type["snapshot.ready"]["snapshot"]["status"] == "ready"
    assert by_type["firewall.applied"]["firewall_group"]["id"] == group["id"]
    assert by_type["firewall.applied"]["server"]["id"] == sid
    assert by_type["server.rebuilt"]["server"]["image"] == "ubuntu-24.04-cloud"
    assert by_type["server.suspended"]["server"]["status"] == "suspended"
    assert by_type["server.destroyed"]["server"]["ipv4"] is None


async def test_only_subscribed_and_active(api: httpx.AsyncClient,
                                          make_server: MakeServer) -> None:
    async with webhook_receiver() as receiver, webhook_receiver() as paused:
        await _subscribe(api, receiver.url, ["server.stopped"])
        off = await _subscribe(api, paused.url, ["*"])
        await api.patch(f"/webhooks/{off['id']}", json={"active": False})
        await make_server()
        await asyncio.sleep(0.1)
        assert receiver.received == [] and paused.received == []


async def test_token_events(api: httpx.AsyncClient) -> None:
    async with webhook_receiver() as receiver:
        await _subscribe(api, receiver.url, ["token.created", "token.revoked"])
        token = (await api.post("/account/tokens", json={"name": "t", "scope": "read"})).json()
        await api.delete(f"/account/tokens/{token['id']}")
        got = await receiver.wait_for(2)
    events = [json.loads(r.body) for r in got]
    assert [e["type"] for e in events] == ["token.created", "token.revoked"]
    assert events[0]["data"]["api_token"]["id"] == token["id"]
    assert "token" not in events[0]["data"]["api_token"]


# ---- HTTPS receivers and the webhook_ca_file knob --------------------------------------


@pytest.fixture
def tls_files(tmp_path: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make test certificates")
    ca_key, ca, key, csr, cert = (tmp_path / n for n in (
        "ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out",
        str(ca), "-days", "2", "-subj", "/CN=cloudsim test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return {"ca": ca, "cert": cert, "key": key}


async def test_https_delivery_trusts_the_configured_ca(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_server: MakeServer,
    tls_files: dict[str, Path],
) -> None:
    await admin.put("/config", json={"allow_http_webhooks": False,
                                     "webhook_retry_schedule": [0]})
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files["cert"], tls_files["key"])
    async with webhook_receiver(ssl_context=context) as receiver:
        assert receiver.url.startswith("https://127.0.0.1:")
        hook = await _subscribe(api, receiver.url, ["server.created"])
        # System trust: the self-signed CA is unknown, the delivery fails.
        await make_server(wait=None, name="one")

        async def failed() -> list[dict[str, Any]] | None:
            rows = await _deliveries(api, hook["id"])
            return rows if rows and rows[0]["status"] == "failed" else None

        (delivery,) = await wait_for(failed)
        assert delivery["response_status"] is None and receiver.received == []

        config = await admin.put("/config", json={"webhook_ca_file": str(tls_files["ca"])})
        assert config.json()["webhook_ca_file"] == str(tls_files["ca"])
        await make_server(wait=None, name="two")
        (received,) = await receiver.wait_for(1)
    _check_signature(hook["secret"], received)
    assert json.loads(received.body)["data"]["server"]["name"] == "two"
    bad = await admin.put("/config", json={"webhook_ca_file": "/nonexistent/ca.pem"})
    assert bad.status_code == 400 and "webhook_ca_file" in bad.json()["error"]
