"""examples/<provider>/: a manifest of every kind each provider supports, valid against the
CRDs a user applies (crds/, with the real kubectl and the API emulator), tied to each other
within their folder, and only what is safe at sandbox start where the sandbox applies it."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from deploy_helpers import KINDS, ROOT, Obj
from example_helpers import (
    EXAMPLES,
    KNOWN_PROVIDERS,
    MORE,
    example_files,
    manifests,
    ours,
    provider_dirs,
    supported_kinds,
)

from cube_operator.api import KINDS as KIND_INFOS
from cube_operator.providers.registry import plugin_for
from cube_operator.sandbox._apply import collection_path, load_manifests
from kubeapi.testing import kubectl, running_emulator

PROVIDERS = sorted(KNOWN_PROVIDERS)


def folder(provider: str) -> Path:
    return EXAMPLES / provider


def kinds_in(provider: str) -> Counter[str]:
    return Counter(o["kind"] for _path, o in ours(manifests(folder(provider))))


def test_every_provider_has_a_folder_and_no_folder_is_unknown() -> None:
    assert {d.name for d in provider_dirs()} == set(KNOWN_PROVIDERS)


def test_every_kind_has_an_example() -> None:
    found = {o["kind"] for d in provider_dirs() for _path, o in ours(manifests(d))}
    missing = set(KINDS) - found
    assert not missing, f"no manifest under examples/<provider>/ shows {sorted(missing)}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_provider_shows_every_kind_it_supports_and_no_other(provider: str) -> None:
    found = set(kinds_in(provider))
    expected = supported_kinds(provider)
    assert found == expected, (f"examples/{provider}/ shows {sorted(found)}; {provider} supports "
                               f"{sorted(expected)}: missing {sorted(expected - found)}, "
                               f"unsupported {sorted(found - expected)}")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_examples_refer_to_objects_of_their_own_folder(provider: str) -> None:
    objs = manifests(folder(provider))
    by_kind: dict[str, dict[str, Obj]] = {}
    for path, o in objs:
        names = by_kind.setdefault(o["kind"], {})
        assert o["metadata"]["name"] not in names, f"{path}: a second {o['kind']} {o['metadata']['name']}"
        names[o["metadata"]["name"]] = o
    (namespace,) = by_kind["Namespace"]
    for path, o in objs:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == namespace, f"{path}: {o['kind']} not in {namespace}"

    def exists(kind: str, name: str, path: Path, what: str) -> Obj:
        assert name in by_kind.get(kind, {}), f"{path}: {what} names {kind} {name}, not in examples/{provider}/"
        return by_kind[kind][name]

    for path, o in objs:
        spec = o.get("spec") or {}
        if o["kind"] == "ProviderConfig":
            assert spec["provider"] == provider, path
            exists("Secret", spec["credentialsSecretRef"]["name"], path, "credentialsSecretRef")
        if "providerConfigRef" in spec:
            exists("ProviderConfig", spec["providerConfigRef"]["name"], path, "providerConfigRef")
        if "cubeRef" in spec:
            exists("Cube", spec["cubeRef"]["name"], path, "cubeRef")
        if "snapshotRef" in spec:
            snapshot = exists("Snapshot", spec["snapshotRef"]["name"], path, "snapshotRef")
            assert snapshot["spec"]["cubeRef"] == spec["cubeRef"], f"{path}: the Snapshot is of another Cube"


#: Kinds applied by hand (examples/<provider>/more/), not at sandbox start: a Restore would
#: restore a Cube the moment the sandbox starts.
BY_HAND = {"Restore"}
#: And per provider what goes wrong when applied together with its Cube (nothing now: a
#: NoKYC snapshot refused while its server provisions is asked again with a new attempt).
BY_HAND_ON: dict[str, set[str]] = {}


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_sandbox_applies_everything_but_more(provider: str) -> None:
    """The sandbox applies examples/<provider>/*.yaml (not more/): every object there is one it
    can create, and none that is unsafe at sandbox start is among them."""
    by_hand_kinds = BY_HAND | BY_HAND_ON.get(provider, set())
    applied = load_manifests(folder(provider))
    for manifest in applied:
        collection_path(manifest)  # raises for a kind the sandbox cannot create
    assert not by_hand_kinds & {m["kind"] for m in applied}
    more = folder(provider) / MORE
    by_hand = [o for _path, o in manifests(more)] if more.is_dir() else []
    assert {o["kind"] for o in by_hand} <= by_hand_kinds, "more/ is for what is unsafe at sandbox start"
    assert len(applied) + len(by_hand) == len(manifests(folder(provider))), "a folder deeper than more/"
    assert ({o["kind"] for o in by_hand}) == by_hand_kinds & supported_kinds(provider)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_provider_config_comments_say_where_the_endpoint_comes_from(provider: str) -> None:
    """A ProviderConfig example without `endpoint` must not tell the reader to remove it:
    it names the default the operator uses, and only that URL."""
    plugin = plugin_for(provider)
    assert plugin is not None
    for path in example_files(folder(provider)):
        configs = [o for o in yaml.safe_load_all(path.read_text()) if o and o.get("kind") == "ProviderConfig"]
        if not configs:
            continue
        comment = " ".join(line.lstrip("# ") for line in path.read_text().splitlines() if line.startswith("#"))
        for config in configs:
            if "endpoint" in config["spec"]:
                continue
            assert not re.search(r"\b(drop|leave out|remove|delete)\b[^.;]*`endpoint`", comment), (
                f"{path} has no endpoint, but its comment says to remove one: {comment}")
            if "endpoint" in comment:
                assert plugin.default_endpoint in comment, f"{path}: name the default, {plugin.default_endpoint}"
                urls = {u.rstrip(".,;)") for u in re.findall(r"https?://\S+", comment)}
                assert urls == {plugin.default_endpoint}, f"{path} names {urls}"


def test_examples_apply_with_kubectl_to_the_crds(tmp_path: Path) -> None:
    """What `kubectl apply -f examples/<provider>/` (and `.../more/`) does on a cluster with
    crds/ installed: every object is accepted with strict field validation, and
    `kubectl get cubeop` (the category) lists every one of them."""
    with running_emulator(tmp_path / "emulator") as emulator:
        kc = emulator.kubeconfig
        kubectl(kc, "apply", "--server-side", "-f", str(ROOT / "crds"))
        kubectl(kc, "wait", "--for", "condition=Established", "--timeout", "30s",
                *[f"crd/{info.crd_name}" for info in KIND_INFOS])
        # The control: a typo in a field is refused the way these files are applied.
        typo = {"apiVersion": "cube-operator.io/v1alpha1", "kind": "Snapshot",
                "metadata": {"name": "typo", "namespace": "default"},
                "spec": {"cubeRef": {"name": "web-1"}, "deletionpolicy": "Orphan"}}
        refused = kubectl(kc, "apply", "-f", "-", input=yaml.safe_dump(typo), check=False)
        assert refused.returncode != 0 and "deletionpolicy" in refused.stderr, refused.stderr
        expected: list[tuple[str, str, str]] = []
        for directory in provider_dirs():
            args = ["-f", str(directory)]
            if (directory / MORE).is_dir():
                args += ["-f", str(directory / MORE)]
            result = kubectl(kc, "apply", *args)
            assert "Warning" not in result.stderr, result.stderr
            expected += [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])
                         for _path, o in ours(manifests(directory))]
        listed = json.loads(kubectl(kc, "get", "cubeop", "-A", "-o", "json").stdout)["items"]
        got = [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]) for o in listed]
        assert sorted(got) == sorted(expected)
