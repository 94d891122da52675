"""NoKYC VPS (https://nokycvps.com): the async client. Domain types in :mod:`.models`,
the mapping to the neutral model in :mod:`.mapping`.

Every POST carries an ``Idempotency-Key`` (the API replays the first answer for 24 h),
lists walk cursor pages of 100, and calls declare their kind: NoKYC's token bucket
(burst 10, refilling 1/s) covers every call except provisioning, which has its own
200/min bucket.
"""

from __future__ import annotations

import hashlib
import json
import uuid
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
from ..errors import Transient
from .models import (
    NOKYC_DEFAULT_ENDPOINT,
    Balance,
    FirewallGroup,
    FirewallRule,
    Image,
    Plan,
    Region,
    Server,
    Snapshot,
    SshKey,
    Webhook,
)

__all__ = ["NoKycClient", "error_envelope"]

_M = TypeVar("_M", bound=BaseModel)
READ, MUTATE, PROVISION = CallKind.READ, CallKind.MUTATE, CallKind.PROVISION
_PAGE_SIZE = 100
_MAX_PAGES = 1000


def error_envelope(body: bytes | str | None) -> tuple[str | None, str | None]:
    """NoKYC's ``{"error": {code, message, errors[{field, issue}], request_id}}``: the
    message with the field issues and the request id (the one thing NoKYC support needs)."""
    if not body:
        return None, None
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None, None
    message = error["message"]
    issues = [f"{e.get('field')}: {e.get('issue')}" for e in error.get("errors") or []
              if isinstance(e, dict) and e.get("field")]
    if issues:
        message += f" ({'; '.join(issues)})"
    if isinstance(error.get("request_id"), str):
        message += f" [request_id {error['request_id']}]"
    code = error.get("code")
    return message, code if isinstance(code, str) else None


def body_key(prefix: str, body: Any) -> str:
    """A deterministic idempotency key for a POST whose body fully identifies it."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:40]
    return f"cube-operator-{prefix}-{digest}"


class NoKycClient:
    """Async client for one NoKYC account (one bearer token)."""

    provider = "nokyc"

    def __init__(
        self,
        *,
        token: str,
        endpoint: str = NOKYC_DEFAULT_ENDPOINT,
        budgets: Sequence[RateBudget] = (),
        timeout: float = 10.0,
        retries: int = 3,
        max_rate_limit_wait: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: ProviderObserver | None = None,
        page_size: int = _PAGE_SIZE,
    ) -> None:
        if not 1 <= page_size <= _PAGE_SIZE:
            raise ValueError("page_size must be 1..100 (NoKYC's maximum)")
        self.endpoint = endpoint.rstrip("/")
        self.page_size = page_size
        self.budgets = tuple(budgets)
        self._http = ProviderHTTP(
            provider=self.provider, base_url=self.endpoint, auth=BearerAuth(token),
            timeout=timeout, budgets=self.budgets, retry=RetryPolicy(retries=retries),
            max_rate_limit_wait=max_rate_limit_wait, observer=observer, transport=transport,
            error_parser=error_envelope,
        )

    def __repr__(self) -> str:
        return f"NoKycClient(endpoint={self.endpoint!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- plumbing -----------------------------------------------------------------------

    def _parse(self, model: type[_M], data: Any, method: str, route: str) -> _M:
        return parse_model(model, data, provider=self.provider, method=method, route=route)

    async def _list(self, model: type[_M], route: str, *, path: dict[str, str] | None = None,
                    params: dict[str, str | int] | None = None) -> list[_M]:
        items: dict[str, _M] = {}
        query: dict[str, str | int] = {**(params or {}), "page_size": self.page_size}
        for _ in range(_MAX_PAGES):
            body = await self._http.request_json("GET", route, kind=READ, path=path, params=query)
            data = body.get("data")
            if not isinstance(data, list):
                raise Transient("expected a list under 'data'", provider=self.provider,
                                method="GET", route=route)
            for raw in data:
                item = self._parse(model, raw, "GET", route)
                items.setdefault(str(getattr(item, "id", len(items))), item)
            cursor = body.get("next_cursor")
            if not body.get("has_more") or not isinstance(cursor, str) or not cursor:
                break
            query = {**query, "cursor": cursor}
        return list(items.values())

    async def _get(self, model: type[_M], route: str, **path: str) -> _M:
        body = await self._http.request_json("GET", route, kind=READ, path=path)
        return self._parse(model, body, "GET", route)

    async def _post(self, model: type[_M] | None, route: str, body: dict[str, Any], *,
                    key: str, kind: CallKind = MUTATE, **path: str) -> Any:
        answer = await self._http.request_json("POST", route, kind=kind, path=path, json=body,
                                               idempotency_key=key)
        return self._parse(model, answer, "POST", route) if model is not None else answer

    # -- account ------------------------------------------------------------------------

    async def check_token(self) -> None:
        """One cheap authenticated GET; raises Unauthorized, Forbidden or Transient."""
        await self._http.request_json("GET", "/servers", kind=READ, params={"page_size": 1})

    async def balance(self) -> Balance:
        return await self._get(Balance, "/billing/balance")

    async def list_plans(self) -> list[Plan]:
        return await self._list(Plan, "/plans")

    async def list_regions(self) -> list[Region]:
        return await self._list(Region, "/regions")

    async def list_images(self) -> list[Image]:
        return await self._list(Image, "/images")

    # -- servers ------------------------------------------------------------------------

    async def list_servers(self, **filters: str) -> list[Server]:
        params: dict[str, str | int] = {f"filter[{k}]": v for k, v in filters.items()}
        return await self._list(Server, "/servers", params=params)

    async def get_server(self, server_id: str) -> Server:
        return await self._get(Server, "/servers/{id}", id=server_id)

    async def create_server(self, body: dict[str, Any], *, idempotency_key: str) -> Server:
        created: Server = await self._post(Server, "/servers", body, key=idempotency_key, kind=PROVISION)
        return created

    async def delete_server(self, server_id: str) -> None:
        await self._http.request("DELETE", "/servers/{id}", kind=MUTATE, path={"id": server_id})

    async def power(self, server_id: str, action: str) -> None:
        """``action`` is stop, start or reboot. A fresh key per call: the API would replay
        an earlier stop for a reused key instead of stopping again; the key still makes
        the HTTP layer's retries of this one call safe."""
        await self._post(None, "/servers/{id}/" + action, {},
                         key=f"cube-operator-{action}-{uuid.uuid4()}", id=server_id)

    async def restore(self, server_id: str, snapshot_id: str, *, idempotency_key: str) -> None:
        await self._post(None, "/servers/{id}/restore", {"snapshot": snapshot_id},
                         key=idempotency_key, id=server_id)

    # -- SSH keys -----------------------------------------------------------------------

    async def list_ssh_keys(self) -> list[SshKey]:
        return await self._list(SshKey, "/ssh-keys")

    async def create_ssh_key(self, *, name: str, public_key: str) -> SshKey:
        body = {"name": name, "public_key": public_key}
        created: SshKey = await self._post(SshKey, "/ssh-keys", body, key=body_key("sshkey", body))
        return created

    # -- snapshots ----------------------------------------------------------------------

    async def list_snapshots(self, **filters: str) -> list[Snapshot]:
        params: dict[str, str | int] = {f"filter[{k}]": v for k, v in filters.items()}
        return await self._list(Snapshot, "/snapshots", params=params)

    async def create_snapshot(self, server_id: str, *, name: str, idempotency_key: str) -> Snapshot:
        created: Snapshot = await self._post(Snapshot, "/servers/{id}/snapshots", {"name": name},
                                             key=idempotency_key, id=server_id)
        return created

    async def delete_snapshot(self, snapshot_id: str) -> None:
        await self._http.request("DELETE", "/snapshots/{id}", kind=MUTATE, path={"id": snapshot_id})

    # -- firewall groups ----------------------------------------------------------------

    async def list_firewall_groups(self) -> list[FirewallGroup]:
        return await self._list(FirewallGroup, "/firewall/groups")

    async def create_firewall_group(self, *, name: str, applied_to: list[str], default_action: str,
                                    idempotency_key: str) -> FirewallGroup:
        body = {"name": name, "applied_to": applied_to, "default_action": default_action, "rules": []}
        created: FirewallGroup = await self._post(FirewallGroup, "/firewall/groups", body,
                                                  key=idempotency_key)
        return created

    async def replace_rules(self, group_id: str, rules: list[FirewallRule]) -> FirewallGroup:
        """Replace the group's rule list at once (PUT is atomic and idempotent)."""
        route = "/firewall/groups/{id}/rules"
        answer = await self._http.request_json(
            "PUT", route, kind=MUTATE, path={"id": group_id},
            json={"rules": [r.to_wire() for r in rules]})
        if "rules" in answer and "id" not in answer:
            answer = {"id": group_id, **answer}
        return self._parse(FirewallGroup, answer, "PUT", route)

    async def delete_firewall_group(self, group_id: str) -> None:
        await self._http.request("DELETE", "/firewall/groups/{id}", kind=MUTATE, path={"id": group_id})

    # -- webhooks -----------------------------------------------------------------------

    async def list_webhooks(self) -> list[Webhook]:
        return await self._list(Webhook, "/webhooks")

    async def get_webhook(self, webhook_id: str) -> Webhook:
        return await self._get(Webhook, "/webhooks/{id}", id=webhook_id)

    async def create_webhook(self, *, url: str, events: list[str], idempotency_key: str) -> Webhook:
        created: Webhook = await self._post(Webhook, "/webhooks", {"url": url, "events": events},
                                            key=idempotency_key)
        return created

    async def delete_webhook(self, webhook_id: str) -> None:
        await self._http.request("DELETE", "/webhooks/{id}", kind=MUTATE, path={"id": webhook_id})
