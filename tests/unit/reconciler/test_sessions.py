"""Building provider sessions from ProviderConfig + Secret: the plugin's settings block and
credential keys are checked offline, with messages naming what to fix."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cube_operator.controllers._sessions import ConfigProblem, SessionRegistry
from cube_operator.providers import CredentialKey, plugin_for
from support.fake_provider import NAMESPACE, FakeKube, FakeProvider, fake_plugin

API_ID = "a" * 16
API_KEY = "k" * 128


def config(provider: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "pc", "namespace": NAMESPACE},
            "spec": {"provider": provider, "credentialsSecretRef": {"name": "creds"}, **spec}}


def lunanode_like() -> tuple[FakeKube, SessionRegistry, FakeProvider]:
    kube = FakeKube()
    provider = FakeProvider(name="lunanode", capabilities=frozenset())
    plugin = replace(fake_plugin(provider), credential_keys=(
        CredentialKey("apiKey", "128 characters", lambda v: None if len(v) == 128 else "must be 128 characters"),
        CredentialKey("apiId", "16 characters", lambda v: None if len(v) == 16 else "must be 16 characters"),
    ))
    return kube, SessionRegistry(kube, 5.0, plugins={"lunanode": plugin}), provider  # type: ignore[arg-type]


async def problem(sessions: SessionRegistry, body: dict[str, Any]) -> ConfigProblem:
    with pytest.raises(ConfigProblem) as caught:
        await sessions.session_from_body(body)
    return caught.value


async def test_every_credential_key_is_read_and_a_missing_one_is_named() -> None:
    kube, sessions, provider = lunanode_like()
    kube.secrets[(NAMESPACE, "creds")] = {"stringData": {"apiKey": API_KEY}}
    missing = await problem(sessions, config("lunanode"))
    assert missing.reason == "SecretKeyMissing"
    assert "'apiId'" in missing.message and "apiKey and apiId" in missing.message
    assert API_KEY not in missing.message
    kube.secrets[(NAMESPACE, "creds")] = {"stringData": {"apiKey": API_KEY, "apiId": "short"}}
    bad = await problem(sessions, config("lunanode"))
    assert bad.reason == "InvalidCredentials" and "'apiId'" in bad.message and "16" in bad.message
    assert "short" not in bad.message
    kube.secrets[(NAMESPACE, "creds")] = {"stringData": {"apiKey": API_KEY, "apiId": API_ID}}
    session = await sessions.session_from_body(config("lunanode"))
    assert session.provider is provider and session.provider_name == "lunanode"


async def test_the_ref_key_renames_only_the_primary_credential() -> None:
    kube, sessions, _ = lunanode_like()
    kube.secrets[(NAMESPACE, "creds")] = {"stringData": {"luna-key": API_KEY, "apiId": API_ID}}
    body = config("lunanode")
    body["spec"]["credentialsSecretRef"]["key"] = "luna-key"
    assert (await sessions.session_from_body(body)).provider_name == "lunanode"
    kube.secrets[(NAMESPACE, "creds")] = {"stringData": {"apiKey": API_KEY, "apiId": API_ID}}
    assert "'luna-key'" in (await problem(sessions, body)).message


async def test_a_missing_secret_and_a_foreign_settings_block_are_named() -> None:
    kube, sessions, _ = lunanode_like()
    assert (await problem(sessions, config("lunanode"))).reason == "SecretNotFound"
    kube.secrets[(NAMESPACE, "creds")] = {"stringData": {"apiKey": API_KEY, "apiId": API_ID}}
    foreign = await problem(sessions, config("lunanode", krova={"spaceId": "sp_1"}))
    assert foreign.reason == "InvalidSpec" and "spec.krova is for provider krova" in foreign.message


async def test_unimplemented_and_unknown_providers_are_unsupported() -> None:
    # Every known provider is implemented today: an operator built with fewer plugins.
    plugins = {name: found for name in ("krova", "nokyc") if (found := plugin_for(name))}
    sessions = SessionRegistry(FakeKube(), 5.0, plugins=plugins)
    cyberpanel = await problem(sessions, config("cyberpanel"))
    assert cyberpanel.reason == "Unsupported"
    assert "'cyberpanel' is not implemented" in cyberpanel.message
    assert "implemented: krova, nokyc)" in cyberpanel.message
    unknown = await problem(SessionRegistry(FakeKube(), 5.0), config("aws"))
    assert unknown.reason == "Unsupported" and "known providers: krova, nokyc" in unknown.message
    assert "implemented: krova, nokyc, cyberpanel, voltagepark, lunanode" in unknown.message


async def test_krova_needs_its_space() -> None:
    kube = FakeKube()
    kube.secrets[(NAMESPACE, "creds")] = {"stringData": {"apiKey": "kro_123"}}
    sessions = SessionRegistry(kube, 5.0)
    assert "spec.krova is required" in (await problem(sessions, config("krova"))).message
    session = await sessions.session_from_body(config("krova", krova={"spaceId": "sp_1"}))
    assert session.provider_name == "krova"
    # Two ProviderConfigs on one key share the account's budget.
    twin = config("krova", krova={"spaceId": "sp_1"})
    twin["metadata"]["name"] = "twin"
    other = await sessions.session_from_body(twin)
    assert other.provider.client.rate_limiter is session.provider.client.rate_limiter  # type: ignore[attr-defined]
    await sessions.aclose()


async def test_closing_a_session_stops_its_list_in_flight() -> None:
    import asyncio

    from cube_operator.controllers._sessions import FleetView

    started, closed = asyncio.Event(), []

    class SlowProvider(FakeProvider):
        async def list_vms(self):  # type: ignore[no-untyped-def]
            started.set()
            await asyncio.sleep(30)
            return []

        async def aclose(self) -> None:
            closed.append(True)

    fleet = FleetView(SlowProvider(name="krova", capabilities=frozenset()))  # type: ignore[arg-type]
    waiter = asyncio.ensure_future(fleet.refresh())
    await started.wait()
    waiter.cancel()  # the daemon that asked is cancelled; the shielded list goes on
    task = fleet._inflight
    assert task is not None and not task.done()
    await fleet.aclose()
    assert task.cancelled() and fleet._inflight is None


async def test_an_endpoint_the_operator_does_not_allow_gets_no_credentials() -> None:
    kube = FakeKube()
    kube.secrets[(NAMESPACE, "creds")] = {"stringData": {"apiKey": "kro_123"}}
    body = config("krova", krova={"spaceId": "sp_1"}, endpoint="http://169.254.169.254/latest")
    refused = await problem(SessionRegistry(kube, 5.0), body)
    assert refused.reason == "EndpointNotAllowed" and "--allow-endpoint" in refused.message
    allowed = SessionRegistry(kube, 5.0, allowed_endpoints=("http://169.254.169.254",))
    assert (await allowed.session_from_body(body)).provider_name == "krova"
