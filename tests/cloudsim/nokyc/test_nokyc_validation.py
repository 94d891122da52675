"""Request bodies: JSON only, unknown keys, the server field rules, references."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from cloudsim.testing import sample_server_request

from .test_nokyc_auth import assert_envelope


async def _create(api: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await api.post("/servers", json=body)


async def test_unknown_keys_are_named(api: httpx.AsyncClient, ssh_key: str) -> None:
    body = sample_server_request(ssh_key, hostname="x", sshKeys=["k"])
    error = assert_envelope(await _create(api, body), 400, "invalid_request")
    assert error["errors"] == [
        {"field": "hostname", "issue": "unknown_field"},
        {"field": "sshKeys", "issue": "unknown_field"},
    ]
    assert "hostname" in error["message"]
    error = assert_envelope(await _create(api, sample_server_request(ssh_key, status="running")),
                            400, "invalid_request")
    assert error["errors"] == [{"field": "status", "issue": "read_only"}]
    assert (await api.get("/servers")).json()["data"] == []


async def test_seed_example_error_for_empty_ssh_keys(api: httpx.AsyncClient) -> None:
    error = assert_envelope(await _create(api, sample_server_request("k_x", ssh_keys=[])),
                            400, "invalid_request")
    assert error["message"] == "ssh_keys must contain at least one valid key id."
    assert error["errors"] == [{"field": "ssh_keys", "issue": "min_items", "min": 1}]


async def test_ssh_keys_must_exist(api: httpx.AsyncClient, ssh_key: str) -> None:
    error = assert_envelope(
        await _create(api, sample_server_request(ssh_key, ssh_keys=[ssh_key, "k_00000000"])),
        400, "invalid_request")
    assert error["errors"] == [
        {"field": "ssh_keys[1]", "issue": "not_found", "value": "k_00000000"}
    ]
    missing = {k: v for k, v in sample_server_request(ssh_key).items() if k != "ssh_keys"}
    error = assert_envelope(await _create(api, missing), 400, "invalid_request")
    assert error["errors"][0]["field"] == "ssh_keys" and error["errors"][0]["issue"] == "required"


@pytest.mark.parametrize(
    "name", ["", "Edge", "1edge", "-edge", "edge_paris", "edge paris", "é", "a" * 64, 7, None]
)
async def test_name_pattern(api: httpx.AsyncClient, ssh_key: str, name: Any) -> None:
    error = assert_envelope(await _create(api, sample_server_request(ssh_key, name=name)), 400,
                            "invalid_request")
    assert [e["field"] for e in error["errors"]] == ["name"]


@pytest.mark.parametrize("name", ["a", "edge-1", "a" * 63, "x-" * 31 + "y"])
async def test_good_names(api: httpx.AsyncClient, ssh_key: str, name: str) -> None:
    assert (await _create(api, sample_server_request(ssh_key, name=name))).status_code == 201


async def test_labels_rules(api: httpx.AsyncClient, ssh_key: str) -> None:
    many = {f"k{i}": "v" for i in range(33)}
    error = assert_envelope(await _create(api, sample_server_request(ssh_key, labels=many)),
                            400, "invalid_request")
    assert error["errors"] == [{"field": "labels", "issue": "max_items", "max": 32}]
    exactly = {f"k{i}": "v" for i in range(32)}
    assert (await _create(api, sample_server_request(ssh_key, labels=exactly))).status_code == 201
    for key in ("Owner", "own.er", "", "a" * 64, "ow ner"):
        error = assert_envelope(
            await _create(api, sample_server_request(ssh_key, labels={key: "x"})), 400,
            "invalid_request")
        assert error["errors"][0]["field"] == f"labels.{key}"
        assert error["errors"][0]["issue"] == "pattern"
    error = assert_envelope(
        await _create(api, sample_server_request(ssh_key, labels={"team": 3})), 400,
        "invalid_request")
    assert error["errors"] == [{"field": "labels.team", "issue": "type", "expected": "string"}]
    ok = await _create(api, sample_server_request(ssh_key, labels={"a_b-9": "x", "z" * 63: ""}))
    assert ok.status_code == 201


async def test_user_data(api: httpx.AsyncClient, ssh_key: str) -> None:
    limit = base64.b64encode(b"#" * 65536).decode()
    assert (await _create(api, sample_server_request(ssh_key, user_data_b64=limit))).status_code == 201
    over = base64.b64encode(b"#" * 65537).decode()
    error = assert_envelope(await _create(api, sample_server_request(ssh_key, user_data_b64=over)),
                            400, "invalid_request")
    assert error["errors"] == [{"field": "user_data_b64", "issue": "max_size", "max": 65536}]
    for bad in ("not base64!", "YWJj=", "YWJ"):
        error = assert_envelope(
            await _create(api, sample_server_request(ssh_key, user_data_b64=bad)), 400,
            "invalid_request")
        assert error["errors"] == [{"field": "user_data_b64", "issue": "base64"}]
    # Write-only: never in an answer.
    server = (await api.get("/servers")).json()["data"][0]
    assert "user_data_b64" not in server
    # An image without cloud-init cannot take user data.
    alpine = sample_server_request(ssh_key, image="alpine-3.22-minimal", user_data_b64="IyE=")
    error = assert_envelope(await _create(api, alpine), 422, "unprocessable")
    assert error["errors"][0]["field"] == "user_data_b64"


async def test_references(api: httpx.AsyncClient, ssh_key: str) -> None:
    for field, value in (("plan", "vps-xxl"), ("region", "fra"), ("image", "windows-11")):
        error = assert_envelope(await _create(api, sample_server_request(ssh_key, **{field: value})),
                                400, "invalid_request")
        assert error["errors"] == [{"field": field, "issue": "not_found", "value": value}]


async def test_plan_unavailable_in_region_is_422(api: httpx.AsyncClient, ssh_key: str) -> None:
    plan = (await api.get("/plans/vps-l8")).json()
    assert "buh" not in plan["available_in"]
    error = assert_envelope(
        await _create(api, sample_server_request(ssh_key, plan="vps-l8", region="buh")),
        422, "unprocessable")
    assert error["errors"][0] == {
        "field": "plan", "issue": "unavailable_in_region", "region": "buh",
        "available_in": plan["available_in"],
    }
    ok = await _create(api, sample_server_request(ssh_key, plan="vps-l8", region="zrh"))
    assert ok.status_code == 201


async def test_deprecated_image_is_422(api: httpx.AsyncClient, ssh_key: str) -> None:
    image = (await api.get("/images/debian-12-minimal")).json()
    assert image["deprecated_at"]
    error = assert_envelope(
        await _create(api, sample_server_request(ssh_key, image="debian-12-minimal")),
        422, "unprocessable")
    assert error["errors"][0]["issue"] == "deprecated"


async def test_every_problem_is_reported(api: httpx.AsyncClient) -> None:
    body = {"name": "Bad Name", "plan": 3, "image": "debian-13-minimal", "ssh_keys": "k",
            "tags": "edge", "extra": True}
    error = assert_envelope(await _create(api, body), 400, "invalid_request")
    fields = [e["field"] for e in error["errors"]]
    assert fields == ["extra", "name", "plan", "region", "ssh_keys", "tags"]


async def test_types_and_tags(api: httpx.AsyncClient, ssh_key: str) -> None:
    error = assert_envelope(await _create(api, sample_server_request(ssh_key, tags=["ok", 5, ""])),
                            400, "invalid_request")
    assert [e["field"] for e in error["errors"]] == ["tags[1]", "tags[2]"]
    error = assert_envelope(
        await _create(api, sample_server_request(ssh_key, ssh_keys=[ssh_key, ssh_key])),
        400, "invalid_request")
    assert error["errors"] == [{"field": "ssh_keys[1]", "issue": "duplicate"}]


@pytest.mark.parametrize(
    ("content", "content_type", "issue"),
    [
        (b'{"name": "x"}', "text/plain", "content_type"),
        (b"name=x", "application/x-www-form-urlencoded", "content_type"),
        (b"{", "application/json", "json"),
        (b"[1, 2]", "application/json", "type"),
        (b"", "application/json", "required"),
    ],
)
async def test_bodies_are_json_objects(
    api: httpx.AsyncClient, content: bytes, content_type: str, issue: str
) -> None:
    response = await api.post("/servers", content=content, headers={"Content-Type": content_type})
    error = assert_envelope(response, 400, "invalid_request")
    assert error["errors"][0]["field"] == "body" and error["errors"][0]["issue"] == issue


async def test_patch_rules(api: httpx.AsyncClient, make_server: Any) -> None:
    server = await make_server(wait=None)
    path = f"/servers/{server['id']}"
    error = assert_envelope(await api.patch(path, json={"plan": "vps-m4", "region": "zrh"}),
                            400, "invalid_request")
    assert error["errors"] == [{"field": "plan", "issue": "immutable"},
                               {"field": "region", "issue": "immutable"}]
    error = assert_envelope(await api.patch(path, json={"id": "srv_1", "colour": "red"}), 400,
                            "invalid_request")
    assert error["errors"] == [{"field": "id", "issue": "read_only"},
                               {"field": "colour", "issue": "unknown_field"}]
    error = assert_envelope(await api.patch(path, json={"name": "UPPER"}), 400, "invalid_request")
    assert error["errors"][0]["issue"] == "pattern"


async def test_non_list_endpoints_reject_unknown_query(api: httpx.AsyncClient) -> None:
    error = assert_envelope(await api.get("/plans/vps-s1", params={"expand": "x"}), 400,
                            "invalid_request")
    assert error["errors"] == [{"field": "expand", "issue": "unknown_parameter"}]


async def test_idempotency_key_bounds(api: httpx.AsyncClient) -> None:
    error = assert_envelope(await api.post("/ssh-keys", json={},
                                           headers={"Idempotency-Key": "k" * 256}),
                            400, "invalid_request")
    assert error["errors"][0]["field"] == "Idempotency-Key"
