"""Domain controller: route a domain to a Cube port; Ready once the provider says active."""
from __future__ import annotations

from typing import Any

from ..api import DomainSpec
from ..providers import Capability, CreateAttempt, DomainBinding
from ._child import ChildReconciler
from ._sessions import ProviderSession
from ._wiring import register_reconciler

PLURAL = "domains"


class DomainReconciler(ChildReconciler):
    plural = PLURAL
    spec_model = DomainSpec
    noun = "domain"
    capability = Capability.DOMAINS
    capability_text = "custom domains"

    @staticmethod
    def facet(session: ProviderSession) -> Any:
        assert session.provider.domains is not None
        return session.provider.domains

    def needs_replace(self, spec: DomainSpec, status: dict[str, Any]) -> str | None:
        if status.get("port") is not None and status["port"] != spec.port:
            return f"port changed from {status['port']} to {spec.port}"
        return None

    async def create_remote(self, session: ProviderSession, vm_id: str, spec: DomainSpec,
                            obj: dict[str, Any], attempt: CreateAttempt) -> DomainBinding:
        added: DomainBinding = await self.facet(session).add_domain(
            vm_id, domain=spec.domain, port=spec.port, attempt=attempt)
        return added

    async def list_remote(self, session: ProviderSession, vm_id: str) -> list[DomainBinding]:
        found: list[DomainBinding] = await self.facet(session).list_domains(vm_id)
        return found

    async def delete_remote_object(self, session: ProviderSession, vm_id: str, remote_id: str) -> None:
        await self.facet(session).delete_domain(vm_id, remote_id)

    def matches(self, session: ProviderSession, remote: DomainBinding, spec: dict[str, Any], obj: dict[str, Any]) -> bool:
        return remote.domain == spec.get("domain")

    def status_fields(self, remote: DomainBinding, spec: DomainSpec) -> dict[str, Any]:
        record = remote.dns_record
        return {
            "state": remote.provider_state,
            "port": remote.port if remote.port is not None else spec.port,
            "dnsRecord": {"type": record.type, "name": record.name, "value": record.value} if record else None,
        }

    def readiness(self, remote: DomainBinding) -> tuple[bool, str, str]:
        if remote.active:
            return True, "Active", f"{remote.domain} routes to port {remote.port}"
        record = remote.dns_record
        hint = f": publish a {record.type} record {record.name} → {record.value}" if record else ""
        return False, "PendingDNS", f"{remote.domain} is {remote.provider_state or 'pending'}{hint}"


register_reconciler(PLURAL, DomainReconciler)
