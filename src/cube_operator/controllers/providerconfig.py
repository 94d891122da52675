"""ProviderConfig controller: check the credentials against the provider, report Ready,
and list what the provider offers (``status.catalogue``, refreshed slowly)."""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import kopf
from pydantic import ValidationError

from ..api import GROUP, VERSION, ProviderConfigSpec
from ..api.providerconfig import CATALOGUE_MAX_ENTRIES
from ..metrics import RECONCILES, forget_object, observe_ready
from ..providers import Catalogue, CatalogueEntry, Provider, ProviderError
from ._common import PAUSED_MESSAGE, TERMINAL_REASONS, backoff, is_paused, provider_error_reason
from ._conditions import READY, SYNCED, now_rfc3339, seconds_since, set_condition, with_kstatus
from ._kube import NotFoundError
from ._problems import spec_error
from ._registry import registry
from ._runtime import get_runtime
from ._sessions import ConfigProblem

PLURAL = "providerconfigs"
log = logging.getLogger(__name__)
RECHECK_SECONDS = 300.0
#: The catalogue is read again after this long (or when the ProviderConfig's spec changes).
CATALOGUE_REFRESH_SECONDS = 6 * 3600.0
#: Longest a catalogue read may take before it is given up (until the next check).
CATALOGUE_TIMEOUT_SECONDS = 60.0
_DESCRIPTION_MAX = 200


def _entries(entries: tuple[CatalogueEntry, ...] | None) -> tuple[list[dict[str, str]] | None, int | None]:
    if entries is None:
        return None, None
    out = []
    for entry in entries[:CATALOGUE_MAX_ENTRIES]:
        item = {"id": entry.id}
        if entry.description:
            text = entry.description
            item["description"] = text if len(text) <= _DESCRIPTION_MAX else text[: _DESCRIPTION_MAX - 1] + "…"
        out.append(item)
    return out, len(entries)


def catalogue_status(catalogue: Catalogue, *, fetched_at: str, generation: int | None) -> dict[str, Any]:
    """``status.catalogue`` for a catalogue just read: each list capped at
    CATALOGUE_MAX_ENTRIES with its total, None for parts the provider has no listing of (a
    merge patch then removes what an earlier read wrote), and no error."""
    images, images_total = _entries(catalogue.images)
    regions, regions_total = _entries(catalogue.regions)
    plans, plans_total = _entries(catalogue.plans)
    return {"fetchedAt": fetched_at, "observedGeneration": generation,
            "images": images, "imagesTotal": images_total, "regions": regions, "regionsTotal": regions_total,
            "plans": plans, "plansTotal": plans_total, "note": catalogue.note, "error": None}


def catalogue_due(previous: Mapping[str, Any] | None, generation: int | None,
                  refresh_seconds: float = CATALOGUE_REFRESH_SECONDS) -> bool:
    """Whether to read the catalogue now: never read, its last refresh failed, read for
    another generation of the spec, or older than ``refresh_seconds``."""
    if not previous or not previous.get("fetchedAt") or previous.get("error"):
        return True
    if previous.get("observedGeneration") != generation:
        return True
    return seconds_since(str(previous["fetchedAt"])) >= refresh_seconds


async def refresh_catalogue(provider: Provider, previous: Mapping[str, Any] | None, generation: int | None,
                            logger: Any) -> dict[str, Any] | None:
    """The ``status.catalogue`` patch: None when the one in status is fresh enough, else the
    lists just read, or (the read failed) only the error, so the last lists stay. Never raises
    a provider's error: the catalogue is a bonus and never makes the ProviderConfig not Ready."""
    if not catalogue_due(previous, generation):
        return None
    try:
        catalogue = await asyncio.wait_for(provider.catalogue(), CATALOGUE_TIMEOUT_SECONDS)
    except ProviderError as error:
        why = provider_error_reason(error)[1]
    except TimeoutError:
        why = f"{provider.name} did not answer the listings within {CATALOGUE_TIMEOUT_SECONDS:g}s"
    except Exception as error:  # noqa: BLE001 - a bonus: a surprise in a listing must not fail the check
        logger.warning(f"reading the {provider.name} catalogue failed: {type(error).__name__}")
        why = f"reading the {provider.name} catalogue failed ({type(error).__name__})"
    else:
        return catalogue_status(catalogue, fetched_at=now_rfc3339(), generation=generation)
    logger.info(f"catalogue not refreshed: {why}")
    return {"error": f"catalogue not refreshed: {why}"}


async def check(body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
                logger: kopf.Logger, retry: int = 0) -> None:
    """``retry``: kopf's count of this handler's earlier failed tries (for the backoff)."""
    runtime = get_runtime()
    generation = meta.get("generation")
    conditions = list(status.get("conditions") or [])
    namespace, name = meta["namespace"], meta["name"]
    runtime.sessions.forget(namespace, name)

    def report(ok: bool, reason: str, message: str) -> None:
        RECONCILES.labels("ProviderConfig", "success" if ok else "not-ready").inc()
        observe_ready("ProviderConfig", namespace, name, "True" if ok else "False", meta.get("creationTimestamp"))
        new = set_condition(conditions, READY, ok, reason, message, generation)
        new = set_condition(new, SYNCED, ok or reason == "Paused", reason, message, generation)
        new = with_kstatus(new, generation, TERMINAL_REASONS)
        patch.status["conditions"] = new
        patch.status["observedGeneration"] = generation
        runtime.sessions.note_status(dict(body), {"conditions": new})
        previous = next((c for c in conditions if c.get("type") == READY), None)
        if not previous or previous.get("status") != ("True" if ok else "False") or previous.get("reason") != reason:
            (kopf.info if ok else kopf.warn)(body, reason=reason, message=message)
            # Objects waiting on this ProviderConfig need not wait for their retry delay.
            for plural, ns, obj_name in list(runtime.triggers):
                if ns == namespace:
                    runtime.kick(plural, ns, obj_name)

    if is_paused(meta):
        report(False, "Paused", PAUSED_MESSAGE)
        return
    try:
        spec = ProviderConfigSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as error:
        report(False, "InvalidSpec", spec_error(error))
        return
    patch.status["provider"] = spec.provider
    watch_credentials(namespace, name, spec.credentials_secret_ref.name)
    try:
        session = await runtime.sessions.session_from_body(dict(body))
        await session.provider.check_credentials()
    except ConfigProblem as problem:
        report(False, problem.reason, problem.message)
        return
    except ProviderError as error:
        reason, message, _terminal = provider_error_reason(error)
        plugin = session.plugin  # built: only check_credentials raises ProviderError here
        explained = (plugin.explain_error(error, getattr(spec, plugin.settings_field, None))
                     if plugin.explain_error else None)
        if explained:
            reason, message = explained
        report(False, reason, message)
        if not _terminal:
            # 10 s, 20 s, 40 s … up to 5 min: an unreachable provider is not asked every 10 s.
            raise kopf.TemporaryError(message, delay=backoff(10.0, retry + 1)) from None
        return
    note = ""
    if session.plugin.account_status is not None:
        try:
            facts, note = await session.plugin.account_status(session.provider)
        except ProviderError as error:  # account facts are a bonus, never a reason to fail
            facts, note = {}, f"account details unavailable: {provider_error_reason(error)[1]}"
        patch.status.update(facts)
    report(True, "CredentialsValid", f"{spec.provider} accepted the credentials" + (f"; {note}" if note else ""))
    # After Ready (Cubes waiting on it go on meanwhile): what the provider offers, read rarely.
    catalogue = await refresh_catalogue(session.provider, status.get("catalogue"), generation, logger)
    if catalogue is not None:
        patch.status["catalogue"] = catalogue


def watch_credentials(namespace: str, name: str, secret: str) -> None:
    """Check the ProviderConfig again as soon as its credentials Secret changes (a fixed
    or rotated key takes effect within a second, not at the next periodic check)."""
    watches = get_runtime().secret_watches
    if watches is None:
        return
    watches.listen(namespace, secret, f"{PLURAL}/{namespace}/{name}", lambda: recheck_now(namespace, name))


async def recheck_now(namespace: str, name: str) -> None:
    """The ProviderConfig check outside kopf's handler cycle, its status patched directly."""
    runtime = get_runtime()
    try:
        body = await runtime.kube.get_custom(PLURAL, namespace, name)
    except NotFoundError:
        if runtime.secret_watches is not None:
            runtime.secret_watches.forget(f"{PLURAL}/{namespace}/{name}")
        return
    meta = body["metadata"]
    logger = logging.LoggerAdapter(log, {"k8s_ref": {"kind": "ProviderConfig", "namespace": namespace,
                                                     "name": name, "uid": meta.get("uid")}})
    logger.info("its credentials Secret changed; checking the credentials again")
    patch = kopf.Patch()
    try:
        await check(kopf.Body(body), meta, body.get("status") or {}, patch, logger)  # type: ignore[arg-type]
    except kopf.TemporaryError:
        pass  # reported in status; the periodic check (and the next Secret change) try again
    if patch.get("status"):
        await runtime.kube.patch_status(PLURAL, namespace, name, dict(patch["status"]))


@kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
@kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
@kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
async def providerconfig_changed(body: kopf.Body, meta: kopf.Meta, status: kopf.Status,
                                 patch: kopf.Patch, logger: kopf.Logger, reason: Any = None, retry: int = 0,
                                 **_: Any) -> None:
    await check(body, meta, status, patch, logger, retry)
    if str(reason) == "update":
        # A changed ProviderConfig may fix what its objects wait on (a held rejection too).
        runtime = get_runtime()
        for plural, namespace, name in list(runtime.triggers):
            if namespace == meta["namespace"]:
                runtime.kick(plural, namespace, name)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RECHECK_SECONDS, initial_delay=RECHECK_SECONDS, registry=registry)
async def providerconfig_recheck(body: kopf.Body, meta: kopf.Meta, status: kopf.Status,
                                 patch: kopf.Patch, logger: kopf.Logger, retry: int = 0, **_: Any) -> None:
    # Catches what no watch sees: a key revoked at the provider (a changed Secret is watched).
    await check(body, meta, status, patch, logger, retry)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True, registry=registry)
async def providerconfig_deleted(meta: kopf.Meta, **_: Any) -> None:
    forget_object("ProviderConfig", meta["namespace"], meta["name"])
    watches = get_runtime().secret_watches
    if watches is not None:
        watches.forget(f"{PLURAL}/{meta['namespace']}/{meta['name']}")
    await get_runtime().sessions.drop(meta["namespace"], meta["name"])
