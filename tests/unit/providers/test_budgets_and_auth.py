"""The generalised HTTP layer: budgets per call kind, budgets shared per provider account,
auth as httpx.Auth whose secrets are scrubbed, and pluggable error envelopes."""
from __future__ import annotations

from typing import Any

import httpx
import pytest

from cube_operator.providers import (
    BearerAuth,
    BudgetDefault,
    BudgetPool,
    CallKind,
    HeaderAuth,
    NotFound,
    ProviderPlugin,
    RateBudget,
    RateLimiter,
    Unauthorized,
    account_key,
    plugin_for,
)
from cube_operator.providers._http import ProviderHTTP

TOKEN = "nkv_live_" + "f" * 32


def http(clock: Any, budgets: list[RateBudget], handler: Any = None, **kwargs: Any) -> ProviderHTTP:
    def ok(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={})

    return ProviderHTTP(provider="test", base_url="http://provider.test", budgets=budgets,
                        transport=httpx.MockTransport(handler or ok), clock=clock, sleep=clock.sleep,
                        **kwargs)


async def test_a_call_waits_for_every_budget_covering_its_kind(clock: Any) -> None:
    # NoKYC-like: 10 writes per 60 s overall, 2 provisioning calls per 60 s on top.
    writes = RateLimiter(10, 60.0, clock=clock, sleep=clock.sleep)
    provisioning = RateLimiter(2, 60.0, clock=clock, sleep=clock.sleep)
    budgets = [RateBudget(writes, frozenset({CallKind.MUTATE, CallKind.PROVISION})),
               RateBudget(provisioning, frozenset({CallKind.PROVISION}))]
    async with http(clock, budgets) as client:
        for _ in range(2):
            await client.request("POST", "/servers", kind=CallKind.PROVISION)
        assert clock.sleeps == []
        await client.request("POST", "/servers/{id}/stop", kind=CallKind.MUTATE, path={"id": "a"})
        assert clock.sleeps == []  # a mutation is not held by the provisioning budget
        await client.request("POST", "/servers", kind=CallKind.PROVISION)
        assert sum(clock.sleeps) == pytest.approx(60.0, abs=1.0)  # the third provision waited
        for _ in range(20):
            await client.request("GET", "/servers", kind=CallKind.READ)
        assert sum(clock.sleeps) == pytest.approx(60.0, abs=1.0)  # reads are in no budget


async def test_a_budget_over_all_calls_holds_reads_too(clock: Any) -> None:
    every = RateLimiter(3, 60.0, clock=clock, sleep=clock.sleep)
    async with http(clock, [RateBudget(every, frozenset(CallKind))]) as client:
        for _ in range(4):
            await client.request("GET", "/vps", kind=CallKind.READ)
    assert sum(clock.sleeps) == pytest.approx(60.0, abs=1.0)


def plugin(name: str = "krova") -> ProviderPlugin:
    found = plugin_for(name)
    assert found is not None
    return found


def test_two_configs_on_one_account_share_one_budget() -> None:
    pool = BudgetPool()
    account = account_key("nokyc", "http://sim/api/v1", {"token": "nkv_1"})
    same = account_key("nokyc", "http://sim/api/v1/", {"token": "nkv_1"})  # trailing slash
    other = account_key("nokyc", "http://sim/api/v1", {"token": "nkv_2"})
    assert account == same != other
    first = pool.budgets(plugin("nokyc"), account)
    second = pool.budgets(plugin("nokyc"), same)
    assert first[0].limiter is second[0].limiter
    assert pool.budgets(plugin("nokyc"), other)[0].limiter is not first[0].limiter
    assert "nkv_1" not in account


def test_krova_counts_per_client_address_so_every_account_shares_one_budget() -> None:
    pool = BudgetPool()
    a = pool.budgets(plugin(), account_key("krova", None, {"apiKey": "kro_a"}), endpoint=None)
    b = pool.budgets(plugin(), account_key("krova", None, {"apiKey": "kro_b"}), endpoint=None)
    assert a[0].limiter is b[0].limiter and (a[0].limiter.limit, a[0].limiter.period) == (10, 60.0)


def test_a_rate_limit_setting_may_lower_its_own_share_never_raise_it() -> None:
    pool = BudgetPool()
    krova = plugin()
    assert pool.check_override(krova, (5, 60.0)) is None
    refused = pool.check_override(krova, (100, 60.0))
    assert refused and "spec.rateLimit" in refused and "10 per 60s" in refused
    tenant_a = pool.budgets(krova, account_key("krova", None, {"apiKey": "kro_a"}))
    tenant_b = pool.budgets(krova, account_key("krova", None, {"apiKey": "kro_b"}), (2, 60.0))
    # B's lower setting is a budget of B's own, on top of the shared one: A is unaffected.
    assert tenant_b[0].limiter is tenant_a[0].limiter and len(tenant_a) == 1
    assert (tenant_b[1].limiter.limit, tenant_b[1].limiter.period) == (2, 60.0)
    assert not tenant_b[1].reports_server_headers


def test_a_scaled_pool_runs_every_documented_limit_faster() -> None:
    pool = BudgetPool(scale=20.0)
    budgets = pool.budgets(plugin(), "acct")
    assert (budgets[0].limiter.limit, budgets[0].limiter.period) == (10, 3.0)
    assert pool.check_override(plugin(), (10, 3.0)) is None
    assert pool.check_override(plugin(), (10, 2.0))


def test_the_krova_plugin_declares_its_documented_limit() -> None:
    krova = plugin()
    assert krova.budgets == (BudgetDefault("mutating", 10, 60.0,
                                           frozenset({CallKind.MUTATE, CallKind.PROVISION}), per="endpoint"),)
    assert [k.name for k in krova.credential_keys] == ["apiKey"]
    assert krova.settings_field == "krova" and krova.settings_required
    assert krova.verify_webhook is not None
    cyberpanel = plugin_for("cyberpanel")
    assert cyberpanel is not None
    # Seed: 60/min and 1000/h per key, every request counted: the client keeps both windows.
    assert [(b.limit, b.period, b.kinds) for b in cyberpanel.budgets] == [
        (60, 60.0, frozenset(CallKind)), (1000, 3600.0, frozenset(CallKind))]


async def test_auth_is_sent_only_on_authenticated_calls_and_scrubbed_from_errors(clock: Any) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, json={"error": f"token {TOKEN} is revoked"})

    async with http(clock, [], handler, auth=BearerAuth(TOKEN)) as client:
        with pytest.raises(Unauthorized) as info:
            await client.request("GET", "/me", kind=CallKind.READ)
        with pytest.raises(Unauthorized):
            await client.request("GET", "/plans", kind=CallKind.READ, authenticated=False)
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in seen[1].headers
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    assert "[REDACTED]" in info.value.message
    assert TOKEN not in repr(BearerAuth(TOKEN)) and "secret" not in repr(HeaderAuth("X-API-KEY", "secret"))


async def test_the_error_parser_is_the_providers_own(clock: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"success": False, "error_code": "VPS_NOT_FOUND",
                                         "message": "VPS 7 does not exist"})

    def cyberpanel_like(body: bytes | str | None) -> tuple[str | None, str | None]:
        import json

        data = json.loads(body or b"{}")
        return data.get("message"), data.get("error_code")

    async with http(clock, [], handler, error_parser=cyberpanel_like) as client:
        with pytest.raises(NotFound) as info:
            await client.request("GET", "/vps/7", kind=CallKind.READ)
    assert info.value.code == "VPS_NOT_FOUND" and info.value.message == "VPS 7 does not exist"
    async with http(clock, [], handler) as client:  # the default envelope reader
        with pytest.raises(NotFound) as info:
            await client.request("GET", "/vps/7", kind=CallKind.READ)
    assert info.value.message == "VPS 7 does not exist" and info.value.code == "VPS_NOT_FOUND"


@pytest.mark.parametrize("segment", [".", "..", ""])
async def test_dot_and_empty_path_segments_are_refused_before_sending(clock: Any, segment: str) -> None:
    from cube_operator.providers import Invalid

    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    async with http(clock, [], handler) as client:
        with pytest.raises(Invalid):
            await client.request("DELETE", "/cubes/{id}", kind=CallKind.MUTATE, path={"id": segment})
        await client.request("DELETE", "/cubes/{id}", kind=CallKind.MUTATE, path={"id": "a/b"})
    assert [r.url.raw_path for r in sent] == [b"/cubes/a%2Fb"]  # one escaped segment on the wire


def test_credentials_go_only_to_the_documented_endpoint_or_an_allowed_one() -> None:
    from cube_operator.providers import endpoint_allowed

    default = "https://krova.cloud/api/v1"
    assert endpoint_allowed("https://krova.cloud/api/v1/", default, ())
    for hostile in ("http://169.254.169.254/latest/meta-data", "http://kubernetes.default.svc/api",
                    "http://127.0.0.1:8080/api/v1", "https://krova.cloud.evil.example/api/v1", "not a url"):
        assert not endpoint_allowed(hostile, default, ()), hostile
    allowed = ("http://127.0.0.1", "https://proxy.example.com:8443/krova")
    assert endpoint_allowed("http://127.0.0.1:39123/api/v1", default, allowed)  # any port: none named
    assert not endpoint_allowed("http://127.0.0.1.nip.io:39123/api/v1", default, allowed)
    assert not endpoint_allowed("https://127.0.0.1:39123/api/v1", default, allowed)  # another scheme
    assert endpoint_allowed("https://proxy.example.com:8443/krova/api/v1", default, allowed)
    assert not endpoint_allowed("https://proxy.example.com:8443/krovax/api", default, allowed)
    assert not endpoint_allowed("https://proxy.example.com/krova/api/v1", default, allowed)  # another port


def test_only_the_providers_own_error_envelope_reaches_status() -> None:
    from cube_operator.providers._http import map_error
    from cube_operator.providers.krova.client import error_envelope

    assert error_envelope(b'{"error": "spaceId mismatch"}') == ("spaceId mismatch", None)
    # What a metadata service or another internal endpoint answers: never shown.
    foreign = b'{"message": "AccessKeyId=AKIA-SECRET", "detail": "token"}'
    assert error_envelope(foreign) == (None, None)
    error = map_error("krova", 400, foreign, parser=error_envelope)
    assert "AKIA" not in error.message and "token" not in error.message
    long = b'{"error": "' + b"x" * 5000 + b'"}'
    assert len(map_error("krova", 400, long, parser=error_envelope).message) < 1000


async def test_accounts_sharing_a_budget_take_turns() -> None:
    # Krova counts per client address: two tenants' accounts share one budget. Tenant A
    # bursts ten writes; tenant B's one write must not wait behind all of them.
    import asyncio

    from cube_operator.providers.registry import TURN

    shared = RateLimiter(2, 0.5)  # windows long enough that scheduling noise does not matter
    sent: list[str] = []

    def client(name: str) -> ProviderHTTP:
        def handler(request: httpx.Request) -> httpx.Response:
            sent.append(name)
            return httpx.Response(200, json={})
        budget = RateBudget(shared, frozenset({CallKind.MUTATE}), gate=asyncio.Semaphore(TURN))
        return ProviderHTTP(provider="krova", base_url="http://provider.test", budgets=[budget],
                            transport=httpx.MockTransport(handler))

    async with client("A") as a, client("B") as b:
        burst = [asyncio.create_task(a.request("POST", "/cubes", kind=CallKind.MUTATE)) for _ in range(10)]
        while len(sent) < 2:  # A's first window is spent; the rest of its burst is queued
            await asyncio.sleep(0.005)
        await b.request("POST", "/cubes", kind=CallKind.MUTATE)
        await asyncio.gather(*burst)
    # B waits behind at most A's next turn (and may share its window with one more of A's),
    # not behind A's whole burst (without turns it is 11th).
    assert len(sent) == 11 and sent.index("B") <= 2 * TURN + 1, sent


def test_the_pool_gives_each_account_its_own_turn_in_a_shared_budget() -> None:
    pool = BudgetPool()
    a = pool.budgets(plugin(), "acct-a")[0]
    b = pool.budgets(plugin(), "acct-b")[0]
    again = pool.budgets(plugin(), "acct-a")[0]
    assert a.limiter is b.limiter and a.gate is not None and a.gate is not b.gate and again.gate is a.gate
    assert pool.budgets(plugin("nokyc"), "acct-a")[0].gate is None  # per account: nobody to share with
