"""Inbound provider webhooks: verify, de-duplicate, and refresh the affected Cube now.

`POST /webhooks/{provider}/{namespace}/{name}` — one URL per Webhook object, so the secret
to verify with is known before the body is trusted (subscriptions made before this route
had a provider segment used the same path). `POST /callbacks/{provider}/{namespace}/{name}`
— one URL per Cube, for providers that take a callback per VM at create (CyberPanel); its
secret is the one the operator generated for that Cube. The provider's verifier, from the registry,
checks the signature; rejections are 4xx and change nothing: unsigned, wrongly signed or
stale (401), oversized (413), replayed delivery id (409), malformed (400), unknown
Webhook or provider (404).

The affected Cube is found through the provider-id index the reconcilers keep; only a
replica that reconciles no such Cube (an HA standby) falls back to one list, after the
signature has been verified, to hand the event to the active replica.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

from aiohttp import web

from ..providers import (
    Capability,
    NotFound,
    ProviderError,
    VerifiedEvent,
    WebhookRejected,
    WebhookRejection,
    WebhookVerifier,
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


class Receiver:
    def __init__(self, runtime_getter: Any = get_runtime) -> None:
        self._runtime = runtime_getter
        self.deliveries = DeliveryLog()
        self.accepted = 0
        self.rejected: dict[int, int] = {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(RECEIVER_PATH, self.handle)
        app.router.add_post(CALLBACK_PATH, self.handle_callback)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        return await self._logged(request, "Webhook", self._handle)

    async def handle_callback(self, request: web.Request) -> web.Response:
        return await self._logged(request, "Cube", self._handle_callback)

    async def _logged(self, request: web.Request, kind: str, handler: Any) -> web.Response:
        response: web.Response = await handler(request)
        if response.status >= 400:
            self.rejected[response.status] = self.rejected.get(response.status, 0) + 1
            logger.warning("rejected %s delivery for %s %s/%s: %s %s",
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

    async def _config_of(self, runtime: Runtime, namespace: str, ref: dict[str, Any], provider: str,
                         what: str) -> str | web.Response:
        try:
            config = await runtime.sessions.provider_config(namespace, str(ref.get("name", "")))
        except ConfigProblem:
            return _reject(404, f"the {what}'s ProviderConfig does not exist")
        if (config.get("spec") or {}).get("provider") != provider:
            return _reject(404, f"{what} {namespace}/{ref.get('name', '')} is not a {provider} object")
        return str(ref.get("name", ""))

    async def _handle(self, request: web.Request) -> web.Response:
        runtime: Runtime = self._runtime()
        provider = request.match_info["provider"]
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        plugin = plugin_for(provider)
        if plugin is None or plugin.verify_webhook is None:
            return _reject(404, f"no webhook receiver for provider {provider!r}")
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:
            webhook = await runtime.kube.get_custom("webhooks", namespace, name)
        except NotFoundError:
            return _reject(404, "no such Webhook")
        config_name = await self._config_of(runtime, namespace, (webhook.get("spec") or {}).get("providerConfigRef")
                                            or {}, provider, "Webhook")
        if isinstance(config_name, web.Response):
            return config_name
        secret_ref = (webhook.get("spec") or {}).get("secretRef") or {}
        try:
            secret = decode_secret_value(await runtime.kube.get_secret(namespace, secret_ref.get("name", "")),
                                         secret_ref.get("key", "secret"))
        except NotFoundError:
            secret = None
        return await self._accept(runtime, request, plugin.verify_webhook, body, secret, namespace, config_name)

    async def _handle_callback(self, request: web.Request) -> web.Response:
        """A per-VM callback (CyberPanel's deployment webhook): the URL names the Cube, and
        the secret is the one the operator generated for that Cube (in a Secret it owns)."""
        runtime: Runtime = self._runtime()
        provider = request.match_info["provider"]
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        plugin = plugin_for(provider)
        if plugin is None or plugin.verify_webhook is None or Capability.CREATE_CALLBACK not in plugin.capabilities:
            return _reject(404, f"no callback receiver for provider {provider!r}")
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        try:
            cube = await runtime.kube.get_custom("cubes", namespace, name)
        except NotFoundError:
            return _reject(404, "no such Cube")
        config_name = await self._config_of(runtime, namespace, (cube.get("spec") or {}).get("providerConfigRef")
                                            or {}, provider, "Cube")
        if isinstance(config_name, web.Response):
            return config_name
        try:
            stored = await runtime.kube.get_secret(namespace, callback_secret_name(name))
        except NotFoundError:
            stored = None
        # Only the Secret the operator made for this very Cube holds its callback secret.
        secret = (decode_secret_value(stored, "secret")
                  if stored is not None and owned_by(stored, cube["metadata"]["uid"]) else None)
        vm_id = (cube.get("status") or {}).get("id")
        return await self._accept(runtime, request, plugin.verify_webhook, body, secret, namespace, config_name,
                                  vm_id=vm_id, cubes={name})

    async def _accept(self, runtime: Runtime, request: web.Request, verify: WebhookVerifier, body: bytes,
                      secret: str | None, namespace: str, config_name: str, *, vm_id: str | None = None,
                      cubes: set[str] | None = None) -> web.Response:
        """Verify, de-duplicate, refresh: the same for every route."""
        if not secret:
            return _reject(401, "signature does not match")
        try:
            event = verify(request.headers, body, secret, time.time())
            if event.delivery_id in self.deliveries:
                raise WebhookRejected(WebhookRejection.REPLAY, "delivery already processed")
            if vm_id is not None and event.vm_id != vm_id:
                raise WebhookRejected(WebhookRejection.MALFORMED, "the event is about another VM than this Cube's")
        except WebhookRejected as rejected:
            return _reject(rejected.http_status, rejected.message)
        await self.refresh(runtime, namespace, config_name, event, cubes=cubes)
        self.deliveries.add(event.delivery_id)
        self.accepted += 1
        return web.json_response({"ok": True})

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
        for cube in sorted(local):
            logger.info("webhook %s: refreshing Cube %s/%s", event.event, namespace, cube)
            runtime.kick("cubes", namespace, cube)
