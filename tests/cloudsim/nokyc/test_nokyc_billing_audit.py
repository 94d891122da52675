"""The balance, suspension when it runs out, the daily charge, and the audit log."""

from __future__ import annotations

import re
from datetime import date, timedelta

import httpx

from cloudsim.testing import sample_server_request, wait_for, wait_for_server_status

from .conftest import MakeServer
from .test_nokyc_auth import assert_envelope


async def test_balance_from_running_servers(
    api: httpx.AsyncClient, biller: httpx.AsyncClient, admin: httpx.AsyncClient,
    make_server: MakeServer,
) -> None:
    empty = (await biller.get("/billing/balance")).json()
    assert set(empty) == {"object", "usd", "as_of", "runway_until", "active_servers",
                          "daily_cost_usd", "low_balance_at"}
    assert empty == {**empty, "object": "balance", "usd": 100.0, "active_servers": 0,
                     "daily_cost_usd": 0.0, "runway_until": None, "low_balance_at": None}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", empty["as_of"])

    await make_server(name="a")  # vps-s2: 0.02/h
    await make_server(name="b", plan="vps-m4")  # 0.06/h
    stopped = await make_server(name="c")
    await api.post(f"/servers/{stopped['id']}/stop")
    await wait_for_server_status(api, stopped["id"], "stopped")
    balance = (await biller.get("/billing/balance")).json()
    assert balance["active_servers"] == 2
    assert balance["daily_cost_usd"] == 1.92  # (0.02 + 0.06) x 24
    runway = date.fromisoformat(balance["runway_until"])
    expected = date.today() + timedelta(days=100 / 1.92)
    assert abs((runway - expected).days) <= 1
    assert balance["low_balance_at"] < balance["runway_until"] + "T23:59:59Z"

    await admin.put("/config", json={"balance_usd": 12.3})
    assert (await biller.get("/billing/balance")).json()["usd"] == 12.3
    assert (await admin.put("/config", json={"balance_usd": "lots"})).status_code == 400


async def test_running_out_suspends(
    api: httpx.AsyncClient, admin: httpx.AsyncClient, make_server: MakeServer, ssh_key: str
) -> None:
    running = await make_server(name="run")
    stopped = await make_server(name="stop")
    await api.post(f"/servers/{stopped['id']}/stop")
    await wait_for_server_status(api, stopped["id"], "stopped")

    assert (await admin.put("/config", json={"balance_usd": -0.5})).status_code == 200
    assert (await api.get(f"/servers/{running['id']}")).json()["status"] == "suspended"
    assert (await api.get(f"/servers/{stopped['id']}")).json()["status"] == "stopped"
    error = assert_envelope(await api.post(f"/servers/{running['id']}/start"), 409,
                            "conflict_state")
    assert error["errors"][0]["issue"] == "suspended"
    assert_envelope(await api.post(f"/servers/{running['id']}/reboot"), 409, "conflict_state")
    assert_envelope(await api.post(f"/servers/{stopped['id']}/start"), 422, "unprocessable")
    assert_envelope(await api.post("/servers", json=sample_server_request(ssh_key)), 422,
                    "unprocessable")

    # Topping up: suspended servers are stopped and can be started.
    await admin.put("/config", json={"balance_usd": 50})
    assert (await api.get(f"/servers/{running['id']}")).json()["status"] == "stopped"
    assert (await api.post(f"/servers/{running['id']}/start")).status_code == 202
    await wait_for_server_status(api, running["id"], "running")
    # Suspended out of band (admin) behaves the same.
    await admin.post(f"/servers/{running['id']}/state", json={"state": "suspended"})
    assert_envelope(await api.post(f"/servers/{running['id']}/start"), 409, "conflict_state")
    assert (await api.delete(f"/servers/{running['id']}")).status_code == 202


async def test_charges(
    api: httpx.AsyncClient, biller: httpx.AsyncClient, admin: httpx.AsyncClient,
    make_server: MakeServer,
) -> None:
    server = await make_server(plan="ded-e24")  # 0.45/h -> 10.80/day
    charged = (await admin.post("/billing/charge", json={"seconds": 86400})).json()
    assert charged["amount_usd"] == 10.8 and charged["balance"]["usd"] == 89.2
    await admin.put("/config", json={"balance_usd": 10})
    charged = (await admin.post("/billing/charge", json={})).json()
    assert charged["balance"]["usd"] == -0.8
    assert (await api.get(f"/servers/{server['id']}")).json()["status"] == "suspended"
    assert (await biller.get("/billing/balance")).json()["active_servers"] == 0
    # The periodic charge: one simulated hour every 0.18 s at 20000x.
    await admin.put("/config", json={"balance_usd": 100})
    await api.post(f"/servers/{server['id']}/start")
    await wait_for_server_status(api, server["id"], "running")
    await admin.put("/config", json={"charge_interval": 3600, "time_scale": 20000})

    async def charged_twice() -> bool:
        return bool((await biller.get("/billing/balance")).json()["usd"] <= 99.1)

    await wait_for(charged_twice)
    await admin.put("/config", json={"charge_interval": 0, "time_scale": 50})
    # Fractions of a cent carry over instead of being rounded away.
    await admin.put("/config", json={"balance_usd": 100})
    amounts = [(await admin.post("/billing/charge", json={"seconds": 60})).json()["amount_usd"]
               for _ in range(4)]
    # 0.45/h is 0.0075 a minute: whole cents, 0.03 over four minutes (+- the carry).
    assert set(amounts) <= {0.0, 0.01} and abs(sum(amounts) - 0.03) < 0.011


async def test_audit_log(
    api: httpx.AsyncClient, reader: httpx.AsyncClient, admin: httpx.AsyncClient,
    ssh_key: str,
) -> None:
    await admin.put("/config", json={"ip_country": "IS"})
    created = await api.post("/servers", json=sample_server_request(ssh_key))
    failed = await api.post("/servers", json=sample_server_request(ssh_key, name="BAD"))
    denied = await reader.delete(f"/servers/{created.json()['id']}")
    await api.get("/servers")  # reads are not audited
    await api.patch(f"/servers/{created.json()['id']}", json={"name": "renamed"})

    events = (await api.get("/audit/events")).json()["data"]
    assert [(e["action"], e["result"]) for e in events] == [
        ("ssh_key.create", "ok"), ("server.create", "ok"), ("server.create", "error"),
        ("server.delete", "denied"), ("server.update", "ok"),
    ]
    tokens = {t["scope"]: t["id"] for t in (await api.get("/account/tokens")).json()["data"]}
    first = events[1]
    assert set(first) == {"id", "object", "action", "resource", "actor_token", "actor_session",
                          "request_id", "ip_country", "result", "created_at"}
    assert first["object"] == "audit_event" and first["id"].startswith("audit_")
    assert first["resource"] == created.json()["id"]
    assert first["request_id"] == created.headers["X-Request-Id"]
    assert first["actor_token"] == tokens["write"] and first["actor_session"] is None
    assert first["ip_country"] == "IS"
    assert events[2]["request_id"] == failed.json()["error"]["request_id"]
    assert events[3]["actor_token"] == tokens["read"]
    assert events[3]["request_id"] == denied.headers["X-Request-Id"]

    only = (await api.get("/audit/events", params={"filter[action]": "server.create",
                                                   "filter[result]": "ok"})).json()["data"]
    assert [e["id"] for e in only] == [first["id"]]
    by_resource = (await api.get("/audit/events",
                                 params={"filter[resource]": first["resource"]})).json()["data"]
    assert [e["action"] for e in by_resource] == ["server.create", "server.delete",
                                                  "server.update"]
    window = (await api.get("/audit/events", params={
        "from": "2000-01-01T00:00:00Z", "to": "2999-01-01T00:00:00Z"})).json()["data"]
    assert len(window) == 5
    assert (await api.get("/audit/events", params={
        "filter[to]": "2000-01-01T00:00:00Z"})).json()["data"] == []
    assert_envelope(await api.get("/audit/events", params={"from": "last week"}), 400,
                    "invalid_request")
    assert (await api.get(f"/audit/events/{first['id']}")).json() == first
    assert_envelope(await api.get("/audit/events/audit_00000000"), 404, "not_found")
