"""Security groups and their rules, VM membership, SSH keys and startup scripts."""

from __future__ import annotations

import base64
import os
from typing import Any

Call = Any
MakeVm = Any
VmInfo = Any


def _ssh_key(comment: str = "dev@example") -> str:
    key_type = b"ssh-ed25519"
    blob = len(key_type).to_bytes(4, "big") + key_type + (32).to_bytes(4, "big") + os.urandom(32)
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


async def test_security_groups_and_rules(call: Call, ok: Call) -> None:
    created = await ok("securitygroup", "create", {"region": "toronto", "name": "cube-web"})
    group = created["group_id"]
    assert set(created) == {"success", "group_id"} and group.isdigit()
    assert (await ok("securitygroup", "list"))["groups"] == [
        {"group_id": group, "name": "cube-web", "region": "toronto"}]
    where = {"region": "toronto", "group_id": group}
    await ok("securitygroup", "rule_insert", {
        **where, "direction": "ingress", "type": "ipv4", "protocol": "tcp",
        "remote_type": "cidr", "remote_value": "203.0.113.0/24", "port_min": "22",
        "port_max": "22", "label": "ssh"})
    # The Python pilot's spelling: rule-insert, type "4", numbers as JSON ints.
    await ok("securitygroup", "rule-insert", {
        **where, "direction": "ingress", "type": "4", "protocol": "udp",
        "remote_type": "cidr", "remote_value": "0.0.0.0/0", "port_min": 51820})
    await ok("securitygroup", "rule_insert", {
        **where, "direction": "egress", "type": "ipv6", "protocol": "any",
        "remote_type": "cidr", "remote_value": "::/0", "port_min": "80"})
    rules = (await ok("securitygroup", "rule_list", where))["rules"]
    assert rules[0] == {"rule_id": rules[0]["rule_id"], "group_id": group,
                        "direction": "ingress", "type": "ipv4", "protocol": "tcp",
                        "remote_type": "cidr", "remote_value": "203.0.113.0/24",
                        "port_min": "22", "port_max": "22", "label": "ssh"}
    assert (rules[1]["type"], rules[1]["port_min"], rules[1]["port_max"]) == (
        "ipv4", "51820", "51820")
    assert (rules[2]["protocol"], rules[2]["port_min"]) == ("any", "")  # ports only for tcp/udp
    await ok("securitygroup", "rule_delete", {**where, "rule_id": rules[1]["rule_id"]})
    left = [r["rule_id"] for r in (await ok("securitygroup", "rule_list", where))["rules"]]
    assert left == [rules[0]["rule_id"], rules[2]["rule_id"]]
    assert (await call("securitygroup", "rule_delete", {**where, "rule_id": "1"}))["error"] == (
        "invalid rule")
    await ok("securitygroup", "rename", {**where, "name": "cube-web-2"})
    assert (await ok("securitygroup", "list"))["groups"][0]["name"] == "cube-web-2"
    # The group belongs to its region.
    assert (await call("securitygroup", "rule_list", {"region": "montreal",
                                                      "group_id": group}))["error"] == (
        "invalid security group")
    await ok("securitygroup", "delete", where)
    assert (await ok("securitygroup", "list"))["groups"] == []


async def test_rule_validation(call: Call, ok: Call) -> None:
    group = (await ok("securitygroup", "create", {"region": "toronto", "name": "g"}))["group_id"]
    base = {"region": "toronto", "group_id": group, "direction": "ingress", "type": "ipv4",
            "protocol": "tcp", "remote_type": "cidr", "remote_value": "10.0.0.0/8"}
    cases = [
        ({"direction": "inbound"}, "invalid direction (must be ingress, egress)"),
        ({"type": "ipv5"}, "invalid type (must be ipv4 or ipv6)"),
        ({"protocol": "sctp"}, "invalid protocol (must be any, tcp, udp, icmp)"),
        ({"remote_type": "host"}, "invalid remote_type (must be cidr, group)"),
        ({"remote_value": "nope"}, "invalid remote_value (must be a CIDR)"),
        ({"remote_value": "::/0"}, "remote_value is not an ipv4 CIDR"),
        ({"port_min": "0"}, "invalid port_min"),
        ({"port_max": "70000"}, "invalid port_max"),
        ({"port_min": "90", "port_max": "80"}, "invalid port range (port_min is above port_max)"),
        ({"remote_type": "group", "remote_value": "1"}, "invalid security group"),
    ]
    for change, error in cases:
        assert (await call("securitygroup", "rule_insert", {**base, **change}))["error"] == error
    await ok("securitygroup", "rule_insert", {**base, "remote_type": "group",
                                              "remote_value": group})
    rule = (await ok("securitygroup", "rule_list", {"region": "toronto",
                                                    "group_id": group}))["rules"][0]
    assert (rule["remote_type"], rule["remote_value"]) == ("group", group)
    assert (await call("securitygroup", "create", {"region": "mars", "name": "g"}))["error"] == (
        "invalid region")


async def test_vm_security_group_membership(
    call: Call, ok: Call, make_vm: MakeVm, vm_info: VmInfo,
) -> None:
    first = (await ok("securitygroup", "create", {"region": "toronto", "name": "a"}))["group_id"]
    second = (await ok("securitygroup", "create", {"region": "toronto", "name": "b"}))["group_id"]
    elsewhere = (await ok("securitygroup", "create",
                          {"region": "montreal", "name": "c"}))["group_id"]
    vm_id = await make_vm(securitygroups=first)
    assert (await vm_info(vm_id))["security_groups"] == [first]
    await ok("vm", "securitygroup_add", {"vm_id": vm_id, "group_id": second})
    await ok("vm", "securitygroup-add", {"vm_id": vm_id, "group_id": second})  # no-op repeat
    assert (await vm_info(vm_id))["securitygroups"] == [first, second]
    assert (await call("vm", "securitygroup_add", {"vm_id": vm_id,
                                                   "group_id": elsewhere}))["error"] == (
        "invalid security group")
    assert (await call("securitygroup", "delete", {"region": "toronto",
                                                   "group_id": first}))["error"] == (
        "security group is in use by a vm")
    await ok("vm", "securitygroup_remove", {"vm_id": vm_id, "group_id": first})
    assert (await vm_info(vm_id))["security_groups"] == [second]
    assert (await call("vm", "securitygroup_remove", {"vm_id": vm_id,
                                                      "group_id": first}))["error"] == (
        "security group is not associated with this vm")
    await ok("securitygroup", "delete", {"region": "toronto", "group_id": first})
    several = await make_vm(securitygroups=f"{second}, {second}")
    assert (await vm_info(several))["security_groups"] == [second]
    assert (await call("vm", "create", {"hostname": "x", "plan_id": "87", "image_id": "630902",
                                        "securitygroups": elsewhere}))["error"] == (
        "invalid security group")


async def test_ssh_keys(call: Call, ok: Call, make_vm: MakeVm, sim: Any) -> None:
    assert await ok("sshkey", "list") == {"success": "yes"}
    value = _ssh_key("ops@laptop")
    key_id = (await ok("sshkey", "add", {"label": "ops", "sshkey": value}))["key_id"]
    other = (await ok("sshkey", "add", {"label": "ci", "sshkey": _ssh_key()}))["key_id"]
    listed = await ok("sshkey", "list")
    # LunaNode's own tools read the keys as the answer's members other than "success".
    keys = [v for k, v in listed.items() if k != "success"]
    assert sorted(k for k in listed if k != "success") == ["0", "1"]
    assert keys[0] == {"id": key_id, "name": "ops", "label": "ops", "value": value}
    assert keys[1]["id"] == other
    for bad in ("not a key", "ssh-ed25519 !!!notbase64", "ssh-rsa " + value.split()[1]):
        assert (await call("sshkey", "add", {"label": "x", "sshkey": bad}))["error"] == (
            "invalid SSH key")
    vm_id = await make_vm(key_id=key_id)
    assert sim.engine.vms[vm_id].key_id == key_id
    await ok("sshkey", "remove", {"key_id": other})
    assert [v["id"] for k, v in (await ok("sshkey", "list")).items() if k != "success"] == [
        key_id]
    assert (await call("sshkey", "remove", {"key_id": other}))["error"] == "invalid key"


async def test_startup_scripts(call: Call, ok: Call, make_vm: MakeVm, sim: Any) -> None:
    script = (await ok("script", "create", {"name": "boot", "content": "#!/bin/sh\necho hi"}))
    script_id = script["script_id"]
    assert (await ok("script", "list"))["scripts"] == [{"script_id": script_id, "name": "boot"}]
    vm_id = await make_vm(scripts=script_id, wait=None)
    assert sim.engine.vms[vm_id].scripts == [script_id]
    await ok("script", "delete", {"script_id": script_id})
    assert (await ok("script", "list"))["scripts"] == []
    assert (await call("script", "create", {"name": "x"}))["error"] == (
        "required parameter content not set")
