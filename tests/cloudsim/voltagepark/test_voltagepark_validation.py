"""422 in FastAPI's shape for bad bodies, paths and queries; 404 for unknown ids."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from .conftest import PRESET_1X, MakeVm, vm_body


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    detail: list[dict[str, Any]] = response.json()["detail"]
    for item in detail:
        assert {"loc", "msg", "type"} <= set(item)
        assert isinstance(item["loc"], list)
    return detail


async def test_short_password(api: httpx.AsyncClient) -> None:
    detail = _errors(await api.post("/virtual-machines/instant",
                                    json=vm_body(password="short")))
    assert detail == [{"type": "string_too_short", "loc": ["body", "password"],
                       "msg": "String should have at least 8 characters", "input": "short",
                       "ctx": {"min_length": 8}}]
    # null and 8 characters are fine
    assert (await api.post("/virtual-machines/instant",
                           json=vm_body(password=None))).status_code == 201
    assert (await api.post("/virtual-machines/instant",
                           json=vm_body(password="12345678"))).status_code == 201


async def test_missing_config_id_and_name(api: httpx.AsyncClient) -> None:
    detail = _errors(await api.post("/virtual-machines/instant", json={"tags": ["x"]}))
    assert [(d["type"], d["loc"]) for d in detail] == [
        ("missing", ["body", "config_id"]), ("missing", ["body", "name"])]
    assert detail[0]["msg"] == "Field required"
    bad = _errors(await api.post("/virtual-machines/instant",
                                 json=vm_body(config_id="not-a-uuid")))
    assert bad[0]["type"] == "uuid_parsing" and bad[0]["loc"] == ["body", "config_id"]


async def test_bad_cloud_init(api: httpx.AsyncClient) -> None:
    detail = _errors(await api.post("/virtual-machines/instant", json=vm_body(
        cloud_init={"packages": ["git"], "bootcmd": ["x"], "runcmd": "not a list",
                    "write_files": [{"path": "/etc/x", "mode": "0644"}]})))
    got = {(d["type"], tuple(d["loc"])) for d in detail}
    assert ("extra_forbidden", ("body", "cloud_init", "bootcmd")) in got
    assert ("list_type", ("body", "cloud_init", "runcmd")) in got
    assert ("extra_forbidden", ("body", "cloud_init", "write_files", 0, "mode")) in got
    assert ("missing", ("body", "cloud_init", "write_files", 0, "content")) in got
    good = vm_body(cloud_init={"packages": ["git"], "runcmd": ["echo hi"], "write_files": [
        {"path": "/etc/motd", "content": "hi", "owner": "root:root", "permissions": "0644",
         "encoding": "text/plain"}]})
    assert (await api.post("/virtual-machines/instant", json=good)).status_code == 201


async def test_org_ssh_keys_modes_validation(api: httpx.AsyncClient) -> None:
    tag = _errors(await api.post("/virtual-machines/instant",
                                 json=vm_body(organization_ssh_keys={"mode": "some"})))
    assert tag[0]["type"] == "union_tag_invalid"
    assert tag[0]["loc"] == ["body", "organization_ssh_keys"]
    sel = _errors(await api.post("/virtual-machines/instant",
                                 json=vm_body(organization_ssh_keys={"mode": "selective"})))
    assert sel[0]["loc"] == ["body", "organization_ssh_keys", "selective", "ssh_key_ids"]
    keys = _errors(await api.post("/virtual-machines/instant", json=vm_body(
        ssh_keys="ssh-ed25519 AAAA", tags=[1])))
    assert {tuple(d["loc"]) for d in keys} == {("body", "ssh_keys"), ("body", "tags", 0)}


async def test_body_shapes(api: httpx.AsyncClient) -> None:
    empty = _errors(await api.post("/virtual-machines/instant"))
    assert empty[0]["type"] == "missing" and empty[0]["loc"] == ["body"]
    broken = _errors(await api.post("/virtual-machines/instant", content=b"{nope",
                                    headers={"Content-Type": "application/json"}))
    assert broken[0]["type"] == "json_invalid" and broken[0]["loc"][0] == "body"
    array = _errors(await api.post("/virtual-machines/instant", json=[1]))
    assert array[0]["type"] == "model_attributes_type"


async def test_unknown_preset_is_400(api: httpx.AsyncClient) -> None:
    response = await api.post("/virtual-machines/instant",
                              json=vm_body(config_id=str(uuid.uuid4())))
    assert response.status_code == 400 and "detail" in response.json()


async def test_unknown_and_malformed_ids(api: httpx.AsyncClient,
                                         anon: httpx.AsyncClient) -> None:
    unknown = str(uuid.uuid4())
    for method, path, body in [
        ("GET", f"/virtual-machines/{unknown}", None),
        ("PATCH", f"/virtual-machines/{unknown}", {"name": "x"}),
        ("DELETE", f"/virtual-machines/{unknown}", None),
        ("PUT", f"/virtual-machines/{unknown}/power-status", {"status": "stopped"}),
        ("GET", f"/locations/{unknown}", None),
        ("GET", f"/hostnodes/{unknown}", None),
    ]:
        response = await api.request(method, path, json=body)
        assert response.status_code == 404, (method, path)
        assert isinstance(response.json()["detail"], str)
    assert (await anon.get(f"/instant-deploy-presets/{unknown}")).status_code == 404
    bad = _errors(await api.get("/virtual-machines/xyz"))
    assert bad[0]["loc"] == ["path", "virtual_machine_id"] and bad[0]["type"] == "uuid_parsing"
    nowhere = await api.get("/no-such-thing")
    assert nowhere.status_code == 404 and nowhere.json() == {"detail": "Not Found"}
    method = await api.post("/locations/")
    assert method.status_code == 405 and method.json() == {"detail": "Method Not Allowed"}


async def test_query_validation(api: httpx.AsyncClient, anon: httpx.AsyncClient) -> None:
    too_big = _errors(await api.get("/virtual-machines/", params={"limit": 101}))
    assert too_big[0]["type"] == "less_than_equal" and too_big[0]["loc"] == ["query", "limit"]
    zero = _errors(await api.get("/virtual-machines/", params={"limit": 0}))
    assert zero[0]["type"] == "greater_than_equal"
    assert _errors(await api.get("/locations/", params={"limit": 16}))
    word = _errors(await anon.get("/instant-deploy-presets/", params={"available": "maybe"}))
    assert word[0]["type"] == "bool_parsing"


async def test_power_status_and_patch_validation(api: httpx.AsyncClient,
                                                 make_vm: MakeVm) -> None:
    vm_id = await make_vm(wait=None)
    bad = _errors(await api.put(f"/virtual-machines/{vm_id}/power-status",
                                json={"status": "paused"}))
    assert bad[0]["type"] == "enum" and bad[0]["loc"] == ["body", "status"]
    missing = _errors(await api.put(f"/virtual-machines/{vm_id}/power-status", json={}))
    assert missing[0]["type"] == "missing"
    patch = _errors(await api.patch(f"/virtual-machines/{vm_id}", json={"tags": "x"}))
    assert patch[0]["loc"] == ["body", "tags"]
    assert PRESET_1X  # the fixture's preset exists


async def test_validate_cloudinit(anon: httpx.AsyncClient) -> None:
    async def check(content: Any, type_: str = "instant-vm") -> dict[str, Any]:
        response = await anon.post("/validate/cloudinit", json={"type": type_,
                                                                "content": content})
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        assert set(answer) == {"error", "message"}
        return answer

    assert (await check("#cloud-config\npackages: [git]\nruncmd:\n  - echo hi\n"))[
        "error"] is False
    assert (await check({"packages": ["git"]}))["error"] is False
    assert (await check("#!/bin/bash\necho hi"))["error"] is True
    assert (await check("#cloud-config\npackages: [git\n"))["error"] is True
    extra = await check({"bootcmd": ["x"]})
    assert extra["error"] is True and "bootcmd" in extra["message"]
    bad_type = _errors(await anon.post("/validate/cloudinit",
                                       json={"type": "vm", "content": "x"}))
    assert bad_type[0]["loc"] == ["body", "type"]
    assert _errors(await anon.post("/validate/cloudinit", json={"type": "instant-vm"}))
