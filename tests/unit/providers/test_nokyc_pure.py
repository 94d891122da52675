"""NoKYC's pure pieces: names, fingerprints, plan choice, the error envelope, the rules a
TcpMapping becomes, and the webhook verifier."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from cube_operator.providers import (
    Resources,
    SpecRejected,
    VMSpec,
    WebhookRejected,
    WebhookRejection,
)
from cube_operator.providers.nokyc import (
    choose_plan,
    error_envelope,
    fingerprint,
    sign,
    verify,
    vm_name,
)
from cube_operator.providers.nokyc.models import FirewallGroup, Plan
from cube_operator.providers.nokyc.provider import NoKycProvider

PLANS = [
    Plan(id="vps-s1", cpu=1, ram_mb=1024, disk_gb=25, price_usd_hour=0.006, available_in=["par", "zrh"]),
    Plan(id="vps-s2", cpu=2, ram_mb=2048, disk_gb=50, price_usd_hour=0.012, available_in=["par", "zrh", "rkv"]),
    Plan(id="vps-m4", cpu=4, ram_mb=8192, disk_gb=160, price_usd_hour=0.04, available_in=["par"]),
]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx9V2bHg0c1ZQo2kD1nXhY0D2bH8r9sQ1e0u9m1a2b3 me@host"


def spec(**kw: object) -> VMSpec:
    base: dict[str, object] = {"name": "web", "image": "debian-13-minimal", "ssh_public_key": KEY}
    base.update(kw)
    return VMSpec(**base)  # type: ignore[arg-type]


def test_names_follow_nokyc_rules() -> None:
    assert vm_name("web-1") == "web-1"
    assert vm_name("api.team-a") == "api-team-a"
    assert vm_name("1st") == "c-1st"
    long = vm_name("a" * 100)
    assert len(long) == 63 and long == vm_name("a" * 100)


def test_fingerprint_is_openssh_sha256() -> None:
    blob = base64.b64decode(KEY.split()[1])
    expected = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert fingerprint(KEY) == expected
    with pytest.raises(SpecRejected):
        fingerprint("ssh-ed25519 not-base64!!")


def test_the_cheapest_fitting_plan_in_the_region_is_chosen() -> None:
    assert choose_plan(PLANS, spec(resources=Resources(1, 1, 20))).id == "vps-s1"
    assert choose_plan(PLANS, spec(resources=Resources(2, 2, 30), region="rkv")).id == "vps-s2"
    assert choose_plan(PLANS, spec(plan="vps-m4")).id == "vps-m4"
    with pytest.raises(SpecRejected) as none_fits:
        choose_plan(PLANS, spec(resources=Resources(16, 64, 500), region="par"))
    assert "spec.resources" in none_fits.value.message and "vps-m4" in none_fits.value.message
    with pytest.raises(SpecRejected) as unknown:
        choose_plan(PLANS, spec(plan="vps-xxl"))
    assert "vps-s1, vps-s2, vps-m4" in unknown.value.message or "vps-m4, vps-s1, vps-s2" in unknown.value.message


def test_the_error_envelope_keeps_fields_and_request_id() -> None:
    body = json.dumps({"error": {"code": "invalid_request", "message": "ssh_keys must contain a key.",
                                 "errors": [{"field": "ssh_keys", "issue": "min_items", "min": 1}],
                                 "request_id": "req_2f8b"}}).encode()
    message, code = error_envelope(body)
    assert code == "invalid_request"
    assert message == "ssh_keys must contain a key. (ssh_keys: min_items) [request_id req_2f8b]"
    assert error_envelope(b"<html>404</html>") == (None, None)
    assert error_envelope(b'{"error": "plain"}') == (None, None)


def test_an_allowlist_becomes_accepts_then_drops_and_parses_back() -> None:
    rules = NoKycProvider.rules_for(5432, "db", ["10.0.0.0/8", "2001:db8::/32"])
    assert [(r.source, r.action) for r in rules] == [
        ("10.0.0.0/8", "accept"), ("2001:db8::/32", "accept"), ("0.0.0.0/0", "drop"), ("::/0", "drop")]
    assert all(r.port == "5432" and r.proto == "tcp" and r.direction == "in" for r in rules)
    open_to_all = NoKycProvider.rules_for(80, None, [])
    assert [(r.source, r.action) for r in open_to_all] == [("0.0.0.0/0", "accept"), ("::/0", "accept")]
    foreign = {"direction": "in", "proto": "tcp", "port": "22", "source": "0.0.0.0/0", "action": "accept",
               "note": "someone else's"}
    group = FirewallGroup.model_validate({
        "id": "fwg_1", "name": "cube-operator-srv_1", "applied_to": ["srv_1"], "default_action": "accept",
        "rules": [foreign] + [r.model_dump() for r in rules + open_to_all]})
    provider = NoKycProvider.__new__(NoKycProvider)
    exposures = {e.vm_port: e for e in provider._exposures(group, "srv_1", "198.51.100.7")}
    assert set(exposures) == {80, 5432}  # the foreign rule is not ours
    assert exposures[5432].allowed_cidrs == ("10.0.0.0/8", "2001:db8::/32") and exposures[5432].label == "db"
    assert exposures[80].allowed_cidrs == () and exposures[80].host == "198.51.100.7"
    assert exposures[5432].host_port == 5432 and exposures[5432].active


SECRET = "whsec_test"
BODY = json.dumps({"id": "evt_1", "type": "server.running", "data": {"server": {"id": "srv_1"}}}).encode()


def test_deliveries_verify_with_five_minutes_tolerance() -> None:
    now = 1_800_000_000
    headers = {"X-Nokyc-Signature": sign(SECRET, BODY, now), "X-Nokyc-Delivery-Id": "del_1"}
    event = verify(headers, BODY, SECRET, now + 299)
    assert (event.vm_id, event.event, event.delivery_id) == ("srv_1", "server.running", "del_1")
    expected = hmac.new(SECRET.encode(), f"{now}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert headers["X-Nokyc-Signature"] == f"t={now},v1={expected}"
    for bad, reason in (
        ({**headers, "X-Nokyc-Signature": sign("other", BODY, now)}, WebhookRejection.BAD_SIGNATURE),
        ({**headers, "X-Nokyc-Signature": sign(SECRET, BODY, now - 301)}, WebhookRejection.STALE_TIMESTAMP),
        ({"X-Nokyc-Delivery-Id": "del_1"}, WebhookRejection.MISSING_SIGNATURE),
        ({"X-Nokyc-Signature": headers["X-Nokyc-Signature"]}, WebhookRejection.MALFORMED),
    ):
        with pytest.raises(WebhookRejected) as caught:
            verify(bad, BODY, SECRET, now)
        assert caught.value.reason is reason
    gone = json.dumps({"type": "server.destroyed", "data": {"server": {"id": "srv_9"}}}).encode()
    assert verify({"X-Nokyc-Signature": sign(SECRET, gone, now), "X-Nokyc-Delivery-Id": "d"},
                  gone, SECRET, now).vm_gone
