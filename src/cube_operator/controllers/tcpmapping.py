"""TcpMapping controller: Krova has no update, so a changed port or allowlist replaces it."""
from __future__ import annotations

from typing import Any

import kopf

from ..api import GROUP, VERSION, TcpMappingSpec
from ..providers import TcpMapping
from ._child import ChildReconciler, delete_child
from ._registry import registry
from ._sessions import ProviderSession
from ._wiring import register_reconciler

PLURAL = "tcpmappings"


class TcpMappingReconciler(ChildReconciler):
    plural = PLURAL
    spec_model = TcpMappingSpec
    noun = "TCP mapping"

    def validate(self, spec: TcpMappingSpec, cube: dict[str, Any]) -> str | None:
        ssh_port = int((cube.get("spec") or {}).get("sshPort") or 22)
        if spec.cube_port == ssh_port:
            return (f"spec.cubePort {ssh_port} is the Cube's SSH port; its mapping exists already and "
                    "is managed through the Cube's spec.sshPort")
        return None

    def needs_replace(self, spec: TcpMappingSpec, status: dict[str, Any]) -> str | None:
        if status.get("cubePort") is not None and status["cubePort"] != spec.cube_port:
            return f"cubePort changed from {status['cubePort']} to {spec.cube_port}"
        if status.get("whitelistedIps") is not None and sorted(status["whitelistedIps"]) != sorted(spec.whitelisted_ips):
            return "whitelistedIps changed"
        if (status.get("label") or None) != (spec.label or None) and status.get("cubePort") is not None:
            return "label changed"
        return None

    async def create_remote(self, session: ProviderSession, cube_id: str, spec: TcpMappingSpec,
                            obj: dict[str, Any], key: str) -> TcpMapping:
        return await session.client.create_tcp_mapping(
            cube_id, cube_port=spec.cube_port, label=spec.label,
            whitelisted_ips=list(spec.whitelisted_ips), idempotency_key=key)

    async def list_remote(self, session: ProviderSession, cube_id: str) -> list[TcpMapping]:
        return await session.client.list_tcp_mappings(cube_id)

    async def delete_remote(self, session: ProviderSession, cube_id: str, remote_id: str) -> None:
        await session.client.delete_tcp_mapping(cube_id, remote_id)

    def status_fields(self, remote: TcpMapping, spec: Any) -> dict[str, Any]:
        return {
            "hostPort": remote.host_port,
            "host": f"{remote.host}:{remote.host_port}" if remote.host else None,
            "cubePort": remote.cube_port,
            "whitelistedIps": list(remote.whitelisted_ips),
            "label": remote.label,
        }

    def readiness(self, remote: TcpMapping) -> tuple[bool, str, str]:
        if remote.status == "active":
            return True, "Active", f"host port {remote.host_port} forwards to port {remote.cube_port}"
        return False, "Pending", f"mapping {remote.id} is {remote.status or 'pending'}"


register_reconciler(PLURAL, TcpMappingReconciler)


@kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
async def tcpmapping_deleted(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    await delete_child(TcpMappingReconciler, body, logger)
