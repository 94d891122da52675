"""``GET /_sim/``: every simulator lists its admin endpoints, and each one listed exists."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from cloudsim.common.server import ADMIN_PREFIX, SimServer
from cloudsim.testing import (
    cyberpanel_test_simulator,
    krova_test_simulator,
    lunanode_test_simulator,
    nokyc_test_simulator,
    voltagepark_test_simulator,
)

FACTORIES: dict[str, Callable[[], SimServer]] = {
    "krova": krova_test_simulator,
    "nokyc": nokyc_test_simulator,
    "cyberpanel": cyberpanel_test_simulator,
    "lunanode": lunanode_test_simulator,
    "voltagepark": voltagepark_test_simulator,
}
# Endpoints every simulator has (cloudsim.common.server), besides its own.
COMMON = {("GET", "/_sim/"), ("GET", "/_sim/health"), ("GET", "/_sim/config"), ("PUT", "/_sim/config"),
          ("PATCH", "/_sim/config"), ("GET", "/_sim/faults"), ("POST", "/_sim/faults"),
          ("DELETE", "/_sim/faults"), ("DELETE", "/_sim/faults/{faultId}"), ("GET", "/_sim/stats"),
          ("DELETE", "/_sim/stats"), ("GET", "/_sim/requests"), ("DELETE", "/_sim/ratelimit")}
# At least one of the provider's own, so a simulator that bypasses admin_route shows.
OWN = {"krova": ("POST", "/_sim/cubes/{cubeId}/state"), "nokyc": ("POST", "/_sim/servers/{serverId}/state"),
       "cyberpanel": ("GET", "/_sim/vps"), "lunanode": ("GET", "/_sim/vms"), "voltagepark": ("GET", "/_sim/vms")}


@pytest.mark.parametrize("provider", sorted(FACTORIES))
async def test_admin_index_lists_every_admin_endpoint_and_each_exists(provider: str) -> None:
    async with FACTORIES[provider]() as sim, httpx.AsyncClient(base_url=sim.base_url, timeout=10.0) as client:
        response = await client.get("/_sim/")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        index = response.json()
        assert (await client.get("/_sim")).json() == index
        assert index["provider"] == provider and index["api"] == sim.url
        listed = {(e["method"], e["path"]) for e in index["endpoints"]}
        assert len(listed) == len(index["endpoints"]), "an endpoint is listed twice"
        for endpoint in index["endpoints"]:
            assert set(endpoint) == {"method", "path", "description"}
            description = endpoint["description"]
            assert isinstance(description, str) and description.strip() and "\n" not in description
        assert COMMON <= listed and OWN[provider] in listed

        # Complete: every admin route the server has is listed (HEAD comes with GET).
        routed = {(route.method, route.resource.canonical) for route in sim.app.router.routes()
                  if route.resource is not None and route.resource.canonical.startswith(ADMIN_PREFIX)
                  and route.method != "HEAD"}
        assert routed - {("GET", ADMIN_PREFIX)} == listed

        # Real: each listed endpoint answers over HTTP, neither "no such route" nor 405.
        unrouted = await client.get("/_sim/no-such-endpoint")
        assert unrouted.status_code == 404
        for method, path in sorted(listed):
            concrete = re.sub(r"\{[^}]+\}", "no-such-id", path)
            answer = await client.request(method, concrete, json=None if method == "GET" else {})
            assert answer.status_code != 405, (method, path, answer.text)
            assert not (answer.status_code == 404 and answer.content == unrouted.content), (method, path)
            assert answer.status_code < 500, (method, path, answer.text)
