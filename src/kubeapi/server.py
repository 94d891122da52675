"""The aiohttp application: routing of Kubernetes API paths, request log, lifecycle."""

from __future__ import annotations

import asyncio
import logging
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from . import discovery, errors, openapi
from .cluster import Cluster
from .errors import APIError
from .kubeconfig import write_kubeconfig
from .negotiation import Rendering, error_response, negotiate, parse_body, respond
from .resources import Obj, ResourceType
from .selectors import FieldSelector, LabelSelector
from .tables import build_table
from .watch import serve_watch, watch_params

log = logging.getLogger("kubeapi")

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
#: How long a get or list waits for a resourceVersion the store has not reached yet before
#: answering 504 "Too large resource version" (kube-apiserver's watch cache blocks 3 s).
FRESHNESS_WAIT = 3.0


@dataclass
class RequestRecord:
    """One served request; the first six fields are the (verb, path, resource, namespace,
    subresource, status) tuple that RBAC coverage checks use."""

    verb: str
    path: str
    resource: str
    namespace: str
    subresource: str
    status: int
    group: str = ""
    name: str = ""
    method: str = ""
    user_agent: str = ""

    def as_tuple(self) -> tuple[str, str, str, str, str, int]:
        return (self.verb, self.path, self.resource, self.namespace, self.subresource,
                self.status)


@dataclass
class Target:
    """A parsed resource path."""

    group: str
    version: str
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class KubeAPIServer:
    """A Kubernetes API server emulator. Use as ``async with KubeAPIServer() as srv``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, history_size: int = 5000,
                 bookmark_interval: float = 60.0) -> None:
        self.host = host
        self._requested_port = port
        self.bookmark_interval = bookmark_interval
        self.cluster = Cluster(history_size)
        self.request_log: list[RequestRecord] = []
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._port: int | None = None
        self._closing = False
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self.app.on_shutdown.append(self._on_shutdown)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, handler_cancellation=True, access_log=None,
                                     shutdown_timeout=2.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self._requested_port)
        await self._site.start()
        self._port = int(self._runner.addresses[0][1])
        log.info("kubeapi emulator serving on %s", self.url)

    async def stop(self) -> None:
        self._closing = True
        self.cluster.store.close_watchers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _on_shutdown(self, app: web.Application) -> None:
        self._closing = True
        self.cluster.store.close_watchers()
        await asyncio.sleep(0)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write_kubeconfig(self, path: str | Path) -> Path:
        return write_kubeconfig(path, self.url)

    # -- dispatch --------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        record = RequestRecord(verb=request.method.lower(), path=request.path, resource="",
                               namespace="", subresource="", status=0, method=request.method,
                               user_agent=request.headers.get("User-Agent", ""))
        logged = False

        def log_now(status: int) -> None:
            nonlocal logged
            record.status = status
            if not logged and not request.path.startswith("/_emulator"):
                self.request_log.append(record)
            logged = True

        try:
            resp = await self._route(request, record, log_now)
        except APIError as e:
            resp = error_response(e)
        except web.HTTPException:
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as e:  # noqa: BLE001 - becomes a 500 Status like kube-apiserver's
            log.error("internal error serving %s %s:\n%s", request.method, request.path,
                      traceback.format_exc())
            resp = error_response(APIError(500, "InternalError",
                                           f"Internal error occurred: {type(e).__name__}: {e}"))
        log_now(resp.status)
        return resp

    async def _route(self, request: web.Request, record: RequestRecord,
                     log_now: Any) -> web.StreamResponse:
        path = request.path
        parts = [p for p in path.split("/") if p]
        method = request.method
        if path.rstrip("/") in HEALTH_PATHS or any(path.startswith(p + "/")
                                                   for p in HEALTH_PATHS):
            return web.Response(text="ok", content_type="text/plain")
        if path.startswith("/_emulator"):
            return self._emulator_endpoint(request, parts)
        if method not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            raise errors.method_not_allowed("the server does not allow this method on the "
                                            "requested resource")
        if parts == ["version"]:
            return respond(discovery.KUBE_VERSION)
        if parts and parts[0] == "openapi":
            return self._openapi(request, parts)
        if parts and parts[0] == "api":
            if len(parts) == 1:
                return respond(discovery.api_versions(f"{self.host}:{self.port}"))
            return await self._api(request, record, log_now, "", parts[1], parts[2:])
        if parts and parts[0] == "apis":
            registry = self.cluster.registry
            if len(parts) == 1:
                return respond(discovery.api_group_list(registry))
            if len(parts) == 2:
                doc = discovery.api_group(registry, parts[1])
                if doc is None:
                    raise errors.route_not_found()
                return respond(doc)
            return await self._api(request, record, log_now, parts[1], parts[2], parts[3:])
        raise errors.route_not_found()

    def _emulator_endpoint(self, request: web.Request, parts: list[str]) -> web.Response:
        if parts == ["_emulator", "watches", "stall"] and request.method == "POST":
            return respond({"stalled": self.cluster.store.stall_watchers()})
        if parts == ["_emulator", "requests"]:
            if request.method == "DELETE":
                self.request_log.clear()
                return respond({"cleared": True})
            return respond([asdict(r) for r in self.request_log])
        raise errors.route_not_found()

    def _openapi(self, request: web.Request, parts: list[str]) -> web.Response:
        registry = self.cluster.registry
        accept = request.headers.get("Accept", "")
        if parts == ["openapi", "v2"]:
            # Only JSON is served; a protobuf-only Accept gets 406, which client-go handles.
            if accept and "json" not in accept and "*/*" not in accept:
                raise errors.not_acceptable(["application/json"])
            return respond(openapi.v2_doc(registry))
        if parts == ["openapi", "v3"]:
            return respond(openapi.v3_root(registry))
        if len(parts) >= 4 and parts[:2] == ["openapi", "v3"]:
            if accept and "json" not in accept and "*/*" not in accept:
                raise errors.not_acceptable(["application/json"])
            rest = parts[2:]
            if rest[0] == "api" and len(rest) == 2:
                doc = openapi.group_version_doc(registry, "", rest[1])
            elif rest[0] == "apis" and len(rest) == 3:
                doc = openapi.group_version_doc(registry, rest[1], rest[2])
            else:
                doc = None
            if doc is None:
                raise errors.route_not_found()
            resp = respond(doc)
            if request.query.get("hash") == openapi.doc_hash(doc):
                resp.headers["Cache-Control"] = "public, immutable"
                resp.headers["Etag"] = f'"{openapi.doc_hash(doc)}"'
            return resp
        raise errors.route_not_found()

    # -- resources -------------------------------------------------------------------------------

    def _parse_target(self, group: str, version: str, rest: list[str]) -> Target | None:
        registry = self.cluster.registry
        ns: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and not (
                group == "" and len(rest) == 3 and rest[2] in ("status", "finalize")):
            ns, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            return None
        rt = registry.lookup(group, version, rest[0])
        if rt is None:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if ns is not None and not rt.namespaced:
            return None
        if sub is not None and not (sub == "status" and rt.has_status(version)) and \
                sub not in rt.extra_subresources:
            return None
        return Target(group, version, rt, ns, name, sub)

    async def _api(self, request: web.Request, record: RequestRecord, log_now: Any, group: str,
                   version: str, rest: list[str]) -> web.StreamResponse:
        registry = self.cluster.registry
        if not rest:
            if request.method != "GET":
                raise errors.method_not_allowed("the server does not allow this method on the "
                                                "requested resource")
            doc = discovery.resource_list(registry, group, version)
            if doc is None:
                raise errors.route_not_found()
            return respond(doc)
        target = self._parse_target(group, version, rest)
        if target is None:
            raise errors.route_not_found()
        rt, q = target.rt, request.query
        record.resource, record.group = rt.plural, rt.group
        record.namespace = target.namespace or ""
        record.subresource = target.subresource or ""
        record.name = target.name or ""
        method = request.method
        dry_run = self._dry_run(q)
        field_validation = q.get("fieldValidation") or "Warn"
        if field_validation not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(f"fieldValidation must be one of Strict, Warn, Ignore; got "
                                     f"{field_validation}")
        cluster = self.cluster
        rendering = negotiate(request.headers.get("Accept"))
        if target.name is None:
            if rt.namespaced and target.namespace is None and method != "GET":
                raise errors.method_not_allowed("the server does not allow this method on the "
                                                "requested resource")
            if method == "GET":
                if (q.get("watch") or "").lower() in ("1", "true"):
                    record.verb = "watch"
                    return await serve_watch(request, cluster, rt, version, target.namespace,
                                             watch_params(q), rendering, self.bookmark_interval,
                                             log_now, lambda: self._closing)
                record.verb = "list"
                exact = await self._read_resource_version(q, listing=True)
                return self._list(rt, version, target.namespace, q, rendering, exact)
            if method == "POST":
                record.verb = "create"
                body = parse_body(await request.read(), request.content_type)
                result = cluster.create(rt, version, target.namespace, body, dry_run=dry_run,
                                        field_validation=field_validation)
                return respond(self._one(rt, version, result.obj, rendering, q), 201,
                               rendering, result.warnings)
            if method == "DELETE":
                record.verb = "deletecollection"
                options = await self._delete_options(request)
                labels = LabelSelector.parse(q.get("labelSelector"))
                fields = FieldSelector.parse(q.get("fieldSelector"))
                items = cluster.delete_collection(rt, version, target.namespace, labels, fields,
                                                  options, dry_run=dry_run)
                return respond({"kind": rt.list_kind, "apiVersion": rt.api_version(version),
                                "metadata": {"resourceVersion": str(cluster.store.rv)},
                                "items": items}, 200, rendering)
            raise errors.method_not_allowed("the server does not allow this method on the "
                                            "requested resource")
        name, sub = target.name, target.subresource
        if sub == "finalize":
            sub = None  # namespaces/finalize: an update of spec.finalizers
        if method == "GET":
            record.verb = "get"
            await self._read_resource_version(q, listing=False)
            obj = cluster.get(rt, version, target.namespace, name)
            return respond(self._one(rt, version, obj, rendering, q), 200, rendering)
        if method == "PUT":
            record.verb = "update"
            body = parse_body(await request.read(), request.content_type)
            result = cluster.update(rt, version, target.namespace, name, body, subresource=sub,
                                    dry_run=dry_run, field_validation=field_validation)
            return respond(self._one(rt, version, result.obj, rendering, q), 200, rendering,
                           result.warnings)
        if method == "PATCH":
            record.verb = "patch"
            result = cluster.patch(rt, version, target.namespace, name,
                                   request.headers.get("Content-Type", ""), await request.read(),
                                   subresource=sub, dry_run=dry_run,
                                   field_manager=q.get("fieldManager"),
                                   force=(q.get("force") or "").lower() == "true",
                                   field_validation=field_validation)
            return respond(self._one(rt, version, result.obj, rendering, q),
                           201 if result.created else 200, rendering, result.warnings)
        if method == "DELETE" and sub is None:
            record.verb = "delete"
            options = await self._delete_options(request)
            obj = cluster.delete(rt, version, target.namespace, name, options, dry_run=dry_run)
            answer = cluster.delete_answer(rt, obj)
            if answer is not obj:
                return respond(answer, 200, rendering)
            return respond(self._one(rt, version, obj, rendering, q), 200, rendering)
        if method == "POST":
            raise errors.method_not_allowed(f"POST on a named {rt.kind} is not allowed")
        raise errors.method_not_allowed("the server does not allow this method on the "
                                        "requested resource")

    @staticmethod
    def _dry_run(q: Any) -> bool:
        values = q.getall("dryRun", [])
        for v in values:
            if v != "All":
                raise errors.bad_request(f'dryRun: Unsupported value: "{v}": supported values: '
                                         '"All"')
        return bool(values)

    @staticmethod
    async def _delete_options(request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        raw = await request.read()
        if raw.strip():
            body = parse_body(raw, request.content_type)
            if isinstance(body, dict):
                options.update(body)
        q = request.query
        if q.get("propagationPolicy"):
            options["propagationPolicy"] = q["propagationPolicy"]
        if q.get("gracePeriodSeconds"):
            options["gracePeriodSeconds"] = q["gracePeriodSeconds"]
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise errors.bad_request(f'propagationPolicy: Unsupported value: "{policy}": '
                                     'supported values: "Foreground", "Background", "Orphan"')
        return options

    def _one(self, rt: ResourceType, version: str, obj: Obj, rendering: Rendering,
             q: Any) -> Obj:
        if rendering.form == "table":
            return build_table(rt, version, [obj], table_version=rendering.version,
                               include_object=q.get("includeObject") or "Metadata",
                               resource_version=obj.get("metadata", {}).get("resourceVersion"))
        if rendering.form == "partial":
            return {"kind": "PartialObjectMetadata",
                    "apiVersion": f"meta.k8s.io/{rendering.version}",
                    "metadata": obj.get("metadata", {})}
        return obj

    async def _read_resource_version(self, q: Any, *, listing: bool) -> int | None:
        """Check the ``resourceVersion`` (and, for a list, ``resourceVersionMatch``) of a
        read as kube-apiserver does: 400 if malformed, 422 for a match without a version,
        and, for a version the store has not reached, a wait of FRESHNESS_WAIT seconds and
        then 504 ``Timeout`` (cause ``ResourceVersionTooLarge``). Returns the version to
        serve the list at for ``resourceVersionMatch=Exact``, else None (the latest)."""
        raw = q.get("resourceVersion") or ""
        match = q.get("resourceVersionMatch") or "" if listing else ""
        if match:
            why = None
            if match not in ("Exact", "NotOlderThan"):
                why = errors.Cause("FieldValueNotSupported", f'Unsupported value: "{match}": '
                                   'supported values: "Exact", "NotOlderThan"',
                                   "resourceVersionMatch")
            elif not raw:
                why = errors.Cause("FieldValueForbidden", "Forbidden: resourceVersionMatch is "
                                   "forbidden unless resourceVersion is provided",
                                   "resourceVersionMatch")
            elif match == "Exact" and raw == "0":
                why = errors.Cause("FieldValueForbidden", 'Forbidden: resourceVersionMatch '
                                   '"exact" is forbidden for resourceVersion "0"',
                                   "resourceVersionMatch")
            if why is not None:
                raise errors.invalid("ListOptions", "meta.k8s.io", "", [why])
        if not raw:
            return None
        try:
            wanted = int(raw)
            if wanted < 0:
                raise ValueError(raw)
        except ValueError:
            raise errors.bad_request(
                f'invalid resource version: resourceVersion: Invalid value: "{raw}": '
                f'strconv.ParseUint: parsing "{raw}": invalid syntax') from None
        store = self.cluster.store
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FRESHNESS_WAIT
        while wanted > store.rv and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if wanted > store.rv:
            raise errors.APIError(
                504, "Timeout", f"Timeout: Too large resource version: {wanted}, current: "
                f"{store.rv}", {"retryAfterSeconds": 1},
                [errors.Cause("ResourceVersionTooLarge", "Too large resource version")])
        return wanted if match == "Exact" else None

    def _list(self, rt: ResourceType, version: str, namespace: str | None, q: Any,
              rendering: Rendering, exact_rv: int | None = None) -> web.Response:
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            raise errors.bad_request(f"invalid limit: {q.get('limit')}") from None
        result = self.cluster.list(rt, version, namespace,
                                   LabelSelector.parse(q.get("labelSelector")),
                                   FieldSelector.parse(q.get("fieldSelector")),
                                   limit=max(limit, 0), continue_token=q.get("continue"),
                                   exact_rv=exact_rv)
        if rendering.form == "table":
            return respond(build_table(rt, version, result.items,
                                       table_version=rendering.version,
                                       include_object=q.get("includeObject") or "Metadata",
                                       resource_version=result.resource_version,
                                       continue_token=result.continue_token,
                                       remaining=result.remaining), 200, rendering)
        meta: dict[str, Any] = {"resourceVersion": result.resource_version}
        if result.continue_token:
            meta["continue"] = result.continue_token
            if result.remaining is not None:
                meta["remainingItemCount"] = result.remaining
        if rendering.form == "partial":
            return respond({"kind": "PartialObjectMetadataList",
                            "apiVersion": f"meta.k8s.io/{rendering.version}", "metadata": meta,
                            "items": [{"kind": "PartialObjectMetadata",
                                       "apiVersion": f"meta.k8s.io/{rendering.version}",
                                       "metadata": i.get("metadata", {})}
                                      for i in result.items]})
        return respond({"kind": rt.list_kind, "apiVersion": rt.api_version(version),
                        "metadata": meta, "items": result.items}, 200, rendering)
