"""The receiver over real HTTP on loopback (an in-memory Kubernetes behind it): what an
unauthenticated caller can learn and cost, and replays of one signed body."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from cube_operator.controllers._runtime import OperatorOptions, Runtime
from cube_operator.controllers._sessions import SessionRegistry
from cube_operator.controllers.receiver import Receiver
from cube_operator.providers.krova import sign_seed
from support.fake_provider import NAMESPACE, FakeKube

SECRET = "whsec_unit"


class CountingKube(FakeKube):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get_custom(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        self.reads += 1
        return await super().get_custom(plural, namespace, name)

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads += 1
        return await super().get_secret(namespace, name)


@pytest.fixture
async def served(unused_tcp_port: int) -> AsyncIterator[tuple[str, CountingKube, Receiver]]:
    kube = CountingKube()
    kube.add("providerconfigs", {"metadata": {"name": "krova", "namespace": NAMESPACE},
                                 "spec": {"provider": "krova", "credentialsSecretRef": {"name": "creds"},
                                          "krova": {"spaceId": "sp_1"}}})
    kube.add("webhooks", {"metadata": {"name": "events", "namespace": NAMESPACE},
                          "spec": {"providerConfigRef": {"name": "krova"},
                                   "secretRef": {"name": "events-secret", "key": "secret"}}})
    kube.secrets[(NAMESPACE, "events-secret")] = {"stringData": {"secret": SECRET}}
    runtime = Runtime(options=OperatorOptions(), kube=kube, sessions=SessionRegistry(kube, 1.0))  # type: ignore[arg-type]
    receiver = Receiver(lambda: runtime)
    app_runner = web.AppRunner(receiver.app())
    await app_runner.setup()
    await web.TCPSite(app_runner, "127.0.0.1", unused_tcp_port).start()
    try:
        yield f"http://127.0.0.1:{unused_tcp_port}", kube, receiver
    finally:
        await app_runner.cleanup()


def delivery(event_id: str = "evt_1") -> bytes:
    return json.dumps({"id": event_id, "event": "cube.running", "data": {"id": "cube_1"}}).encode()


async def post(base: str, path: str, body: bytes, signature: str | None,
               delivery_id: str = "dlv_1") -> httpx.Response:
    headers = {"X-Krova-Delivery": delivery_id, "X-Krova-Event": "cube.running"}
    if signature is not None:
        headers["X-Krova-Signature"] = signature
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(base + path, content=body, headers=headers)


async def test_unknown_objects_and_bad_signatures_are_answered_alike(served: Any) -> None:
    base, _, _ = served
    body = delivery()
    answers = [
        await post(base, f"/webhooks/krova/{NAMESPACE}/events", body, sign_seed("wrong", body)),
        await post(base, f"/webhooks/krova/{NAMESPACE}/events", body, None),
        await post(base, f"/webhooks/krova/{NAMESPACE}/nobody", body, sign_seed(SECRET, body)),
        await post(base, "/webhooks/krova/elsewhere/events", body, sign_seed(SECRET, body)),
        await post(base, f"/webhooks/nokyc/{NAMESPACE}/events", body, sign_seed(SECRET, body)),
        await post(base, f"/webhooks/aws/{NAMESPACE}/events", body, sign_seed(SECRET, body)),
        await post(base, f"/callbacks/krova/{NAMESPACE}/events", body, sign_seed(SECRET, body)),
    ]
    assert {(a.status_code, a.text) for a in answers} == {(401, answers[0].text)}, [a.text for a in answers]


async def test_a_flood_of_forgeries_costs_few_reads_and_is_cut_off(served: Any) -> None:
    base, kube, receiver = served
    receiver.lookups.miss_ttl = 30.0  # the flood below may take longer than the default second
    body = delivery()
    statuses = []
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(40):  # one known name, forged: its lookup is read once, then cached
            response = await client.post(f"{base}/webhooks/krova/{NAMESPACE}/events", content=body,
                                         headers={"X-Krova-Signature": sign_seed("forged", body),
                                                  "X-Krova-Delivery": f"dlv_{i}"})
            statuses.append(response.status_code)
        reads_for_one_name = kube.reads
        for i in range(100):  # guessed names: each a read, until the source is cut off
            response = await client.post(f"{base}/webhooks/krova/{NAMESPACE}/guess-{i}", content=body,
                                         headers={"X-Krova-Signature": sign_seed("forged", body),
                                                  "X-Krova-Delivery": f"dlv_g{i}"})
            statuses.append(response.status_code)
    assert reads_for_one_name <= 3, reads_for_one_name
    assert statuses[:60] == [401] * 60 and set(statuses[60:]) == {429}
    assert kube.reads <= reads_for_one_name + 20, kube.reads  # 20 guesses before the cut, 80 after it free


async def test_one_signed_body_counts_once_whatever_its_delivery_id(served: Any) -> None:
    base, _, receiver = served
    body = delivery("evt_replayed")
    first = await post(base, f"/webhooks/krova/{NAMESPACE}/events", body, sign_seed(SECRET, body), "dlv_a")
    again = [await post(base, f"/webhooks/krova/{NAMESPACE}/events", body, sign_seed(SECRET, body), f"dlv_{i}")
             for i in range(5)]
    assert first.status_code == 200 and {a.status_code for a in again} == {409}
    assert receiver.accepted == 1
    other = delivery("evt_other")
    assert (await post(base, f"/webhooks/krova/{NAMESPACE}/events", other, sign_seed(SECRET, other), "dlv_b")).status_code == 200


async def test_a_slow_header_connection_is_closed(unused_tcp_port: int) -> None:
    import asyncio
    import time

    from cube_operator.controllers._serving import HEADER_TIMEOUT_SECONDS, Servers

    assert HEADER_TIMEOUT_SECONDS <= 15
    servers = Servers(header_timeout=0.5)
    await servers.start(metrics_port=None, webhook_port=unused_tcp_port, host="127.0.0.1")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        started = time.monotonic()
        writer.write(b"POST /webhooks/krova/ns/name HTTP/1.1\r\nHost: x\r\n")
        closed_after = None
        for _ in range(40):  # one header line every 0.1 s, never the blank line
            try:
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
                if await asyncio.wait_for(reader.read(100), 0.1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except (ConnectionError, OSError):
                closed_after = time.monotonic() - started
                break
        writer.close()
        assert closed_after is not None and closed_after < 2.0, closed_after
    finally:
        await servers.stop()


async def test_a_delivery_that_came_before_its_secret_is_accepted_once_the_secret_is_there(served: Any) -> None:
    import asyncio

    base, kube, receiver = served
    receiver.lookups.miss_ttl = 0.2
    kube.add("webhooks", {"metadata": {"name": "fresh", "namespace": NAMESPACE},
                          "spec": {"providerConfigRef": {"name": "krova"},
                                   "secretRef": {"name": "fresh-secret", "key": "secret"}}})
    body = delivery("evt_early")
    early = await post(base, f"/webhooks/krova/{NAMESPACE}/fresh", body, sign_seed("new-secret", body), "dlv_e")
    assert early.status_code == 401  # the provider retries it
    kube.secrets[(NAMESPACE, "fresh-secret")] = {"stringData": {"secret": "new-secret"}}
    await asyncio.sleep(0.3)
    retried = await post(base, f"/webhooks/krova/{NAMESPACE}/fresh", body, sign_seed("new-secret", body), "dlv_e")
    assert retried.status_code == 200


async def test_a_rotated_secret_is_read_again(served: Any) -> None:
    import asyncio

    base, kube, receiver = served
    receiver.lookups.miss_ttl = 0.2
    first = delivery("evt_old")
    assert (await post(base, f"/webhooks/krova/{NAMESPACE}/events", first, sign_seed(SECRET, first),
                       "dlv_old")).status_code == 200
    kube.secrets[(NAMESPACE, "events-secret")] = {"stringData": {"secret": "rotated"}}
    await asyncio.sleep(0.3)
    second = delivery("evt_new")
    assert (await post(base, f"/webhooks/krova/{NAMESPACE}/events", second, sign_seed("rotated", second),
                       "dlv_new")).status_code == 200


async def test_forgeries_from_a_shared_address_do_not_silence_the_provider(served: Any) -> None:
    # Behind an Ingress the provider and a forger share one source address.
    base, _, _ = served
    good = delivery("evt_before")
    assert (await post(base, f"/webhooks/krova/{NAMESPACE}/events", good, sign_seed(SECRET, good),
                       "dlv_before")).status_code == 200
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(70):
            await client.post(f"{base}/webhooks/krova/{NAMESPACE}/guess-{i}", content=good,
                              headers={"X-Krova-Signature": sign_seed("forged", good), "X-Krova-Delivery": f"f{i}"})
    assert (await post(base, f"/webhooks/krova/{NAMESPACE}/guess-99", good, sign_seed("x", good),
                       "f99")).status_code == 429  # the forger is cut off...
    later = delivery("evt_after")
    assert (await post(base, f"/webhooks/krova/{NAMESPACE}/events", later, sign_seed(SECRET, later),
                       "dlv_after")).status_code == 200  # ...the provider is not
