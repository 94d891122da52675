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
