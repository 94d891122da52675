"""Smoke test of the real kube-apiserver testbed (.tools/bin/realkube, built by `make tools`):
it starts, real kubectl talks to it, the project's CRDs are Established and a Cube from
the examples is stored and listed."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from support.realkube import REALKUBE, RealKube, running_realkube

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = "/usr/bin/kubectl"
CRDS = ROOT / "crds"
CUBES = ROOT / "examples" / "krova" / "03-cubes.yaml"


def kubectl(kube: RealKube, *args: str, input: str | None = None,
            timeout: float = 30) -> str:
    result = subprocess.run([KUBECTL, "--kubeconfig", str(kube.kubeconfig), *args],
                            input=input, capture_output=True, text=True, timeout=timeout,
                            check=False)
    assert result.returncode == 0, f"kubectl {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


@pytest.mark.timeout(180)
def test_real_apiserver_serves_the_crds_and_a_cube(tmp_path: Path) -> None:
    if not REALKUBE.exists():
        pytest.fail(f"{REALKUBE} is missing: run `make tools` (needs Go on PATH; it builds "
                    "testbed/realkube, a real kube-apiserver, into .tools/bin)")
    began = time.monotonic()
    with running_realkube(tmp_path) as kube:
        assert kube.url.startswith("https://127.0.0.1:")
        assert kube.env["KUBECONFIG"] == str(kube.kubeconfig)
        assert kubectl(kube, "get", "--raw", "/readyz").strip() == "ok"

        crd_files = sorted(CRDS.glob("*.yaml"))
        crd_names = [yaml.safe_load(p.read_text())["metadata"]["name"] for p in crd_files]
        assert "cubes.cube-operator.io" in crd_names
        kubectl(kube, "apply", "-f", str(CRDS))
        kubectl(kube, "wait", "--for=condition=Established", "--timeout=30s",
                *[f"crd/{name}" for name in crd_names], timeout=40)

        # The example's namespace, then its Cubes, as a user would apply them.
        docs = [d for d in yaml.safe_load_all(CUBES.read_text()) if d]
        namespace = docs[0]["metadata"]["namespace"]
        kubectl(kube, "create", "namespace", namespace)
        # Right after Established the discovery cache of a fresh kubectl can lag by
        # a moment; retry the apply briefly instead of sleeping.
        deadline = time.monotonic() + 15
        while True:
            result = subprocess.run(
                [KUBECTL, "--kubeconfig", str(kube.kubeconfig), "apply", "-f", "-"],
                input=yaml.safe_dump_all(docs), capture_output=True, text=True, timeout=30,
                check=False)
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert result.returncode == 0, f"kubectl apply of {CUBES.name} failed:\n{result.stderr}"

        listed = json.loads(kubectl(kube, "get", "cubes", "-A", "-o", "json"))
        names = {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]}
        for doc in docs:
            assert (namespace, doc["metadata"]["name"]) in names
        # The apiserver, not an emulator, stored it: etcd gave it a resourceVersion and uid.
        first = docs[0]["metadata"]["name"]
        web = next(i for i in listed["items"] if i["metadata"]["name"] == first)
        assert web["metadata"]["uid"] and web["metadata"]["resourceVersion"]
        assert web["spec"]["image"] == docs[0]["spec"]["image"]

        table = kubectl(kube, "get", "cubes", "-A")
        assert first in table
    elapsed = time.monotonic() - began
    print(f"realkube READY in {kube.started_in:.1f}s, whole smoke test {elapsed:.1f}s")
    assert elapsed < 90, f"the realkube smoke test took {elapsed:.0f}s (budget ~60s)"
