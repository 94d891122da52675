"""The Voltage Park "On Demand" simulator: :class:`VoltageParkSimulator`, faithful to the
On Demand API's virtual-machine side (locations and host nodes, instant-deploy presets,
instant VMs and their power status, organization SSH keys, cloud-init validation,
hourly rates), answered the way the real service (FastAPI) answers.

Run it in-process (``async with VoltageParkSimulator("KEY") as sim``; ``sim.url`` ends
in ``/api/v1``), in a background thread (``cloudsim.testing.running_simulator(
"voltagepark", api_key=...)``) or alone (``python -m cloudsim voltagepark --port 8084
--api-key KEY``).

Auth.  ``api_keys`` is one key (organization :data:`DEFAULT_ORGANIZATION_ID`) or a
mapping ``{key: organization_id}``; every organization sees only its own VMs and SSH
keys, the fleet (capacity) is shared.  A key works in both headers the seed uses:
``Authorization: Bearer KEY`` for locations, host nodes, virtual machines and billing;
``x-api-token: KEY`` for organization SSH keys and storage's hourly rate.  Each
endpoint accepts only its own header: the other one counts as missing.  Missing ->
401 ``{"detail": "Not authenticated"}`` (with ``WWW-Authenticate: Bearer`` on Bearer
endpoints); unknown key -> 401 ``{"detail": "Invalid API key"}``.  Auth is checked
before the request is validated.  Presets and ``validate/cloudinit`` need no auth.

Endpoints (base ``/api/v1``; ``B`` = Bearer, ``T`` = x-api-token, ``-`` = none):

* ``GET /locations/`` (B) ``limit`` 1..15 (3), ``offset`` (0) -> ``{results: [location],
  total_result_count, has_previous, has_next}``; location ``{id, city, region, country,
  hostnodes: [hostnode]}``.  ``GET /locations/{location_id}`` (B) -> location, 404.
* ``GET /hostnodes/{hostnode_id}`` (B) -> ``{id, location_id, available_resources:
  {gpus: {model: {count}}, ram_gb, storage_gb, vcpu_count}, pricing: {per_gpu_hr:
  {model: "3.500000"}, per_vcpu_hr, per_gb_ram_hr, per_gb_storage_hr}, available_ports:
  [int]}``, 404.  Available resources shrink as VMs take them.
* ``GET /instant-deploy-presets/`` (-) ``available`` (bool, optional: true = only
  presets with a location that can take one now, false = only those without, absent =
  all) -> ``[{id, resources: {gpus, vcpu_count, ram_gb, storage_gb}, operating_system,
  compute_rate_hourly, storage_rate_hourly, location_ids_with_availability}]``.
  ``GET /instant-deploy-presets/{instant_deploy_preset_id}`` (-) -> preset, 404.
* ``POST /virtual-machines/instant`` (B) ``{config_id (preset uuid, required), name
  (required), password (null or >= 8 chars), organization_ssh_keys ({"mode": "all"} |
  {"mode": "none"} (default) | {"mode": "selective", "ssh_key_ids": [uuid]}), ssh_keys
  ([str]), cloud_init (null | {packages: [str], write_files: [{path, content
  (required), encoding, owner, permissions}], runcmd: [str]}; other keys are 422
  ``extra_forbidden``), tags ([str])}`` -> 201 ``{"vm_id"}``.  400 ``{"detail"}`` for
  an unknown preset, an unknown selective SSH key id, or no capacity (no host node
  with enough free GPUs anywhere).  Unknown top-level fields are ignored (FastAPI's
  default).
* ``GET /virtual-machines/`` (B) ``limit`` 1..100 (10), ``offset`` (0; negative counts
  as 0) -> ``{results: [vm], total_result_count, has_previous, has_next}``, the
  organization's VMs that are not ``Terminated``, oldest first.  vm: ``{id,
  hostnode_id, type: "ondem", status, name, resources, operating_system, pricing:
  {gpus_per_hr, vcpus_per_hr, ram_per_hr, storage_per_hr, total_associated_per_hr,
  total_disassociated_per_hr}, public_ip, port_forwards: [{internal_port: 22,
  external_port}], timestamp_creation, tags}``.  ``public_ip`` (the host node's) and
  ``port_forwards`` are shown once the VM has been ``Running`` on its current host node
  and as long as it holds it (so also while ``Stopped``); ``null`` / ``[]`` otherwise.
* ``GET /virtual-machines/{virtual_machine_id}`` (B) -> vm; 404 ``{"detail": "Virtual
  machine not found"}`` for unknown, other organizations' and terminated VMs.
* ``PATCH /virtual-machines/{virtual_machine_id}`` (B) ``{name?: str|null, tags?:
  [str]|null}`` (null/absent = unchanged) -> ``{name, tags}``; 404.
* ``PUT /virtual-machines/{virtual_machine_id}/power-status`` (B) ``{"status":
  "started" | "stopped" | "stopped_disassociated"}`` -> 200 ``{"status"}`` (echoed);
  400 when the VM's status does not allow it or (starting a disassociated VM) there is
  no capacity; 404.
* ``DELETE /virtual-machines/{virtual_machine_id}`` (B) -> 202 ``null``; the VM is
  ``Terminating`` (still listed) then ``Terminated`` (gone: 404, not listed).  Again
  while terminating -> 202; 404 once terminated.
* ``GET /billing/hourly-rate`` (B) -> ``{"rate_hourly": "x.xxxxxx"}``: the sum over the
  organization's VMs of ``total_associated_per_hr`` while they hold their resources
  (Provisioning, Running, Stopping, Stopped, Starting, Relocating: stopped VMs bill as
  running ones), ``total_disassociated_per_hr`` (storage only) while
  ``StoppedDisassociated`` or ``Outbid``, nothing once ``Terminating``.
* ``GET /organization/ssh-keys`` (T) ``limit`` 1..150 (150), ``offset`` -> paged
  ``{results: [{id, name, content}], ...}``.  ``POST /organization/ssh-keys`` (T)
  ``{name (3..64, [A-Za-z0-9 -]), content}`` -> 201 ``{id, name, content}``; 400 for a
  name already used in the organization or content that is not an SSH public key.
  ``DELETE /organization/ssh-keys/{ssh_key_id}`` (T) -> 204; 404.
* ``POST /validate/cloudinit`` (-) ``{type: "instant-vm" | "baremetal", content: str |
  object}`` -> 200 ``{"error": bool, "message"}``; a string must be a ``#cloud-config``
  YAML document; both forms may only use ``packages``, ``write_files``, ``runcmd``.
* ``GET /storage/hourly-rate`` (T) -> ``{"hourly_rate_per_gb": "0.017408"}``.

List endpoints are also answered without (or, for SSH keys, with) the trailing slash.
Bare metal, storage volumes and the billing logs are not simulated (404).

Errors (FastAPI's shapes): 422 ``{"detail": [{"type", "loc", "msg", "input", "ctx"?}]}``
(pydantic v2 items, ``loc`` starting ``body`` / ``path`` / ``query``; malformed ids in
paths are 422 ``uuid_parsing``); other errors ``{"detail": "message"}``: 400, 401, 404
(also unknown paths: ``{"detail": "Not Found"}``), 405 ``Method Not Allowed``, 429,
500.  Where the seed lists no 404 (location, preset) the simulator still answers 404
for an unknown id, as a FastAPI service would.

VM statuses (the seed shows only ``Running``; the other words are the simulator's):
``Provisioning`` -(provision_delay)-> ``Running``; power ``stopped``: ``Running`` ->
``Stopping`` -(stop_delay)-> ``Stopped``; power ``stopped_disassociated``: ``Running``
-> ``Stopping`` -(stop_delay)-> ``StoppedDisassociated``, or ``Stopped`` ->
``StoppedDisassociated`` at once: GPUs, compute and the port are given back, billing
is storage only; power ``started``: ``Stopped`` -> ``Starting`` -(start_delay)->
``Running``; from ``StoppedDisassociated``/``Outbid`` it takes resources again: on the
same host node if it fits (``Starting``), else on another one (``Relocating``
-(relocate_delay)-> ``Running``, new ``hostnode_id``, ``public_ip``, port), else 400.
``Outbid`` (resources lost, storage billed) comes from the ``outbid_after`` knob or the
admin API.  ``DELETE``: any status -> ``Terminating`` -(terminate_delay)->
``Terminated``.  A power request that is already satisfied is a 200 no-op
(``stopped`` on a disassociated or outbid VM too); ``started`` while ``Provisioning``
is a no-op; any power request while ``Terminating`` and a stop while ``Provisioning``,
``Starting`` or ``Relocating`` are 400.

Fleet: two locations (Seattle, Washington and Allen, Texas), two host nodes each
(8 ``h100-sxm5-80gb`` GPUs, 208 vCPUs, 960 GB RAM, 14000 GB storage, 100 forwardable
ports), presets of 1, 2, 4 and 8 GPUs (Ubuntu 22.04 LTS); fixed ids
(:mod:`.catalog`).  A create picks the first host node (location order) with enough
free GPUs.

Knobs (``GET/PUT /_sim/config``; durations in simulated seconds): the common
``time_scale``, ``latency_ms``, ``rate_limit`` (0 = off, the default: Voltage Park
documents no limit; when > 0 every API request, reads too, counts per client IP per
``rate_window_seconds``, and excess ones get 429 ``{"detail": "Too Many Requests"}``
with ``Retry-After``), ``rate_window_seconds`` (60); and ``provision_delay`` (30),
``start_delay`` (10), ``stop_delay`` (10), ``relocate_delay`` (20), ``terminate_delay``
(10), ``outbid_after`` (a VM ``Running`` this long becomes ``Outbid``; 0 = never, the
default), ``relocate_on_start`` (false; true: starting a disassociated VM always
relocates it to a host node found afresh).

Admin endpoints (besides the common ``/_sim`` ones: health, config, faults, stats,
requests, ratelimit):

* ``GET /_sim/vms``: every VM, terminated ones too: ``{"vms": [{vm (as the API shows
  it), organization_id, next_status, allocated, password, ssh_keys (effective:
  organization keys + ssh_keys), cloud_init}]}``.
* ``POST /_sim/vms/{vm_id}/status`` ``{"status": WORD}``: force any status word above
  now (``Terminating`` runs the normal termination); statuses that hold resources take
  them back (oversubscribing if need be).  -> ``{"vm": ...}``, 404, 400.
* ``GET /_sim/locations``: ``{"locations": [{id, city, gpus (free), capacity, used}]}``.
* ``PUT /_sim/locations/{location_id}/capacity`` ``{"gpus": N}``: make exactly N GPUs
  free in the location (on top of those in use; ``0`` exhausts it) -> the location's
  entry; 404, 400.

Stats (``GET /_sim/stats``): ``route`` is the route template with the base prefix, e.g.
``/api/v1/virtual-machines/{virtual_machine_id}/power-status`` or
``/api/v1/virtual-machines/`` (also for the slash-less alias).  Fault rules may name a
route with or without the prefix.  Injected ``status`` faults answer ``{"detail":
"Injected fault (N)"}``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any

import yaml
from aiohttp import web

from ..common.errors import ApiError, ConfigError, json_response, read_json_object
from ..common.faults import FaultRule
from ..common.server import OUTCOME_KEY, SimServer
from .catalog import PRESETS_BY_ID, Preset, money
from .engine import (
    POWER_STATUSES,
    Vm,
    VoltageParkEngine,
    VoltageParkSettings,
)
from .validation import (
    Errors,
    HttpError,
    ValidationFailed,
    check_cloud_init,
    check_uuid_path,
    query_bool,
    query_int,
    read_body,
)

log = logging.getLogger(__name__)

Handler = Any

DEFAULT_ORGANIZATION_ID = "0b9f6a3e-2c4d-4e8f-9a1b-3c5d7e9f1a2b"
STORAGE_RATE_PER_GB = "0.017408"
SSH_KEY_NAME_PATTERN = r"^[A-Za-z0-9 -]+$"
_SSH_KEY = re.compile(r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-\S+)\s+[A-Za-z0-9+/=]+")
_HTTP_MESSAGES = {404: "Not Found", 405: "Method Not Allowed", 413: "Request Entity Too Large"}
CLOUDINIT_TYPES = ("instant-vm", "baremetal")


def _page(items: list[Any], limit: int, offset: int) -> dict[str, Any]:
    offset = max(0, offset)
    return {"results": items[offset:offset + limit], "total_result_count": len(items),
            "has_previous": offset > 0, "has_next": offset + limit < len(items)}


class VoltageParkSimulator(SimServer):
    provider = "voltagepark"
    api_prefix = "/api/v1"

    def __init__(
        self,
        api_keys: Mapping[str, str] | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        latency_ms: float = 0.0,
        rate_limit: int = 0,
        rate_window: float = 60.0,
        public_url: str | None = None,
        settings: VoltageParkSettings | Mapping[str, Any] | None = None,
        fault_seed: int | None = None,
    ) -> None:
        """``api_keys``: one key (organization :data:`DEFAULT_ORGANIZATION_ID`) or
        ``{key: organization_id}``; ``settings`` sets the knobs of the module docstring."""
        keys = {api_keys: DEFAULT_ORGANIZATION_ID} if isinstance(api_keys, str) \
            else dict(api_keys)
        if not keys or any(not isinstance(k, str) or not k or not isinstance(v, str) or not v
                           for k, v in keys.items()):
            raise ValueError("api_keys must be a non-empty key or {key: organization_id}")
        self.api_keys = keys
        self._aliases: dict[str, str] = {}
        super().__init__(
            host=host, port=port, time_scale=time_scale, latency_ms=latency_ms,
            rate_limit=rate_limit, rate_window=rate_window, public_url=public_url,
            fault_seed=fault_seed,
        )
        if isinstance(settings, VoltageParkSettings):
            self.engine.settings = settings
        elif settings:
            try:
                self.apply_config(dict(settings))
            except ConfigError as exc:
                raise ValueError(str(exc)) from None

    # ---- routes ---------------------------------------------------------------------------

    def _both(self, method: str, path: str, handler: Handler, name: str) -> None:
        """``path`` (the seed's spelling) plus its trailing-slash twin, counted as one."""
        self.route(method, path, handler, name)
        alias = path.rstrip("/") if path.endswith("/") else path + "/"
        self.route(method, alias, handler, name)
        self._aliases[self.api_prefix + alias] = self.api_prefix + path

    def add_api_routes(self) -> None:
        self.engine = VoltageParkEngine(self.clock)
        r = self.route
        self._both("GET", "/locations/", self.list_locations, "list_locations")
        r("GET", "/locations/{location_id}", self.get_location, "get_location")
        r("GET", "/hostnodes/{hostnode_id}", self.get_hostnode, "get_hostnode")
        self._both("GET", "/instant-deploy-presets/", self.list_presets, "list_presets")
        r("GET", "/instant-deploy-presets/{instant_deploy_preset_id}", self.get_preset,
          "get_preset")
        r("POST", "/virtual-machines/instant", self.create_vm, "create_vm")
        self._both("GET", "/virtual-machines/", self.list_vms, "list_vms")
        vm = "/virtual-machines/{virtual_machine_id}"
        r("GET", vm, self.get_vm, "get_vm")
        r("PATCH", vm, self.patch_vm, "patch_vm")
        r("DELETE", vm, self.delete_vm, "delete_vm")
        r("PUT", vm + "/power-status", self.power_vm, "power_vm")
        r("GET", "/billing/hourly-rate", self.hourly_rate, "hourly_rate")
        self._both("GET", "/organization/ssh-keys", self.list_keys, "list_ssh_keys")
        self._both("POST", "/organization/ssh-keys", self.add_key, "add_ssh_key")
        r("DELETE", "/organization/ssh-keys/{ssh_key_id}", self.delete_key, "delete_ssh_key")
        r("POST", "/validate/cloudinit", self.validate_cloudinit, "validate_cloudinit")
        r("GET", "/storage/hourly-rate", self.storage_rate, "storage_hourly_rate")

    def _route_template(self, request: web.Request) -> str:
        template = super()._route_template(request)
        return self._aliases.get(template, template)

    # ---- auth -----------------------------------------------------------------------------

    def bearer(self, request: web.Request) -> str:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
        org = self.api_keys.get(token.strip())
        if org is None:
            raise HttpError(401, "Invalid API key", {"WWW-Authenticate": "Bearer"})
        self.engine.tick()
        return org

    def api_token(self, request: web.Request) -> str:
        token = request.headers.get("x-api-token", "").strip()
        if not token:
            raise HttpError(401, "Not authenticated")
        org = self.api_keys.get(token)
        if org is None:
            raise HttpError(401, "Invalid API key")
        self.engine.tick()
        return org

    # ---- locations, host nodes, presets ---------------------------------------------------

    def _location_json(self, location_id: str) -> dict[str, Any]:
        loc = self.engine.locations[location_id]
        return {"id": loc.id, "city": loc.city, "region": loc.region, "country": loc.country,
                "hostnodes": [n.to_json() for n in self.engine.location_nodes(loc.id)]}

    async def list_locations(self, request: web.Request) -> web.Response:
        self.bearer(request)
        limit = query_int(request, "limit", 3, minimum=1, maximum=15)
        offset = query_int(request, "offset", 0)
        items = [self._location_json(i) for i in self.engine.locations]
        return json_response(_page(items, limit, offset))

    async def get_location(self, request: web.Request) -> web.Response:
        self.bearer(request)
        location_id = check_uuid_path(request, "location_id")
        if location_id not in self.engine.locations:
            raise HttpError(404, "Location not found")
        return json_response(self._location_json(location_id))

    async def get_hostnode(self, request: web.Request) -> web.Response:
        self.bearer(request)
        node = self.engine.hostnodes.get(check_uuid_path(request, "hostnode_id"))
        if node is None:
            raise HttpError(404, "HostNode not found")
        return json_response(node.to_json())

    def _preset_json(self, preset: Preset) -> dict[str, Any]:
        return {"id": preset.id, "resources": preset.resources(),
                "operating_system": preset.operating_system,
                "compute_rate_hourly": money(preset.compute_rate()),
                "storage_rate_hourly": money(preset.storage_rate()),
                "location_ids_with_availability":
                    self.engine.locations_with_availability(preset)}

    async def list_presets(self, request: web.Request) -> web.Response:
        self.engine.tick()
        available = query_bool(request, "available")
        items = [self._preset_json(p) for p in self.engine.presets()]
        if available is not None:
            items = [p for p in items
                     if bool(p["location_ids_with_availability"]) == available]
        return json_response(items)

    async def get_preset(self, request: web.Request) -> web.Response:
        self.engine.tick()
        preset = PRESETS_BY_ID.get(check_uuid_path(request, "instant_deploy_preset_id"))
        if preset is None:
            raise HttpError(404, "Instant deploy preset not found")
        return json_response(self._preset_json(preset))

    # ---- virtual machines -----------------------------------------------------------------

    def _vm_json(self, vm: Vm) -> dict[str, Any]:
        return vm.to_json(self.engine.hostnodes[vm.hostnode_id].spec.public_ip)

    @staticmethod
    def _org_keys_mode(errors: Errors, value: Any) -> tuple[str, list[str]] | None:
        loc = ("body", "organization_ssh_keys")
        if not isinstance(value, dict):
            errors.add("model_attributes_type", loc, "Input should be a valid dictionary or "
                       "object to extract fields from", value)
            return None
        tags = "'all', 'none', 'selective'"
        if "mode" not in value:
            errors.add("union_tag_not_found", loc, "Unable to extract tag using "
                       "discriminator 'mode'", value, {"discriminator": "'mode'"})
            return None
        mode = value["mode"]
        if mode not in ("all", "none", "selective"):
            errors.add("union_tag_invalid", loc, f"Input tag '{mode}' found using 'mode' does "
                       f"not match any of the expected tags: {tags}", value,
                       {"discriminator": "'mode'", "tag": str(mode), "expected_tags": tags})
            return None
        if mode != "selective":
            return mode, []
        if "ssh_key_ids" not in value:
            errors.missing((*loc, "selective", "ssh_key_ids"), value)
            return None
        ids = errors.uuid_list((*loc, "selective", "ssh_key_ids"), value["ssh_key_ids"])
        return None if ids is None else (mode, ids)

    async def create_vm(self, request: web.Request) -> web.Response:
        org = self.bearer(request)
        body = await read_body(request)
        errors = Errors()
        config_id = name = password = None
        if "config_id" in body:
            config_id = errors.uuid(("body", "config_id"), body["config_id"])
        else:
            errors.missing(("body", "config_id"), body)
        if "name" in body:
            name = errors.string(("body", "name"), body["name"])
        else:
            errors.missing(("body", "name"), body)
        if body.get("password") is not None:
            password = errors.string(("body", "password"), body["password"], min_length=8)
        org_keys: tuple[str, list[str]] | None = ("none", [])
        if "organization_ssh_keys" in body:
            org_keys = self._org_keys_mode(errors, body["organization_ssh_keys"])
        ssh_keys: list[str] | None = []
        if "ssh_keys" in body:
            ssh_keys = errors.string_list(("body", "ssh_keys"), body["ssh_keys"])
        cloud_init = None
        if body.get("cloud_init") is not None:
            cloud_init = check_cloud_init(errors, ("body", "cloud_init"), body["cloud_init"])
        tags: list[str] | None = []
        if "tags" in body:
            tags = errors.string_list(("body", "tags"), body["tags"])
        errors.raise_if_any()
        assert config_id is not None and name is not None and org_keys is not None
        preset = PRESETS_BY_ID.get(config_id)
        if preset is None:
            raise HttpError(400, "Instant deploy preset not found")
        mode, ids = org_keys
        own = {k.id: k for k in self.engine.org_keys(org)}
        if mode == "all":
            keys = [k.content for k in own.values()]
        else:
            unknown = [i for i in ids if i not in own]
            if unknown:
                raise HttpError(400, f"SSH key(s) not found: {', '.join(unknown)}")
            keys = [own[i].content for i in ids]
        vm = self.engine.create_vm(org, preset=preset, name=name, password=password,
                                   ssh_keys=keys + list(ssh_keys or []),
                                   cloud_init=cloud_init, tags=list(tags or []))
        return json_response({"vm_id": vm.id}, status=201)

    async def list_vms(self, request: web.Request) -> web.Response:
        org = self.bearer(request)
        limit = query_int(request, "limit", 10, minimum=1, maximum=100)
        offset = query_int(request, "offset", 0)
        items = [self._vm_json(vm) for vm in self.engine.owned(org)]
        return json_response(_page(items, limit, offset))

    def _vm(self, request: web.Request) -> Vm:
        org = self.bearer(request)
        return self.engine.vm(org, check_uuid_path(request, "virtual_machine_id"))

    async def get_vm(self, request: web.Request) -> web.Response:
        return json_response(self._vm_json(self._vm(request)))

    async def patch_vm(self, request: web.Request) -> web.Response:
        org = self.bearer(request)
        vm_id = check_uuid_path(request, "virtual_machine_id")
        body = await read_body(request)
        errors = Errors()
        name = tags = None
        if body.get("name") is not None:
            name = errors.string(("body", "name"), body["name"])
        if body.get("tags") is not None:
            tags = errors.string_list(("body", "tags"), body["tags"])
        errors.raise_if_any()
        vm = self.engine.vm(org, vm_id)
        if name is not None:
            vm.name = name
        if tags is not None:
            vm.tags = tags
        return json_response({"name": vm.name, "tags": list(vm.tags)})

    async def power_vm(self, request: web.Request) -> web.Response:
        org = self.bearer(request)
        vm_id = check_uuid_path(request, "virtual_machine_id")
        body = await read_body(request)
        errors = Errors()
        status = None
        if "status" in body:
            status = errors.enum(("body", "status"), body["status"], POWER_STATUSES)
        else:
            errors.missing(("body", "status"), body)
        errors.raise_if_any()
        assert status is not None
        self.engine.set_power(self.engine.vm(org, vm_id), status)
        return json_response({"status": status})

    async def delete_vm(self, request: web.Request) -> web.Response:
        self.engine.terminate(self._vm(request))
        return json_response(None, status=202)

    async def hourly_rate(self, request: web.Request) -> web.Response:
        org = self.bearer(request)
        return json_response({"rate_hourly": money(self.engine.hourly_rate(org))})

    # ---- SSH keys, cloud-init, storage rate -----------------------------------------------

    async def list_keys(self, request: web.Request) -> web.Response:
        org = self.api_token(request)
        limit = query_int(request, "limit", 150, minimum=1, maximum=150)
        offset = query_int(request, "offset", 0)
        items = [k.to_json() for k in self.engine.org_keys(org)]
        return json_response(_page(items, limit, offset))

    async def add_key(self, request: web.Request) -> web.Response:
        org = self.api_token(request)
        body = await read_body(request)
        errors = Errors()
        name = content = None
        if "name" in body:
            name = errors.string(("body", "name"), body["name"], min_length=3, max_length=64,
                                 pattern=SSH_KEY_NAME_PATTERN)
        else:
            errors.missing(("body", "name"), body)
        if "content" in body:
            content = errors.string(("body", "content"), body["content"])
        else:
            errors.missing(("body", "content"), body)
        errors.raise_if_any()
        assert name is not None and content is not None
        if _SSH_KEY.match(content.strip()) is None:
            raise HttpError(400, "Invalid SSH public key")
        key = self.engine.add_key(org, name, content.strip())
        return json_response(key.to_json(), status=201)

    async def delete_key(self, request: web.Request) -> web.Response:
        org = self.api_token(request)
        self.engine.remove_key(org, check_uuid_path(request, "ssh_key_id"))
        return web.Response(status=204)

    async def validate_cloudinit(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        errors = Errors()
        if "type" in body:
            errors.enum(("body", "type"), body["type"], CLOUDINIT_TYPES)
        else:
            errors.missing(("body", "type"), body)
        content = body.get("content")
        if "content" not in body:
            errors.missing(("body", "content"), body)
        elif not isinstance(content, str | dict):
            errors.add("string_type", ("body", "content", "str"),
                       "Input should be a valid string", content)
            errors.add("dict_type", ("body", "content", "dict[str,any]"),
                       "Input should be a valid dictionary", content)
        errors.raise_if_any()
        if isinstance(content, str):
            if not content.lstrip().startswith("#cloud-config"):
                return json_response({"error": True, "message":
                                      "Cloud-init content must start with '#cloud-config'"})
            try:
                content = yaml.safe_load(content)
            except yaml.YAMLError as exc:
                return json_response({"error": True, "message": f"Invalid YAML: {exc}"})
            if content is None:
                content = {}
        checked = Errors()
        check_cloud_init(checked, (), content)
        if checked.items:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in item['loc']) or 'content'}: {item['msg']}"
                for item in checked.items)
            return json_response({"error": True, "message": problems})
        return json_response({"error": False, "message": "Cloud-init script is valid"})

    async def storage_rate(self, request: web.Request) -> web.Response:
        self.api_token(request)
        return json_response({"hourly_rate_per_gb": STORAGE_RATE_PER_GB})

    # ---- knobs ----------------------------------------------------------------------------

    def provider_config(self) -> dict[str, Any]:
        return self.engine.settings.to_json()

    def apply_provider_config(self, changes: dict[str, Any]) -> None:
        self.engine.configure(changes)

    def is_mutating(self, request: web.Request) -> bool:
        return True  # the optional rate limit counts every API request

    # ---- middlewares in FastAPI's {"detail": ...} shape ---------------------------------

    async def _guarded(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._is_api(request):
            return await super()._guarded(request, handler)
        try:
            response: web.StreamResponse = await handler(request)
        except (asyncio.CancelledError, web.HTTPException):
            raise
        except Exception:
            log.exception("cloudsim voltagepark: unhandled error in %s %s", request.method,
                          request.path)
            return json_response({"detail": "Internal Server Error"}, status=500)
        return response

    async def _apply_fault(
        self, rule: FaultRule, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if rule.kind != "status" or rule.body is not None:
            return await super()._apply_fault(rule, request, handler)
        request[OUTCOME_KEY] = f"status:{rule.status}"
        headers = {"Retry-After": "1"} if rule.status in (429, 503) else None
        return json_response({"detail": f"Injected fault ({rule.status})"}, rule.status,
                             headers)

    @web.middleware
    async def _rate_limit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not self._is_api(request) or self.limiter.limit <= 0:
            return await handler(request)
        decision = self.limiter.hit(request.remote or "unknown")
        headers = self.limiter.headers(decision)
        if not decision.allowed:
            return json_response({"detail": "Too Many Requests"}, 429, headers)
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
        except (HttpError, ValidationFailed) as exc:
            return exc.response()
        except ApiError as exc:
            return json_response({"detail": exc.message}, exc.status, exc.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            message = _HTTP_MESSAGES.get(exc.status, exc.reason)
            return json_response({"detail": message}, exc.status, headers)

    # ---- admin ----------------------------------------------------------------------------

    def add_admin_routes(self, app: web.Application) -> None:
        add = self.admin_route
        add("GET", "/vms", self._admin_vms, "every VM with its internal state, terminated ones too")
        add("POST", "/vms/{vmId}/status", self._admin_vm_status,
            "force any status word now ({\"status\": WORD}; Terminating runs the termination)")
        add("GET", "/locations", self._admin_locations, "every location's free GPUs, capacity and use")
        add("PUT", "/locations/{locationId}/capacity", self._admin_capacity,
            "make exactly N GPUs free in a location ({\"gpus\": N})")

    def vm_state(self, vm: Vm) -> dict[str, Any]:
        return {"vm": self._vm_json(vm), "organization_id": vm.org,
                "next_status": vm.next_status, "allocated": vm.allocated,
                "password": vm.password, "ssh_keys": list(vm.ssh_keys),
                "cloud_init": vm.cloud_init}

    async def _admin_vms(self, request: web.Request) -> web.Response:
        self.engine.tick()
        vms = sorted(self.engine.vms.values(), key=lambda v: v.seq)
        return json_response({"vms": [self.vm_state(vm) for vm in vms]})

    async def _admin_vm_status(self, request: web.Request) -> web.Response:
        self.engine.tick()
        vm = self.engine.vms.get(request.match_info["vmId"])
        if vm is None:
            raise ApiError(404, "VM not found")
        body = await read_json_object(request)
        status = body.get("status")
        if not isinstance(status, str):
            raise ApiError(400, "status is required")
        try:
            self.engine.force_status(vm, status)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        return json_response(self.vm_state(vm))

    def _location_state(self, location_id: str) -> dict[str, Any]:
        loc = self.engine.locations[location_id]
        return {"id": loc.id, "city": loc.city, **self.engine.location_gpus(loc.id)}

    async def _admin_locations(self, request: web.Request) -> web.Response:
        self.engine.tick()
        return json_response({"locations": [self._location_state(i)
                                            for i in self.engine.locations]})

    async def _admin_capacity(self, request: web.Request) -> web.Response:
        self.engine.tick()
        location_id = request.match_info["locationId"]
        if location_id not in self.engine.locations:
            raise ApiError(404, "Location not found")
        body = await read_json_object(request)
        gpus = body.get("gpus")
        if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
            raise ApiError(400, "gpus must be a non-negative integer")
        self.engine.set_location_capacity(location_id, gpus)
        return json_response(self._location_state(location_id))


__all__ = ["DEFAULT_ORGANIZATION_ID", "VoltageParkSimulator"]
