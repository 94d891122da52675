"""CyberPanel Cloud (https://platform.cyberpersons.com): the async client.

``Authorization: Bearer cyp_live_...``; answers are ``{success, data, message}`` or
``{success: false, error, error_code, message}``. The error code says more than the
status (a 400 ``VPS_DELETED`` means gone, a 403 ``VPS_SUSPENDED`` is the VPS's state, not
the key's rights), so codes pick the exception. Every request counts against the key's
60/min and 1000/h, reads included. There is no idempotency key: create is never resent
once it may have arrived (the hostname carrying the owner's UID finds it instead).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from .._http import (
    BearerAuth,
    CallKind,
    ProviderHTTP,
    ProviderObserver,
    RateBudget,
    RetryPolicy,
    parse_model,
)
from ..errors import Conflict, InvalidState, NotFound, ProviderError, Transient
from .models import (
    CYBERPANEL_DEFAULT_ENDPOINT,
    Deployment,
    KeyInfo,
    Location,
    Plan,
    Snapshot,
    Template,
    Vps,
    VpsDetails,
)

__all__ = ["CODE_ERRORS", "CyberPanelClient", "error_envelope"]

_M = TypeVar("_M", bound=BaseModel)
READ, MUTATE, PROVISION = CallKind.READ, CallKind.MUTATE, CallKind.PROVISION
_PAGE = 100  # the API's maximum
_MAX_PAGES = 1000

#: Codes whose meaning the status alone does not carry.
CODE_ERRORS: dict[str, type[ProviderError]] = {
    "VPS_DELETED": NotFound,
    "VPS_ALREADY_DELETED": NotFound,
    "VPS_SUSPENDED": InvalidState,
    "VPS_DEPLOYING": InvalidState,
    "DEPLOYMENT_FAILED": InvalidState,
    "SNAPSHOT_EXISTS": Conflict,
}


def error_envelope(body: bytes | str | None) -> tuple[str | None, str | None]:
    """``{"success": false, "error", "error_code", "message"}``: the message with the code."""
    if not body:
        return None, None
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(parsed, dict) or parsed.get("success") is not False:
        return None, None
    code = parsed.get("error_code")
    text = parsed.get("message") or parsed.get("error")
    if not isinstance(code, str) or not isinstance(text, str):
        return None, None
    return f"{text} ({code})", code


class CyberPanelClient:
    """Async client for one CyberPanel Cloud API key."""

    provider = "cyberpanel"

    def __init__(self, *, api_key: str, endpoint: str = CYBERPANEL_DEFAULT_ENDPOINT,
                 budgets: Sequence[RateBudget] = (), timeout: float = 15.0, retries: int = 3,
                 max_rate_limit_wait: float = 120.0, transport: httpx.AsyncBaseTransport | None = None,
                 observer: ProviderObserver | None = None, page_size: int = _PAGE) -> None:
        if not 1 <= page_size <= _PAGE:
            raise ValueError("page_size must be 1..100 (CyberPanel's maximum)")
        self.endpoint = endpoint.rstrip("/")
        self.page_size = page_size
        self.budgets = tuple(budgets)
        self._http = ProviderHTTP(
            provider=self.provider, base_url=self.endpoint, auth=BearerAuth(api_key), timeout=timeout,
            budgets=self.budgets, retry=RetryPolicy(retries=retries), max_rate_limit_wait=max_rate_limit_wait,
            observer=observer, transport=transport, error_parser=error_envelope, code_errors=CODE_ERRORS,
        )

    def __repr__(self) -> str:
        return f"CyberPanelClient(endpoint={self.endpoint!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _data(self, method: str, route: str, *, kind: CallKind, **kwargs: Any) -> dict[str, Any]:
        body = await self._http.request_json(method, route, kind=kind, **kwargs)
        data = body.get("data")
        if body.get("success") is not True or not isinstance(data, dict):
            raise Transient("answer without success and data", provider=self.provider, method=method, route=route)
        return data

    def _items(self, data: dict[str, Any], key: str, model: type[_M], route: str) -> list[_M]:
        items = data.get(key)
        if not isinstance(items, list):
            raise Transient(f"expected a list under {key!r}", provider=self.provider, route=route)
        return [parse_model(model, item, provider=self.provider, method="GET", route=route) for item in items]

    # -- account ---------------------------------------------------------------------
    async def test(self) -> KeyInfo:
        data = await self._data("GET", "/test", kind=READ)
        return parse_model(KeyInfo, data, provider=self.provider, method="GET", route="/test")

    async def account(self) -> dict[str, Any]:
        return await self._data("GET", "/account", kind=READ)

    # -- VPS -------------------------------------------------------------------------
    async def list_vps(self, *, status: str | None = None, location: str | None = None) -> list[Vps]:
        """Every VPS of the account, walking offset pages (a VPS seen twice across pages counts once)."""
        out: dict[int, Vps] = {}
        offset = 0
        for _ in range(_MAX_PAGES):
            params: dict[str, str | int] = {"limit": self.page_size, "offset": offset}
            if status:
                params["status"] = status
            if location:
                params["location"] = location
            data = await self._data("GET", "/vps", kind=READ, params=params)
            rows = self._items(data, "instances", Vps, "/vps")
            for row in rows:
                out.setdefault(row.id, row)
            paging = data.get("pagination")
            if not rows or not isinstance(paging, dict) or not paging.get("has_more"):
                break
            offset += len(rows)
        return list(out.values())

    async def get_vps(self, vps_id: str) -> VpsDetails:
        route = "/vps/{id}"
        data = await self._data("GET", route, kind=READ, path={"id": vps_id})
        return parse_model(VpsDetails, data, provider=self.provider, method="GET", route=route)

    async def deployment(self, vps_id: str) -> Deployment:
        route = "/vps/{id}/deployment"
        data = await self._data("GET", route, kind=READ, path={"id": vps_id})
        return parse_model(Deployment, data, provider=self.provider, method="GET", route=route)

    async def create_vps(self, body: dict[str, Any]) -> int:
        # Never resent once it may have arrived: a second VPS would bill too.
        data = await self._data("POST", "/vps/create", kind=PROVISION, json=body, retry_safe=False)
        vps_id = data.get("vps_id")
        if not isinstance(vps_id, int):
            raise Transient("create answered without vps_id", provider=self.provider, route="/vps/create")
        return vps_id

    async def action(self, vps_id: str, action: str) -> None:
        """``start``, ``stop`` or ``restart``: asking twice is harmless, so retried."""
        await self._data("POST", f"/vps/{{id}}/{action}", kind=MUTATE, path={"id": vps_id}, retry_safe=True)

    async def delete_vps(self, vps_id: str) -> None:
        # A repeat answers VPS_ALREADY_DELETED (NotFound): safe to retry.
        await self._data("POST", "/vps/{id}/delete", kind=MUTATE, path={"id": vps_id}, retry_safe=True)

    # -- catalogue ---------------------------------------------------------------------
    async def plans(self) -> list[Plan]:
        return self._items(await self._data("GET", "/vps/plans", kind=READ), "plans", Plan, "/vps/plans")

    async def locations(self) -> list[Location]:
        return self._items(await self._data("GET", "/vps/locations", kind=READ), "locations", Location,
                           "/vps/locations")

    async def templates(self) -> list[Template]:
        return self._items(await self._data("GET", "/vps/templates", kind=READ), "templates", Template,
                           "/vps/templates")

    # -- snapshots ---------------------------------------------------------------------
    async def snapshots(self, vps_id: str) -> list[Snapshot]:
        route = "/vps/{id}/snapshots"
        return self._items(await self._data("GET", route, kind=READ, path={"id": vps_id}), "snapshots",
                           Snapshot, route)

    async def create_snapshot(self, vps_id: str, name: str, description: str | None = None) -> Snapshot:
        route = "/vps/{id}/snapshots/create"
        body: dict[str, Any] = {"name": name, "include_ram": False}
        if description:
            body["description"] = description
        data = await self._data("POST", route, kind=MUTATE, path={"id": vps_id}, json=body, retry_safe=False)
        snapshot = data.get("snapshot")
        return parse_model(Snapshot, snapshot, provider=self.provider, method="POST", route=route)
