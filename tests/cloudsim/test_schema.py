"""Every JSON body the simulator serves validates against Krova's own OpenAPI spec.

The simulator's built-in response check is switched off here: the bodies are captured
on the client side and validated independently against the spec shipped as package
data, with the path template found from the spec's own paths.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from jsonschema import ValidationError

from cloudsim.openapi import SpecValidator, load_spec, to_json_schema
from cloudsim.testing import (
    DEFAULT_API_KEY,
    DEFAULT_SPACE_ID,
    create_cube,
    krova_test_simulator,
    wait_for,
    wait_for_cube_state,
    webhook_receiver,
)

PREFIX = "/api/v1"


class SpecPaths:
    """Concrete request path -> the spec's path template."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self._patterns = sorted(
            (
                (re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"), path)
                for path in spec["paths"]
            ),
            key=lambda item: item[1].count("{"),  # literal segments win over parameters
        )

    def template(self, path: str) -> str | None:
        path = path.removeprefix(PREFIX)
        return next((t for rx, t in self._patterns if rx.match(path)), None)


Captured = tuple[str, str, int, Any]


async def _scenario(api: httpx.AsyncClient, root: httpx.AsyncClient, admin_url: str) -> None:
    for path in ("/regions", "/images", "/pricing"):
        await root.get(path)
    await root.get("/space", headers={"X-API-KEY": DEFAULT_API_KEY})
    await root.get("/space")  # 401
    await root.get("/spaces/sp_other/cubes", headers={"X-API-KEY": DEFAULT_API_KEY})  # 403

    async with httpx.AsyncClient() as admin:
        # Phases long enough (0.2 s) that the wrong-state calls below hit their state.
        await admin.put(f"{admin_url}/config", json={"provision_delay": 10, "stop_delay": 10})
    await api.post("/cubes", json={"name": ""})  # 400
    cube = await create_cube(api, wait=None, userData="#!/bin/sh\n")
    cid = cube["id"]
    await api.get("/cubes")
    await api.get(f"/cubes/{cid}")
    await api.get("/cubes/cube_missing")  # 404
    await api.post(f"/cubes/{cid}/sleep")  # 422 while pending
    await wait_for_cube_state(api, cid, "running")
    await api.patch(f"/cubes/{cid}", json={"terminationProtection": False})
    await api.get(f"/cubes/{cid}/ssh")

    mapping = (await api.post(
        f"/cubes/{cid}/tcp-mappings", json={"cubePort": 5432, "whitelistedIps": ["1.2.3.4/32"]}
    )).json()["tcpMapping"]
    await api.post(f"/cubes/{cid}/tcp-mappings", json={"cubePort": 5432})  # 409
    await api.get(f"/cubes/{cid}/tcp-mappings")
    await api.put(f"/cubes/{cid}/ssh-port", json={"cubePort": 2222})
    await api.put(f"/cubes/{cid}/ssh-port", json={"cubePort": 0})  # 400
    await api.get(f"/cubes/{cid}/tcp-mappings")
    await api.delete(f"/cubes/{cid}/tcp-mappings/{mapping['id']}")

    domain = (await api.post(
        f"/cubes/{cid}/domains", json={"domain": "api.example.com", "port": 8080}
    )).json()["domain"]
    await api.post(f"/cubes/{cid}/domains", json={"domain": "*.w.example.com", "port": 80})
    await api.get(f"/cubes/{cid}/domains")
    await api.get(f"/cubes/{cid}/domains/{domain['id']}/records")

    snap = (await api.post(f"/cubes/{cid}/snapshots", json={"name": "s1"})).json()["snapshot"]
    await api.post(f"/cubes/{cid}/snapshots")  # 409
    await api.get(f"/cubes/{cid}/snapshots")

    async def complete() -> bool:
        rows = (await api.get(f"/cubes/{cid}/snapshots")).json()["snapshots"]
        return rows[0]["status"] == "complete"

    await wait_for(complete)
    await asyncio.sleep(0.15)  # let the domains become active
    await api.get(f"/cubes/{cid}/domains")
    await api.get(f"/cubes/{cid}/domains/{domain['id']}/records")
    await api.post(f"/cubes/{cid}/restore", json={"snapshotId": "snap_missing"})  # 404
    await api.post(f"/cubes/{cid}/restore", json={"snapshotId": snap["id"]})
    await wait_for_cube_state(api, cid, "running")
    await api.delete(f"/cubes/{cid}/snapshots/{snap['id']}")
    await api.delete(f"/cubes/{cid}/domains/{domain['id']}")

    async with webhook_receiver() as receiver:
        hook = (await api.post("/webhooks", json={
            "url": receiver.url, "events": ["cube.running", "cube.sleeping", "cube.deleted"],
        })).json()["webhook"]
        await api.post(f"/cubes/{cid}/power-off")
        await wait_for_cube_state(api, cid, "stopped")
        await api.post(f"/cubes/{cid}/wake")
        await wait_for_cube_state(api, cid, "running")
        await api.post(f"/cubes/{cid}/restart")
        await api.post(f"/cubes/{cid}/restart")  # 409
        await wait_for_cube_state(api, cid, "running")
        await receiver.wait_for(3)
    await api.get("/webhooks")
    await api.get(f"/webhooks/{hook['id']}")
    await api.get(f"/webhooks/{hook['id']}/deliveries")
    await api.get(f"/webhooks/{hook['id']}/deliveries", params={"limit": 500})  # 400
    await api.delete(f"/webhooks/{hook['id']}")

    await api.delete(f"/cubes/{cid}")
    await wait_for_cube_state(api, cid, "deleted")
    await api.get("/cubes")

    async with httpx.AsyncClient() as admin:
        await admin.put(f"{admin_url}/config", json={"rate_limit": 1})
    await api.delete("/cubes/cube_missing")  # 404 with rate-limit headers
    await api.delete("/cubes/cube_missing")  # 429


async def test_every_response_body_matches_the_spec() -> None:
    captured: list[Captured] = []

    async def record(response: httpx.Response) -> None:
        await response.aread()
        body = response.json() if response.content else None
        captured.append((response.request.method, response.url.path, response.status_code, body))

    hooks = {"response": [record]}
    async with krova_test_simulator(validate_responses=False) as sim, httpx.AsyncClient(
        base_url=f"{sim.url}/spaces/{DEFAULT_SPACE_ID}",
        headers={"X-API-KEY": DEFAULT_API_KEY},
        event_hooks=hooks,
        timeout=5.0,
    ) as api, httpx.AsyncClient(base_url=sim.url, event_hooks=hooks, timeout=5.0) as root:
        await _scenario(api, root, sim.admin_url)

    spec = load_spec("krova")
    validator = SpecValidator(spec)
    paths = SpecPaths(spec)
    covered: set[tuple[str, str, int]] = set()
    failures: list[str] = []
    for method, path, status, body in captured:
        template = paths.template(path)
        if template is None:  # seed-only route (/sleep): still the error envelope if it fails
            assert status < 400 or set(body) == {"error"}, (method, path, body)
            continue
        covered.add((method, template, status))
        failures += [
            f"{method} {path} {status}: {problem}"
            for problem in validator.errors(method, template, status, body)
        ]
    assert not failures, "\n".join(failures)

    expected = {
        ("GET", "/regions", 200), ("GET", "/images", 200), ("GET", "/pricing", 200),
        ("GET", "/space", 200), ("GET", "/space", 401),
        ("GET", "/spaces/{spaceId}/cubes", 200), ("GET", "/spaces/{spaceId}/cubes", 403),
        ("POST", "/spaces/{spaceId}/cubes", 201), ("POST", "/spaces/{spaceId}/cubes", 400),
        ("GET", "/spaces/{spaceId}/cubes/{cubeId}", 200),
        ("GET", "/spaces/{spaceId}/cubes/{cubeId}", 404),
        ("PATCH", "/spaces/{spaceId}/cubes/{cubeId}", 200),
        ("DELETE", "/spaces/{spaceId}/cubes/{cubeId}", 200),
        ("DELETE", "/spaces/{spaceId}/cubes/{cubeId}", 429),
        ("GET", "/spaces/{spaceId}/cubes/{cubeId}/ssh", 200),
        ("POST", "/spaces/{spaceId}/cubes/{cubeId}/tcp-mappings", 201),
        ("GET", "/spaces/{spaceId}/cubes/{cubeId}/tcp-mappings", 200),
        ("DELETE", "/spaces/{spaceId}/cubes/{cubeId}/tcp-mappings/{mappingId}", 200),
        ("PUT", "/spaces/{spaceId}/cubes/{cubeId}/ssh-port", 200),
        ("PUT", "/spaces/{spaceId}/cubes/{cubeId}/ssh-port", 400),
        ("POST", "/spaces/{spaceId}/cubes/{cubeId}/domains", 201),
        ("GET", "/spaces/{spaceId}/cubes/{cubeId}/domains", 200),
        ("GET", "/spaces/{spaceId}/cubes/{cubeId}/domains/{mappingId}/records", 200),
        ("DELETE", "/spaces/{spaceId}/cubes/{cubeId}/domains/{mappingId}", 200),
        ("POST", "/spaces/{spaceId}/cubes/{cubeId}/snapshots", 201),
        ("GET", "/spaces/{spaceId}/cubes/{cubeId}/snapshots", 200),
        ("DELETE", "/spaces/{spaceId}/cubes/{cubeId}/snapshots/{snapshotId}", 200),
        ("POST", "/spaces/{spaceId}/cubes/{cubeId}/restore", 200),
        ("POST", "/spaces/{spaceId}/cubes/{cubeId}/restore", 404),
        ("POST", "/spaces/{spaceId}/cubes/{cubeId}/power-off", 200),
        ("POST", "/spaces/{spaceId}/cubes/{cubeId}/wake", 200),
        ("POST", "/spaces/{spaceId}/cubes/{cubeId}/restart", 200),
        ("POST", "/spaces/{spaceId}/cubes/{cubeId}/restart", 409),
        ("POST", "/spaces/{spaceId}/webhooks", 201),
        ("GET", "/spaces/{spaceId}/webhooks", 200),
        ("GET", "/spaces/{spaceId}/webhooks/{endpointId}", 200),
        ("DELETE", "/spaces/{spaceId}/webhooks/{endpointId}", 200),
        ("GET", "/spaces/{spaceId}/webhooks/{endpointId}/deliveries", 200),
        ("GET", "/spaces/{spaceId}/webhooks/{endpointId}/deliveries", 400),
    }
    assert expected - covered == set()
    # The main bodies really were checked against a schema, not waved through.
    for method, template, status in [
        ("GET", "/spaces/{spaceId}/cubes", 200),
        ("POST", "/spaces/{spaceId}/cubes/{cubeId}/domains", 201),
        ("GET", "/spaces/{spaceId}/cubes/{cubeId}/tcp-mappings", 200),
        ("GET", "/spaces/{spaceId}/cubes/{cubeId}/snapshots", 200),
        ("GET", "/space", 401),
    ]:
        assert validator.validator(method, template, status) is not None, template


def test_validator_rejects_what_the_spec_forbids() -> None:
    validator = SpecValidator.for_provider("krova")
    cube = {
        "id": "cube_1", "name": "n", "state": "running", "publicIpv4": None,
        "resources": {"vcpu": 2, "ramGb": 4, "diskGb": 30}, "image": "ubuntu-24.04",
        "sshUser": "ubuntu", "costPerHour": 0.01, "terminationProtection": False,
        "createdAt": "2026-05-01T12:00:00.000Z", "updatedAt": "2026-05-01T12:00:00.000Z",
    }
    template = "/spaces/{spaceId}/cubes/{cubeId}"
    validator.validate("GET", template, 200, {"cube": cube})  # null IPv4 is allowed
    with pytest.raises(ValidationError):
        validator.validate("GET", template, 200, {"cube": {**cube, "state": "sleeping"}})
    with pytest.raises(ValidationError):
        validator.validate("GET", template, 200, {"cube": {**cube, "resources": {"vcpu": 2}}})
    with pytest.raises(ValidationError):
        validator.validate("GET", template, 200, {"cube": {**cube, "createdAt": "yesterday"}})
    with pytest.raises(ValidationError):
        validator.validate("GET", template, 200, {"cube": {**cube, "sshUser": None}})
    # Any undocumented error status still has to be the envelope.
    validator.validate("POST", "/spaces/{spaceId}/cubes/{cubeId}/sleep", 422, {"error": "x"})
    with pytest.raises(ValidationError):
        validator.validate("GET", template, 422, {"message": "x"})


def test_nullable_becomes_a_type_union() -> None:
    spec: dict[str, Any] = {"components": {"schemas": {"S": {
        "type": "string", "nullable": True, "enum": ["a", "b"],
    }}}}
    schema = to_json_schema({"$ref": "#/components/schemas/S"}, spec)
    assert schema == {"type": ["string", "null"], "enum": ["a", "b", None]}
    assert to_json_schema({"nullable": True, "properties": {}}, spec) == {
        "anyOf": [{"properties": {}}, {"type": "null"}]
    }
