"""Domain controller: route a domain to a Cube port; Ready once the provider says active."""
from __future__ import annotations

from typing import Any

import kopf

from ..api import GROUP, VERSION, DomainSpec
from ..providers import KROVA_DNS_TARGET, Domain
from ._child import ChildReconciler, delete_child
from ._registry import registry
from ._sessions import ProviderSession
from ._wiring import register_reconciler

PLURAL = "domains"


class DomainReconciler(ChildReconciler):
    plural = PLURAL
    spec_model = DomainSpec
    noun = "domain"

    def needs_replace(self, spec: DomainSpec, status: dict[str, Any]) -> str | None:
        if status.get("port") is not None and status["port"] != spec.port:
            return f"port changed from {status['port']} to {spec.port}"
        return None

    async def create_remote(self, session: ProviderSession, cube_id: str, spec: DomainSpec,
                            obj: dict[str, Any], key: str) -> Domain:
        return await session.client.add_domain(cube_id, domain=spec.domain, port=spec.port, idempotency_key=key)

    async def list_remote(self, session: ProviderSession, cube_id: str) -> list[Domain]:
        return await session.client.list_domains(cube_id)

    async def delete_remote(self, session: ProviderSession, cube_id: str, remote_id: str) -> None:
        await session.client.delete_domain(cube_id, remote_id)

    def status_fields(self, remote: Domain, spec: DomainSpec) -> dict[str, Any]:
        cname = next((r for r in remote.records if r.type.upper() == "CNAME"), None)
        return {
            "state": remote.status,
            "port": remote.port if remote.port is not None else spec.port,
            "dnsRecord": {"type": "CNAME", "name": cname.host if cname else remote.domain,
                          "value": cname.value if cname else KROVA_DNS_TARGET},
        }

    def readiness(self, remote: Domain) -> tuple[bool, str, str]:
        if remote.status == "active":
            return True, "Active", f"{remote.domain} routes to port {remote.port}"
        return False, "PendingDNS", (f"{remote.domain} is {remote.status or 'pending'}: publish a CNAME "
                                     f"record {remote.domain} → {KROVA_DNS_TARGET}")


register_reconciler(PLURAL, DomainReconciler)


@kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
async def domain_deleted(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    await delete_child(DomainReconciler, body, logger)
