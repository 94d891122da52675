"""``POST /vps/create`` validation: every code, in the documented order, and secrets
that never come back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloudsim import CyberPanelSimulator
from cloudsim.testing import sample_vps_request

from .conftest import MakeVps, assert_error, data_of


async def _create(api: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    return await api.post("/vps/create", json=sample_vps_request(**overrides))


async def test_missing_fields_lists_every_one(api: httpx.AsyncClient) -> None:
    body = assert_error(await api.post("/vps/create", json={}), 400, "MISSING_FIELDS")
    assert body["message"] == ("Missing required fields: hostname, plan_id, location_code, "
                               "template_id, root_password")
    empty = assert_error(await api.post("/vps/create"), 400, "MISSING_FIELDS")
    assert "hostname" in empty["message"]
    some = assert_error(await _create(api, plan_id=None, root_password="  ", template_id=""),
                        400, "MISSING_FIELDS")
    assert some["message"] == "Missing required fields: plan_id, template_id, root_password"
    # Missing fields win over every other problem.
    first = assert_error(await api.post("/vps/create", json={"hostname": "bad", "plan_id": 99}),
                         400, "MISSING_FIELDS")
    assert "hostname" not in first["message"]


@pytest.mark.parametrize("hostname", [
    "localhost", "-bad.example.com", "bad-.example.com", "a..example.com", "under_score.com",
    "x" * 64 + ".example.com", ".".join(["a" * 63] * 4) + ".com", "trailing.dot.",
    "space here.com", 42,
])
async def test_invalid_hostnames(api: httpx.AsyncClient, hostname: Any) -> None:
    assert_error(await _create(api, hostname=hostname), 400, "INVALID_HOSTNAME")


async def test_hostname_is_lowercased_and_duplicates_are_allowed(
        api: httpx.AsyncClient, make_vps: MakeVps) -> None:
    first = data_of(await _create(api, hostname=" My-Server.Example.COM "), 201)
    assert first["name"] == "my-server.example.com"
    second = data_of(await _create(api, hostname="my-server.example.com"), 201)
    assert second["vps_id"] != first["vps_id"] and second["name"] == first["name"]
    long_ok = ".".join(["a" * 63] * 3) + ".co"  # 63*3 + 2 + 3 = 194 characters
    assert (await _create(api, hostname=long_ok)).status_code == 201
    rows = data_of(await api.get("/vps"))["instances"]
    assert [r["name"] for r in rows].count("my-server.example.com") == 2


@pytest.mark.parametrize("overrides, code", [
    ({"plan_id": 99}, "PLAN_NOT_FOUND"),
    ({"plan_id": "1"}, "PLAN_NOT_FOUND"),
    ({"plan_id": True}, "PLAN_NOT_FOUND"),
    ({"plan_id": 1.5}, "PLAN_NOT_FOUND"),
    ({"location_code": "mars"}, "LOCATION_NOT_FOUND"),
    ({"location_code": 7}, "LOCATION_NOT_FOUND"),
    ({"template_id": "1234"}, "INVALID_TEMPLATE"),
    ({"template_id": ["9000"]}, "INVALID_TEMPLATE"),
    ({"root_password": "Ab1"}, "PASSWORD_TOO_SHORT"),
    ({"root_password": "Ab1" * 25}, "PASSWORD_TOO_LONG"),
    ({"root_password": "onlyletters"}, "PASSWORD_WEAK"),
    ({"root_password": "1234567890"}, "PASSWORD_WEAK"),
    ({"root_password": 12345678}, "INVALID_FIELDS"),
    ({"webhook_url": "ftp://example.com/hook"}, "INVALID_WEBHOOK_URL"),
    ({"webhook_url": "/relative/hook"}, "INVALID_WEBHOOK_URL"),
    ({"webhook_url": "https://"}, "INVALID_WEBHOOK_URL"),
    ({"webhook_url": 5}, "INVALID_WEBHOOK_URL"),
    ({"webhook_url": "https://ok.example.com/h", "webhook_secret": 5}, "INVALID_FIELDS"),
    ({"ssh_key": "not a key"}, "INVALID_SSH_KEY"),
])
async def test_field_codes(api: httpx.AsyncClient, overrides: dict[str, Any],
                           code: str) -> None:
    assert_error(await _create(api, **overrides), 400, code)


async def test_check_order(api: httpx.AsyncClient) -> None:
    everything_wrong = {"hostname": "bad", "plan_id": 99, "location_code": "mars",
                        "template_id": "x", "root_password": "x",
                        "webhook_url": "nope"}
    order = ["INVALID_HOSTNAME", "PLAN_NOT_FOUND", "LOCATION_NOT_FOUND", "INVALID_TEMPLATE",
             "PASSWORD_TOO_SHORT", "INVALID_WEBHOOK_URL"]
    fixes = {"hostname": "ok.example.com", "plan_id": 1, "location_code": "la",
             "template_id": "9000", "root_password": "SecurePass123",
             "webhook_url": "https://hooks.example.com/cp"}
    body = dict(everything_wrong)
    for code, field in zip(order, fixes, strict=True):
        assert_error(await api.post("/vps/create", json=body), 400, code)
        body[field] = fixes[field]
    assert (await api.post("/vps/create", json=body)).status_code == 201


async def test_accepted_forms(api: httpx.AsyncClient) -> None:
    seed_example = sample_vps_request(ssh_key="ssh-rsa AAAAB3NzaC1yc2E...",
                                      webhook_url="https://your-server.com/webhook")
    created = data_of(await api.post("/vps/create", json=seed_example), 201)
    assert created["webhook_configured"] is True
    assert data_of(await _create(api, plan_id=2.0, template_id=9022,
                                 location_code="DE"), 201)["location"] == "de"
    assert data_of(await _create(api, root_password="a" * 71 + "1"), 201)["status"] == \
        "deploying"
    assert data_of(await _create(api, unknown_field=1), 201)["webhook_configured"] is False


async def test_location_availability(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    assert (await admin.put("/locations/de", json={"is_available": False})).status_code == 200
    body = assert_error(await _create(api, location_code="de"), 400, "LOCATION_NOT_FOUND")
    assert "not available" in body["message"]
    locations = data_of(await api.get("/vps/locations"))["locations"]
    assert [loc["is_available"] for loc in locations] == [True, False, True]
    await admin.put("/locations/de", json={"is_available": True, "available_ips": 1})
    created = data_of(await _create(api, location_code="de"), 201)
    assert created["ip_address"] == "88.198.52.10"
    assert data_of(await api.get("/vps/locations"))["locations"][1]["available_ips"] == 0
    assert_error(await _create(api, location_code="de"), 400, "LOCATION_NOT_FOUND")
    # Deleting gives the address back.
    await api.post(f"/vps/{created['vps_id']}/delete")
    again = data_of(await _create(api, location_code="de"), 201)
    assert again["ip_address"] == created["ip_address"]
    assert (await admin.put("/locations/zz", json={})).status_code == 404
    assert (await admin.put("/locations/la", json={"available_ips": -1})).status_code == 400


async def test_balance_and_ordering(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    await admin.put("/account", json={"balance": "0.0081"})
    body = assert_error(await _create(api), 400, "INSUFFICIENT_BALANCE")
    assert "0.0082" in body["message"]
    await admin.put("/account", json={"balance": 0.0082})
    assert (await _create(api)).status_code == 201
    await admin.put("/account", json={"balance": "19.99"})
    assert_error(await _create(api, template_id="9125"), 400, "INSUFFICIENT_BALANCE")
    assert_error(await _create(api, plan_id=5, template_id="9125",
                               root_password="x"), 400, "PASSWORD_TOO_SHORT")
    await admin.put("/account", json={"balance": 20})
    assert (await _create(api, template_id="9125")).status_code == 201
    await admin.put("/account", json={"vps_ordering_enabled": False})
    assert_error(await _create(api), 403, "VPS_ORDERING_DISABLED")
    assert (await admin.put("/account", json={"balance": "lots"})).status_code == 400
    assert (await admin.put("/account", json={"nope": 1})).status_code == 400


async def test_create_answer_and_secrets_stay_secret(sim: CyberPanelSimulator,
                                                     api: httpx.AsyncClient,
                                                     admin: httpx.AsyncClient) -> None:
    password, secret = "TopSecret123", "whsec_do_not_leak"
    response = await _create(api, root_password=password, webhook_secret=secret,
                             webhook_url="https://hooks.example.com/cp")
    body = response.json()
    assert body["message"] == ("VPS deployment started. Use the deployment endpoint to "
                               "check progress.")
    data = body["data"]
    vps_id = data["vps_id"]
    assert data == {
        "vps_id": vps_id, "name": "my-server.example.com", "status": "deploying",
        "ip_address": "74.81.40.145", "plan": {"id": 1, "name": "Starter", "price": "6.00"},
        "location": "la", "template": "9000",
        "deployment_url": f"/api/v1/vps/{vps_id}/deployment", "estimated_time_seconds": 5,
        "webhook_configured": True,
    }
    texts = [response.text]
    for path in (f"/vps/{vps_id}", "/vps", f"/vps/{vps_id}/deployment",
                 "/account/api-keys/1/usage"):
        texts.append((await api.get(path)).text)
    for path in ("/vps", f"/vps/{vps_id}", "/requests", "/stats", "/webhooks", "/keys"):
        texts.append((await admin.get(path)).text)
    for text in texts:
        assert password not in text and secret not in text
    state = (await admin.get(f"/vps/{vps_id}")).json()
    assert state["webhook_signed"] is True and "password" not in str(state).lower()
    stats = (await admin.get("/stats")).json()
    creates = [r for r in stats["requests"] if r["route"] == "/api/v1/vps/create"]
    assert creates == [{"method": "POST", "route": "/api/v1/vps/create", "status": 201,
                        "count": 1}]
