"""Firewall groups: CRUD, rule validation, append, atomic replace, delete rule."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloudsim.testing import wait_for_server_status

from .conftest import MakeServer
from .test_nokyc_auth import assert_envelope

SSH = {"direction": "in", "proto": "tcp", "port": "22", "source": "0.0.0.0/0",
       "action": "accept", "note": "ssh"}
WEB = {"direction": "in", "proto": "tcp", "port": "80,443", "source": "::/0",
       "action": "accept", "note": None}
PING = {"direction": "in", "proto": "icmp", "port": None, "source": "10.0.0.0/8",
        "action": "drop"}


async def _group(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await api.post("/firewall/groups", json={"name": "edge", **body})
    assert response.status_code == 201, response.text
    group: dict[str, Any] = response.json()
    return group


async def test_create_and_get(api: httpx.AsyncClient) -> None:
    group = await _group(api, rules=[SSH, WEB, PING])
    assert set(group) == {"id", "object", "name", "applied_to", "rules", "default_action",
                          "created_at"}
    assert group["id"].startswith("fwg_") and group["object"] == "firewall_group"
    assert group["default_action"] == "drop" and group["applied_to"] == []
    assert [r["port"] for r in group["rules"]] == ["22", "80,443", None]
    assert all(r["id"].startswith("fwr_") for r in group["rules"])
    assert group["rules"][2]["note"] is None  # optional, rendered as null
    assert set(group["rules"][0]) == {"id", "direction", "proto", "port", "source", "action",
                                      "note"}
    assert (await api.get(f"/firewall/groups/{group['id']}")).json() == group
    minimal = await _group(api, default_action="accept")
    assert minimal["rules"] == [] and minimal["default_action"] == "accept"


@pytest.mark.parametrize(
    ("rule", "field", "issue"),
    [
        ({**SSH, "direction": "both"}, "direction", "enum"),
        ({**SSH, "proto": "sctp"}, "proto", "enum"),
        ({**SSH, "action": "allow"}, "action", "enum"),
        ({**SSH, "port": None}, "port", "required"),
        ({**SSH, "port": "0"}, "port", "format"),
        ({**SSH, "port": "70000"}, "port", "format"),
        ({**SSH, "port": "5100-5000"}, "port", "format"),
        ({**SSH, "port": "80,443-450"}, "port", "format"),
        ({**SSH, "port": "ssh"}, "port", "format"),
        ({**SSH, "port": 22}, "port", "type"),
        ({**PING, "port": "22"}, "port", "type"),
        ({**SSH, "source": "10.0.0.1"}, "source", "format"),
        ({**SSH, "source": "10.0.0.1/24"}, "source", "format"),
        ({**SSH, "source": "300.0.0.0/8"}, "source", "format"),
        ({**SSH, "source": "anywhere"}, "source", "format"),
        ({**SSH, "id": "fwr_00000000"}, "id", "read_only"),
        ({**SSH, "ports": "22"}, "ports", "unknown_field"),
        ({k: v for k, v in SSH.items() if k != "source"}, "source", "required"),
    ],
)
async def test_rule_validation(
    api: httpx.AsyncClient, rule: dict[str, Any], field: str, issue: str
) -> None:
    error = assert_envelope(await api.post("/firewall/groups",
                                           json={"name": "g", "rules": [SSH, rule]}),
                            400, "invalid_request")
    assert error["errors"][0]["field"] == f"rules[1].{field}"
    assert error["errors"][0]["issue"] == issue
    assert (await api.get("/firewall/groups")).json()["data"] == []


async def test_good_rule_variants(api: httpx.AsyncClient) -> None:
    rules = [{**SSH, "port": "5000-5100", "proto": "udp", "direction": "out"},
             {**PING, "proto": "any", "source": "2001:db8::/32", "action": "reject"},
             {**SSH, "source": "203.0.113.7/32"}]
    group = await _group(api, rules=rules)
    assert [r["proto"] for r in group["rules"]] == ["udp", "any", "tcp"]


async def test_append_replace_delete_rules(api: httpx.AsyncClient) -> None:
    group = await _group(api, rules=[SSH])
    path = f"/firewall/groups/{group['id']}/rules"
    appended = await api.post(path, json=WEB)
    assert appended.status_code == 201
    rules = appended.json()["rules"]
    assert [r["port"] for r in rules] == ["22", "80,443"]
    assert_envelope(await api.post(path, json={**WEB, "proto": "gre"}), 400, "invalid_request")

    # PUT is atomic: one bad rule and nothing changes.
    error = assert_envelope(await api.put(path, json={"rules": [PING, {**SSH, "port": "x"}]}),
                            400, "invalid_request")
    assert error["errors"] == [{"field": "rules[1].port", "issue": "format", "format": "port"}]
    unchanged = (await api.get(f"/firewall/groups/{group['id']}")).json()
    assert unchanged["rules"] == rules

    replaced = await api.put(path, json={"rules": [PING, SSH]})
    assert replaced.status_code == 200
    new_rules = replaced.json()["rules"]
    assert [r["proto"] for r in new_rules] == ["icmp", "tcp"]
    assert not {r["id"] for r in new_rules} & {r["id"] for r in rules}
    for body in ({}, {"rules": "all"}, {"rules": [], "extra": 1}):
        assert_envelope(await api.put(path, json=body), 400, "invalid_request")

    dropped = await api.delete(f"{path}/{new_rules[0]['id']}")
    assert dropped.status_code == 200
    assert [r["id"] for r in dropped.json()["rules"]] == [new_rules[1]["id"]]
    assert_envelope(await api.delete(f"{path}/{new_rules[0]['id']}"), 404, "not_found")
    emptied = await api.put(path, json={"rules": []})
    assert emptied.json()["rules"] == []


async def test_patch_apply_and_delete(api: httpx.AsyncClient, make_server: MakeServer) -> None:
    server = await make_server()
    group = await _group(api, rules=[SSH])
    path = f"/firewall/groups/{group['id']}"
    error = assert_envelope(await api.patch(path, json={"applied_to": ["srv_00000000"]}), 400,
                            "invalid_request")
    assert error["errors"][0] == {"field": "applied_to[0]", "issue": "not_found",
                                  "value": "srv_00000000"}
    error = assert_envelope(await api.patch(path, json={"rules": []}), 400, "invalid_request")
    assert error["errors"] == [{"field": "rules", "issue": "unknown_field"}]
    assert_envelope(await api.patch(path, json={"default_action": "allow"}), 400,
                    "invalid_request")

    patched = await api.patch(path, json={"name": "edge-2", "default_action": "accept",
                                          "applied_to": [server["id"]]})
    assert patched.status_code == 200
    assert (patched.json()["name"], patched.json()["default_action"],
            patched.json()["applied_to"]) == ("edge-2", "accept", [server["id"]])
    assert patched.json()["rules"] == group["rules"]
    listed = (await api.get("/firewall/groups",
                            params={"filter[applied_to]": server["id"]})).json()["data"]
    assert [g["id"] for g in listed] == [group["id"]]

    error = assert_envelope(await api.delete(path), 409, "conflict_state")
    assert error["errors"][0]["field"] == "applied_to"
    await api.patch(path, json={"applied_to": []})
    assert (await api.delete(path)).status_code == 204
    assert_envelope(await api.get(path), 404, "not_found")


async def test_destroyed_servers_leave_their_groups(
    api: httpx.AsyncClient, make_server: MakeServer
) -> None:
    server = await make_server()
    group = await _group(api, applied_to=[server["id"]])
    await api.delete(f"/servers/{server['id']}")
    await wait_for_server_status(api, server["id"], "gone")
    assert (await api.get(f"/firewall/groups/{group['id']}")).json()["applied_to"] == []
