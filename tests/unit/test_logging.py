from __future__ import annotations

import json
import logging

from cube_operator._logging import JsonFormatter


def test_json_lines_name_the_object() -> None:
    record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, "Handler %s succeeded.", ("x",), None)
    record.k8s_ref = {"apiVersion": "cube-operator.io/v1alpha1", "kind": "Cube", "name": "web-1",
                      "namespace": "team-a", "uid": "u"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "Handler x succeeded."
    assert (entry["namespace"], entry["name"], entry["kind"]) == ("team-a", "web-1", "Cube")
    assert entry["level"] == "info" and entry["logger"] == "kopf.objects"


def test_user_data_never_reaches_the_log() -> None:
    import logging

    from cube_operator._logging import UserDataFilter, redact_user_data

    repr_form = "Creation is in progress: {'spec': {'userData': '#cloud-config\\npassword: hunter2', 'image': 'x'}}"
    assert "hunter2" not in redact_user_data(repr_form) and "'image': 'x'" in redact_user_data(repr_form)
    annotation = '{"a": "{\\"spec\\":{\\"userData\\":\\"#cloud-config\\\\npassword: hunter2\\",\\"image\\":\\"x\\"}}"}'
    assert "hunter2" not in redact_user_data(annotation) and '\\"image\\":\\"x\\"' in redact_user_data(annotation)
    record = logging.LogRecord("kopf.objects", logging.DEBUG, __file__, 1, "body: %r",
                               ({"spec": {"userData": "secret-token"}},), None)
    assert UserDataFilter().filter(record) and "secret-token" not in record.getMessage()


def test_an_ssh_key_is_one_key() -> None:
    import pytest
    from pydantic import ValidationError

    from cube_operator.api import CubeSpec

    base = {"providerConfigRef": {"name": "p"}, "image": "i"}
    ok = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eTestKey== me@host"
    assert CubeSpec.model_validate({**base, "sshPublicKey": ok}).ssh_public_key == ok
    assert CubeSpec.model_validate({**base, "sshPublicKey": ok.rsplit(" ", 1)[0]})
    for bad in (ok + "\nssh-rsa AAAAB3Nza attacker@evil", ok + "\n", "ssh-ed25519 !!not-base64"):
        with pytest.raises(ValidationError):
            CubeSpec.model_validate({**base, "sshPublicKey": bad})
