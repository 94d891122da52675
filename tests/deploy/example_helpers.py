"""What the example tests and the README tests share: the plain manifests under
examples/<provider>/ and which kinds each provider supports (imported by name: conftest.py
puts this directory on sys.path)."""
from __future__ import annotations

from pathlib import Path

import yaml
from deploy_helpers import KINDS, ROOT, Obj

from cube_operator.providers import Capability
from cube_operator.providers.registry import KNOWN_PROVIDERS, plugin_for

EXAMPLES = ROOT / "examples"
#: Folders of examples/ that hold no plain manifests: a Helm chart (templates) and Argo CD /
#: Flux objects, both checked by test_fleet_chart.py.
NOT_PLAIN = frozenset({"charts", "gitops"})
#: examples/<provider>/more/: applied by hand; the sandbox applies only the files directly in
#: examples/<provider>/ (a Restore at sandbox start would restore a live Cube at once).
MORE = "more"
#: The capabilities each kind needs, beyond the VM itself (ProviderConfig and Cube: none).
KIND_NEEDS: dict[str, frozenset[Capability]] = {
    "ProviderConfig": frozenset(),
    "Cube": frozenset(),
    "Snapshot": frozenset({Capability.SNAPSHOTS}),
    "Restore": frozenset({Capability.SNAPSHOTS, Capability.RESTORE}),
    "TcpMapping": frozenset({Capability.TCP_EXPOSURE}),
    "Domain": frozenset({Capability.DOMAINS}),
    "Webhook": frozenset({Capability.WEBHOOKS}),
}
assert set(KIND_NEEDS) == set(KINDS), "a new kind needs its capabilities here"


def supported_kinds(provider: str) -> set[str]:
    """The kinds ``provider`` supports, from the capabilities its plugin declares."""
    plugin = plugin_for(provider)
    assert plugin is not None, f"provider {provider} is not registered"
    return {kind for kind, needs in KIND_NEEDS.items() if needs <= plugin.capabilities}


def provider_dirs() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.is_dir() and p.name not in NOT_PLAIN)


def example_files(directory: Path) -> list[Path]:
    """Every manifest file of a provider's folder, its more/ included."""
    return sorted(directory.rglob("*.yaml"))


def manifests(directory: Path) -> list[tuple[Path, Obj]]:
    """(file, object) for every document of every manifest file under ``directory``."""
    return [(path, doc) for path in example_files(directory)
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def ours(objs: list[tuple[Path, Obj]]) -> list[tuple[Path, Obj]]:
    """The cube-operator.io objects among ``objs``."""
    return [(path, o) for path, o in objs if str(o.get("apiVersion", "")).startswith("cube-operator.io/")]


__all__ = ["EXAMPLES", "KIND_NEEDS", "KNOWN_PROVIDERS", "MORE", "NOT_PLAIN", "example_files", "manifests",
           "ours", "provider_dirs", "supported_kinds"]
