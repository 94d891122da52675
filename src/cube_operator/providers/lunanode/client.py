"""LunaNode (https://www.lunanode.com): the async client of its signed category/action API.

Every call is ``POST {endpoint}/{category}/{action}/`` with a form body signed by
:class:`.auth.LunaNodeAuth`, and every answer is HTTP 200 with ``success: "yes"`` or
``"no"`` and an ``error`` text, which this client turns into the project's exceptions.
LunaNode has no idempotency keys: only reads are retried after a request may have
arrived; a create is found again by its hostname instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Self, TypeVar

import httpx
from pydantic import BaseModel

from .._http import CallKind, ProviderHTTP, ProviderObserver, RateBudget, RetryPolicy, parse_model
from ..errors import Invalid, InvalidState, NotFound, ProviderError, Transient, Unauthorized
from .auth import LunaNodeAuth
from .models import LUNANODE_DEFAULT_ENDPOINT, Group, Image, Plan, Rule, SshKey, VmInfo, VmRow

__all__ = ["LunaNodeClient", "answer_error"]

_M = TypeVar("_M", bound=BaseModel)
READ, MUTATE, PROVISION = CallKind.READ, CallKind.MUTATE, CallKind.PROVISION

_AUTH_WORDS = ("signature", "api_id", "api id", "partial", "authentication", "api key", "nonce")
_MISSING_WORDS = ("not found", "does not exist", "invalid vm", "invalid image", "invalid security group",
                  "invalid rule", "no such", "unknown vm")
# "cannot stop vm while it is Offline": the VM is mid-change; a wait, not a rejection.
_STATE_WORDS = ("while it is", "while the vm")
_BUSY_WORDS = ("try again", "temporarily", "please wait", "in progress")


def answer_error(text: str, *, method: str, route: str) -> ProviderError:
    """The exception for a ``success: "no"`` answer, by what its text says."""
    lowered = text.lower()
    kwargs: dict[str, Any] = {"provider": "lunanode", "status": 200, "method": method, "route": route}
    if any(w in lowered for w in _AUTH_WORDS):
        return Unauthorized(text, **kwargs)
    if any(w in lowered for w in _MISSING_WORDS):
        return NotFound(text, **kwargs)
    if any(w in lowered for w in _BUSY_WORDS):
        return Transient(text, **kwargs)
    if any(w in lowered for w in _STATE_WORDS):
        return InvalidState(text, **kwargs)
    return Invalid(text, **kwargs)


class LunaNodeClient:
    provider = "lunanode"

    def __init__(
        self,
        *,
        api_id: str,
        api_key: str,
        endpoint: str = LUNANODE_DEFAULT_ENDPOINT,
        budgets: Sequence[RateBudget] = (),
        timeout: float = 15.0,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        observer: ProviderObserver | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.budgets = tuple(budgets)
        self._http = ProviderHTTP(
            provider=self.provider, base_url=self.endpoint, auth=LunaNodeAuth(api_id, api_key),
            timeout=timeout, budgets=self.budgets, retry=RetryPolicy(retries=retries),
            observer=observer, transport=transport, secrets=(api_id,),
        )

    def __repr__(self) -> str:
        return f"LunaNodeClient(endpoint={self.endpoint!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def call(self, category: str, action: str, *, kind: CallKind = READ, **params: object) -> dict[str, Any]:
        route = f"/{category}/{action}/"
        body = {k: str(v) for k, v in params.items() if v is not None}
        answer = await self._http.request_json(
            "POST", route, kind=kind, data={"req": json.dumps(body)},
            # The API has no idempotency: only reads may be sent again once they may have arrived.
            retry_safe=kind is READ)
        if answer.get("success") != "yes":
            raise answer_error(str(answer.get("error") or "the request failed"), method="POST", route=route)
        return answer

    def _rows(self, model: type[_M], answer: dict[str, Any], key: str, route: str) -> list[_M]:
        items = answer.get(key) or []
        if isinstance(items, dict):  # some actions answer {id: row}
            items = list(items.values())
        if not isinstance(items, list):
            raise Transient(f"expected a list under {key!r}", provider=self.provider, route=route)
        return [parse_model(model, item, provider=self.provider, method="POST", route=route) for item in items]

    # -- catalogue ----------------------------------------------------------------------

    async def list_plans(self) -> list[Plan]:
        return self._rows(Plan, await self.call("plan", "list"), "plans", "/plan/list/")

    async def list_regions(self) -> list[tuple[str, str]]:
        """(id, name) of every region: the answer's ``regions`` is ``{id: name}`` (a list of
        ``{region|id, name}`` objects is read too)."""
        regions = (await self.call("region", "list")).get("regions") or {}
        if isinstance(regions, dict):
            return [(str(k), str(v.get("name", k) if isinstance(v, dict) else v)) for k, v in regions.items()]
        if isinstance(regions, list):
            out = []
            for item in regions:
                if isinstance(item, dict) and (item.get("region") or item.get("id")):
                    key = str(item.get("region") or item.get("id"))
                    out.append((key, str(item.get("name") or key)))
                elif isinstance(item, str):
                    out.append((item, item))
            return out
        raise Transient("expected regions", provider=self.provider, route="/region/list/")

    async def list_images(self, region: str | None = None) -> list[Image]:
        return self._rows(Image, await self.call("image", "list", region=region), "images", "/image/list/")

    async def delete_image(self, image_id: str) -> None:
        await self.call("image", "delete", kind=MUTATE, image_id=image_id)

    # -- VMs ----------------------------------------------------------------------------

    async def list_vms(self) -> list[VmRow]:
        return self._rows(VmRow, await self.call("vm", "list"), "vms", "/vm/list/")

    async def vm_info(self, vm_id: str) -> tuple[VmInfo, VmRow | None]:
        answer = await self.call("vm", "info", vm_id=vm_id)
        info = parse_model(VmInfo, answer.get("info") or {}, provider=self.provider, method="POST",
                           route="/vm/info/")
        extra = answer.get("extra")
        row = (parse_model(VmRow, extra, provider=self.provider, method="POST", route="/vm/info/")
               if isinstance(extra, dict) and extra.get("vm_id") else None)
        return info, row

    async def create_vm(self, *, hostname: str, plan_id: str, image_id: str, region: str | None,
                        key_id: str | None) -> str:
        answer = await self.call("vm", "create", kind=PROVISION, hostname=hostname, plan_id=plan_id,
                                 image_id=image_id, region=region, key_id=key_id)
        vm_id = answer.get("vm_id")
        if not vm_id:
            raise Transient("vm/create answered without a vm_id", provider=self.provider, route="/vm/create/")
        return str(vm_id)

    async def vm_action(self, action: str, vm_id: str, **params: object) -> None:
        """start, stop, reboot, delete, reimage (image_id), rename (hostname)."""
        await self.call("vm", action, kind=MUTATE, vm_id=vm_id, **params)

    async def snapshot(self, vm_id: str, name: str) -> str:
        answer = await self.call("vm", "snapshot", kind=MUTATE, vm_id=vm_id, name=name)
        return str(answer.get("image_id") or "")

    # -- SSH keys -----------------------------------------------------------------------

    async def list_ssh_keys(self) -> list[SshKey]:
        # The keys are the answer's own members ({"success": "yes", "0": {...}, ...}), as
        # LunaNode's tools read them.
        answer = await self.call("sshkey", "list")
        rows = [v for k, v in answer.items() if k != "success" and isinstance(v, dict)]
        return self._rows(SshKey, {"keys": rows}, "keys", "/sshkey/list/")

    async def add_ssh_key(self, *, name: str, value: str) -> str:
        answer = await self.call("sshkey", "add", kind=MUTATE, label=name, sshkey=value)
        return str(answer.get("key_id") or "")

    # -- security groups ----------------------------------------------------------------

    async def list_groups(self) -> list[Group]:
        return self._rows(Group, await self.call("securitygroup", "list"), "groups", "/securitygroup/list/")

    async def create_group(self, *, region: str, name: str) -> str:
        answer = await self.call("securitygroup", "create", kind=MUTATE, region=region, name=name)
        return str(answer.get("group_id") or answer.get("id") or "")

    async def list_rules(self, *, region: str, group_id: str) -> list[Rule]:
        answer = await self.call("securitygroup", "rule_list", region=region, group_id=group_id)
        return self._rows(Rule, answer, "rules", "/securitygroup/rule_list/")

    async def insert_rule(self, *, region: str, group_id: str, type_: str, remote_value: str, port: int,
                          label: str) -> None:
        await self.call("securitygroup", "rule_insert", kind=MUTATE, region=region, group_id=group_id,
                        direction="ingress", type=type_, protocol="tcp", remote_type="cidr",
                        remote_value=remote_value, port_min=port, port_max=port, label=label)

    async def delete_rule(self, *, region: str, group_id: str, rule_id: str) -> None:
        await self.call("securitygroup", "rule_delete", kind=MUTATE, region=region, group_id=group_id,
                        rule_id=rule_id)

    async def add_group_to_vm(self, vm_id: str, group_id: str) -> None:
        await self.call("vm", "securitygroup_add", kind=MUTATE, vm_id=vm_id, group_id=group_id)
