"""Inbound provider webhooks: verify, de-duplicate, and refresh the affected Cube now.

`POST /webhooks/krova/{namespace}/{name}` — one URL per Webhook object, so the secret to
verify with is known before the body is trusted. Rejections are 4xx and change nothing:
unsigned or wrongly signed (401), oversized (413), replayed delivery id (409),
malformed (400), unknown Webhook (404).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import OrderedDict
from typing import Any

from aiohttp import web

from ..providers import NotFound, ProviderError
from ._common import PROVIDER_EVENT_ANNOTATION
from ._kube import NotFoundError
from ._runtime import Runtime, get_runtime
from ._sessions import ConfigProblem, decode_secret_value
from .webhook import RECEIVER_PATH

logger = logging.getLogger("cube_operator.receiver")

MAX_BODY_BYTES = 64 * 1024
SEEN_DELIVERIES = 10_000


def expected_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(expected_signature(secret, body).encode(), header.encode())


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
        return app

    async def handle(self, request: web.Request) -> web.Response:
        response = await self._handle(request)
        if response.status >= 400:
            self.rejected[response.status] = self.rejected.get(response.status, 0) + 1
            logger.warning("rejected webhook delivery for %s/%s: %s", request.match_info.get("namespace"),
                           request.match_info.get("name"), response.status)
        return response

    async def _handle(self, request: web.Request) -> web.Response:
        runtime: Runtime = self._runtime()
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _reject(413, f"body larger than {MAX_BODY_BYTES} bytes")
        body = await request.content.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return _reject(413, f"body larger than {MAX_BODY_BYTES} bytes")
        signature = request.headers.get("X-Krova-Signature", "")
        delivery_id = request.headers.get("X-Krova-Delivery", "")
        if not signature.startswith("sha256="):
            return _reject(401, "missing X-Krova-Signature")
        try:
            webhook = await runtime.kube.get_custom("webhooks", namespace, name)
        except NotFoundError:
            return _reject(404, "no such Webhook")
        ref = (webhook.get("spec") or {}).get("secretRef") or {}
        try:
            secret = decode_secret_value(await runtime.kube.get_secret(namespace, ref.get("name", "")),
                                         ref.get("key", "secret"))
        except NotFoundError:
            secret = None
        if not secret or not signature_valid(secret, body, signature):
            return _reject(401, "signature does not match")
        if not delivery_id:
            return _reject(400, "missing X-Krova-Delivery")
        if delivery_id in self.deliveries:
            return _reject(409, "delivery already processed")
        try:
            payload = json.loads(body)
            cube_id = str(payload["data"]["id"])
            event = str(payload.get("event") or request.headers.get("X-Krova-Event", ""))
        except (ValueError, KeyError, TypeError):
            return _reject(400, "payload is not a Krova event")
        await self.refresh(runtime, namespace, webhook, cube_id, event, delivery_id)
        self.deliveries.add(delivery_id)
        self.accepted += 1
        return web.json_response({"ok": True})

    async def refresh(self, runtime: Runtime, namespace: str, webhook: dict[str, Any],
                      cube_id: str, event: str, delivery_id: str) -> None:
        cubes = [c["metadata"]["name"] for c in await runtime.kube.list_custom("cubes", namespace)
                 if (c.get("status") or {}).get("id") == cube_id]
        local = [name for name in cubes if ("cubes", namespace, name) in runtime.active]
        for name in cubes:
            if name not in local:
                # Not reconciled here (a standby replica): hand the event to the active one.
                await runtime.kube.patch_metadata("cubes", namespace, name, {
                    "annotations": {PROVIDER_EVENT_ANNOTATION: f"{event} {delivery_id}"}})
        if not local:
            return
        ref = (webhook.get("spec") or {}).get("providerConfigRef") or {}
        try:
            session = await runtime.sessions.session(namespace, ref.get("name", ""), require_ready=False)
            if event == "cube.deleted":
                session.fleet.forget(cube_id)
            else:
                session.fleet.put(await session.client.get_cube(cube_id))
        except NotFound:
            session.fleet.forget(cube_id)
        except (ConfigProblem, ProviderError) as error:
            # The event is still a reason to look: the daemon re-reads on its own.
            logger.info("webhook %s for cube %s: refresh deferred (%s)", event, cube_id, type(error).__name__)
        for name in local:
            logger.info("webhook %s: refreshing Cube %s/%s", event, namespace, name)
            runtime.kick("cubes", namespace, name)
