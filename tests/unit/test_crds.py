"""The committed CRDs are exactly what the models generate, and they are structural."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from cube_operator.api import KINDS
from cube_operator.api.crds import crd_for, render

CRDS = Path(__file__).resolve().parents[2] / "crds"


@pytest.mark.parametrize("info", KINDS, ids=lambda k: k.kind)
def test_committed_crd_matches_models(info: Any) -> None:
    path = CRDS / f"cube-operator.io_{info.plural}.yaml"
    assert path.exists(), f"{path} missing: run `cube-operator crds`"
    assert path.read_text() == render(info), f"{path.name} is stale: run `cube-operator crds`"


def _walk(node: Any, path: str, problems: list[str]) -> None:
    if isinstance(node, dict):
        for bad in ("$ref", "anyOf", "allOf", "oneOf", "title", "$defs"):
            if bad in node:
                problems.append(f"{path}: {bad}")
        if "exclusiveMinimum" in node and not isinstance(node["exclusiveMinimum"], bool):
            problems.append(f"{path}: exclusiveMinimum must be boolean in OpenAPI v3.0")
        if node.get("type") == "object" and "properties" not in node and path.count(".") > 2 \
                and "additionalProperties" not in node and not path.endswith("metadata"):
            problems.append(f"{path}: object without properties")
        for key, value in node.get("properties", {}).items():
            if "description" not in value:
                problems.append(f"{path}.{key}: no description")
            _walk(value, f"{path}.{key}", problems)
        if "items" in node:
            _walk(node["items"], f"{path}[]", problems)


@pytest.mark.parametrize("info", KINDS, ids=lambda k: k.kind)
def test_schema_is_structural_and_described(info: Any) -> None:
    schema = crd_for(info)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    problems: list[str] = []
    for part in ("spec", "status"):
        _walk(schema["properties"][part], part, problems)
    assert problems == []


def test_cube_immutable_fields_and_defaults() -> None:
    crd = crd_for(next(k for k in KINDS if k.kind == "Cube"))
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"]
    for field in ("image", "region", "resources", "plan", "gpus"):
        assert "x-kubernetes-validations" not in spec["properties"][field]  # editable before a VM exists
        rule = next(r for r in root if r["message"].startswith(f"spec.{field} is immutable"))
        assert rule["rule"].startswith("!has(oldSelf.status) || !has(oldSelf.status.id) || ")
    assert spec["properties"]["powerState"]["default"] == "Running"
    assert spec["properties"]["sshPort"]["default"] == 22
    assert spec["properties"]["deletionPolicy"]["default"] == "Delete"
    assert spec["required"] == ["providerConfigRef", "image"]
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"] if "priority" not in c]
    assert columns == ["State", "IP", "Cost/h", "Ready", "Reason", "Age"]
    yaml.safe_dump(crd)  # serialisable
