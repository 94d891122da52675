"""Plans, regions, images and SSH keys."""

from __future__ import annotations

import base64
import hashlib
import os

import httpx
import pytest

from cloudsim.testing import nokyc_ssh_public_key

from .test_nokyc_auth import assert_envelope


def _blob(*parts: bytes) -> str:
    return base64.b64encode(b"".join(len(p).to_bytes(4, "big") + p for p in parts)).decode()


RSA_KEY = "ssh-rsa " + _blob(b"ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xc3" * 256) + " rsa@x"
ECDSA_KEY = "ecdsa-sha2-nistp256 " + _blob(b"ecdsa-sha2-nistp256", b"nistp256",
                                           b"\x04" + os.urandom(64))


async def test_plans(api: httpx.AsyncClient) -> None:
    plans = (await api.get("/plans")).json()["data"]
    by_id = {p["id"]: p for p in plans}
    assert {"vps-s1", "vps-s2", "vps-m4", "vps-l8"} <= set(by_id)
    s1 = by_id["vps-s1"]
    assert set(s1) == {"id", "object", "category", "cpu", "cpu_model", "ram_mb", "disk_gb",
                       "transfer_tb", "price_usd_month", "price_usd_hour", "available_in"}
    assert (s1["object"], s1["category"], s1["cpu"], s1["ram_mb"], s1["disk_gb"]) == (
        "plan", "vps", 1, 1024, 25)
    assert (by_id["vps-s2"]["cpu"], by_id["vps-s2"]["ram_mb"], by_id["vps-s2"]["disk_gb"]) == (
        2, 2048, 50)
    assert (by_id["vps-m4"]["ram_mb"], by_id["vps-l8"]["disk_gb"]) == (8192, 320)
    for plan in plans:  # money: two decimals
        for price in (plan["price_usd_hour"], plan["price_usd_month"]):
            assert round(price, 2) == price and price > 0
    assert any(set(p["available_in"]) != {"par", "rkv", "zrh", "buh"} for p in plans)
    assert (await api.get("/plans/vps-m4")).json() == by_id["vps-m4"]
    assert_envelope(await api.get("/plans/vps-xl"), 404, "not_found")


async def test_regions(api: httpx.AsyncClient) -> None:
    regions = (await api.get("/regions")).json()["data"]
    assert [(r["id"], r["name"], r["country"]) for r in regions] == [
        ("par", "Paris", "FR"), ("rkv", "Reykjavík", "IS"), ("zrh", "Zürich", "CH"),
        ("buh", "Bucharest", "RO"),
    ]
    for region in regions:
        assert set(region) == {"id", "object", "name", "country", "pop_id", "available",
                               "ipv4_pool_remaining", "tor_onion"}
        assert region["object"] == "region" and region["pop_id"] == f"nky-{region['id']}-01"
        assert isinstance(region["ipv4_pool_remaining"], int) and region["available"] is True
        onion = region["tor_onion"]
        assert onion is None or (onion.endswith(".onion") and len(onion) == 62)
    assert (await api.get("/regions/zrh")).json()["name"] == "Zürich"
    assert_envelope(await api.get("/regions/fra"), 404, "not_found")


async def test_images(api: httpx.AsyncClient) -> None:
    images = {i["id"]: i for i in (await api.get("/images")).json()["data"]}
    debian = images["debian-13-minimal"]
    assert set(debian) == {"id", "object", "type", "family", "version", "variant", "arch",
                           "size_gb", "cloud_init", "released_at", "deprecated_at"}
    assert (debian["object"], debian["type"], debian["family"], debian["version"],
            debian["variant"]) == ("image", "official", "debian", "13", "minimal")
    assert images["ubuntu-24.04-cloud"]["version"] == "24.04"
    assert images["debian-13-minimal"]["deprecated_at"] is None
    assert_envelope(await api.get("/images/custom_0000"), 404, "not_found")


async def test_ssh_keys(api: httpx.AsyncClient) -> None:
    public = nokyc_ssh_public_key("me@laptop")
    created = await api.post("/ssh-keys", json={"name": "laptop", "public_key": public})
    assert created.status_code == 201
    key = created.json()
    blob = base64.b64decode(public.split()[1])
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert key["fingerprint"] == fingerprint
    assert (key["object"], key["type"], key["public_key"]) == ("ssh_key", "ssh-ed25519", public)
    assert key["id"].startswith("k_")
    listed = (await api.get("/ssh-keys")).json()["data"]
    assert listed == [{k: v for k, v in key.items() if k != "public_key"}]
    assert (await api.get(f"/ssh-keys/{key['id']}")).json() == key

    duplicate = await api.post("/ssh-keys", json={"name": "again", "public_key": public})
    error = assert_envelope(duplicate, 409, "conflict_state")
    assert error["errors"][0]["existing"] == key["id"]

    for public_key, key_type in ((RSA_KEY, "ssh-rsa"), (ECDSA_KEY, "ecdsa-sha2-nistp256")):
        other = await api.post("/ssh-keys", json={"name": "k", "public_key": public_key})
        assert other.status_code == 201 and other.json()["type"] == key_type

    assert (await api.delete(f"/ssh-keys/{key['id']}")).status_code == 204
    assert_envelope(await api.get(f"/ssh-keys/{key['id']}"), 404, "not_found")


@pytest.mark.parametrize(
    "public_key",
    [
        "",
        "not a key",
        "ssh-ed25519",
        "ssh-ed25519 !!!notbase64",
        "ssh-dss " + _blob(b"ssh-dss", b"p", b"q", b"g", b"y"),
        "ssh-ed25519 " + _blob(b"ssh-rsa", b"\x00" * 32),  # type mismatch
        "ssh-ed25519 " + _blob(b"ssh-ed25519", b"\x00" * 31),  # short key
        "ssh-ed25519 " + _blob(b"ssh-ed25519", b"\x00" * 32, b"extra"),
        "ssh-rsa " + _blob(b"ssh-rsa", b"\x01\x00\x01", b"\x00" + b"\xc3" * 64),  # 512 bits
        "ecdsa-sha2-nistp384 " + _blob(b"ecdsa-sha2-nistp384", b"nistp256",
                                       b"\x04" + b"\x01" * 64),
    ],
)
async def test_bad_public_keys(api: httpx.AsyncClient, public_key: str) -> None:
    error = assert_envelope(await api.post("/ssh-keys", json={"name": "k",
                                                              "public_key": public_key}),
                            400, "invalid_request")
    assert error["errors"][0]["field"] == "public_key"


async def test_ssh_key_body(api: httpx.AsyncClient) -> None:
    error = assert_envelope(await api.post("/ssh-keys", json={
        "public_key": nokyc_ssh_public_key(), "fingerprint": "SHA256:x", "label": "x"}),
        400, "invalid_request")
    assert error["errors"] == [
        {"field": "fingerprint", "issue": "read_only"},
        {"field": "label", "issue": "unknown_field"},
        {"field": "name", "issue": "required"},
    ]
