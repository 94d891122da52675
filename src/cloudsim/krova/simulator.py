"""The Krova simulator: :class:`KrovaSimulator`.

Run it in-process (``async with KrovaSimulator(api_keys={"kro_key": "sp_1"}) as sim``,
then talk to ``sim.url``), in a background thread (:mod:`cloudsim.testing`) or alone
(``python -m cloudsim krova --port 8081 --api-key kro_key --space-id sp_1``).
Knobs can be set at construction (``settings={"webhook_signature": "v1"}`` or a
:class:`KrovaSettings`), at runtime through ``PUT /_sim/config`` or from the command
line (``--set KNOB=VALUE``, ``--webhook-signature v1``).

Besides the common knobs of :mod:`cloudsim.common.server`, ``GET/PUT /_sim/config``
carries Krova's (all delays in simulated seconds):

``provision_delay`` (pending -> booting, 2), ``boot_delay`` (booting -> running, 2),
``stop_delay`` (stopping -> stopped, 1), ``delete_delay`` (stopping -> deleted, 3),
``purge_delay`` (deleted -> 404, 2), ``snapshot_delay`` (5), ``restore_delay`` (3),
``domain_delay`` (pending -> active, 5), ``ssh_port_delay`` (SSH row pending, 2),
``boot_failure_rate`` (0..1), ``fail_next_boots`` (the next N boots end in ``error``),
``insufficient_credits`` (create and wake answer 422), ``host_port_min`` /
``host_port_max`` (the host-port pool per server, 30000..32767),
``webhook_timeout`` (10), ``webhook_retries`` (4), ``webhook_retry_delay`` (60),
``webhook_signature`` (the ``X-Krova-Signature`` format: ``"sha256"``, the seed's
``sha256=<hex HMAC-SHA256 of the body>``, the default; or ``"v1"``, Krova's current
``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`` with t the wall-clock time
the delivery was built; retries resend the same header),
``validate_responses`` (check every API answer against the OpenAPI spec; a mismatch
becomes a 500 naming it).

Krova-only admin endpoint: ``POST /_sim/cubes/{cubeId}/state`` with ``{"state": S}``
forces a Cube into any spec state as if the platform did it out of band (fires the
matching webhook events; ``running`` also assigns the network on first use;
``deleted`` removes the Cube at once).  Anything a user could do (sleep from the
dashboard, ...) goes through the public API instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from ..common.errors import ApiError, ConfigError, json_response, read_json_object
from ..common.idempotency import IdempotencyStore
from ..common.server import SimServer
from ..common.webhooks import WebhookDispatcher
from ..openapi import SpecValidator
from .api import KrovaApi
from .engine import KrovaEngine, KrovaSettings
from .models import ApiKey, Space

_WEBHOOK_KNOBS = {
    "webhook_timeout": "timeout",
    "webhook_retries": "retries",
    "webhook_retry_delay": "retry_delay",
}


class KrovaSimulator(SimServer):
    provider = "krova"
    api_prefix = "/api/v1"

    def __init__(
        self,
        api_keys: Mapping[str, str] | None = None,
        *,
        read_only_keys: Iterable[str] = (),
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        latency_ms: float = 0.0,
        rate_limit: int = 10,
        rate_window: float = 60.0,
        public_url: str | None = None,
        validate_responses: bool = False,
        settings: KrovaSettings | Mapping[str, Any] | None = None,
        fault_seed: int | None = None,
    ) -> None:
        """``api_keys`` maps each API key to its Space id; ``read_only_keys`` lack
        ``cube.manage``.  ``settings`` sets Krova's knobs (see the module docstring)."""
        keys = dict(api_keys or {"kro_test_key": "sp_test"})
        read_only = set(read_only_keys)
        self.keys = {k: ApiKey(k, space, can_manage=k not in read_only) for k, space in keys.items()}
        self.spaces = {s: Space(id=s, name=f"Space {s}") for s in dict.fromkeys(keys.values())}
        self.validate_responses = validate_responses
        self._spec: SpecValidator | None = None
        super().__init__(
            host=host,
            port=port,
            time_scale=time_scale,
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            rate_window=rate_window,
            public_url=public_url,
            fault_seed=fault_seed,
        )
        self.configure(settings)

    # The engine and API need the clock and stats the base creates, so they are built
    # in add_api_routes, which the base calls from its constructor.
    def add_api_routes(self) -> None:
        self.dispatcher = WebhookDispatcher(
            self.clock, self.stats, user_agent="Krova-Webhooks/1.0"
        )
        self.engine = KrovaEngine(self.clock, self.dispatcher, self.spaces)
        self.idempotency = IdempotencyStore(self.clock)
        self.api = KrovaApi(self.engine, self.idempotency, self.keys)
        self.api.register(self.route)

    def configure(self, settings: KrovaSettings | Mapping[str, Any] | None) -> None:
        if settings is None:
            return
        if isinstance(settings, KrovaSettings):
            self.engine.settings = settings
        else:
            self.apply_config(dict(settings))

    async def on_start(self) -> None:
        await self.dispatcher.start()

    async def on_stop(self) -> None:
        await self.engine.stop()
        await self.dispatcher.stop()

    # ---- knobs ---------------------------------------------------------------------------

    def provider_config(self) -> dict[str, Any]:
        return {
            **self.engine.settings.to_json(),
            "webhook_timeout": self.dispatcher.timeout,
            "webhook_retries": self.dispatcher.retries,
            "webhook_retry_delay": self.dispatcher.retry_delay,
            "validate_responses": self.validate_responses,
        }

    def apply_provider_config(self, changes: dict[str, Any]) -> None:
        webhook: dict[str, Any] = {}
        for key, attr in _WEBHOOK_KNOBS.items():
            if key in changes:
                value = changes[key]
                integral = attr == "retries"
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int if integral else int | float)
                    or value < 0
                ):
                    kind = "integer" if integral else "number"
                    raise ConfigError(f"{key} must be a non-negative {kind}")
                webhook[attr] = value
        validate = changes.get("validate_responses", self.validate_responses)
        if not isinstance(validate, bool):
            raise ConfigError("validate_responses must be a boolean")
        self.engine.settings.apply(changes)
        for attr, value in webhook.items():
            setattr(self.dispatcher, attr, value)
        self.validate_responses = validate

    def inspect_response(self, request: web.Request, response: web.StreamResponse) -> None:
        if not self.validate_responses or not isinstance(response, web.Response):
            return
        if response.content_type != "application/json" or not isinstance(response.body, bytes):
            return
        if self._spec is None:
            self._spec = SpecValidator.for_provider("krova")
        problems = self._spec.errors(
            request.method,
            self._route_template(request),
            response.status,
            json.loads(response.body),
        )
        if problems:
            raise ValueError("; ".join(problems[:5]))

    # ---- admin ---------------------------------------------------------------------------

    def add_admin_routes(self, app: web.Application) -> None:
        self.admin_route("POST", "/cubes/{cubeId}/state", self._admin_force_state,
                         "force a Cube into any spec state out of band ({\"state\": S}; fires its webhooks)")

    async def _admin_force_state(self, request: web.Request) -> web.Response:
        cube = self.engine.cubes.get(request.match_info["cubeId"])
        if cube is None:
            raise ApiError(404, "Cube not found")
        body = await read_json_object(request)
        state = body.get("state")
        if not isinstance(state, str):
            raise ApiError(400, "state is required")
        self.engine.force_state(cube, state)
        return json_response({"cube": cube.to_json(with_server_domain=True)})
