"""Webhook controller: subscribe to provider events; keep the once-returned secret safe.

The signing secret is returned only by the create call, so it is written to the named
Secret before anything else; if it is lost anyway (a crash in between, a deleted
Secret), the endpoint is deleted and created again, which issues a new secret. Endpoints
this object made are known by their URL (see :func:`marked`), so a crash never leaves
one behind: found before the next create, and deleted with the object.
"""
from __future__ import annotations

from typing import Any

from ..api import GROUP, VERSION, WebhookSpec
from ..providers import Capability, NotFound
from ._kube import NotFoundError
from ._reconciler import Reconciler
from ._secrets import decode_secret_value, foreign_secret, owned_by, write_owned_secret
from ._sessions import ConfigProblem, ProviderSession
from ._wiring import register_reconciler

PLURAL = "webhooks"
#: One URL per Webhook object, so the receiver knows the secret before trusting a body.
RECEIVER_PATH = "/webhooks/{provider}/{namespace}/{name}"


def receiver_url(base: str, provider: str, namespace: str, name: str) -> str:
    return base + RECEIVER_PATH.format(provider=provider, namespace=namespace, name=name)


MARKER = "cube-operator="


def marked(url: str, uid: str) -> str:
    """A user's URL with this object's marker as its fragment: a fragment is never sent in
    an HTTP request, so the receiver sees the URL it was given, while the provider's list
    tells which endpoints this object made (after a crash, before their id reached status)."""
    return f"{url.split('#', 1)[0]}#{MARKER}{uid}"


class WebhookReconciler(Reconciler):
    plural = PLURAL
    spec_model = WebhookSpec
    orphanable = False

    async def reconcile_spec(self, obj: dict[str, Any], spec: WebhookSpec) -> float:
        meta = obj["metadata"]
        if (spec.url is None) == (spec.receiver is None):
            raise ConfigProblem("InvalidSpec", "set exactly one of spec.url and spec.receiver")
        session = await self.provider_session(meta["namespace"], spec.provider_config_ref)
        self.require(session, Capability.WEBHOOKS, "webhook subscriptions")
        target = marked(spec.url, meta["uid"]) if spec.url else self.receiver_target(session, meta)
        return await self.converge(obj, spec, session, target)

    def receiver_target(self, session: ProviderSession, meta: dict[str, Any]) -> str:
        base = self.rt.options.receiver_base_url()
        if not base:
            raise ConfigProblem("ReceiverDisabled", "receiver: operator needs the operator's webhook receiver "
                                                    "(--webhook-port / --webhook-public-url)")
        if session.plugin.verify_webhook is None:
            raise ConfigProblem("Unsupported", f"provider {session.provider_name} has no webhook verifier; "
                                               "the operator cannot receive its deliveries")
        return receiver_url(base, session.provider_name, meta["namespace"], meta["name"])

    @staticmethod
    def owner(meta: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Webhook", "name": meta["name"], "uid": meta["uid"],
                "controller": True}

    async def secret_present(self, namespace: str, spec: WebhookSpec, meta: dict[str, Any]) -> bool:
        """The signing secret is in its Secret, which this Webhook owns; a Secret of that
        name made by someone else is a SecretConflict (it is never written)."""
        try:
            secret = await self.rt.kube.get_secret(namespace, spec.secret_ref.name)
        except NotFoundError:
            return False
        if not owned_by(secret, meta["uid"]):
            raise foreign_secret(namespace, spec.secret_ref.name, self.owner(meta), "spec.secretRef")
        return bool(decode_secret_value(secret, spec.secret_ref.key))

    async def converge(self, obj: dict[str, Any], spec: WebhookSpec, session: ProviderSession, target: str) -> float:
        meta, status = obj["metadata"], obj.get("status") or {}
        namespace = meta["namespace"]
        hooks = session.provider.webhooks
        assert hooks is not None
        if not status.get("id"):
            # Refused before any endpoint exists: the secret could never be stored.
            await self.secret_present(namespace, spec, meta)
        if status.get("id"):
            why = None
            if status.get("url") != target or sorted(status.get("events") or []) != sorted(spec.events):
                why = "url or events changed"
            elif not await self.secret_present(namespace, spec, meta):
                why = f"the signing secret is missing from Secret {spec.secret_ref.name}"
            else:
                try:
                    await hooks.get_webhook(status["id"])
                except NotFound:
                    why = f"endpoint {status['id']} disappeared at {session.provider_name}"
            if why is None:
                await self.set_conditions(obj, ready=(True, "Active", f"{session.provider_name} delivers {', '.join(spec.events)} to {target}"),
                                          synced=(True, "ReconcileSuccess", "in sync with the provider"))
                return session.poll_interval * 5
            try:
                await hooks.delete_webhook(status["id"])
            except NotFound:
                pass
            self.event(obj, "Normal", "Recreating", f"{why}: recreating the endpoint (the provider has no update)")
            obj = await self.patch_status(obj, {"id": None})
        else:
            # A crash between create and the status write leaves an endpoint whose secret
            # may be lost; ours are known by their URL (the receiver's is unique to this
            # object, a user's URL carries our marker): remove them, then create.
            for stale in await hooks.list_webhooks():
                if stale.url == target:
                    await hooks.delete_webhook(stale.id)
        created = await hooks.create_webhook(url=target, events=list(spec.events))
        if not created.secret:
            await hooks.delete_webhook(created.id)
            raise ConfigProblem("ProviderError", f"{session.provider_name} returned no signing secret")
        try:
            await write_owned_secret(self.rt.kube, namespace, spec.secret_ref.name, spec.secret_ref.key,
                                     created.secret, self.owner(meta), what="spec.secretRef")
        except Exception:
            await hooks.delete_webhook(created.id)  # a secret nobody has is useless
            raise
        obj = await self.set_conditions(
            obj, ready=(True, "Active", f"{session.provider_name} delivers {', '.join(spec.events)} to {target}"),
            synced=(True, "Created", f"created endpoint {created.id}; signing secret stored in Secret {spec.secret_ref.name}"),
            id=created.id, url=target, events=list(created.events or spec.events), enabled=created.enabled)
        self.event(obj, "Normal", "Created", f"created {session.provider_name} webhook endpoint {created.id}; "
                                             f"secret written to Secret {spec.secret_ref.name}")
        return session.poll_interval * 5


    async def delete_remote(self, memo: Any) -> str | None:
        """Every endpoint this object made: the one in status, and any a crash left behind
        (known by its URL, as in :meth:`converge`)."""
        meta, spec, status = self.live["metadata"], self.live.get("spec") or {}, self.live.get("status") or {}
        session = await self.provider_session(meta["namespace"], spec.get("providerConfigRef") or {},
                                              require_ready=False)
        hooks = session.provider.webhooks
        if hooks is None:
            return None
        ours = {status["id"]} if status.get("id") else set()
        base = self.rt.options.receiver_base_url()
        targets = {marked(spec["url"], meta["uid"])} if spec.get("url") else (
            {receiver_url(base, session.provider_name, meta["namespace"], meta["name"])} if base else set())
        ours |= {hook.id for hook in await hooks.list_webhooks() if hook.url in targets}
        for hook_id in sorted(ours):
            try:
                await hooks.delete_webhook(hook_id)
            except NotFound:
                pass
        return f"deleted {session.provider_name} webhook endpoint {', '.join(sorted(ours))}" if ours else None


register_reconciler(PLURAL, WebhookReconciler)
