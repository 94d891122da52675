from __future__ import annotations

from cube_operator.api import CubeSpec
from cube_operator.controllers.cube import cost_text, immutable_drift, ready_for
from cube_operator.providers import ObservedVM
from cube_operator.providers.krova import KrovaCube
from cube_operator.providers.krova.mapping import observed_vm


def cube(**overrides: object) -> ObservedVM:
    body = {"id": "cube_1", "name": "web", "state": "running", "publicIpv4": "1.2.3.4",
            "resources": {"vcpu": 2, "ramGb": 4, "diskGb": 30}, "image": "ubuntu-24.04",
            "costPerHour": 0.0135, "createdAt": "2026-05-01T12:00:00.000Z",
            "updatedAt": "2026-05-01T12:00:00.000Z"}
    body.update(overrides)
    return observed_vm(KrovaCube.model_validate(body))


SPEC = CubeSpec.model_validate({"providerConfigRef": {"name": "krova"}, "image": "ubuntu-24.04",
                                "resources": {"vcpu": 2, "ramGb": 4, "diskGb": 30}})


def test_ready_follows_the_desired_power_state() -> None:
    assert ready_for(cube(), "Running")[:2] == (True, "Running")
    assert ready_for(cube(state="sleeping"), "Stopped")[:2] == (True, "Stopped")
    assert ready_for(cube(state="pending"), "Running")[:2] == (False, "Provisioning")
    assert ready_for(cube(state="error"), "Running")[:2] == (False, "ProviderError")
    assert ready_for(cube(state="teleporting"), "Running")[:2] == (False, "Converging")


def test_immutable_drift_names_the_field() -> None:
    assert immutable_drift(SPEC, cube()) is None
    message = immutable_drift(SPEC, cube(image="debian-12"))
    assert message and "spec.image" in message and "debian-12" in message
    assert "spec.resources" in (immutable_drift(SPEC, cube(resources={"vcpu": 4, "ramGb": 4,
                                                                                     "diskGb": 30})) or "")


def test_cost_is_printed_without_float_noise() -> None:
    assert cost_text(0.0135) == "0.0135"
    assert cost_text(0.1 + 0.2) == "0.3"
    assert cost_text(None) is None
