"""Webhook controller: subscribe to provider events; keep the once-returned secret safe.

The signing secret is returned only by the create call, so it is written to the named
Secret before anything else; if it is lost anyway (a crash in between, a deleted
Secret), the endpoint is deleted and created again, which issues a new secret.
"""
from __future__ import annotations

import base64
from typing import Any

import kopf
from pydantic import ValidationError

from ..api import GROUP, VERSION, WebhookSpec
from ..providers import NotFound, ProviderError
from ._common import provider_error_reason, retry_delay, spec_error
from ._kube import NotFoundError
from ._reconciler import Reconciler
from ._registry import registry
from ._sessions import ConfigProblem, ProviderSession, decode_secret_value
from ._wiring import register_reconciler

PLURAL = "webhooks"
RECEIVER_PATH = "/webhooks/krova/{namespace}/{name}"


def receiver_url(base: str, namespace: str, name: str) -> str:
    return base + RECEIVER_PATH.format(namespace=namespace, name=name)


class WebhookReconciler(Reconciler):
    plural = PLURAL

    async def reconcile(self) -> float:
        obj = self.current()
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return 60.0
        if await self.paused(obj):
            return 30.0
        try:
            spec = WebhookSpec.model_validate(obj.get("spec") or {})
            if (spec.url is None) == (spec.receiver is None):
                raise ConfigProblem("InvalidSpec", "set exactly one of spec.url and spec.receiver")
            target = spec.url or self.receiver_target(meta)
            session = await self.provider_session(meta["namespace"], spec.provider_config_ref)
            return await self.converge(obj, spec, session, target)
        except ValidationError as error:
            await self.invalid_spec(obj, spec_error(error))
            return 300.0
        except ConfigProblem as problem:
            await self.wait_condition(self.current(), problem)
            return 5.0
        except ProviderError as error:
            reason, message, terminal = provider_error_reason(error)
            await self.set_conditions(self.current(), ready=(False, reason, message) if terminal else None,
                                      synced=(False, reason, message))
            return retry_delay(error, 30.0 if terminal else 3.0)

    def receiver_target(self, meta: dict[str, Any]) -> str:
        base = self.rt.options.receiver_base_url()
        if not base:
            raise ConfigProblem("ReceiverDisabled", "receiver: operator needs the operator's webhook receiver "
                                                    "(--webhook-port / --webhook-public-url)")
        return receiver_url(base, meta["namespace"], meta["name"])

    async def secret_present(self, namespace: str, spec: WebhookSpec) -> bool:
        try:
            secret = await self.rt.kube.get_secret(namespace, spec.secret_ref.name)
        except NotFoundError:
            return False
        return bool(decode_secret_value(secret, spec.secret_ref.key))

    async def converge(self, obj: dict[str, Any], spec: WebhookSpec, session: ProviderSession, target: str) -> float:
        meta, status = obj["metadata"], obj.get("status") or {}
        namespace = meta["namespace"]
        if status.get("id"):
            why = None
            if status.get("url") != target or sorted(status.get("events") or []) != sorted(spec.events):
                why = "url or events changed"
            elif not await self.secret_present(namespace, spec):
                why = f"the signing secret is missing from Secret {spec.secret_ref.name}"
            else:
                try:
                    await session.client.get_webhook(status["id"])
                except NotFound:
                    why = f"endpoint {status['id']} disappeared at {session.provider}"
            if why is None:
                await self.set_conditions(obj, ready=(True, "Active", f"{session.provider} delivers {', '.join(spec.events)} to {target}"),
                                          synced=(True, "ReconcileSuccess", "in sync with the provider"))
                return session.poll_interval * 5
            try:
                await session.client.delete_webhook(status["id"])
            except NotFound:
                pass
            self.event(obj, "Normal", "Recreating", f"{why}: recreating the endpoint (the provider has no update)")
            obj = await self.patch_status(obj, {"id": None})
        elif spec.receiver:
            # A crash between create and the status write leaves an endpoint for our
            # unique receiver URL whose secret may be lost: remove it, then create.
            for stale in await session.client.list_webhooks():
                if stale.url == target:
                    await session.client.delete_webhook(stale.id)
        created = await session.client.create_webhook(url=target, events=list(spec.events))
        owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Webhook", "name": meta["name"],
                 "uid": meta["uid"], "controller": True}
        secret_b64 = base64.b64encode(created.secret.get_secret_value().encode()).decode()
        try:
            await self.rt.kube.apply_secret_data(namespace, spec.secret_ref.name,
                                                 {spec.secret_ref.key: secret_b64}, owner=owner)
        except Exception:
            await session.client.delete_webhook(created.id)  # a secret nobody has is useless
            raise
        obj = await self.set_conditions(
            obj, ready=(True, "Active", f"{session.provider} delivers {', '.join(spec.events)} to {target}"),
            synced=(True, "Created", f"created endpoint {created.id}; signing secret stored in Secret {spec.secret_ref.name}"),
            id=created.id, url=target, events=list(created.events or spec.events), enabled=created.enabled)
        self.event(obj, "Normal", "Created", f"created {session.provider} webhook endpoint {created.id}; "
                                             f"secret written to Secret {spec.secret_ref.name}")
        return session.poll_interval * 5


register_reconciler(PLURAL, WebhookReconciler)


@kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
async def webhook_deleted(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    from ._runtime import get_runtime

    runtime = get_runtime()
    meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
    runtime.triggers.pop((PLURAL, meta["namespace"], meta["name"]), None)
    if not status.get("id"):
        return
    try:
        session = await runtime.sessions.session(meta["namespace"], (spec.get("providerConfigRef") or {}).get("name", ""),
                                                 require_ready=False)
        await session.client.delete_webhook(status["id"])
    except NotFound:
        pass
    except ConfigProblem as problem:
        raise kopf.TemporaryError(problem.message, delay=10) from None
    except ProviderError as error:
        _r, message, _t = provider_error_reason(error)
        kopf.warn(body, reason="DeletionBlocked", message=f"webhook endpoint not deleted yet: {message}")
        raise kopf.TemporaryError(message, delay=retry_delay(error, 5.0)) from None
