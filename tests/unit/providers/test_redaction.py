"""The API key and webhook secrets never show up in str/repr of the client, its errors
or its log records - even when a misbehaving server echoes them back."""

from __future__ import annotations

import logging
import traceback

import httpx
import pytest

from cube_operator.providers import (
    ProviderError,
    Transient,
    Unauthorized,
)
from cube_operator.providers.krova import (
    KrovaClient,
)

KEY = "kro_secret_9f8e7d6c5b4a39281706"
WEBHOOK_SECRET = "whsec_topsecret_0a1b2c3d4e5f"


def echoing_server(request: httpx.Request) -> httpx.Response:
    """Echoes the key back in errors and returns a broken webhook with its secret."""
    sent_key = request.headers.get("X-API-KEY", "")
    if request.url.path.endswith("/webhooks") and request.method == "POST":
        # Missing "url" and "id": the client must not echo the body while complaining.
        return httpx.Response(201, json={"webhook": {"secret": WEBHOOK_SECRET, "events": 3}})
    if request.url.path.endswith("/cubes/boom"):
        raise httpx.ReadError(f"connection reset while sending X-API-KEY: {sent_key}")
    return httpx.Response(401, json={"error": f"Invalid API key '{sent_key}'"})


def all_text(err: BaseException) -> str:
    parts = [str(err), repr(err), *(str(a) for a in err.args)]
    parts.append("".join(traceback.format_exception(err)))
    return "\n".join(parts)


async def test_key_absent_from_client_errors_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = KrovaClient(
        api_key=KEY,
        space_id="sp_x",
        endpoint="http://krova.test/api/v1",
        transport=httpx.MockTransport(echoing_server),
        retries=1,
    )
    assert KEY not in repr(client)
    assert KEY not in str(client)
    errors: list[ProviderError] = []
    async with client:
        with pytest.raises(Unauthorized) as unauthorized:
            await client.list_cubes()
        errors.append(unauthorized.value)
        with pytest.raises(Unauthorized) as on_post:
            await client.sleep_cube("c1")
        errors.append(on_post.value)
        with pytest.raises(Transient) as transport:
            await client.get_cube("boom")
        errors.append(transport.value)
        with pytest.raises(Transient) as garbled:
            await client.create_webhook(url="https://example.com/h", events=["cube.running"])
        errors.append(garbled.value)

    assert "Invalid API key '[REDACTED]'" in unauthorized.value.message
    for err in errors:
        assert err.__cause__ is None
        assert err.__context__ is None
    assert "webhook" in garbled.value.message.lower()
    for err in errors:
        text = all_text(err)
        assert KEY not in text
        assert WEBHOOK_SECRET not in text
    assert caplog.records, "expected debug request logs"
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        assert KEY not in text
        assert WEBHOOK_SECRET not in text
    assert KEY not in caplog.text
    assert any("GET /spaces/{spaceId}/cubes -> 401" in r.getMessage() for r in caplog.records)


def test_client_requires_space() -> None:
    with pytest.raises(ValueError):
        KrovaClient(api_key=KEY, space_id="")
