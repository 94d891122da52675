"""LunaNode's request signing as an :class:`httpx.Auth`.

Per call: the parameters plus ``api_id`` and ``api_partialkey`` (the key's first 64
characters) are JSON-encoded into ``req``; the nonce is the current UNIX second; the
signature is hex HMAC-SHA512, keyed with the full 128-character key, of
``"{category}/{action}/|{req}|{nonce}"``; the body is the form ``req``, ``signature``,
``nonce``. Signing happens per attempt, so a retried call gets a fresh nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Generator
from urllib.parse import parse_qs, urlencode

import httpx

from .._http import SecretAuth

__all__ = ["LunaNodeAuth", "handler_path", "signature"]


def signature(api_key: str, handler: str, req: str, nonce: str) -> str:
    return hmac.new(api_key.encode(), f"{handler}|{req}|{nonce}".encode(), hashlib.sha512).hexdigest()


def handler_path(url: httpx.URL) -> str:
    """``"{category}/{action}/"`` from ``.../api/{category}/{action}/``."""
    parts = [p for p in url.path.split("/") if p]
    return f"{parts[-2]}/{parts[-1]}/"


class LunaNodeAuth(SecretAuth):
    requires_request_body = True

    def __init__(self, api_id: str, api_key: str, *, clock: Callable[[], float] = time.time) -> None:
        self._api_id = api_id
        self._api_key = api_key
        self._clock = clock

    def __repr__(self) -> str:
        return "LunaNodeAuth()"

    def secret_values(self) -> tuple[str, ...]:
        # The partial key travels in every request body: scrub it as well as the key.
        return (self._api_key, self._api_key[:64])

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        form = parse_qs(request.content.decode(), keep_blank_values=True)
        params = json.loads(form.get("req", ["{}"])[0])
        params["api_id"] = self._api_id
        params["api_partialkey"] = self._api_key[:64]
        req = json.dumps(params, separators=(",", ":"), sort_keys=True)
        nonce = str(int(self._clock()))
        body = urlencode({"req": req, "signature": signature(self._api_key, handler_path(request.url), req, nonce),
                          "nonce": nonce})
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "content-type")}
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        yield httpx.Request(request.method, request.url, headers=headers, content=body.encode())
