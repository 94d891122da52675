"""Bearer tokens, scopes, the error envelope, X-Request-Id and /account/tokens."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from cloudsim import NoKycSimulator
from cloudsim.testing import NOKYC_BILLING_TOKEN, NOKYC_READ_TOKEN, NOKYC_TOKEN

REQUEST_ID = re.compile(r"^req_[0-9a-f]{10}$")
OTHER_TOKEN = "nkv_live_" + "z" * 52


def assert_envelope(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The seed's envelope, exactly, with X-Request-Id equal to its request_id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "errors", "request_id"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["errors"], list)
    for item in error["errors"]:
        assert {"field", "issue"} <= set(item)
    assert REQUEST_ID.match(error["request_id"])
    assert response.headers["X-Request-Id"] == error["request_id"]
    return error


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer nkv_live_short",
        "Bearer nkv_test_" + "a" * 52,
        "Bearer nkv_live_" + "A" * 52,
        "Bearer " + OTHER_TOKEN,  # well-formed, unknown
    ],
)
async def test_401_unauthenticated(anon: httpx.AsyncClient, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await anon.get("/servers", headers=headers)
    assert_envelope(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "X-RateLimit-Limit" not in response.headers


async def test_401_on_unknown_paths_and_post_too(anon: httpx.AsyncClient) -> None:
    assert_envelope(await anon.get("/nothing-here"), 401, "unauthenticated")
    assert_envelope(await anon.post("/servers", json={}), 401, "unauthenticated")


async def test_bearer_scheme_is_case_insensitive(sim: NoKycSimulator) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        response = await client.get("/plans", headers={"Authorization": f"bearer {NOKYC_TOKEN}"})
    assert response.status_code == 200


async def test_read_token_reads_but_cannot_write(reader: httpx.AsyncClient) -> None:
    for path in ("/servers", "/plans", "/regions", "/images", "/ssh-keys", "/snapshots",
                 "/firewall/groups", "/webhooks", "/audit/events", "/account/tokens"):
        assert (await reader.get(path)).status_code == 200, path
    error = assert_envelope(await reader.post("/ssh-keys", json={}), 403, "forbidden_scope")
    assert error["errors"] == [
        {"field": "scope", "issue": "insufficient", "required": "write", "granted": "read"}
    ]
    assert_envelope(await reader.delete("/servers/srv_00000000"), 403, "forbidden_scope")
    assert_envelope(await reader.patch("/webhooks/whk_00000000", json={}), 403,
                    "forbidden_scope")
    assert_envelope(await reader.put("/firewall/groups/fwg_0/rules", json={}), 403,
                    "forbidden_scope")


async def test_billing_needs_the_billing_scope(
    api: httpx.AsyncClient, reader: httpx.AsyncClient, biller: httpx.AsyncClient
) -> None:
    for client in (api, reader):
        error = assert_envelope(await client.get("/billing/balance"), 403, "forbidden_scope")
        assert error["errors"][0]["required"] == "billing"
    response = await biller.get("/billing/balance")
    assert response.status_code == 200 and response.json()["object"] == "balance"
    # billing can do everything write can.
    assert (await biller.post("/webhooks", json={"url": "https://example.com/h",
                                                 "events": ["*"]})).status_code == 201


async def test_request_id_on_every_answer(api: httpx.AsyncClient) -> None:
    ok = await api.get("/regions")
    assert ok.status_code == 200 and REQUEST_ID.match(ok.headers["X-Request-Id"])
    assert ok.headers["X-Request-Id"] != (await api.get("/regions")).headers["X-Request-Id"]
    assert_envelope(await api.get("/servers/srv_deadbeef"), 404, "not_found")
    assert_envelope(await api.get("/no/such/endpoint"), 404, "not_found")
    assert_envelope(await api.post("/servers", content=b"{nope",
                                   headers={"Content-Type": "application/json"}),
                    400, "invalid_request")
    deleted = await api.delete("/webhooks/whk_deadbeef")
    assert_envelope(deleted, 404, "not_found")


async def test_method_not_allowed_is_enveloped(api: httpx.AsyncClient) -> None:
    response = await api.put("/servers", json={})
    assert_envelope(response, 405, "invalid_request")


async def test_injected_faults_use_the_envelope(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    for status, code in ((451, "jurisdictional_block"), (503, "maintenance"),
                         (500, "internal"), (429, "rate_limited")):
        await admin.post("/faults", json={"route": "list_regions", "status": status,
                                          "count": 1})
        assert_envelope(await api.get("/regions"), status, code)
    assert (await api.get("/regions")).status_code == 200


async def test_expired_token(sim: NoKycSimulator, admin: httpx.AsyncClient) -> None:
    long_ago = await admin.post("/tokens", json={
        "token": OTHER_TOKEN, "scope": "read", "expires_at": "2020-01-01T00:00:00Z",
    })
    assert long_ago.status_code == 201
    async with httpx.AsyncClient(
        base_url=sim.url, headers={"Authorization": f"Bearer {OTHER_TOKEN}"}
    ) as client:
        error = assert_envelope(await client.get("/servers"), 401, "unauthenticated")
        assert "expired" in error["message"]
        # Expiring in 1 simulated second, plus the 30 s skew tolerance: 0.62 s at 50x.
        await admin.post("/tokens", json={"token": OTHER_TOKEN, "scope": "read",
                                          "expires_in": 1})
        assert (await client.get("/servers")).status_code == 200
        await asyncio.sleep(1.0)
        assert_envelope(await client.get("/servers"), 401, "unauthenticated")
        # Lifting the expiry revives it.
        await admin.post("/tokens", json={"token": OTHER_TOKEN, "scope": "read",
                                          "expires_at": None})
        assert (await client.get("/servers")).status_code == 200


async def test_admin_token_validation(admin: httpx.AsyncClient) -> None:
    for body in ({"token": "nkv_live_short", "scope": "read"},
                 {"token": OTHER_TOKEN, "scope": "admin"},
                 {"token": OTHER_TOKEN, "expires_at": "yesterday"},
                 {"token": OTHER_TOKEN, "colour": "red"},
                 {"scope": "read"}):
        assert (await admin.post("/tokens", json=body)).status_code == 400, body
    listed = (await admin.get("/tokens")).json()["tokens"]
    assert {t["scope"] for t in listed} == {"read", "write", "billing"}
    assert all("token" not in t for t in listed)


def test_constructor_rejects_malformed_tokens() -> None:
    with pytest.raises(ValueError, match="nkv_live_"):
        NoKycSimulator({"kro_test_key": "write"})
    with pytest.raises(ValueError, match="scope"):
        NoKycSimulator({OTHER_TOKEN: "admin"})


async def test_api_tokens_endpoints(
    sim: NoKycSimulator, api: httpx.AsyncClient, biller: httpx.AsyncClient
) -> None:
    listed = (await api.get("/account/tokens")).json()["data"]
    assert len(listed) == 3 and all("token" not in t for t in listed)
    assert {t["object"] for t in listed} == {"api_token"}

    created = await api.post("/account/tokens", json={"name": "ci", "scope": "read"})
    assert created.status_code == 201
    token = created.json()
    assert re.fullmatch(r"nkv_live_[a-z0-9]{52}", token["token"])
    assert token["id"].startswith("tok_") and token["scope"] == "read"
    assert token["expires_at"] is None and token["last_used_at"] is None
    async with httpx.AsyncClient(
        base_url=sim.url, headers={"Authorization": f"Bearer {token['token']}"}
    ) as client:
        assert (await client.get("/servers")).status_code == 200
        assert (await client.post("/ssh-keys", json={})).status_code == 403
        listed = {t["id"]: t for t in (await api.get("/account/tokens")).json()["data"]}
        assert "token" not in listed[token["id"]] and listed[token["id"]]["last_used_at"]

        revoked = await api.delete(f"/account/tokens/{token['id']}")
        assert revoked.status_code == 204 and revoked.content == b""
        assert_envelope(await client.get("/servers"), 401, "unauthenticated")
    assert_envelope(await api.delete(f"/account/tokens/{token['id']}"), 404, "not_found")

    # No escalation: write cannot mint or revoke billing tokens; billing can.
    assert_envelope(await api.post("/account/tokens", json={"name": "x", "scope": "billing"}),
                    403, "forbidden_scope")
    billing_id = next(t["id"] for t in (await api.get("/account/tokens")).json()["data"]
                      if t["scope"] == "billing")
    assert_envelope(await api.delete(f"/account/tokens/{billing_id}"), 403, "forbidden_scope")
    minted = await biller.post("/account/tokens", json={"name": "x", "scope": "billing"})
    assert minted.status_code == 201

    # expires_at: RFC 3339 in the future.
    error = assert_envelope(await api.post("/account/tokens", json={
        "name": "x", "scope": "read", "expires_at": "2020-01-01T00:00:00Z"}), 422,
        "unprocessable")
    assert error["errors"][0]["field"] == "expires_at"
    error = assert_envelope(await api.post("/account/tokens", json={
        "name": "x", "scope": "read", "expires_at": "next week"}), 400, "invalid_request")
    assert error["errors"] == [{"field": "expires_at", "issue": "format", "format": "rfc3339"}]
    later = await api.post("/account/tokens", json={
        "name": "x", "scope": "read", "expires_at": "2999-01-01T00:00:00Z"})
    assert later.status_code == 201 and later.json()["expires_at"] == "2999-01-01T00:00:00Z"


async def test_tokens_of_every_scope_are_known(sim: NoKycSimulator) -> None:
    for token in (NOKYC_TOKEN, NOKYC_READ_TOKEN, NOKYC_BILLING_TOKEN):
        async with httpx.AsyncClient(
            base_url=sim.url, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            assert (await client.get("/plans")).status_code == 200
