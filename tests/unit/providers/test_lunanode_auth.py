"""LunaNode's signing, per the seed: req carries api_id and the partial key; the signature
is hex HMAC-SHA512 (full key) of "{handler}|{req}|{nonce}"; a fresh nonce per attempt."""
from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qs

import httpx

from cube_operator.providers.lunanode.auth import LunaNodeAuth, handler_path

API_ID = "a" * 16
API_KEY = "k" * 64 + "s" * 64


def test_a_request_is_signed_as_the_seed_says() -> None:
    auth = LunaNodeAuth(API_ID, API_KEY, clock=lambda: 1_800_000_000.7)
    request = httpx.Request("POST", "https://dynamic.lunanode.com/api/vm/create/",
                            data={"req": json.dumps({"hostname": "web", "plan_id": 1})})
    signed = next(auth.auth_flow(request))
    form = {k: v[0] for k, v in parse_qs(signed.content.decode()).items()}
    assert set(form) == {"req", "signature", "nonce"} and form["nonce"] == "1800000000"
    req = json.loads(form["req"])
    assert req == {"hostname": "web", "plan_id": 1, "api_id": API_ID, "api_partialkey": "k" * 64}
    expected = hmac.new(API_KEY.encode(), f"vm/create/|{form['req']}|1800000000".encode(),
                        hashlib.sha512).hexdigest()
    assert form["signature"] == expected
    assert signed.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert int(signed.headers["Content-Length"]) == len(signed.content)


def test_the_handler_path_and_the_scrubbed_secrets() -> None:
    assert handler_path(httpx.URL("http://127.0.0.1:1/api/securitygroup/rule_insert/")) == \
        "securitygroup/rule_insert/"
    auth = LunaNodeAuth(API_ID, API_KEY)
    assert set(auth.secret_values()) == {API_KEY, "k" * 64} and API_KEY not in repr(auth)
