"""One provider session per ProviderConfig: the client, its rate limiter, the fleet view.

Everything that talks to a provider on behalf of a ProviderConfig goes through the
session, so the client-side rate limiter is shared by all objects that use it and
observed state comes from one list call per poll interval, not one GET per object.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from ..providers import IMPLEMENTED_PROVIDERS, KrovaClient, KrovaCube
from ._conditions import get_condition
from ._kube import Kube, NotFoundError


class ConfigProblem(Exception):
    """The object cannot be reconciled until the user fixes something; says what."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass
class FleetView:
    """Provider VMs of one ProviderConfig, refreshed by one list call at most every `max_age`."""

    client: KrovaClient
    cubes: dict[str, KrovaCube] = field(default_factory=dict)
    fetched_at: float = 0.0  # monotonic time the last list *started*
    # Per cube: monotonic time of the newest observation (list start, GET, webhook).
    seen_at: dict[str, float] = field(default_factory=dict)
    _inflight: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        if self._inflight is None or self._inflight.done():
            self._inflight = asyncio.ensure_future(self._list())
        await asyncio.shield(self._inflight)

    async def _list(self) -> None:
        started = time.monotonic()
        cubes = await self.client.list_cubes()
        fresher = {i: c for i, c in self.cubes.items() if self.seen_at.get(i, 0.0) > started}
        self.cubes = {cube.id: cube for cube in cubes}
        self.cubes.update(fresher)  # a GET or webhook newer than this list wins
        self.seen_at = {i: max(started, self.seen_at.get(i, 0.0)) for i in self.cubes}
        self.fetched_at = started

    async def get(self, max_age: float) -> dict[str, KrovaCube]:
        if time.monotonic() - self.fetched_at > max_age:
            await self.refresh()
        return self.cubes

    def put(self, cube: KrovaCube) -> None:
        """Record what a create/get/webhook told us, without waiting for the next list."""
        self.cubes[cube.id] = cube
        self.seen_at[cube.id] = time.monotonic()

    def forget(self, cube_id: str) -> None:
        self.cubes.pop(cube_id, None)
        self.seen_at[cube_id] = time.monotonic()

    def observed_at(self, cube_id: str) -> float:
        return self.seen_at.get(cube_id, self.fetched_at)


@dataclass
class ProviderSession:
    namespace: str
    name: str
    provider: str
    fingerprint: str
    client: KrovaClient
    poll_interval: float
    fleet: FleetView
    checked_at: float = 0.0

    async def aclose(self) -> None:
        await self.client.aclose()


def decode_secret_value(secret: dict[str, Any], key: str) -> str | None:
    data = secret.get("data") or {}
    if key in data:
        return base64.b64decode(data[key]).decode("utf-8").strip()
    string_data = secret.get("stringData") or {}
    value = string_data.get(key)
    return str(value).strip() if value is not None else None


class SessionRegistry:
    """Builds sessions from ProviderConfig + Secret, reusing them while neither changes."""

    CACHE_SECONDS = 5.0

    def __init__(self, kube: Kube, default_poll_interval: float, observer: Any = None) -> None:
        self.kube = kube
        self.default_poll_interval = default_poll_interval
        self.observer = observer
        self._sessions: dict[tuple[str, str], ProviderSession] = {}
        self._looked_up: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()

    async def provider_config(self, namespace: str, name: str) -> dict[str, Any]:
        key = (namespace, name)
        cached = self._looked_up.get(key)
        if cached and time.monotonic() - cached[0] < self.CACHE_SECONDS:
            return cached[1]
        try:
            body = await self.kube.get_custom("providerconfigs", namespace, name)
        except NotFoundError:
            raise ConfigProblem(
                "ProviderConfigNotFound",
                f"ProviderConfig {namespace}/{name} does not exist; create it or fix providerConfigRef.name",
            ) from None
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
            if not ready or ready.get("status") != "True":
                detail = f": {ready.get('reason')}: {ready.get('message')}" if ready else " yet"
                raise ConfigProblem(
                    "ProviderConfigNotReady", f"ProviderConfig {namespace}/{name} is not Ready{detail}"
                )
        return await self.session_from_body(body)

    async def session_from_body(self, body: dict[str, Any]) -> ProviderSession:
        meta, spec = body["metadata"], body.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        provider = spec.get("provider", "")
        if provider not in IMPLEMENTED_PROVIDERS:
            raise ConfigProblem(
                "Unsupported",
                f"provider {provider!r} is not implemented by this operator version "
                f"(implemented: {', '.join(IMPLEMENTED_PROVIDERS)})",
            )
        ref = spec.get("credentialsSecretRef") or {}
        secret_name, secret_key = ref.get("name", ""), ref.get("key", "apiKey")
        try:
            secret = await self.kube.get_secret(namespace, secret_name)
        except NotFoundError:
            raise ConfigProblem(
                "SecretNotFound", f"credentials Secret {namespace}/{secret_name} does not exist"
            ) from None
        api_key = decode_secret_value(secret, secret_key)
        if not api_key:
            raise ConfigProblem(
                "SecretKeyMissing",
                f"credentials Secret {namespace}/{secret_name} has no key {secret_key!r}",
            )
        space_id = (spec.get("krova") or {}).get("spaceId")
        if provider == "krova" and not space_id:
            raise ConfigProblem("InvalidSpec", "spec.krova.spaceId is required for provider krova")
        # The fingerprint covers everything the client is built from; the key only as a hash.
        fingerprint = hashlib.sha256(
            json.dumps([spec, hashlib.sha256(api_key.encode()).hexdigest()], sort_keys=True).encode()
        ).hexdigest()
        async with self._lock:
            current = self._sessions.get((namespace, name))
            if current and current.fingerprint == fingerprint:
                return current
            rate = spec.get("rateLimit") or {}
            kwargs: dict[str, Any] = {"api_key": api_key, "space_id": space_id}
            if spec.get("endpoint"):
                kwargs["endpoint"] = spec["endpoint"]
            if rate:
                kwargs["rate_limit"] = int(rate["requests"])
                kwargs["rate_period"] = float(rate["periodSeconds"])
            if self.observer is not None:
                kwargs["observer"] = self.observer
            client = KrovaClient(**kwargs)
            session = ProviderSession(
                namespace=namespace,
                name=name,
                provider=provider,
                fingerprint=fingerprint,
                client=client,
                poll_interval=float(spec.get("pollIntervalSeconds") or self.default_poll_interval),
                fleet=FleetView(client),
            )
            self._sessions[(namespace, name)] = session
            if current:
                await current.aclose()
            return session

    def find(self, namespace: str, name: str) -> ProviderSession | None:
        return self._sessions.get((namespace, name))

    async def drop(self, namespace: str, name: str) -> None:
        self.forget(namespace, name)
        session = self._sessions.pop((namespace, name), None)
        if session:
            await session.aclose()

    async def aclose(self) -> None:
        for session in list(self._sessions.values()):
            await session.aclose()
        self._sessions.clear()
