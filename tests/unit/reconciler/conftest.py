"""Fixtures of the state-machine suite: the in-memory provider of support.fake_provider,
once per provider profile."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import kopf
import pytest
from kopf._core.engines import posting

from cube_operator.controllers._runtime import OperatorOptions, Runtime
from cube_operator.controllers._sessions import SessionRegistry
from support.fake_provider import (
    NAMESPACE,
    PROFILES,
    EventLog,
    FakeKube,
    FakeProvider,
    Harness,
    fake_plugin,
)


@pytest.fixture(params=sorted(PROFILES))
def provider_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def harness(provider_name: str) -> AsyncIterator[Harness]:
    kube = FakeKube()
    provider = FakeProvider(name=provider_name, capabilities=PROFILES[provider_name])
    sessions = SessionRegistry(kube, 1.0, plugins={provider_name: fake_plugin(provider)})  # type: ignore[arg-type]
    runtime = Runtime(options=OperatorOptions(), kube=kube, sessions=sessions)  # type: ignore[arg-type]
    kube.secrets[(NAMESPACE, "creds")] = {"stringData": {"apiKey": "fake-key-1"}}
    pc_spec: dict[str, Any] = {"provider": provider_name, "credentialsSecretRef": {"name": "creds"}}
    if provider_name == "krova":
        pc_spec["krova"] = {"spaceId": "sp_1"}
    kube.add("providerconfigs", {
        "metadata": {"name": "pc", "namespace": NAMESPACE}, "spec": pc_spec,
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "CredentialsValid"}]}})
    events = EventLog()
    tokens = [posting.event_queue_var.set(events),  # type: ignore[arg-type]
              posting.event_queue_loop_var.set(asyncio.get_running_loop()),
              posting.settings_var.set(kopf.OperatorSettings())]
    try:
        yield Harness(kube=kube, provider=provider, runtime=runtime, events=events)
    finally:
        for var, token in zip((posting.event_queue_var, posting.event_queue_loop_var, posting.settings_var),
                              tokens, strict=True):
            var.reset(token)  # type: ignore[attr-defined]

