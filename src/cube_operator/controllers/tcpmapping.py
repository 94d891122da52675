"""TcpMapping controller: "TCP port P of this Cube reachable only from these CIDRs".
Providers have no update for an exposure, so a changed port or allowlist replaces it."""
from __future__ import annotations

from typing import Any

from ..api import TcpMappingSpec
from ..providers import Capability, CreateAttempt, TcpExposure
from ._child import ChildReconciler
from ._sessions import ProviderSession
from ._wiring import register_reconciler

PLURAL = "tcpmappings"


class TcpMappingReconciler(ChildReconciler):
    plural = PLURAL
    spec_model = TcpMappingSpec
    noun = "TCP mapping"
    capability = Capability.TCP_EXPOSURE
    capability_text = "TCP mappings"

    @staticmethod
    def facet(session: ProviderSession) -> Any:
        assert session.provider.tcp is not None
        return session.provider.tcp

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

    async def create_remote(self, session: ProviderSession, vm_id: str, spec: TcpMappingSpec,
                            obj: dict[str, Any], attempt: CreateAttempt) -> TcpExposure:
        exposure: TcpExposure = await self.facet(session).expose(
            vm_id, vm_port=spec.cube_port, label=spec.label,
            allowed_cidrs=list(spec.whitelisted_ips), attempt=attempt)
        return exposure

    async def list_remote(self, session: ProviderSession, vm_id: str) -> list[TcpExposure]:
        found: list[TcpExposure] = await self.facet(session).list_exposures(vm_id)
        return found

    async def delete_remote_object(self, session: ProviderSession, vm_id: str, remote_id: str) -> None:
        await self.facet(session).unexpose(vm_id, remote_id)

    def matches(self, session: ProviderSession, remote: TcpExposure, spec: dict[str, Any], obj: dict[str, Any]) -> bool:
        return remote.vm_port == spec.get("cubePort")

    def status_fields(self, remote: TcpExposure, spec: Any) -> dict[str, Any]:
        return {
            "hostPort": remote.host_port,
            "host": f"{remote.host}:{remote.host_port}" if remote.host else None,
            "cubePort": remote.vm_port,
            "whitelistedIps": list(remote.allowed_cidrs),
            "label": remote.label,
        }

    def readiness(self, remote: TcpExposure) -> tuple[bool, str, str]:
        if remote.active:
            return True, "Active", f"host port {remote.host_port} forwards to port {remote.vm_port}"
        return False, "Pending", f"mapping {remote.id} is {remote.provider_state or 'pending'}"


register_reconciler(PLURAL, TcpMappingReconciler)
