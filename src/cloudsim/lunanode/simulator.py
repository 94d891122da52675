"""The LunaNode simulator: :class:`LunaNodeSimulator`, faithful to LunaNode's dynamic API
(the seed's request and signing scheme, and the actions, parameters and answer fields
LunaNode's own clients rely on).

Run it in-process (``async with LunaNodeSimulator(API_ID, API_KEY) as sim``, then post
to ``sim.url + "/vm/list/"``; ``sim.url`` ends in ``/api``), in a background thread
(``cloudsim.testing.running_simulator("lunanode", api_id=..., api_key=...)``) or alone
(``python -m cloudsim lunanode --port 8083 --api-id ID --api-key KEY``).  One simulator
is one account with one API id (16 characters) and key (128 characters), checked at
startup.

Wire (details in :mod:`.validation`, the actions in :mod:`.api`, the lifecycle in
:mod:`.engine`, the shapes in :mod:`.models` and :mod:`.catalog`):

* ``POST /api/{category}/{action}/`` (the trailing slash may be left out; the signed
  handler path always has it), form-URL-encoded ``req`` (the JSON request message with
  ``api_id`` and ``api_partialkey``), ``signature`` (hex HMAC-SHA512 keyed with the
  full key over ``"{category}/{action}/|{req}|{nonce}"``), ``nonce`` (UNIX seconds);
  a ``handler`` field is ignored.  Parameter values may be strings or JSON numbers.
* Every answer is HTTP 200 JSON: ``{"success": "yes", ...}`` or ``{"success": "no",
  "error": "..."}`` (``required parameter hostname not set``, ``invalid signature``,
  ``invalid vm`` ...).  Other statuses only for transport problems: 405 for any method
  but POST, 404 for a path that is not ``/api/{category}/{action}/``, 413, injected
  faults; their bodies are in the same ``success``/``error`` shape.
* No idempotency keys, no webhooks, no documented rate limit (``rate_limit`` is 0,
  off, unless set).
* Request accounting (``GET /_sim/stats``): the ``route`` of a request is the concrete
  action, ``/api/{category}/{action}/`` with the canonical (underscore) action name,
  e.g. ``/api/vm/create/`` or ``/api/vm/securitygroup_add/`` (also for a client that
  wrote ``securitygroup-add`` or left the slash out); requests for unknown actions are
  counted under the template ``/api/{category}/{action}/``.  Every ``success: "no"``
  answer is also counted in ``counters`` as ``"success=no /api/vm/create/"`` (the HTTP
  status being 200 either way).  A fault rule's ``route`` may be that string,
  ``/vm/create/``, ``vm/create`` or ``vm/create/``; ``path`` globs the request path.

Knobs: besides the common ones of :mod:`cloudsim.common.server` (``time_scale``,
``latency_ms``, ``rate_limit`` (0 = off, the default), ``rate_window_seconds``),
``GET/PUT /_sim/config`` carries (durations in simulated seconds):

``build_delay`` (vm/create: Building -> Online, 20), ``boot_delay`` (vm/start and
vm/unshelve, 5), ``stop_delay`` (5), ``reboot_delay`` (10), ``reimage_delay`` (30),
``resize_delay`` (20), ``rescue_delay`` (10), ``shelve_delay`` (10), ``delete_delay``
(Deleting -> gone, 5), ``snapshot_delay`` (saving -> active, 30), ``fail_next_builds``
(the next N builds end in ``Error``, 0), ``fail_next_snapshots`` (the next N snapshot
images end ``killed``, 0), ``vm_limit`` (creates beyond this many VMs fail with ``VM
limit reached ...``; 0 = unlimited), ``nonce_tolerance`` (how far a nonce may be from
the wall clock, either way, in *real* seconds, 300: nonces are the clients' own UNIX
time, so this does not scale), ``nonce_must_increase`` (false; true refuses a nonce
lower than the highest accepted so far, equal ones still pass).

Admin endpoints (besides the common ``/_sim`` ones: health, config, faults, stats,
requests, ratelimit):

* ``GET /_sim/vms``: every VM with its internal state (``vm_id``, ``status`` (the
  ``status_nohtml`` word), ``op`` (pending operation), ``row`` (the vm/list row),
  ``info`` (vm/info's), ``key_id``, ``security_groups``, ``scripts``, ``net_id``,
  ``image_id``, ``password``).
* ``POST /_sim/vms/{vm_id}/status`` ``{"status": "Offline"}``: force a VM's status out
  of band, as if LunaNode did it (a host crash, an admin action): any word of
  :data:`.models.STATUSES` (``Online``, ``Offline``, ``Building``, ``Error``,
  ``Rescue``, ``Shelved``, ...), or ``gone`` to remove it at once.  Cancels the
  pending operation; a forced transitional status stays until changed; ``Online`` /
  ``Offline`` / ``Rescue`` show the VM's address if it had not booted yet;
  ``Deleting`` runs the normal delete.  Answers ``{"vm": ...}`` (as ``GET /_sim/vms``),
  404 for an unknown VM, 400 for a bad status.
* ``POST /_sim/images/{image_id}/status`` ``{"status": "active"}``: force a private
  image (snapshot) to ``queued``, ``saving``, ``active``, ``killed`` or ``error``.
* ``DELETE /_sim/nonces``: forget the highest nonce seen (for ``nonce_must_increase``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..common.errors import ApiError, ConfigError, json_response, read_json_object
from ..common.faults import FaultRule
from ..common.server import OUTCOME_KEY, SimServer
from ..common.stats import UNMATCHED_ROUTE
from .api import Credentials, LunaNodeApi, canonical
from .engine import LunaNodeEngine, LunaNodeSettings
from .errors import LunaNodeError, failure
from .models import Vm
from .validation import check_credentials

log = logging.getLogger(__name__)

Handler = Any

_HTTP_MESSAGES = {404: "not found", 405: "method not allowed (use POST)",
                  413: "request too large"}
_SEGMENT = "[A-Za-z0-9_-]+"


class LunaNodeSimulator(SimServer):
    provider = "lunanode"
    api_prefix = "/api"

    def __init__(
        self,
        api_id: str,
        api_key: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        latency_ms: float = 0.0,
        rate_limit: int = 0,
        rate_window: float = 60.0,
        public_url: str | None = None,
        settings: LunaNodeSettings | Mapping[str, Any] | None = None,
        fault_seed: int | None = None,
    ) -> None:
        """``api_id`` (16 characters) and ``api_key`` (128) are the account's API
        credentials (``ValueError`` otherwise); ``settings`` sets the knobs of the module
        docstring."""
        check_credentials(api_id, api_key)
        self._credentials = Credentials(api_id, api_key)
        super().__init__(
            host=host, port=port, time_scale=time_scale, latency_ms=latency_ms,
            rate_limit=rate_limit, rate_window=rate_window, public_url=public_url,
            fault_seed=fault_seed,
        )
        if isinstance(settings, LunaNodeSettings):
            self.engine.settings = settings
        elif settings:
            try:
                self.apply_config(dict(settings))
            except ConfigError as exc:
                raise ValueError(str(exc)) from None

    @property
    def api_id(self) -> str:
        return self._credentials.api_id

    # The base calls add_api_routes from its constructor, before ours continues.
    def add_api_routes(self) -> None:
        self.engine = LunaNodeEngine(self.clock)
        self.api = LunaNodeApi(self.engine, self._credentials, self._vnc_base, self.stats)
        path = f"/{{category:{_SEGMENT}}}/{{action:{_SEGMENT}}}"
        self.route("POST", path + "/", self.api.handle, "lunanode_action")
        self.route("POST", path, self.api.handle, "lunanode_action")

    def _vnc_base(self) -> str:
        return (self.public_url or self.base_url).rstrip("/")

    async def on_stop(self) -> None:
        await self.engine.stop()

    # ---- knobs ----------------------------------------------------------------------------

    def provider_config(self) -> dict[str, Any]:
        return self.engine.settings.to_json()

    def apply_provider_config(self, changes: dict[str, Any]) -> None:
        self.engine.configure(changes)

    # ---- accounting: one route per concrete action ----------------------------------------

    def _route_template(self, request: web.Request) -> str:
        info = request.match_info
        if "category" in info and "action" in info and self._is_api(request):
            category, action = info["category"], info["action"]
            if self.api.known(category, action):
                return f"{self.api_prefix}/{category}/{canonical(action)}/"
            return f"{self.api_prefix}/{{category}}/{{action}}/"
        return super()._route_template(request)

    def _route_names_of(self, request: web.Request) -> set[str]:
        template = self._route_template(request)
        names = {template}
        if template.startswith(self.api_prefix + "/") and template != UNMATCHED_ROUTE:
            relative = template[len(self.api_prefix):]
            names.update({relative, relative.strip("/"), relative.lstrip("/")})
        return names

    # ---- middlewares (the base's, in LunaNode's success/error shape) ----------------------

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._is_api(request):
            return await super()._guarded(request, handler)
        try:
            response: web.StreamResponse = await handler(request)
        except (asyncio.CancelledError, web.HTTPException):
            raise
        except Exception:
            log.exception("cloudsim lunanode: unhandled error in %s %s", request.method,
                          request.path)
            return failure("internal server error", 500)
        return response

    async def _apply_fault(
        self, rule: FaultRule, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if rule.kind != "status" or rule.body is not None:
            return await super()._apply_fault(rule, request, handler)
        request[OUTCOME_KEY] = f"status:{rule.status}"
        headers = {"Retry-After": "1"} if rule.status in (429, 503) else None
        return failure(f"Injected fault ({rule.status})", rule.status, headers)

    @web.middleware
    async def _rate_limit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not (self._is_api(request) and self.is_mutating(request)):
            return await handler(request)
        decision = self.limiter.hit(request.remote or "unknown")
        headers = self.limiter.headers(decision)
        if not decision.allowed:
            retry = headers.get("Retry-After", "1")
            return failure(f"rate limit exceeded; retry in {retry} seconds", 429, headers)
        response = await handler(request)
        if not response.prepared:
            response.headers.update(headers)
        return response

    @web.middleware
    async def _envelope(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._is_api(request):
            return await super()._envelope(request, handler)
        try:
            return await handler(request)
        except LunaNodeError as exc:
            return failure(exc.message)
        except ApiError as exc:
            return failure(exc.message, exc.status, exc.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            message = _HTTP_MESSAGES.get(exc.status, exc.reason.lower())
            return failure(message, exc.status, headers)

    # ---- admin ----------------------------------------------------------------------------

    def add_admin_routes(self, app: web.Application) -> None:
        add = self.admin_route
        add("GET", "/vms", self._admin_vms, "every VM with its internal state")
        add("POST", "/vms/{vmId}/status", self._admin_vm_status,
            "force a VM's status out of band, or gone ({\"status\": \"Offline\"})")
        add("POST", "/images/{imageId}/status", self._admin_image_status,
            "force a private image (snapshot) to queued, saving, active, killed or error")
        add("DELETE", "/nonces", self._admin_reset_nonces,
            "forget the highest nonce seen (for nonce_must_increase)")

    @staticmethod
    def vm_state(vm: Vm) -> dict[str, Any]:
        return {
            "vm_id": vm.id, "status": vm.status, "op": vm.op, "row": vm.row(),
            "info": vm.info(), "key_id": vm.key_id,
            "security_groups": list(vm.security_groups), "scripts": list(vm.scripts),
            "net_id": vm.net_id, "image_id": vm.image_id, "password": vm.password,
        }

    async def _admin_vms(self, request: web.Request) -> web.Response:
        vms = sorted(self.engine.vms.values(), key=lambda v: v.seq)
        return json_response({"vms": [self.vm_state(vm) for vm in vms]})

    async def _admin_vm_status(self, request: web.Request) -> web.Response:
        vm = self.engine.vms.get(request.match_info["vmId"])
        if vm is None:
            raise ApiError(404, "VM not found")
        body = await read_json_object(request)
        status = body.get("status")
        if not isinstance(status, str):
            raise ApiError(400, "status is required")
        try:
            self.engine.force_status(vm, status)
        except LunaNodeError as exc:
            raise ApiError(400, exc.message) from None
        return json_response({"vm": self.vm_state(vm)})

    async def _admin_image_status(self, request: web.Request) -> web.Response:
        image = self.engine.images.get(request.match_info["imageId"])
        if image is None:
            raise ApiError(404, "Image not found (public images cannot be changed)")
        body = await read_json_object(request)
        status = body.get("status")
        if not isinstance(status, str):
            raise ApiError(400, "status is required")
        try:
            self.engine.force_image_status(image, status)
        except LunaNodeError as exc:
            raise ApiError(400, exc.message) from None
        return json_response({"image": image.details()})

    async def _admin_reset_nonces(self, request: web.Request) -> web.Response:
        self.api.nonces.reset()
        return json_response({"success": True})
