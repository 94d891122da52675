"""Authentication (every 401/403 code), scopes, /test, and the error envelope on
unknown routes, 405, malformed JSON, 413 and injected faults."""

from __future__ import annotations

import time

import httpx
import pytest

from cloudsim import CyberPanelSimulator
from cloudsim.testing import CYBERPANEL_API_KEY, cyberpanel_key, sample_vps_request

from .conftest import KeyClient, MakeVps, assert_error, bearer, data_of


async def test_health_and_scopes_need_no_key(anon: httpx.AsyncClient) -> None:
    health = await anon.get("/health")
    assert health.json() == {"success": True, "data": {
        "status": "healthy", "service": "CyberPanel Cloud API", "version": "1.0.0"}}
    assert "X-RateLimit-Limit" not in health.headers
    scopes = data_of(await anon.get("/scopes"))["scopes"]
    assert [s["scope"] for s in scopes] == ["vps:read", "vps:write", "vps:delete",
                                            "billing:read", "billing:write", "account:read",
                                            "all"]
    assert scopes[0] == {"scope": "vps:read", "description": "VPS - Read"}
    assert scopes[-1] == {"scope": "all", "description": "Full Access - All Permissions"}


@pytest.mark.parametrize("headers, code", [
    ({}, "NO_API_KEY"),
    ({"Authorization": ""}, "NO_API_KEY"),
    ({"Authorization": "Bearer"}, "NO_API_KEY"),
    ({"Authorization": "Bearer cyp_live_short"}, "INVALID_API_KEY"),
    ({"Authorization": "Bearer " + CYBERPANEL_API_KEY.upper().replace("CYP_LIVE_",
                                                                      "cyp_live_")},
     "INVALID_API_KEY"),
    ({"Authorization": f"Token {CYBERPANEL_API_KEY}"}, "INVALID_API_KEY"),
    ({"Authorization": f"Bearer {'cyp_live_' + 'f' * 64}"}, "INVALID_API_KEY"),
])
async def test_missing_malformed_and_unknown_keys(sim: CyberPanelSimulator,
                                                  headers: dict[str, str], code: str) -> None:
    async with httpx.AsyncClient(base_url=sim.url, headers=headers, timeout=5.0) as client:
        for path in ("/test", "/vps", "/account"):
            response = await client.get(path)
            assert_error(response, 401, code)
            assert "X-RateLimit-Limit" not in response.headers


async def test_expired_inactive_and_ip_whitelist(key_client: KeyClient,
                                                 admin: httpx.AsyncClient) -> None:
    expired = await key_client(expires_at="2020-01-01T00:00:00Z")
    assert_error(await expired.get("/test"), 401, "EXPIRED_API_KEY")
    soon = await key_client(expires_in=3600)  # simulated seconds: 72 real at 50x
    assert data_of(await soon.get("/test"))["key_prefix"].startswith("cyp_live_")
    await admin.patch(f"/keys/{soon.key_id}",  # type: ignore[attr-defined]
                      json={"expires_at": time.time() - 1})
    assert_error(await soon.get("/test"), 401, "EXPIRED_API_KEY")

    inactive = await key_client(is_active=False)
    assert_error(await inactive.get("/vps"), 401, "INACTIVE_API_KEY")
    await admin.patch(f"/keys/{inactive.key_id}",  # type: ignore[attr-defined]
                      json={"is_active": True})
    assert (await inactive.get("/vps")).status_code == 200

    fenced = await key_client(ip_whitelist=["203.0.113.50", "10.0.0.0/8"])
    body = assert_error(await fenced.get("/test"), 403, "IP_NOT_ALLOWED")
    assert "127.0.0.1" in body["message"]
    await admin.patch(f"/keys/{fenced.key_id}",  # type: ignore[attr-defined]
                      json={"ip_whitelist": ["203.0.113.50", "127.0.0.0/8"]})
    assert (await fenced.get("/test")).status_code == 200
    await admin.patch(f"/keys/{fenced.key_id}",  # type: ignore[attr-defined]
                      json={"ip_whitelist": []})
    assert (await fenced.get("/test")).status_code == 200
    bad = await admin.patch(f"/keys/{fenced.key_id}",  # type: ignore[attr-defined]
                            json={"ip_whitelist": ["not-an-ip"]})
    assert bad.status_code == 400


async def test_scopes(key_client: KeyClient, make_vps: MakeVps) -> None:
    reader = await key_client(scopes=["vps:read"])
    assert (await reader.get("/vps")).status_code == 200
    assert (await reader.get("/vps/plans")).status_code == 200
    body = assert_error(await reader.post("/vps/create", json=sample_vps_request()), 403,
                        "INSUFFICIENT_SCOPE")
    assert "vps:write" in body["message"]
    assert "account:read" in assert_error(await reader.get("/account"), 403,
                                          "INSUFFICIENT_SCOPE")["message"]
    assert "billing:read" in assert_error(await reader.get("/billing"), 403,
                                          "INSUFFICIENT_SCOPE")["message"]
    assert_error(await reader.get("/account/api-keys"), 403, "INSUFFICIENT_SCOPE")
    # Scope is checked before the resource: no existence leak.
    assert_error(await reader.post("/vps/999/start"), 403, "INSUFFICIENT_SCOPE")

    vps_a, vps_b = await make_vps(wait=None), await make_vps(wait=None)
    denied = assert_error(await reader.post(f"/vps/{vps_a}/delete"), 403,
                          "INSUFFICIENT_SCOPE")
    assert "vps:write" in denied["message"] and "vps:delete" in denied["message"]
    writer = await key_client(scopes=["vps:write"])
    assert data_of(await writer.post(f"/vps/{vps_a}/delete"))["deleted"] is True
    deleter = await key_client(scopes="vps:delete")
    assert data_of(await deleter.post(f"/vps/{vps_b}/delete"))["vps_id"] == vps_b
    assert_error(await deleter.get("/vps"), 403, "INSUFFICIENT_SCOPE")

    accountant = await key_client(scopes=["account:read", "billing:read"])
    assert data_of(await accountant.get("/account"))["balance"] == "150.00"
    assert data_of(await accountant.get("/billing"))["balance"] == "150.00"
    keys = data_of(await accountant.get("/account/api-keys"))
    assert keys["total"] == len(keys["api_keys"]) == 5
    # /test needs any valid key.
    for client in (reader, writer, deleter, accountant):
        assert (await client.get("/test")).status_code == 200


async def test_test_endpoint_reports_the_key(sim: CyberPanelSimulator,
                                             key_client: KeyClient) -> None:
    client = await key_client(name="My Production Key", scopes=["vps:read", "vps:write"])
    await client.get("/vps")
    response = await client.get("/test")
    body = response.json()
    assert body["message"] == "Your API key is working correctly"
    assert body["data"] == {
        "message": "API authentication successful!", "key_name": "My Production Key",
        "key_prefix": client.headers["Authorization"][len("Bearer "):][:12],
        "user_email": "user@example.com", "scopes": ["vps:read", "vps:write"],
        "ip_address": "127.0.0.1", "request_count": 2,
    }


async def test_key_metadata_listing(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    created = (await admin.post("/keys", json={
        "name": "Limited", "scopes": "vps:read,vps:write", "rate_limit_per_minute": 5,
        "expires_at": "2099-01-01T00:00:00Z"})).json()
    assert created["api_key"].startswith("cyp_live_") and len(created["api_key"]) == 73
    await api.get("/vps")
    keys = data_of(await api.get("/account/api-keys"))["api_keys"]
    main, limited = keys
    assert set(main) == {"id", "name", "key_prefix", "scopes", "is_active", "ip_whitelist",
                         "expires_at", "last_used_at", "last_used_ip", "request_count",
                         "rate_limit_per_minute", "rate_limit_per_hour", "created_at"}
    assert main["key_prefix"] == CYBERPANEL_API_KEY[:12] and main["request_count"] == 2
    assert main["last_used_ip"] == "127.0.0.1" and main["scopes"] == ["all"]
    assert (main["rate_limit_per_minute"], main["rate_limit_per_hour"]) == (60, 1000)
    assert limited["name"] == "Limited" and limited["scopes"] == ["vps:read", "vps:write"]
    assert limited["rate_limit_per_minute"] == 5 and limited["expires_at"] == \
        "2099-01-01T00:00:00Z"
    assert limited["last_used_at"] is None and limited["request_count"] == 0
    # The plaintext is never shown again.
    listing = (await admin.get("/keys")).text
    assert created["api_key"] not in listing and CYBERPANEL_API_KEY not in listing
    # Admin refuses malformed keys and duplicates.
    assert (await admin.post("/keys", json={"key": "cyp_live_" + "A" * 64})).status_code == 400
    assert (await admin.post("/keys", json={"key": CYBERPANEL_API_KEY})).status_code == 400
    assert (await admin.post("/keys", json={"scopes": ["root"]})).status_code == 400
    own = await admin.post("/keys", json={"key": cyberpanel_key()})
    assert own.status_code == 201
    assert (await admin.delete(f"/keys/{own.json()['key']['id']}")).status_code == 200
    assert (await admin.patch("/keys/999", json={})).status_code == 404


async def test_envelopes_for_routing_and_body_errors(sim: CyberPanelSimulator,
                                                     api: httpx.AsyncClient,
                                                     anon: httpx.AsyncClient,
                                                     make_vps: MakeVps) -> None:
    assert_error(await anon.get("/nope"), 404, "NOT_FOUND")
    assert_error(await api.get("/vps/1/nope"), 404, "NOT_FOUND")
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=5.0) as root:
        assert_error(await root.get("/api/v1"), 404, "NOT_FOUND")
    not_allowed = await api.delete("/vps")
    assert_error(not_allowed, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in not_allowed.headers["Allow"]
    assert_error(await api.post("/vps/summary"), 405, "METHOD_NOT_ALLOWED")
    assert_error(await api.get("/vps/create"), 405, "METHOD_NOT_ALLOWED")
    bad = await api.post("/vps/create", content=b'{"hostname": ',
                         headers={"Content-Type": "application/json"})
    assert_error(bad, 400, "INVALID_JSON")
    assert_error(await api.post("/vps/create", json=[1, 2]), 400, "INVALID_JSON")
    vps_id = await make_vps(wait="running")
    assert_error(await api.post(f"/vps/{vps_id}/snapshots/create", content=b"nope"), 400,
                 "INVALID_JSON")
    huge = await api.post("/vps/create", content=b'{"x": "' + b"a" * (1024 * 1024 + 10) + b'"}')
    assert_error(huge, 413, "PAYLOAD_TOO_LARGE")


async def test_injected_faults_use_the_envelope(api: httpx.AsyncClient,
                                                admin: httpx.AsyncClient) -> None:
    rule = await admin.post("/faults", json={"route": "create_vps", "status": 503, "count": 1})
    assert rule.status_code == 201
    failed = await api.post("/vps/create", json=sample_vps_request())
    body = assert_error(failed, 503, "SERVICE_UNAVAILABLE")
    assert body["message"] == "Injected fault (503)" and failed.headers["Retry-After"] == "1"
    assert (await api.post("/vps/create", json=sample_vps_request())).status_code == 201
    await admin.post("/faults", json={"path": "/api/v1/vps", "status": 500, "count": 1})
    assert_error(await api.get("/vps"), 500, "INTERNAL_ERROR")
    assert (await api.get("/vps")).status_code == 200


async def test_other_key_works_alongside(sim: CyberPanelSimulator) -> None:
    second = cyberpanel_key()
    sim.add_key(second, "vps:read")
    async with bearer(sim, second) as client:
        assert data_of(await client.get("/test"))["scopes"] == ["vps:read"]
    with pytest.raises(ValueError):
        sim.add_key("cyp_test_" + "0" * 64)
    with pytest.raises(ValueError):
        CyberPanelSimulator({"cyp_live_" + "0" * 63: "all"})
    with pytest.raises(ValueError):
        CyberPanelSimulator({cyberpanel_key(): "vps:everything"})
