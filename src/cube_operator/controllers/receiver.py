"""Inbound provider webhooks: verify, de-duplicate, and refresh the affected Cube now.

`POST /webhooks/{provider}/{namespace}/{name}` — one URL per Webhook object, so the secret
to verify with is known before the body is trusted (subscriptions made before this route
had a provider segment used the same path). `POST /callbacks/{provider}/{namespace}/{name}`
— one URL per Cube, for providers that take a callback per VM at create (CyberPanel); its
secret is the one the operator generated for that Cube. The provider's verifier, from the
registry, checks the signature; rejections are 4xx and change nothing. Before a signature
is good, every refusal is the same 401 (unknown provider, object or secret, unsigned,
wrongly signed), so a caller without the secret learns nothing about what exists;
oversized is 413, slow 408. After it: a stale signed timestamp is 401 saying so, a replay
(the same delivery id, or the same signed body under another id) 409, a malformed payload
400. Route lookups are cached (a flood
of forged requests costs about one API read per name per second), a source with 60 rejections
in a minute is answered 429 without any work — except on routes that have verified a
delivery or are cached, so a forger sharing the provider's address (an Ingress) cannot
silence it. The replay window is in memory: after a
restart a replayed body costs one provider read, once (then it is known again).

The affected Cube is found through the provider-id index the reconcilers keep; only a
replica that reconciles no such Cube (an HA standby) falls back to one list, after the
signature has been verified, to hand the event to the active replica.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..providers import (
    Capability,
    NotFound,
    ProviderError,
    VerifiedEvent,
    WebhookRejected,
    WebhookRejection,
    plugin_for,
)
from ._common import CALLBACK_PATH, PROVIDER_EVENT_ANNOTATION, callback_secret_name
from ._kube import NotFoundError
from ._runtime import Runtime, get_runtime
from ._secrets import decode_secret_value, owned_by
from ._sessions import ConfigProblem
from .webhook import RECEIVER_PATH

logger = logging.getLogger("cube_operator.receiver")

MAX_BODY_BYTES = 64 * 1024
BODY_TIMEOUT_SECONDS = 10.0
SEEN_DELIVERIES = 10_000


class DeliveryLog:
    """Delivery ids already processed; bounded, oldest forgotten first."""

    def __init__(self, size: int = SEEN_DELIVERIES) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, delivery_id: object) -> bool:
        return delivery_id in self._seen

    def add(self, delivery_id: str) -> None:
        self._seen[delivery_id] = None
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)


class BodyTooLarge(Exception):
    pass


async def read_body(request: web.Request) -> bytes:
    """The whole body, however many chunks or segments it arrives in (a signature is over
    all of it), bounded in size and in time."""
    chunks: list[bytes] = []
    total = 0
    async with asyncio.timeout(BODY_TIMEOUT_SECONDS):
        async for chunk in request.content.iter_any():
            total += len(chunk)
            if total > MAX_BODY_BYTES:
                raise BodyTooLarge()
            chunks.append(chunk)
    return b"".join(chunks)


def _reject(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@dataclass(frozen=True)
class Subscription:
    """What a route's object says about verifying a delivery to it."""

    config_name: str
    secret: str | None = field(repr=False)
    #: The Cube's provider id, for per-Cube callbacks (the event must be about it).
    vm_id: str | None = None
    cubes: frozenset[str] = frozenset()


class Lookups:
    """Subscriptions by route, cached: a flood of forged requests costs the API server one
    read per object per ``ttl`` (per ``miss_ttl`` for a name that is unknown or has no
    secret yet: short, because a new subscription's first delivery can come before its
    Secret is written)."""

    def __init__(self, ttl: float = 30.0, miss_ttl: float = 1.0, size: int = 10_000) -> None:
        self.ttl, self.miss_ttl, self.size = ttl, miss_ttl, size
        self._entries: OrderedDict[tuple[str, ...], tuple[Subscription | None, float]] = OrderedDict()

    def get(self, key: tuple[str, ...]) -> tuple[Subscription | None, float] | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        found, at = entry
        if time.monotonic() - at > (self.ttl if found and found.secret else self.miss_ttl):
            del self._entries[key]
            return None
        return entry

    def put(self, key: tuple[str, ...], found: Subscription | None) -> None:
        self._entries[key] = (found, time.monotonic())
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class FailureLimit:
    """At most ``limit`` rejected requests per source address per ``window`` seconds; past
    that a source is answered 429 without any work."""

    def __init__(self, limit: int = 60, window: float = 60.0, size: int = 10_000) -> None:
        self.limit, self.window, self.size = limit, window, size
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def blocked(self, source: str) -> bool:
        times = self._failures.get(source)
        if not times:
            return False
        cutoff = time.monotonic() - self.window
        while times and times[0] < cutoff:
            times.popleft()
        return len(times) >= self.limit

    def failed(self, source: str) -> None:
        times = self._failures.setdefault(source, deque())
        times.append(time.monotonic())
        self._failures.move_to_end(source)
        while len(self._failures) > self.size:
            self._failures.popitem(last=False)


class Receiver:
    def __init__(self, runtime_getter: Any = get_runtime) -> None:
        self._runtime = runtime_getter
        self.deliveries = DeliveryLog()
        self.lookups = Lookups()
        self.failures = FailureLimit()
        # Routes that received a correctly signed delivery (the failure limit never shuts them).
        self.verified: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self.accepted = 0
        self.rejected: dict[int, int] = {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(RECEIVER_PATH, self.handle)
        app.router.add_post(CALLBACK_PATH, self.handle_callback)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        return await self._receive(request, "webhooks")

    async def handle_callback(self, request: web.Request) -> web.Response:
        return await self._receive(request, "cubes")

    async def _receive(self, request: web.Request, plural: str) -> web.Response:
        source = request.remote or "unknown"
        info = request.match_info
        key = (plural, info.get("provider", ""), info.get("namespace", ""), info.get("name", ""))
        # The limit spares the API server, not the signature check: a route that already
        # verified a delivery, or whose lookup is cached, is still served — behind an
        # Ingress every sender shares one address, and a forger must not silence the provider.
        if self.failures.blocked(source) and key not in self.verified and self.lookups.get(key) is None:
            response = _reject(429, "too many rejected deliveries from this address; try again later")
        else:
            response = await self._handle(request, plural)
            if response.status >= 400 and response.status != 409:
                self.failures.failed(source)
        if response.status >= 400:
            self.rejected[response.status] = self.rejected.get(response.status, 0) + 1
            kind = "Webhook" if plural == "webhooks" else "Cube"
            # A source already cut off is not worth a line per request (a flood would fill the log).
            log = logger.debug if response.status == 429 else logger.warning
            log("rejected %s delivery for %s %s/%s: %s %s",
                           request.match_info.get("provider"), kind, request.match_info.get("namespace"),
                           request.match_info.get("name"), response.status, response.text)
        return response

    async def _body(self, request: web.Request) -> bytes | web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _reject(413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            return await read_body(request)
        except BodyTooLarge:
            return _reject(413, f"body larger than {MAX_BODY_BYTES} bytes")
        except TimeoutError:
            return _reject(408, f"body not received within {BODY_TIMEOUT_SECONDS:.0f}s")

    async def _handle(self, request: web.Request, plural: str) -> web.Response:
        runtime: Runtime = self._runtime()
        provider = request.match_info["provider"]
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        plugin = plugin_for(provider)
        verify = plugin.verify_webhook if plugin is not None else None
        if plural == "cubes" and plugin is not None and Capability.CREATE_CALLBACK not in plugin.capabilities:
            verify = None
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        key = (plural, provider, namespace, name)
        cached = self.lookups.get(key)
        fresh = cached is None
        found = await self._lookup(runtime, *key) if cached is None else cached[0]
        if cached is None:
            self.lookups.put(key, found)
        # Unknown provider, object or secret and a wrong signature are answered alike: a
        # caller without the secret learns nothing about what exists.
        if verify is None or found is None or not found.secret:
            return _reject(401, "signature does not match")
        try:
            try:
                event = verify(request.headers, body, found.secret, time.time())
            except WebhookRejected as rejected:
                if fresh or rejected.reason is not WebhookRejection.BAD_SIGNATURE or (
                        cached is not None and time.monotonic() - cached[1] < self.lookups.miss_ttl):
                    raise
                # The secret may have been rotated since it was cached: read it once more.
                found = await self._lookup(runtime, *key)
                self.lookups.put(key, found)
                if found is None or not found.secret:
                    raise
                event = verify(request.headers, body, found.secret, time.time())
            # A replay is known by what is signed (the body), not only by the delivery id
            # beside it, which an attacker holding one signed body could vary.
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            if event.delivery_id in self.deliveries or digest in self.deliveries:
                raise WebhookRejected(WebhookRejection.REPLAY, "delivery already processed")
            if found.vm_id is not None and event.vm_id != found.vm_id:
                raise WebhookRejected(WebhookRejection.MALFORMED, "the event is about another VM than this Cube's")
        except WebhookRejected as rejected:
            if rejected.reason in (WebhookRejection.MISSING_SIGNATURE, WebhookRejection.BAD_SIGNATURE):
                return _reject(401, "signature does not match")
            # Stale, replayed, malformed: only after the signature was good (the verifiers
            # check it first), so saying why tells nothing to someone without the secret.
            return _reject(rejected.http_status, rejected.message)
        self.deliveries.add(event.delivery_id)
        self.deliveries.add(digest)
        self.verified[key] = None
        while len(self.verified) > SEEN_DELIVERIES:
            self.verified.popitem(last=False)
        await self.refresh(runtime, namespace, found.config_name, event, cubes=set(found.cubes) or None)
        self.accepted += 1
        return web.json_response({"ok": True})

    async def _lookup(self, runtime: Runtime, plural: str, provider: str, namespace: str,
                      name: str) -> Subscription | None:
        """The route's object, its ProviderConfig (of ``provider``) and its secret; None if
        any is missing (the caller cannot tell which)."""
        try:
            obj = await runtime.kube.get_custom(plural, namespace, name)
        except NotFoundError:
            return None
        spec = obj.get("spec") or {}
        config_name = str((spec.get("providerConfigRef") or {}).get("name", ""))
        try:
            config = await runtime.sessions.provider_config(namespace, config_name)
        except ConfigProblem:
            return None
        if (config.get("spec") or {}).get("provider") != provider:
            return None
        if plural == "webhooks":
            secret_ref = spec.get("secretRef") or {}
            try:
                stored = await runtime.kube.get_secret(namespace, str(secret_ref.get("name", "")))
            except NotFoundError:
                return None
            return Subscription(config_name, decode_secret_value(stored, str(secret_ref.get("key", "secret"))))
        try:
            stored = await runtime.kube.get_secret(namespace, callback_secret_name(name))
        except NotFoundError:
            return None
        # Only the Secret the operator made for this very Cube holds its callback secret.
        if not owned_by(stored, obj["metadata"]["uid"]):
            return None
        return Subscription(config_name, decode_secret_value(stored, "secret"),
                            vm_id=(obj.get("status") or {}).get("id"), cubes=frozenset({name}))

    async def refresh(self, runtime: Runtime, namespace: str, config_name: str, event: VerifiedEvent, *,
                      cubes: set[str] | None = None) -> None:
        names = set(cubes) if cubes else runtime.vm_index.lookup(namespace, config_name, event.vm_id)
        if not names:
            # No Cube with this id is reconciled here (an HA standby): find it once, after
            # the signature was verified, and hand the event to the replica that is active.
            names = {c["metadata"]["name"] for c in await runtime.kube.list_custom("cubes", namespace)
                     if (c.get("status") or {}).get("id") == event.vm_id
                     and ((c.get("spec") or {}).get("providerConfigRef") or {}).get("name") == config_name}
        local = {n for n in names if ("cubes", namespace, n) in runtime.active}
        for cube in sorted(names - local):
            await runtime.kube.patch_metadata("cubes", namespace, cube, {
                "annotations": {PROVIDER_EVENT_ANNOTATION: f"{event.event} {event.delivery_id}"}})
        if not local:
            return
        await self._read_vm(runtime, namespace, config_name, event)
        for cube in sorted(local):
            logger.info("webhook %s: refreshing Cube %s/%s", event.event, namespace, cube)
            runtime.kick("cubes", namespace, cube)

    async def _read_vm(self, runtime: Runtime, namespace: str, config_name: str, event: VerifiedEvent) -> None:
        try:
            session = await runtime.sessions.session(namespace, config_name, require_ready=False)
        except ConfigProblem as problem:
            logger.info("webhook %s for VM %s: refresh deferred (%s)", event.event, event.vm_id, problem.reason)
        else:
            try:
                if event.vm_gone:
                    session.fleet.forget(event.vm_id)
                else:
                    session.fleet.put(await session.provider.get_vm(event.vm_id))
            except NotFound:
                session.fleet.forget(event.vm_id)
            except ProviderError as error:
                # The event is still a reason to look: the daemon re-reads on its own.
                logger.info("webhook %s for VM %s: refresh deferred (%s)", event.event, event.vm_id,
                            type(error).__name__)
