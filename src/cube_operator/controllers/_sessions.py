"""One provider session per ProviderConfig: the provider client, its budgets, the fleet view.

Everything that talks to a provider on behalf of a ProviderConfig goes through the
session, so the rate budgets are shared by all objects of that provider account and
observed state comes from one list call per poll interval, not one GET per object.
Sessions are built from the provider registry: the plugin says which settings block,
which Secret keys and which budgets a provider needs.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..api import ProviderConfigSpec
from ..providers import (
    KNOWN_PROVIDERS,
    BudgetPool,
    ObservedVM,
    Provider,
    ProviderConnection,
    ProviderPlugin,
    account_key,
    endpoint_allowed,
    implemented_providers,
    plugin_for,
)
from ._conditions import get_condition
from ._kube import Kube, NotFoundError
from ._problems import ConfigProblem, spec_error
from ._secrets import SecretSource, read_secret

__all__ = ["ConfigProblem", "FleetView", "ProviderSession", "SessionRegistry", "unsupported"]


def unsupported(provider: str, what: str) -> ConfigProblem:
    """The condition for a capability ``provider`` lacks; raised before any provider call."""
    return ConfigProblem("Unsupported", f"provider {provider} does not support {what}")


@dataclass
class FleetView:
    """VMs of one ProviderConfig, refreshed by one list call at most every `max_age`."""

    provider: Provider
    vms: dict[str, ObservedVM] = field(default_factory=dict)
    fetched_at: float = 0.0  # monotonic time the last list *started*
    # Per VM: monotonic time of the newest observation (list start, GET, webhook).
    seen_at: dict[str, float] = field(default_factory=dict)
    _inflight: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._list())
        await asyncio.shield(self._inflight)

    async def _list(self) -> None:
        started = time.monotonic()
        vms = await self.provider.list_vms()
        fresher = {i: v for i, v in self.vms.items() if self.seen_at.get(i, 0.0) > started}
        self.vms = {vm.id: vm for vm in vms}
        self.vms.update(fresher)  # a GET or webhook newer than this list wins
        self.seen_at = {i: max(started, self.seen_at.get(i, 0.0)) for i in self.vms}
        self.fetched_at = started

    async def get(self, max_age: float) -> dict[str, ObservedVM]:
        if time.monotonic() - self.fetched_at > max_age:
            await self.refresh()
        return self.vms

    def put(self, vm: ObservedVM) -> None:
        """Record what a create/get/webhook told us, without waiting for the next list."""
        self.vms[vm.id] = vm
        self.seen_at[vm.id] = time.monotonic()

    def forget(self, vm_id: str) -> None:
        self.vms.pop(vm_id, None)
        self.seen_at[vm_id] = time.monotonic()

    def observed_at(self, vm_id: str) -> float:
        return self.seen_at.get(vm_id, self.fetched_at)

    async def aclose(self) -> None:
        """Stop a list in flight: it is shielded from its callers' cancellation, so it
        would otherwise outlive the client closed next."""
        task, self._inflight = self._inflight, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@dataclass
class ProviderSession:
    namespace: str
    name: str
    plugin: ProviderPlugin
    fingerprint: str
    provider: Provider
    poll_interval: float
    fleet: FleetView
    checked_at: float = 0.0
    #: Which provider account (endpoint + credentials, hashed): VM ids are unique within one.
    account: str = ""

    @property
    def provider_name(self) -> str:
        return self.plugin.name

    async def aclose(self) -> None:
        await self.fleet.aclose()
        await self.provider.aclose()


def _plugin(provider: str, plugins: Mapping[str, ProviderPlugin] | None = None) -> ProviderPlugin:
    plugin = plugins.get(provider) if plugins is not None else plugin_for(provider)
    if plugin is None:
        implemented = ", ".join(n for n in KNOWN_PROVIDERS if n in plugins) if plugins is not None else (
            ", ".join(implemented_providers()))
        if provider in KNOWN_PROVIDERS:
            raise ConfigProblem(
                "Unsupported",
                f"provider {provider!r} is not implemented by this operator version "
                f"(implemented: {implemented})")
        raise ConfigProblem(
            "Unsupported",
            f"unknown provider {provider!r}; known providers: {', '.join(KNOWN_PROVIDERS)} "
            f"(implemented: {implemented})")
    return plugin


class SessionRegistry:
    """Builds sessions from ProviderConfig + Secret, reusing them while neither changes."""

    CACHE_SECONDS = 30.0  # every change of a ProviderConfig comes through its check(), which forgets it

    def __init__(self, kube: Kube, default_poll_interval: float, observer: Any = None, *,
                 plugins: Mapping[str, ProviderPlugin] | None = None, budget_scale: float = 1.0,
                 allowed_endpoints: tuple[str, ...] = ()) -> None:
        self.kube = kube
        self.default_poll_interval = default_poll_interval
        self.observer = observer
        # None: the provider registry. Tests hand in their own (an in-memory provider).
        self.plugins = plugins
        self.budgets = BudgetPool(budget_scale)
        # Endpoints besides each provider's documented one that tenants may name (an
        # operator setting: a tenant's endpoint receives the tenant's credentials).
        self.allowed_endpoints = allowed_endpoints
        # Credentials Secrets are read here: the watches that keep them once the operator
        # runs (no GET per reconcile), a plain GET before that and in tests.
        self.secrets: SecretSource = kube
        self._sessions: dict[tuple[str, str], ProviderSession] = {}
        self._looked_up: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._reading: dict[tuple[str, str], asyncio.Lock] = {}
        self._retiring: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    async def provider_config(self, namespace: str, name: str) -> dict[str, Any]:
        """The ProviderConfig, read at most once per CACHE_SECONDS however many objects ask:
        one GET per ProviderConfig, never one per object (the others wait for that one)."""
        key = (namespace, name)
        cached = self._looked_up.get(key)
        if cached and time.monotonic() - cached[0] < self.CACHE_SECONDS:
            return cached[1]
        async with self._reading.setdefault(key, asyncio.Lock()):
            cached = self._looked_up.get(key)
            if cached and time.monotonic() - cached[0] < self.CACHE_SECONDS:
                return cached[1]  # read by the one who held the lock
            asked_at = time.monotonic()
            try:
                body = await self.kube.get_custom("providerconfigs", namespace, name)
            except NotFoundError:
                raise ConfigProblem(
                    "ProviderConfigNotFound",
                    f"ProviderConfig {namespace}/{name} does not exist; create it or fix providerConfigRef.name",
                ) from None
            noted = self._looked_up.get(key)
            if noted and noted[0] > asked_at:
                return noted[1]  # the controller's verdict came while we asked: it is newer
            self._looked_up[key] = (time.monotonic(), body)
            return body

    def forget(self, namespace: str, name: str) -> None:
        self._looked_up.pop((namespace, name), None)

    def note_status(self, body: dict[str, Any], status: dict[str, Any]) -> None:
        """The ProviderConfig controller's verdict, visible before its status patch lands."""
        meta = body["metadata"]
        self._looked_up[(meta["namespace"], meta["name"])] = (
            time.monotonic(), {**body, "status": {**(body.get("status") or {}), **status}})

    async def session(self, namespace: str, name: str, *, require_ready: bool = True) -> ProviderSession:
        body = await self.provider_config(namespace, name)
        if require_ready:
            ready = get_condition((body.get("status") or {}).get("conditions"), "Ready")
            if not ready:
                # Not checked yet (both applied together): a wait, not a problem to warn about.
                raise ConfigProblem("WaitingForProviderConfig",
                                    f"ProviderConfig {namespace}/{name} has not been checked yet")
            if ready.get("status") != "True":
                raise ConfigProblem(
                    "ProviderConfigNotReady",
                    f"ProviderConfig {namespace}/{name} is not Ready: {ready.get('reason')}: {ready.get('message')}")
        return await self.session_from_body(body)

    async def session_from_body(self, body: dict[str, Any]) -> ProviderSession:
        meta, raw_spec = body["metadata"], body.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        plugin = _plugin(str(raw_spec.get("provider", "")), self.plugins)
        try:
            spec = ProviderConfigSpec.model_validate(raw_spec)
        except ValidationError as error:
            raise ConfigProblem("InvalidSpec", spec_error(error)) from None
        settings = getattr(spec, plugin.settings_field, None)
        if settings is None and plugin.settings_required:
            raise ConfigProblem("InvalidSpec", f"spec.{plugin.settings_field} is required for "
                                               f"provider {plugin.name}")
        for other in KNOWN_PROVIDERS:
            if other != plugin.settings_field and raw_spec.get(other) is not None:
                raise ConfigProblem("InvalidSpec", f"spec.{other} is for provider {other}; remove it "
                                                   f"or set provider: {other}")
        problems = plugin.check_settings(settings) if plugin.check_settings else []
        if problems:
            raise ConfigProblem("InvalidSpec", "; ".join(problems))

        ref = spec.credentials_secret_ref
        primary = ref.key or plugin.primary_key
        wanted = [primary] + [k.name for k in plugin.credential_keys[1:]]
        values = await read_secret(self.secrets, namespace, ref.name, wanted,
                                   what=f"credentials of provider {plugin.name}")
        credentials = {plugin.primary_key: values[primary]}
        credentials.update({k: values[k] for k in wanted[1:]})
        for key in plugin.credential_keys:
            problem = key.check(credentials[key.name]) if key.check else None
            if problem:
                shown = primary if key.name == plugin.primary_key else key.name
                raise ConfigProblem("InvalidCredentials",
                                    f"credentials Secret {namespace}/{ref.name} key {shown!r}: {problem}")

        if spec.endpoint and not endpoint_allowed(spec.endpoint, plugin.default_endpoint, self.allowed_endpoints):
            raise ConfigProblem(
                "EndpointNotAllowed",
                f"spec.endpoint {spec.endpoint} is not {plugin.name}'s API ({plugin.default_endpoint}); the operator "
                "sends credentials elsewhere only when its administrator allows it (--allow-endpoint, chart value "
                "allowedEndpoints): remove spec.endpoint, or ask for it to be allowed")

        # The fingerprint covers everything the client is built from; secrets only as a hash.
        account = account_key(plugin.name, spec.endpoint, credentials)
        fingerprint = hashlib.sha256(json.dumps([raw_spec, account], sort_keys=True).encode()).hexdigest()
        async with self._lock:
            current = self._sessions.get((namespace, name))
            if current and current.fingerprint == fingerprint:
                return current
            override = ((spec.rate_limit.requests, spec.rate_limit.period_seconds)
                        if spec.rate_limit else None)
            refused = self.budgets.check_override(plugin, override) if override else None
            if refused:
                raise ConfigProblem("InvalidSpec", refused)
            connection = ProviderConnection(
                endpoint=spec.endpoint, credentials=credentials, settings=settings,
                budgets=self.budgets.budgets(plugin, account, override, endpoint=spec.endpoint),
                observer=self.observer)
            try:
                provider = plugin.build(connection)
            except ValueError as error:
                raise ConfigProblem("InvalidSpec", f"provider {plugin.name}: {error}") from None
            session = ProviderSession(
                namespace=namespace,
                name=name,
                plugin=plugin,
                fingerprint=fingerprint,
                provider=provider,
                poll_interval=float(spec.poll_interval_seconds or self.default_poll_interval),
                fleet=FleetView(provider),
                account=account,
            )
            self._sessions[(namespace, name)] = session
            if current:
                # Calls already under way on the old client (a reconcile holding it) finish
                # first: it is closed once they have had their time, not under them.
                self._retiring.add(asyncio.create_task(self._retire(current)))
            return session

    #: How long a replaced client stays open for the calls already under way on it.
    RETIRE_SECONDS = 60.0

    async def _retire(self, session: ProviderSession) -> None:
        try:
            await asyncio.sleep(self.RETIRE_SECONDS)
        finally:
            await session.aclose()
            self._retiring.discard(asyncio.current_task())  # type: ignore[arg-type]

    def find(self, namespace: str, name: str) -> ProviderSession | None:
        return self._sessions.get((namespace, name))

    async def drop(self, namespace: str, name: str) -> None:
        self.forget(namespace, name)
        session = self._sessions.pop((namespace, name), None)
        if session:
            await session.aclose()

    async def aclose(self) -> None:
        for task in list(self._retiring):
            task.cancel()  # closes its session at once
        await asyncio.gather(*self._retiring, return_exceptions=True)
        for session in list(self._sessions.values()):
            await session.aclose()
        self._sessions.clear()
