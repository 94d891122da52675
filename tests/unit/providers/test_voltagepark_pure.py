"""Voltage Park's pure pieces: FastAPI errors, preset choice, cloud-init conversion."""
from __future__ import annotations

import json

import pytest

from cube_operator.providers import Gpus, NoCapacity, Resources, SpecRejected, VMSpec
from cube_operator.providers.voltagepark import choose_preset, cloud_init_of, fastapi_error
from cube_operator.providers.voltagepark.models import Preset

SEA, ALN = "sea", "aln"


def preset(pid: str, gpus: int, vcpu: int, rate: str, where: list[str], os: str = "Ubuntu 22.04 LTS") -> Preset:
    return Preset.model_validate({"id": pid, "operating_system": os, "compute_rate_hourly": rate,
                                  "storage_rate_hourly": "0.01", "location_ids_with_availability": where,
                                  "resources": {"gpus": {"h100-sxm5-80gb": {"count": gpus}}, "vcpu_count": vcpu,
                                                "ram_gb": 16 * gpus, "storage_gb": 40 * gpus}})


PRESETS = [preset("one", 1, 4, "2.5", [SEA]), preset("one-big", 1, 16, "3.5", [SEA, ALN]),
           preset("two", 2, 8, "5.0", [ALN])]


def spec(**kw: object) -> VMSpec:
    base: dict[str, object] = {"name": "g", "image": "Ubuntu 22.04 LTS", "resources": Resources(4, 16, 40),
                               "gpus": Gpus("h100-sxm5-80gb", 1), "ssh_public_key": "ssh-ed25519 AAAA x"}
    base.update(kw)
    return VMSpec(**base)  # type: ignore[arg-type]


def test_fastapi_errors_name_the_field() -> None:
    body = json.dumps({"detail": [{"loc": ["body", "cloud_init", "users"], "msg": "Extra inputs are not permitted",
                                   "type": "extra_forbidden"}]})
    assert fastapi_error(body) == ("cloud_init.users: Extra inputs are not permitted", "extra_forbidden")
    assert fastapi_error(b'{"detail": "Not Found"}') == ("Not Found", None)
    assert fastapi_error(b"<html>") == (None, None)


def test_the_cheapest_available_preset_in_the_location() -> None:
    available = {"one", "one-big", "two"}
    assert choose_preset(PRESETS, available, spec(region=SEA)).id == "one"
    assert choose_preset(PRESETS, available, spec(region=ALN)).id == "one-big"
    assert choose_preset(PRESETS, available, spec(plan="two", gpus=None, resources=None)).id == "two"
    with pytest.raises(NoCapacity):
        choose_preset(PRESETS, {"two"}, spec(region=SEA))  # exists, sold out: a wait
    with pytest.raises(SpecRejected) as none:
        choose_preset(PRESETS, available, spec(gpus=Gpus("h100-sxm5-80gb", 4)))
    assert "1x h100-sxm5-80gb" in none.value.message and "2x h100-sxm5-80gb" in none.value.message
    with pytest.raises(SpecRejected) as wrong_os:
        choose_preset(PRESETS, available, spec(image="Debian 12"))
    assert "'Ubuntu 22.04 LTS'" in wrong_os.value.message


def test_cloud_init_keeps_only_what_voltage_park_takes() -> None:
    assert cloud_init_of("#cloud-config\nwrite_files:\n- {path: /etc/x, content: y}\n") == {
        "write_files": [{"path": "/etc/x", "content": "y"}]}
    for bad, word in (("#cloud-config\nbootcmd: [x]\n", "bootcmd"), ("- a\n- b\n", "mapping"), ("a: [\n", "YAML")):
        with pytest.raises(SpecRejected) as info:
            cloud_init_of(bad)
        assert word in info.value.message


def test_outbid_is_ready_false_outbid_and_storage_priced() -> None:
    from cube_operator.controllers.cube import ready_for
    from cube_operator.providers import VMState
    from cube_operator.providers.voltagepark import VoltageParkProvider
    from cube_operator.providers.voltagepark.models import VirtualMachine

    vm = VirtualMachine.model_validate({
        "id": "v1", "name": "g", "status": "Outbid", "tags": ["cube-operator-uid:abc"],
        "pricing": {"total_associated_per_hr": "2.5", "total_disassociated_per_hr": "0.02"},
        "resources": {"gpus": {"h100-sxm5-80gb": {"count": 1}}}})
    observed = VoltageParkProvider.observe(vm)
    assert observed.owner_uid == "abc" and observed.cost_per_hour == 0.02 and observed.state is VMState.ERROR
    ready, reason, message = ready_for(observed, "Running")
    assert (ready, reason) == (False, "Outbid") and "storage" in message
    running = VoltageParkProvider.observe(vm.model_copy(update={"status": "Running"}))
    assert running.problem is None and running.cost_per_hour == 2.5 and ready_for(running, "Running")[0]
