"""Snapshots (list, create, name rules) and hourly billing with invoices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from cloudsim.testing import wait_for

from .conftest import MakeVps, assert_error, data_of


async def test_snapshot_create_and_list(api: httpx.AsyncClient, make_vps: MakeVps) -> None:
    vps_id = await make_vps(wait="running")
    assert data_of(await api.get(f"/vps/{vps_id}/snapshots")) == {"vps_id": vps_id,
                                                                   "snapshots": []}
    response = await api.post(f"/vps/{vps_id}/snapshots/create", json={
        "name": "pre_upgrade_snapshot", "description": "Before upgrading to Ubuntu 24.04",
        "include_ram": True})
    body = response.json()
    assert response.status_code == 201 and body["message"] == "Snapshot created successfully"
    snapshot = body["data"]["snapshot"]
    assert body["data"]["vps_id"] == vps_id
    assert set(snapshot) == {"name", "description", "created_at"}
    assert snapshot["name"] == "pre_upgrade_snapshot"
    assert snapshot["description"] == "Before upgrading to Ubuntu 24.04"
    await api.post(f"/vps/{vps_id}/stop")
    second = data_of(await api.post(f"/vps/{vps_id}/snapshots/create",
                                    json={"name": "Second_2", "include_ram": True}), 201)
    assert second["snapshot"]["description"] == ""
    listed = data_of(await api.get(f"/vps/{vps_id}/snapshots"))["snapshots"]
    assert [s["name"] for s in listed] == ["pre_upgrade_snapshot", "Second_2"]
    assert listed[0] == {"name": "pre_upgrade_snapshot",
                         "description": "Before upgrading to Ubuntu 24.04",
                         "created_at": snapshot["created_at"], "vmstate": True}
    # vmstate needs a running VM (the stop was still pending: the VM was running)...
    assert listed[1]["vmstate"] is True
    assert_error(await api.post(f"/vps/{vps_id}/snapshots/create",
                                json={"name": "pre_upgrade_snapshot"}), 400, "SNAPSHOT_EXISTS")
    # No delete or restore endpoints.
    assert (await api.delete(f"/vps/{vps_id}/snapshots")).status_code == 405
    assert_error(await api.post(f"/vps/{vps_id}/snapshots/x/restore"), 404, "NOT_FOUND")


@pytest.mark.parametrize("body, code", [
    ({}, "MISSING_FIELDS"),
    ({"name": ""}, "MISSING_FIELDS"),
    ({"name": None}, "MISSING_FIELDS"),
    ({"name": "pre-upgrade"}, "INVALID_SNAPSHOT_NAME"),
    ({"name": "has space"}, "INVALID_SNAPSHOT_NAME"),
    ({"name": "a" * 41}, "INVALID_SNAPSHOT_NAME"),
    ({"name": 7}, "INVALID_SNAPSHOT_NAME"),
    ({"name": "ok", "include_ram": "yes"}, "INVALID_FIELDS"),
    ({"name": "ok", "description": 5}, "INVALID_FIELDS"),
])
async def test_snapshot_validation(api: httpx.AsyncClient, make_vps: MakeVps,
                                   body: dict[str, Any], code: str) -> None:
    vps_id = await make_vps(wait="running")
    assert_error(await api.post(f"/vps/{vps_id}/snapshots/create", json=body), 400, code)
    assert (await api.post(f"/vps/{vps_id}/snapshots/create",
                           json={"name": "a" * 40})).status_code == 201


async def test_snapshot_limit(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                              make_vps: MakeVps) -> None:
    await admin.put("/config", json={"max_snapshots": 2})
    vps_id = await make_vps(wait="running")
    for name in ("one", "two"):
        assert (await api.post(f"/vps/{vps_id}/snapshots/create",
                               json={"name": name})).status_code == 201
    assert_error(await api.post(f"/vps/{vps_id}/snapshots/create", json={"name": "three"}),
                 400, "SNAPSHOT_LIMIT_REACHED")


async def test_hourly_charges(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                              make_vps: MakeVps) -> None:
    # An "hour" of 10 simulated seconds: 0.2 s real at 50x.
    await admin.put("/config", json={"billing_interval": 10})
    vps_id = await make_vps(wait=None, hostname="billed.example.com")

    async def charged() -> list[dict[str, Any]] | None:
        invoices: list[dict[str, Any]] = data_of(await api.get("/billing"))["recent_invoices"]
        return invoices if len(invoices) >= 2 else None

    invoices = await wait_for(charged, timeout=5.0)
    await admin.put("/config", json={"billing_interval": 0})  # stop the clock of charges
    billing = data_of(await api.get("/billing"))
    invoices = billing["recent_invoices"]
    first = invoices[-1]
    assert set(first) == {"id", "description", "amount", "type", "date"}
    assert first["description"] == "VPS Hourly Charge - billed.example.com"
    assert first["amount"] == "-0.0082" and first["type"] == "debit"
    assert [i["id"] for i in invoices] == sorted((i["id"] for i in invoices), reverse=True)
    exact = Decimal((await admin.get("/account")).json()["balance_exact"])
    assert exact == Decimal("150.00") - Decimal("0.0082") * len(invoices)
    assert billing["balance"] == f"{exact:.2f}"
    assert billing["auto_funding"] == {"enabled": False, "threshold": "10.00",
                                       "amount": "50.00"}
    assert data_of(await api.get("/account"))["balance"] == billing["balance"]
    details = data_of(await api.get(f"/vps/{vps_id}"))
    assert details["billing"]["last_billed"] == invoices[0]["date"]


async def test_admin_charge_and_what_is_billed(api: httpx.AsyncClient,
                                               admin: httpx.AsyncClient,
                                               make_vps: MakeVps) -> None:
    starter = await make_vps(wait="running")
    await make_vps(wait="running", plan_id=2)
    deleted = await make_vps(wait=None)
    await api.post(f"/vps/{deleted}/delete")
    await admin.put("/config", json={"fail_next_deployments": 1})
    await make_vps(wait="failed")
    await api.post(f"/vps/{starter}/stop")  # stopped VPSes are still billed
    charge = (await admin.post("/billing/charge", json={"hours": 2})).json()
    assert charge == {"charged": "0.0492", "balance": "149.95"}
    assert Decimal((await admin.get("/account")).json()["balance_exact"]) == \
        Decimal(150) - Decimal("0.0492")
    assert len(data_of(await api.get("/billing"))["recent_invoices"]) == 4
    # Auto-funding tops up a low balance after a charge.
    await admin.put("/account", json={"balance": "10.00", "auto_funding": {"enabled": True}})
    await admin.post("/billing/charge", json={"hours": 1})
    billing = data_of(await api.get("/billing"))
    assert billing["balance"] == "59.98"
    assert billing["recent_invoices"][0]["type"] == "credit"
    assert billing["recent_invoices"][0]["amount"] == "50.0000"
