"""Parameter reading: LunaNode's "required parameter X not set", strings and JSON numbers
alike (Go/Ruby clients send strings, the Python one ints), unknown parameters ignored."""

from __future__ import annotations

from typing import Any

import httpx

from cloudsim.testing import wait_for_vm_status

Call = Any


async def test_missing_parameters_in_documented_order(call: Call) -> None:
    assert await call("vm", "create", {}) == {
        "success": "no", "error": "required parameter hostname not set"}
    assert (await call("vm", "create", {"hostname": "a"}))["error"] == (
        "required parameter plan_id not set")
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "87"}))["error"] == (
        "required parameter image_id not set")
    # "" and null count as not set.
    assert (await call("vm", "create", {"hostname": "", "plan_id": "87"}))["error"] == (
        "required parameter hostname not set")
    assert (await call("vm", "create", {"hostname": None}))["error"] == (
        "required parameter hostname not set")
    assert (await call("vm", "info", {}))["error"] == "required parameter vm_id not set"
    assert (await call("vm", "reimage", {"vm_id": "1"}))["error"] == (
        "required parameter image_id not set")
    assert (await call("vm", "snapshot", {"vm_id": "1"}))["error"] == (
        "required parameter name not set")
    assert (await call("sshkey", "add", {"sshkey": "x"}))["error"] == (
        "required parameter label not set")
    assert (await call("securitygroup", "rule_insert", {"region": "toronto", "group_id": "1",
                                                        "direction": "ingress"}))["error"] == (
        "required parameter type not set")


async def test_strings_and_json_numbers(call: Call, api: httpx.AsyncClient) -> None:
    as_strings = await call("vm", "create", {"hostname": "go-style", "plan_id": "87",
                                             "image_id": "630902", "region": "toronto"})
    as_numbers = await call("vm", "create", {"hostname": "py-style", "plan_id": 87,
                                             "image_id": 630902})
    as_float = await call("vm", "create", {"hostname": "float", "plan_id": 87.0,
                                           "image_id": 630902})
    assert as_strings["success"] == as_numbers["success"] == as_float["success"] == "yes"
    numeric = int(as_numbers["vm_id"])
    await wait_for_vm_status(api, as_numbers["vm_id"], "Online")
    by_number = await call("vm", "info", {"vm_id": numeric})
    by_string = await call("vm", "info", {"vm_id": str(numeric)})
    assert by_number["success"] == by_string["success"] == "yes"
    assert by_number["extra"]["vm_id"] == str(numeric) and by_number["extra"]["plan_id"] == "87"
    assert isinstance(as_strings["vm_id"], str) and as_strings["vm_id"].isdigit()
    # The plan's name works as plan_id too (LunaNode's CLI documents "m.2").
    by_name = await call("vm", "create", {"hostname": "named", "plan_id": "m.2",
                                          "image_id": "630902"})
    info = await call("vm", "info", {"vm_id": by_name["vm_id"]})
    assert info["extra"]["plan_id"] == "87"


async def test_bad_value_types_and_unknown_parameters(call: Call) -> None:
    for value in (True, [1], {"a": 1}, 1.5):
        answer = await call("vm", "info", {"vm_id": value})
        assert answer == {"success": "no", "error": "invalid value for parameter vm_id"}
    ignored = await call("plan", "list", {"storage": 30, "whatever": "x"})
    assert ignored["success"] == "yes"


async def test_unknown_ids(call: Call) -> None:
    for action in ("info", "start", "stop", "reboot", "delete", "rescue", "shelve",
                   "unshelve", "diskswap", "iplist", "vnc"):
        assert await call("vm", action, {"vm_id": "999999"}) == {
            "success": "no", "error": "invalid vm"}, action
    assert (await call("vm", "info", {"vm_id": "abc"}))["error"] == "invalid vm"
    assert (await call("vm", "rename", {"vm_id": "1", "hostname": "x"}))["error"] == "invalid vm"
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "1",
                                        "image_id": "630902"}))["error"] == "invalid plan"
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "87",
                                        "image_id": "1"}))["error"] == "invalid image"
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "87", "image_id": "630902",
                                        "region": "mars"}))["error"] == "invalid region"
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "87", "image_id": "630902",
                                        "key_id": "1"}))["error"] == "invalid key"
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "87", "image_id": "630902",
                                        "securitygroups": "1"}))["error"] == (
        "invalid security group")
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "87", "image_id": "630902",
                                        "scripts": "1"}))["error"] == "invalid script"
    assert (await call("vm", "create", {"hostname": "a", "plan_id": "87",
                                        "volume_id": "5"}))["error"] == "invalid volume"
    assert (await call("image", "details", {"image_id": "1"}))["error"] == "invalid image"
    assert (await call("image", "delete", {"image_id": "1"}))["error"] == "invalid image"
    assert (await call("image", "list", {"region": "mars"}))["error"] == "invalid region"
    assert (await call("sshkey", "remove", {"key_id": "1"}))["error"] == "invalid key"
    assert (await call("script", "delete", {"script_id": "1"}))["error"] == "invalid script"
    assert (await call("securitygroup", "delete", {"region": "toronto",
                                                   "group_id": "1"}))["error"] == (
        "invalid security group")
    # Nothing was created by the failed creates.
    assert (await call("vm", "list"))["vms"] == []
