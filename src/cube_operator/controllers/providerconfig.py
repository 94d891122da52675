"""ProviderConfig controller: check the credentials against the provider, report Ready."""
from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from ..api import GROUP, VERSION, ProviderConfigSpec
from ..metrics import RECONCILES, forget_object, observe_ready
from ..providers import ProviderError
from ._common import PAUSED_MESSAGE, is_paused, provider_error_reason
from ._conditions import READY, SYNCED, set_condition
from ._problems import spec_error
from ._registry import registry
from ._runtime import get_runtime
from ._sessions import ConfigProblem

PLURAL = "providerconfigs"
RECHECK_SECONDS = 300.0


async def check(body: kopf.Body, meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
                logger: kopf.Logger) -> None:
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
            raise kopf.TemporaryError(message, delay=10) from None
        return
    note = ""
    if session.plugin.account_status is not None:
        try:
            facts, note = await session.plugin.account_status(session.provider)
        except ProviderError as error:  # account facts are a bonus, never a reason to fail
            facts, note = {}, f"account details unavailable: {provider_error_reason(error)[1]}"
        patch.status.update(facts)
    report(True, "CredentialsValid", f"{spec.provider} accepted the credentials" + (f"; {note}" if note else ""))


@kopf.on.resume(GROUP, VERSION, PLURAL, registry=registry)
@kopf.on.create(GROUP, VERSION, PLURAL, registry=registry)
@kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
async def providerconfig_changed(body: kopf.Body, meta: kopf.Meta, status: kopf.Status,
                                 patch: kopf.Patch, logger: kopf.Logger, reason: Any = None, **_: Any) -> None:
    await check(body, meta, status, patch, logger)
    if str(reason) == "update":
        # A changed ProviderConfig may fix what its objects wait on (a held rejection too).
        runtime = get_runtime()
        for plural, namespace, name in list(runtime.triggers):
            if namespace == meta["namespace"]:
                runtime.kick(plural, namespace, name)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RECHECK_SECONDS, initial_delay=RECHECK_SECONDS, registry=registry)
async def providerconfig_recheck(body: kopf.Body, meta: kopf.Meta, status: kopf.Status,
                                 patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    # Catches rotated or revoked keys: a Secret change does not touch the ProviderConfig.
    await check(body, meta, status, patch, logger)


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True, registry=registry)
async def providerconfig_deleted(meta: kopf.Meta, **_: Any) -> None:
    forget_object("ProviderConfig", meta["namespace"], meta["name"])
    await get_runtime().sessions.drop(meta["namespace"], meta["name"])
