"""Per-VPS deployment webhooks: signed and unsigned, completed and failed, retries, and
the admin delivery listing.  A tiny aiohttp receiver runs on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from cloudsim.testing import verify_cyberpanel_signature, wait_for, webhook_receiver

from .conftest import MakeVps, data_of


async def test_signed_completed_webhook(api: httpx.AsyncClient, admin: httpx.AsyncClient,
                                        make_vps: MakeVps) -> None:
    secret = "whsec_cyberpanel_test"
    async with webhook_receiver(path="/hooks/cyberpanel") as receiver:
        vps_id = await make_vps(wait=None, webhook_url=receiver.url, webhook_secret=secret)
        [hook] = await receiver.wait_for(1, timeout=5.0)
        assert hook.headers["Content-Type"] == "application/json"
        expected = "sha256=" + hmac.new(secret.encode(), hook.body, hashlib.sha256).hexdigest()
        assert hook.headers["X-Webhook-Signature"] == expected
        assert verify_cyberpanel_signature(secret, hook.body, hook.headers["X-Webhook-Signature"])
        assert not verify_cyberpanel_signature("wrong", hook.body,
                                               hook.headers["X-Webhook-Signature"])
        payload = json.loads(hook.body)
        assert payload == {
            "event": "vps.deployment.completed", "timestamp": payload["timestamp"],
            "data": {"vps_id": vps_id, "name": "my-server.example.com", "status": "running",
                     "ip_address": "74.81.40.145", "deployment_time_seconds": 5},
        }
        assert payload["timestamp"].endswith("Z")
        # The VPS is running by the time the hook arrives; only one hook per VPS.
        assert data_of(await api.get(f"/vps/{vps_id}"))["status"] == "running"

        async def delivered() -> list[dict[str, object]] | None:
            rows: list[dict[str, object]] = (await admin.get(
                "/webhooks", params={"vps_id": vps_id})).json()["deliveries"]
            return rows if rows and rows[0]["status"] == "delivered" else None

        [row] = await wait_for(delivered)
        assert row["event"] == "vps.deployment.completed" and row["attempts"] == 1
        assert row["url"] == receiver.url and row["responseStatus"] == 200
        assert secret not in json.dumps(row)
        assert len(receiver.received) == 1


async def test_unsigned_failed_webhook_with_retry(api: httpx.AsyncClient,
                                                  admin: httpx.AsyncClient,
                                                  make_vps: MakeVps) -> None:
    await admin.put("/config", json={"fail_next_deployments": 1, "fail_at_task": "create_vm",
                                     "webhook_retry_delay": 1, "webhook_timeout": 100})
    async with webhook_receiver(statuses=[500], path="/hook") as receiver:
        vps_id = await make_vps(wait=None, webhook_url=receiver.url)
        first, second = await receiver.wait_for(2, timeout=5.0)
        assert first.status == 500 and second.status == 200
        assert first.body == second.body  # the same delivery, retried
        assert "X-Webhook-Signature" not in second.headers
        payload = json.loads(second.body)
        assert payload["event"] == "vps.deployment.failed"
        assert payload["data"]["status"] == "failed"
        assert payload["data"]["failed_task"] == "create_vm"
        assert "create_vm" in payload["data"]["error"]
        # It failed at the end of task 3 of 10 (0.5 s simulated each): 1.5 s, rounded.
        assert payload["data"]["deployment_time_seconds"] == 2
        assert payload["data"]["vps_id"] == vps_id
        deliveries = (await admin.get("/webhooks")).json()["deliveries"]
        assert deliveries[0]["attempts"] == 2 and deliveries[0]["event"] == \
            "vps.deployment.failed"


async def test_no_webhook_without_url_or_after_delete(api: httpx.AsyncClient,
                                                      admin: httpx.AsyncClient,
                                                      make_vps: MakeVps) -> None:
    async with webhook_receiver(path="/hook") as receiver:
        await admin.put("/config", json={"deploy_delay": 10})
        doomed = await make_vps(wait=None, webhook_url=receiver.url)
        await api.post(f"/vps/{doomed}/delete")  # deployment abandoned: no hook
        await make_vps(wait="running")  # no webhook_url
        kept = await make_vps(wait=None, webhook_url=receiver.url)
        [hook] = await receiver.wait_for(1, timeout=5.0)
        assert json.loads(hook.body)["data"]["vps_id"] == kept
        assert (await admin.get("/webhooks", params={"vps_id": doomed})).json() == \
            {"deliveries": []}
