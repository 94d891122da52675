"""ProviderConfig ``status.catalogue`` seen from kubectl: for each of the five providers,
against its simulator, the real operator lists what the provider offers (images, regions,
plans or presets), and a Cube naming an image the provider lacks is told the valid ones."""
from __future__ import annotations

import contextlib
import json
import re
import uuid
from typing import Any

from cloudsim.cyberpanel import catalog as cyberpanel_catalog
from cloudsim.krova import catalog as krova_catalog
from cloudsim.lunanode import catalog as lunanode_catalog
from cloudsim.nokyc import catalog as nokyc_catalog
from cloudsim.testing import cyberpanel_key, running_simulator
from cloudsim.voltagepark import catalog as voltagepark_catalog
from support.e2e import (
    API_KEY,
    SPACE_ID,
    TIME_SCALE,
    Cluster,
    Krova,
    Operator,
    condition,
    cube_manifest,
    wait_for,
)

API = "cube-operator.io/v1alpha1"


def ids(status: dict[str, Any], part: str) -> set[str]:
    return {entry["id"] for entry in status.get(part) or []}


def test_each_providers_catalogue_is_listed_in_status(cluster: Cluster, krova: Krova, operator: Operator) -> None:
    namespace = "e2e-" + uuid.uuid4().hex[:8]
    nokyc_token = "nkv_live_" + uuid.uuid4().hex + "0" * 20
    luna_id, luna_key = uuid.uuid4().hex[:16], uuid.uuid4().hex * 4
    vp_key, cp_key = "vp_e2e_" + uuid.uuid4().hex, cyberpanel_key()
    with contextlib.ExitStack() as stack:
        sims = {
            "nokyc": stack.enter_context(running_simulator("nokyc", tokens={nokyc_token: "write"},
                                                           time_scale=TIME_SCALE)),
            "lunanode": stack.enter_context(running_simulator("lunanode", api_id=luna_id, api_key=luna_key,
                                                              time_scale=TIME_SCALE)),
            "voltagepark": stack.enter_context(running_simulator("voltagepark", api_key=vp_key,
                                                                 time_scale=TIME_SCALE)),
            "cyberpanel": stack.enter_context(running_simulator("cyberpanel", api_key=cp_key,
                                                                time_scale=TIME_SCALE)),
        }
        endpoints = {"krova": krova.url, **{name: sim.url for name, sim in sims.items()}}
        secrets = {"krova": {"apiKey": API_KEY}, "nokyc": {"token": nokyc_token},
                   "lunanode": {"apiId": luna_id, "apiKey": luna_key}, "voltagepark": {"apiKey": vp_key},
                   "cyberpanel": {"apiKey": cp_key}}
        settings: dict[str, dict[str, Any]] = {"krova": {"spaceId": SPACE_ID},
                                               "cyberpanel": {"hostnameDomain": "vms.example.com"}}
        cluster.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}] + [
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"{name}-credentials", "namespace": namespace},
             "stringData": secret} for name, secret in secrets.items()] + [
            {"apiVersion": API, "kind": "ProviderConfig", "metadata": {"name": name, "namespace": namespace},
             "spec": {"provider": name, "endpoint": endpoint, "credentialsSecretRef": {"name": f"{name}-credentials"},
                      **({name: settings[name]} if name in settings else {})}}
            for name, endpoint in endpoints.items()])

        def catalogues() -> dict[str, dict[str, Any]] | None:
            listed = json.loads(cluster.kubectl("get", "providerconfigs", "-n", namespace, "-o", "json").stdout)
            found = {pc["metadata"]["name"]: (pc.get("status") or {}).get("catalogue") for pc in listed["items"]}
            ready = all(condition(pc, "Ready").get("status") == "True" for pc in listed["items"])
            done = ready and len(found) == 5 and all(c and c.get("fetchedAt") for c in found.values())
            return found if done else None  # type: ignore[return-value]

        found = wait_for(catalogues, timeout=60, interval=0.5, what="every ProviderConfig Ready with a catalogue")
        # `kubectl describe` answers "what may I put here".
        described = cluster.kubectl("describe", "providerconfig", "krova", "-n", namespace).stdout
        # Gone before their simulators: nothing left to recheck against a closed port.
        cluster.kubectl("delete", "providerconfigs", "--all", "-n", namespace, "--timeout=30s", timeout=40)

    for name, catalogue in found.items():
        assert not catalogue.get("error"), (name, catalogue["error"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", catalogue["fetchedAt"])
        assert catalogue["observedGeneration"] == 1
        for part in ("images", "regions", "plans"):
            if catalogue.get(part) is not None:
                assert catalogue[f"{part}Total"] == len(catalogue[part]), (name, part)
                assert all(e["id"] for e in catalogue[part])

    k = found["krova"]
    assert ids(k, "images") == {i.id for i in krova_catalog.IMAGES}
    assert ids(k, "regions") == {r.slug for r in krova_catalog.REGIONS}
    assert "plans" not in k and "spec.resources" in k["note"]
    assert {"id": "ubuntu-24.04", "description": "Ubuntu 24.04 LTS (Noble Numbat)"} in k["images"]

    n = found["nokyc"]
    assert ids(n, "images") == {i.id for i in nokyc_catalog.IMAGES}
    assert ids(n, "regions") == {r.id for r in nokyc_catalog.REGIONS}
    assert ids(n, "plans") == {p.id for p in nokyc_catalog.PLANS}
    s2 = next(p for p in n["plans"] if p["id"] == "vps-s2")
    assert s2["description"].startswith("2 vCPU, 2 GB RAM, 50 GB disk, $0.02/h")

    c = found["cyberpanel"]
    assert ids(c, "images") == {t.id for t in cyberpanel_catalog.TEMPLATES}
    assert ids(c, "regions") == {loc.code for loc in cyberpanel_catalog.LOCATIONS}
    assert ids(c, "plans") == {str(p.id) for p in cyberpanel_catalog.PLANS}
    assert any(p["description"].startswith("Starter: 1 vCPU") for p in c["plans"])

    luna = found["lunanode"]
    assert ids(luna, "images") == {re.sub(r" \((template|ISO)\)$", "", t.name) for t in lunanode_catalog.TEMPLATES}
    assert ids(luna, "regions") == {r.id for r in lunanode_catalog.REGIONS}
    assert ids(luna, "plans") == {p.name for p in lunanode_catalog.PLANS}

    vp = found["voltagepark"]
    assert ids(vp, "images") == {p.operating_system for p in voltagepark_catalog.PRESETS}
    assert ids(vp, "regions") == {loc.id for loc in voltagepark_catalog.LOCATIONS}
    assert ids(vp, "plans") == {p.id for p in voltagepark_catalog.PRESETS}
    assert all("h100" in p["description"] for p in vp["plans"])

    assert "Catalogue:" in described and "ubuntu-24.04" in described and "eu-nuremberg" in described


def test_an_image_krova_lacks_is_refused_naming_the_valid_ones(cluster: Cluster, krova: Krova,
                                                               team: str) -> None:
    cluster.apply(cube_manifest("wrong-image", team, image="ubuntu-99"))
    cube = wait_for(lambda: (c := cluster.get("cube", "wrong-image", team))
                    and condition(c, "Ready").get("reason") == "InvalidSpec" and c, timeout=30, what="InvalidSpec")
    message = condition(cube, "Ready")["message"]
    assert message.startswith("spec.image: image 'ubuntu-99' is not offered by krova; choose one of: "), message
    assert all(image.id in message for image in krova_catalog.IMAGES), message
    assert "kubectl describe providerconfig" in message and "/images" not in message
    assert not [c for c in krova.cubes() if c["name"] == "wrong-image"], "a create was sent"
    # Refused before anything was sent: no create attempt is left to look for, so the
    # delete is at once (not after the minute a create that might have gone out is given).
    assert not cube["status"].get("createRequestedAt")
    cluster.kubectl("delete", "cube/wrong-image", "-n", team, "--timeout=15s", timeout=25)
