"""Voltage Park On Demand (https://voltagepark.com): the async client.

VM endpoints authenticate with ``Authorization: Bearer``, organization endpoints (SSH
keys, storage) with ``x-api-token`` — the same key, two headers, as the API document
shows. Errors are FastAPI's: ``{"detail": "text"}`` or, for 422, a list of
``{loc, msg, type}`` whose ``loc`` names the field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Self

import httpx

from .._http import (
    BearerAuth,
    CallKind,
    HeaderAuth,
    ProviderHTTP,
    ProviderObserver,
    RateBudget,
    RetryPolicy,
    parse_model,
)
from ..errors import Invalid, Transient
from .models import VOLTAGEPARK_DEFAULT_ENDPOINT, Location, Preset, VirtualMachine

__all__ = ["VoltageParkClient", "fastapi_error"]

READ, MUTATE, PROVISION = CallKind.READ, CallKind.MUTATE, CallKind.PROVISION
_PAGE = 100
_LOCATIONS_PAGE = 15  # the API's maximum for /locations/
_MAX_PAGES = 1000


def fastapi_error(body: bytes | str | None) -> tuple[str | None, str | None]:
    """``{"detail": "..."}`` or ``{"detail": [{"loc": ["body", "password"], "msg", "type"}]}``:
    the message names the field (``password: String should have at least 8 characters``)."""
    if not body:
        return None, None
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    detail = parsed.get("detail") if isinstance(parsed, dict) else None
    if isinstance(detail, str):
        return detail, None
    if isinstance(detail, list):
        parts, code = [], None
        for item in detail:
            if not isinstance(item, dict):
                continue
            loc = [str(p) for p in item.get("loc") or [] if p not in ("body", "query", "path")]
            parts.append(f"{'.'.join(loc) or 'body'}: {item.get('msg', 'invalid')}")
            code = code or item.get("type")
        return ("; ".join(parts) or None), code
    return None, None


class VoltageParkClient:
    provider = "voltagepark"

    def __init__(self, *, api_key: str, endpoint: str = VOLTAGEPARK_DEFAULT_ENDPOINT,
                 budgets: Sequence[RateBudget] = (), timeout: float = 15.0, retries: int = 3,
                 transport: httpx.AsyncBaseTransport | None = None, observer: ProviderObserver | None = None,
                 page_size: int = _PAGE) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.budgets = tuple(budgets)
        self.page_size = page_size
        common: dict[str, Any] = {"provider": self.provider, "base_url": self.endpoint, "timeout": timeout,
                                  "budgets": self.budgets, "retry": RetryPolicy(retries=retries),
                                  "observer": observer, "transport": transport, "error_parser": fastapi_error,
                                  # FastAPI answers 422 for a body that does not validate.
                                  "status_errors": {422: Invalid}}
        self._vms = ProviderHTTP(auth=BearerAuth(api_key), **common)
        self._org = ProviderHTTP(auth=HeaderAuth("x-api-token", api_key), **common)

    def __repr__(self) -> str:
        return f"VoltageParkClient(endpoint={self.endpoint!r})"

    async def aclose(self) -> None:
        await self._vms.aclose()
        await self._org.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def list_vms(self) -> list[VirtualMachine]:
        """Every owned, unterminated VM, walking offset pages."""
        out: dict[str, VirtualMachine] = {}
        offset = 0
        for _ in range(_MAX_PAGES):
            body = await self._vms.request_json("GET", "/virtual-machines/", kind=READ,
                                                params={"limit": self.page_size, "offset": offset})
            results = body.get("results")
            if not isinstance(results, list):
                raise Transient("expected a list under 'results'", provider=self.provider, route="/virtual-machines/")
            for raw in results:
                vm = parse_model(VirtualMachine, raw, provider=self.provider, method="GET", route="/virtual-machines/")
                out.setdefault(vm.id, vm)
            if not body.get("has_next") or not results:
                break
            offset += len(results)
        return list(out.values())

    async def get_vm(self, vm_id: str) -> VirtualMachine:
        route = "/virtual-machines/{id}"
        body = await self._vms.request_json("GET", route, kind=READ, path={"id": vm_id})
        return parse_model(VirtualMachine, body, provider=self.provider, method="GET", route=route)

    async def create_instant(self, body: dict[str, Any]) -> str:
        # No idempotency key exists: never resent once it may have arrived (the owner tag
        # finds it instead).
        answer = await self._vms.request_json("POST", "/virtual-machines/instant", kind=PROVISION, json=body,
                                              retry_safe=False)
        vm_id = answer.get("vm_id")
        if not vm_id:
            raise Transient("create answered without vm_id", provider=self.provider, route="/virtual-machines/instant")
        return str(vm_id)

    async def power(self, vm_id: str, status: str) -> None:
        """``started``, ``stopped`` or ``stopped_disassociated``."""
        await self._vms.request("PUT", "/virtual-machines/{id}/power-status", kind=MUTATE, path={"id": vm_id},
                                json={"status": status})

    async def delete_vm(self, vm_id: str) -> None:
        await self._vms.request("DELETE", "/virtual-machines/{id}", kind=MUTATE, path={"id": vm_id})

    async def presets(self, *, available: bool | None = None) -> list[Preset]:
        params: dict[str, str | int] = {} if available is None else {"available": str(available).lower()}
        body = await self._vms.request("GET", "/instant-deploy-presets/", kind=READ, params=params,
                                       authenticated=False)
        items = body.json()
        if not isinstance(items, list):
            raise Transient("expected a list of presets", provider=self.provider, route="/instant-deploy-presets/")
        return [parse_model(Preset, p, provider=self.provider, method="GET", route="/instant-deploy-presets/")
                for p in items]

    async def locations(self) -> list[Location]:
        """Every location (``GET /locations/``, offset pages of 15)."""
        out: dict[str, Location] = {}
        offset = 0
        for _ in range(_MAX_PAGES):
            body = await self._vms.request_json("GET", "/locations/", kind=READ,
                                                params={"limit": _LOCATIONS_PAGE, "offset": offset})
            results = body.get("results")
            if not isinstance(results, list):
                raise Transient("expected a list under 'results'", provider=self.provider, route="/locations/")
            for raw in results:
                location = parse_model(Location, raw, provider=self.provider, method="GET", route="/locations/")
                out.setdefault(location.id, location)
            if not body.get("has_next") or not results:
                break
            offset += len(results)
        return list(out.values())

    async def validate_cloud_init(self, content: dict[str, Any]) -> str | None:
        """None if Voltage Park accepts the cloud-init, else its message."""
        body = await self._vms.request_json("POST", "/validate/cloudinit", kind=READ, authenticated=False,
                                            json={"type": "instant-vm", "content": content}, retry_safe=True)
        return str(body.get("message") or "invalid cloud-init") if body.get("error") else None

    async def organization_ssh_keys(self) -> list[dict[str, Any]]:
        body = await self._org.request_json("GET", "/organization/ssh-keys", kind=READ)
        results = body.get("results")
        return list(results) if isinstance(results, list) else []
