"""The Krova models parse the seed's example bodies and spec-shaped bodies, with extra
unknown fields, and normalise states without ever raising."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cube_operator.providers.krova import (
    CreateCubeRequest,
    CubeState,
    Domain,
    Image,
    KrovaCube,
    Pricing,
    Region,
    Resources,
    Snapshot,
    TcpMapping,
    Webhook,
    WebhookDelivery,
    WebhookWithSecret,
    normalize_state,
)

# -- the seed's example responses, verbatim --------------------------------------------

SEED_LIST_CUBES: dict[str, Any] = {
    "cubes": [
        {
            "id": "cube_abc123",
            "name": "my-api-server",
            "state": "running",
            "publicIpv4": "1.2.3.4",
            "resources": {"vcpu": 2, "ramGb": 4, "diskGb": 30},
            "image": "ubuntu-24.04",
            "costPerHour": 0.0135,
            "createdAt": "2026-05-01T12:00:00.000Z",
            "updatedAt": "2026-05-01T12:05:00.000Z",
        }
    ],
    "pagination": {"page": 1, "limit": 10, "total": 1, "totalPages": 1},
}

SEED_CREATED_CUBE: dict[str, Any] = {
    "id": "cube_abc123",
    "name": "my-api-server",
    "state": "pending",
    "publicIpv4": None,
    "resources": {"vcpu": 2, "ramGb": 4, "diskGb": 30},
    "image": "ubuntu-24.04",
    "costPerHour": 0.0135,
    "createdAt": "2026-05-04T08:00:00.000Z",
    "updatedAt": "2026-05-04T08:00:00.000Z",
}

SEED_GET_CUBE: dict[str, Any] = {
    **SEED_LIST_CUBES["cubes"][0],
    "serverDomain": "sv1.eu-nuremberg.krova.cloud",
}

SEED_TCP = {
    "id": "tcp_abc",
    "cubeId": "cube_abc",
    "cubePort": 5432,
    "hostPort": 30001,
    "label": "postgres",
    "status": "active",
    "isSsh": False,
    "createdAt": "2026-05-04T08:00:00.000Z",
    "updatedAt": "2026-05-04T08:00:00.000Z",
    "whitelistedIps": [{"id": "wl_abc", "cidr": "1.2.3.4/32"}],
}

SEED_SNAPSHOT = {
    "id": "snap_abc",
    "cubeId": "cube_abc",
    "spaceId": "sp_xyz",
    "name": "before-upgrade",
    "status": "complete",
    "sizeBytes": 1234567890,
    "kind": "manual",
    "completedAt": "2026-05-04T08:01:30.000Z",
    "createdAt": "2026-05-04T08:00:00.000Z",
}

SEED_DOMAIN = {
    "id": "dm_abc",
    "cubeId": "cube_abc",
    "domain": "api.example.com",
    "port": 8080,
    "status": "active",
    "createdAt": "2026-05-04T08:00:00.000Z",
    "updatedAt": "2026-05-04T08:00:00.000Z",
}

SEED_WEBHOOK_CREATED = {
    "id": "wh_abc",
    "url": "https://example.com/hooks/krova",
    "events": ["cube.running", "cube.sleeping", "cube.error", "cube.deleted"],
    "enabled": True,
    "secret": "a3f2...deadbeef",
    "createdAt": "2026-05-04T08:00:00.000Z",
    "updatedAt": "2026-05-04T08:00:00.000Z",
}

SEED_DELIVERY = {
    "id": "dlv_abc",
    "event": "cube.running",
    "status": "delivered",
    "attempts": 1,
    "lastAttemptAt": "2026-05-04T08:05:00.000Z",
    "responseStatus": 200,
    "createdAt": "2026-05-04T08:05:00.000Z",
}

SEED_PRICING = {
    "currency": "USD",
    "rates": {"vcpuPerHour": 0.001, "ramGbPerHour": 0.0025, "diskGbPerHour": 0.00005},
    "tiers": [
        {"minVcpus": 1, "maxVcpus": 2, "multiplier": 1.00, "label": "Standard"},
        {"minVcpus": 3, "maxVcpus": 4, "multiplier": 0.95, "label": "Plus"},
        {"minVcpus": 5, "maxVcpus": 8, "multiplier": 0.85, "label": "Pro"},
        {"minVcpus": 9, "maxVcpus": None, "multiplier": 0.80, "label": "Enterprise"},
    ],
    "note": "Running Cubes pay vCPU + RAM + disk per hour; ...",
}

# -- spec-shaped bodies (all required spec fields) plus fields neither document knows ----

SPEC_CUBE = {
    "id": "cube_def456",
    "name": "worker",
    "state": "stopped",
    "publicIpv4": "5.6.7.8",
    "resources": {"vcpu": 4, "ramGb": 7.5, "diskGb": 80},
    "image": "debian-12",
    "sshUser": "debian",
    "costPerHour": 0.02,
    "serverDomain": None,
    "terminationProtection": True,
    "terminationProtectionChangedAt": "2026-05-02T10:00:00.000Z",
    "terminationProtectionChangedBy": "user:u_1",
    "createdAt": "2026-05-01T12:00:00Z",
    "updatedAt": "2026-05-02T12:00:00+00:00",
    "gpu": {"model": "future-thing"},
}

SPEC_TCP = {
    **SEED_TCP,
    "host": "cube-abc.krova.cloud",
    "udpEnabled": True,
    "isSsh": True,
    "whitelistedIps": [],
    "futureField": 1,
}

SPEC_DOMAIN = {
    **SEED_DOMAIN,
    "port": None,
    "ingressStatus": None,
    "securityHeadersMode": "enforced",
    "responseHeaderTimeoutSecs": 60,
    "responseHeaderOverrides": None,
    "requestHeaderOverrides": None,
    "maxRequestBodyMb": None,
    "responseCompression": False,
    "ipAllowList": None,
    "ipDenyList": None,
    "basicAuthUser": None,
    "basicAuthEnabled": False,
    "corsConfig": None,
    "isWildcard": False,
    "wildcardCertState": None,
    "acmeDelegationTarget": None,
}

SPEC_SNAPSHOT = {
    "id": "snap_def",
    "cubeId": "cube_def456",
    "name": "auto-2026-05-04",
    "sizeBytes": None,
    "status": "pending",
    "kind": "scheduled",
    "createdAt": "2026-05-04T08:00:00.000Z",
}


def test_seed_list_cube() -> None:
    cube = KrovaCube.model_validate(SEED_LIST_CUBES["cubes"][0])
    assert cube.id == "cube_abc123"
    assert cube.state is CubeState.RUNNING
    assert cube.raw_state == "running"
    assert cube.public_ipv4 == "1.2.3.4"
    assert cube.resources == Resources(vcpu=2, ram_gb=4, disk_gb=30)
    assert cube.cost_per_hour == 0.0135
    assert cube.server_domain is None
    assert cube.ssh_user is None
    assert cube.created_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_seed_created_and_get_cube() -> None:
    created = KrovaCube.model_validate(SEED_CREATED_CUBE)
    assert created.state is CubeState.PENDING
    assert created.public_ipv4 is None
    got = KrovaCube.model_validate(SEED_GET_CUBE)
    assert got.server_domain == "sv1.eu-nuremberg.krova.cloud"


def test_spec_cube_with_unknown_fields() -> None:
    cube = KrovaCube.model_validate(SPEC_CUBE)
    assert cube.state is CubeState.STOPPED
    assert cube.ssh_user == "debian"
    assert cube.termination_protection is True
    assert cube.resources.ram_gb == 7.5
    assert not hasattr(cube, "gpu")


@pytest.mark.parametrize(
    "raw,state",
    [
        ("sleeping", CubeState.STOPPED),
        ("stopped", CubeState.STOPPED),
        ("Running", CubeState.RUNNING),
        (" booting ", CubeState.BOOTING),
        ("pending", CubeState.PENDING),
        ("stopping", CubeState.STOPPING),
        ("resizing", CubeState.RESIZING),
        ("error", CubeState.ERROR),
        ("deleted", CubeState.DELETED),
        ("migrating", CubeState.UNKNOWN),
        ("", CubeState.UNKNOWN),
        (None, CubeState.UNKNOWN),
        (42, CubeState.UNKNOWN),
    ],
)
def test_normalize_state(raw: object, state: CubeState) -> None:
    assert normalize_state(raw) is state


@pytest.mark.parametrize("raw", ["sleeping", "stopped"])
def test_sleeping_and_stopped_are_alike(raw: str) -> None:
    cube = KrovaCube.model_validate({**SEED_CREATED_CUBE, "state": raw})
    assert cube.state is CubeState.STOPPED
    assert cube.raw_state == raw


def test_unknown_state_is_kept_raw_not_a_crash() -> None:
    cube = KrovaCube.model_validate({**SEED_CREATED_CUBE, "state": "hibernating"})
    assert cube.state is CubeState.UNKNOWN
    assert cube.raw_state == "hibernating"
    missing = KrovaCube.model_validate({k: v for k, v in SEED_CREATED_CUBE.items() if k != "state"})
    assert missing.state is CubeState.UNKNOWN
    assert missing.raw_state == ""


def test_cube_built_in_python_keeps_raw_state() -> None:
    cube = KrovaCube(
        id="c",
        name="n",
        state=CubeState.RUNNING,
        resources=Resources(vcpu=1, ram_gb=1, disk_gb=10),
        image="ubuntu-24.04",
    )
    assert cube.raw_state == "running"
    snake = KrovaCube.model_validate(
        {
            "id": "c",
            "name": "n",
            "state": "sleeping",
            "public_ipv4": "9.9.9.9",
            "resources": {"vcpu": 1, "ram_gb": 1, "disk_gb": 10},
            "image": "ubuntu-24.04",
        }
    )
    assert snake.state is CubeState.STOPPED
    assert snake.raw_state == "sleeping"
    assert snake.public_ipv4 == "9.9.9.9"
    copy = snake.model_copy(update={"public_ipv4": "1.1.1.1"})
    assert copy.state is CubeState.STOPPED
    assert copy.raw_state == "sleeping"


def test_tcp_mapping_flattens_whitelist() -> None:
    mapping = TcpMapping.model_validate(SEED_TCP)
    assert mapping.whitelisted_ips == ["1.2.3.4/32"]
    assert mapping.cube_port == 5432
    assert mapping.host_port == 30001
    assert mapping.is_ssh is False
    assert mapping.host is None
    spec = TcpMapping.model_validate(SPEC_TCP)
    assert spec.is_ssh is True
    assert spec.host == "cube-abc.krova.cloud"
    assert spec.udp_enabled is True
    assert spec.whitelisted_ips == []
    assert TcpMapping.model_validate(
        {**SEED_TCP, "whitelistedIps": ["10.0.0.0/8"]}
    ).whitelisted_ips == ["10.0.0.0/8"]
    assert TcpMapping.model_validate({**SEED_TCP, "whitelistedIps": None}).whitelisted_ips == []


def test_snapshots() -> None:
    snap = Snapshot.model_validate(SEED_SNAPSHOT)
    assert snap.size_bytes == 1234567890
    assert snap.completed_at == datetime(2026, 5, 4, 8, 1, 30, tzinfo=UTC)
    spec = Snapshot.model_validate(SPEC_SNAPSHOT)
    assert spec.size_bytes is None
    assert spec.completed_at is None
    assert spec.status == "pending"


def test_domains() -> None:
    domain = Domain.model_validate(SEED_DOMAIN)
    assert (domain.domain, domain.port, domain.status) == ("api.example.com", 8080, "active")
    assert domain.records == []
    spec = Domain.model_validate(
        {
            **SPEC_DOMAIN,
            "records": [
                {
                    "id": "routing",
                    "type": "CNAME",
                    "host": "api.example.com",
                    "value": "dns.krova.cloud",
                    "purpose": "routing",
                    "mustBeGrey": True,
                    "proxyOk": False,
                }
            ],
        }
    )
    assert spec.port is None
    assert spec.records[0].value == "dns.krova.cloud"


def test_webhooks() -> None:
    created = WebhookWithSecret.model_validate(SEED_WEBHOOK_CREATED)
    assert created.secret.get_secret_value() == "a3f2...deadbeef"
    assert "deadbeef" not in repr(created)
    assert "deadbeef" not in str(created)
    assert "cube.sleeping" in created.events
    plain = Webhook.model_validate({k: v for k, v in SEED_WEBHOOK_CREATED.items() if k != "secret"})
    assert plain.enabled is True
    delivery = WebhookDelivery.model_validate(SEED_DELIVERY)
    assert delivery.response_status == 200
    assert delivery.attempts == 1
    pending = WebhookDelivery.model_validate(
        {**SEED_DELIVERY, "status": "pending", "lastAttemptAt": None, "responseStatus": None}
    )
    assert pending.last_attempt_at is None


def test_catalogue() -> None:
    region = Region.model_validate(
        {"id": "abc123...", "name": "Germany (Nuremberg)", "slug": "eu-nuremberg", "x": 1}
    )
    assert region.slug == "eu-nuremberg"
    seed_image = Image.model_validate(
        {
            "id": "ubuntu-24.04",
            "name": "Ubuntu 24.04 LTS",
            "version": "24.04",
            "description": "Ubuntu 24.04 LTS (Debian-based)",
        }
    )
    assert seed_image.default_user is None
    spec_image = Image.model_validate({**seed_image.model_dump(), "defaultUser": "ubuntu"})
    assert spec_image.default_user == "ubuntu"
    pricing = Pricing.model_validate(SEED_PRICING)
    assert pricing.rates.ram_gb_per_hour == 0.0025
    assert pricing.tiers[-1].max_vcpus is None
    assert pricing.tiers[1].multiplier == 0.95


def test_create_request_wire_format() -> None:
    request = CreateCubeRequest(
        name="my-api-server",
        image="ubuntu-24.04",
        resources=Resources(vcpu=2, ram_gb=4, disk_gb=30),
        ssh_public_key="ssh-ed25519 AAAA... user@host",
        region="eu-nuremberg",
        user_data="#cloud-config\npackages:\n - nginx\n",
    )
    assert request.to_wire() == {
        "name": "my-api-server",
        "resources": {"vcpu": 2, "ramGb": 4, "diskGb": 30},
        "image": "ubuntu-24.04",
        "sshPublicKey": "ssh-ed25519 AAAA... user@host",
        "region": "eu-nuremberg",
        "userData": "#cloud-config\npackages:\n - nginx\n",
    }
    minimal = CreateCubeRequest(
        name="a",
        image="ubuntu-24.04",
        resources=Resources(vcpu=1, ram_gb=0.5, disk_gb=10),
        ssh_public_key="ssh-rsa AAAA",
    )
    assert minimal.to_wire() == {
        "name": "a",
        "image": "ubuntu-24.04",
        "resources": {"vcpu": 1, "ramGb": 0.5, "diskGb": 10},
        "sshPublicKey": "ssh-rsa AAAA",
    }


def test_create_request_hides_user_data_from_repr() -> None:
    request = CreateCubeRequest(
        name="a",
        image="i",
        resources=Resources(vcpu=1, ram_gb=1, disk_gb=10),
        ssh_public_key="ssh-ed25519 A",
        user_data="#cloud-config\npassword: hunter2\n",
    )
    assert "hunter2" not in repr(request)
    assert "hunter2" not in str(request)


def test_create_request_accepts_camel_case_and_validates_name() -> None:
    request = CreateCubeRequest.model_validate(
        {
            "name": "x",
            "image": "i",
            "resources": {"vcpu": 1, "ramGb": 1, "diskGb": 10},
            "sshPublicKey": "ssh-ed25519 A",
        }
    )
    assert request.ssh_public_key == "ssh-ed25519 A"
    with pytest.raises(ValueError):
        CreateCubeRequest(
            name="",
            image="i",
            resources=Resources(vcpu=1, ram_gb=1, disk_gb=10),
            ssh_public_key="k",
        )
