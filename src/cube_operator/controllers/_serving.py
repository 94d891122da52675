"""The operator's own HTTP endpoints besides kopf's /healthz: /metrics and the receiver."""
from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ..metrics import REGISTRY, WEBHOOK_DELIVERIES
from .receiver import Receiver

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


@web.middleware
async def _count_deliveries(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    WEBHOOK_DELIVERIES.labels(str(response.status)).inc()
    return response


# A connection that has not sent a whole request (headers and body) by then is closed:
# a slow-header client cannot hold the receiver's connections open.
HEADER_TIMEOUT_SECONDS = 10.0


class Servers:
    def __init__(self, receiver: Receiver | None = None, header_timeout: float = HEADER_TIMEOUT_SECONDS) -> None:
        self._runners: list[web.AppRunner] = []
        self.receiver = receiver or Receiver()
        self.header_timeout = header_timeout

    async def start(self, *, metrics_port: int | None, webhook_port: int | None, host: str = "0.0.0.0",
                    webhook_tls: tuple[str, str] | None = None) -> None:
        if metrics_port:
            app = web.Application()
            app.router.add_get("/metrics", _metrics)
            await self._serve(app, host, metrics_port)
        if webhook_port:
            app = self.receiver.app()
            app.middlewares.append(_count_deliveries)
            await self._serve(app, host, webhook_port, tls=webhook_tls)

    async def _serve(self, app: web.Application, host: str, port: int,
                     tls: tuple[str, str] | None = None) -> None:
        context = None
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(*tls)
        # aiohttp's keep-alive timer runs from the moment a connection opens, so it also
        # bounds how long a client may take to send its first request.
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=self.header_timeout)
        await runner.setup()
        await web.TCPSite(runner, host, port, ssl_context=context).start()
        self._runners.append(runner)

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
