"""The seed's request and signing scheme: form fields, api_id, partial key, HMAC-SHA512
over ``handler|req|nonce``, the nonce window; and transport-level answers."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from cloudsim import LunaNodeSimulator
from cloudsim.lunanode import sign
from cloudsim.testing import LUNANODE_API_ID, LUNANODE_API_KEY, lunanode_form


def _form(params: dict[str, Any] | None = None, **overrides: Any) -> dict[str, str]:
    form = lunanode_form("plan", "list", params)
    form.update(overrides)
    return form


def _manual(handler: str, request: dict[str, Any], nonce: str, key: str = LUNANODE_API_KEY
            ) -> dict[str, str]:
    """The seed's steps written out by hand (no helper of the simulator involved)."""
    raw = json.dumps(request)
    digest = hmac.new(key.encode(), f"{handler}|{raw}|{nonce}".encode(), hashlib.sha512)
    return {"req": raw, "signature": digest.hexdigest(), "nonce": nonce}


async def _post(api: httpx.AsyncClient, path: str, data: dict[str, str]) -> dict[str, Any]:
    response = await api.post(path, data=data)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _creds() -> dict[str, str]:
    return {"api_id": LUNANODE_API_ID, "api_partialkey": LUNANODE_API_KEY[:64]}


async def test_good_signature_built_by_hand(api: httpx.AsyncClient) -> None:
    nonce = str(int(time.time()))
    body = await _post(api, "/plan/list/", _manual("plan/list/", _creds(), nonce))
    assert body["success"] == "yes" and body["plans"]
    # The Go client's form also carries handler=...; it is ignored.
    form = _manual("region/list/", _creds(), nonce) | {"handler": "region/list/"}
    body = await _post(api, "/region/list/", form)
    assert body == {"success": "yes",
                    "regions": {"toronto": "Toronto", "montreal": "Montreal",
                                "roubaix": "Roubaix"}}
    assert sign(LUNANODE_API_KEY, "plan/list/", "{}", "1") == hmac.new(
        LUNANODE_API_KEY.encode(), b"plan/list/|{}|1", hashlib.sha512).hexdigest()


async def test_bad_signature(api: httpx.AsyncClient) -> None:
    form = _form()
    form["signature"] = form["signature"][:-1] + ("0" if form["signature"][-1] != "0" else "1")
    assert await _post(api, "/plan/list/", form) == {"success": "no",
                                                      "error": "invalid signature"}
    # Signed with another key (partial key right): still the signature.
    other_key = LUNANODE_API_KEY[:64] + "x" * 64
    nonce = str(int(time.time()))
    body = await _post(api, "/plan/list/", _manual("plan/list/", _creds(), nonce, other_key))
    assert body["error"] == "invalid signature"
    # Signed for another action than the URL's: the handler path is part of the message.
    body = await _post(api, "/vm/list/", _form())
    assert body["error"] == "invalid signature"
    # The req that was signed must be the req that is sent.
    tampered = _form()
    tampered["req"] = json.dumps({**json.loads(tampered["req"]), "region": "roubaix"})
    assert (await _post(api, "/plan/list/", tampered))["error"] == "invalid signature"
    # The nonce is signed too.
    moved = _form()
    moved["nonce"] = str(int(moved["nonce"]) + 1)
    assert (await _post(api, "/plan/list/", moved))["error"] == "invalid signature"


async def test_wrong_partial_key_and_api_id(api: httpx.AsyncClient) -> None:
    nonce = str(int(time.time()))
    second_half = {"api_id": LUNANODE_API_ID, "api_partialkey": LUNANODE_API_KEY[64:]}
    body = await _post(api, "/plan/list/", _manual("plan/list/", second_half, nonce))
    assert body == {"success": "no", "error": "invalid api_partialkey"}
    whole_key = {"api_id": LUNANODE_API_ID, "api_partialkey": LUNANODE_API_KEY}
    body = await _post(api, "/plan/list/", _manual("plan/list/", whole_key, nonce))
    assert body["error"] == "invalid api_partialkey"
    other_id = {"api_id": "X" * 16, "api_partialkey": LUNANODE_API_KEY[:64]}
    body = await _post(api, "/plan/list/", _manual("plan/list/", other_id, nonce))
    assert body == {"success": "no", "error": "invalid api_id"}
    missing = await _post(api, "/plan/list/",
                          _manual("plan/list/", {"api_partialkey": LUNANODE_API_KEY[:64]}, nonce))
    assert missing["error"] == "required parameter api_id not set"
    missing = await _post(api, "/plan/list/",
                          _manual("plan/list/", {"api_id": LUNANODE_API_ID}, nonce))
    assert missing["error"] == "required parameter api_partialkey not set"


async def test_nonce_window(api: httpx.AsyncClient, admin: httpx.AsyncClient) -> None:
    now = int(time.time())
    stale = await _post(api, "/plan/list/", lunanode_form("plan", "list", nonce=now - 301))
    assert stale == {"success": "no", "error": "invalid nonce: too old"}
    future = await _post(api, "/plan/list/", lunanode_form("plan", "list", nonce=now + 400))
    assert future == {"success": "no", "error": "invalid nonce: too far in the future"}
    near = await _post(api, "/plan/list/", lunanode_form("plan", "list", nonce=now - 200))
    assert near["success"] == "yes"
    garbage = await _post(api, "/plan/list/", lunanode_form("plan", "list", nonce="12ab"))
    assert garbage == {"success": "no", "error": "invalid nonce"}
    # The tolerance is a knob (real seconds).
    assert (await admin.put("/config", json={"nonce_tolerance": 1000})).status_code == 200
    assert (await _post(api, "/plan/list/",
                        lunanode_form("plan", "list", nonce=now - 900)))["success"] == "yes"


async def test_repeated_and_decreasing_nonces(
    api: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    """Clients send several calls within one second with the same nonce: accepted.  Only
    with nonce_must_increase is a lower nonce than one already seen refused."""
    now = int(time.time())
    for _ in range(3):
        assert (await _post(api, "/plan/list/",
                            lunanode_form("plan", "list", nonce=now)))["success"] == "yes"
    assert (await _post(api, "/plan/list/",
                        lunanode_form("plan", "list", nonce=now - 5)))["success"] == "yes"
    await admin.put("/config", json={"nonce_must_increase": True})
    lower = await _post(api, "/plan/list/", lunanode_form("plan", "list", nonce=now - 5))
    assert lower == {"success": "no", "error": "invalid nonce: lower than a previous request's"}
    same = await _post(api, "/plan/list/", lunanode_form("plan", "list", nonce=now))
    assert same["success"] == "yes"
    assert (await admin.delete("/nonces")).status_code == 200
    assert (await _post(api, "/plan/list/",
                        lunanode_form("plan", "list", nonce=now - 5)))["success"] == "yes"


async def test_missing_form_fields(api: httpx.AsyncClient) -> None:
    form = _form()
    for name in ("req", "signature", "nonce"):
        partial = {k: v for k, v in form.items() if k != name}
        body = await _post(api, "/plan/list/", partial)
        assert body == {"success": "no", "error": f"required parameter {name} not set"}
    assert (await _post(api, "/plan/list/", {}))["error"] == "required parameter req not set"
    # JSON instead of a form is not the scheme: nothing is read.
    response = await api.post("/plan/list/", json=form)
    assert response.status_code == 200
    assert response.json()["error"] == "required parameter req not set"


async def test_req_must_be_a_json_object(api: httpx.AsyncClient) -> None:
    nonce = str(int(time.time()))
    for raw in ("not json", "[1, 2]", '"x"'):
        form = {"req": raw, "nonce": nonce, "signature": sign(LUNANODE_API_KEY, "plan/list/", raw,
                                                              nonce)}
        body = await _post(api, "/plan/list/", form)
        assert body == {"success": "no",
                        "error": "invalid request message: req must be a JSON object"}


async def test_paths_aliases_and_transport_errors(api: httpx.AsyncClient) -> None:
    # Without the trailing slash the handler path that is signed still has it.
    assert (await _post(api, "/plan/list", _form()))["success"] == "yes"
    # Newer clients write underscored actions with a dash; the signed path is the URL's.
    form = lunanode_form("securitygroup", "rule-list", {"region": "toronto", "group_id": "1"})
    body = await _post(api, "/securitygroup/rule-list/", form)
    assert body == {"success": "no", "error": "invalid security group"}
    unknown = await _post(api, "/vm/frobnicate/", lunanode_form("vm", "frobnicate"))
    assert unknown == {"success": "no", "error": "unknown action: vm/frobnicate"}
    category = await _post(api, "/nosuch/list/", lunanode_form("nosuch", "list"))
    assert category == {"success": "no", "error": "unknown category: nosuch"}
    volume = await _post(api, "/volume/list/", lunanode_form("volume", "list",
                                                             {"region": "toronto"}))
    assert volume == {"success": "no", "error": "volume/list is not supported by this simulator"}
    # An unknown action still needs a valid signature first.
    assert (await _post(api, "/vm/frobnicate/", _form()))["error"] == "invalid signature"
    get = await api.get("/plan/list/")
    assert get.status_code == 405 and get.json() == {
        "success": "no", "error": "method not allowed (use POST)"}
    assert "POST" in get.headers["Allow"]
    nowhere = await api.post("/plan/", data=_form())
    assert nowhere.status_code == 404 and nowhere.json()["success"] == "no"


def test_constructor_checks_credentials() -> None:
    for api_id, api_key in (("short", LUNANODE_API_KEY), (LUNANODE_API_ID, "k" * 127),
                            ("with space 12345", LUNANODE_API_KEY), (LUNANODE_API_ID, "")):
        try:
            LunaNodeSimulator(api_id, api_key)
        except ValueError:
            continue
        raise AssertionError(f"accepted {api_id!r} / {len(api_key)}-character key")
