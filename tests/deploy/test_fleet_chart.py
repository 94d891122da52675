"""examples/charts/cube-fleet (the chart a platform team copies to bundle VMs) and the
GitOps examples in examples/gitops, linted and rendered by the real helm v4 binary.

The chart applied to the API and reconciled by the operator is tests/e2e/test_fleet_chart.py."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import ARGOCD, ROOT, Obj, by_kind, key, load_all, one

FLEET = ROOT / "examples" / "charts" / "cube-fleet"
CI_VALUES = sorted((FLEET / "ci").glob("*-values.yaml"))
INVALID_VALUES = Path(__file__).with_name("fleet-invalid-values.yaml")
GITOPS = ROOT / "examples" / "gitops"
RELEASE = "fleet"
NAMESPACE = "fleet"
PROVIDERS = ("krova", "nokyc", "cyberpanel", "voltagepark", "lunanode")
API = "cube-operator.io/v1alpha1"
ATTACHMENTS = ("TcpMapping", "Domain", "Snapshot")
WAVE = "argocd.argoproj.io/sync-wave"
KEEP = "helm.sh/resource-policy"
KROVA = {"providerConfig": {"provider": "krova", "settings": {"spaceId": "sp_test"}}}


def helm_template(helm: Path, tmp_path: Path, *values: Obj | Path, check: bool = True
                  ) -> subprocess.CompletedProcess[str]:
    cmd = [str(helm), "template", RELEASE, str(FLEET), "--namespace", NAMESPACE]
    for i, v in enumerate(values):
        if isinstance(v, dict):
            path = tmp_path / f"values-{i}.yaml"
            path.write_text(yaml.safe_dump(v))
            v = path
        cmd += ["--values", str(v)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stderr}"
    return result


@pytest.fixture()
def render(helm, tmp_path):
    def run(*values: Obj | Path) -> list[Obj]:
        return load_all(helm_template(helm, tmp_path, *values).stdout)
    return run


@pytest.fixture()
def refuse(helm, tmp_path):
    """Renders values that must fail; returns helm's error."""
    def run(*values: Obj | Path) -> str:
        result = helm_template(helm, tmp_path, *values, check=False)
        assert result.returncode != 0, f"rendered although invalid:\n{result.stdout}"
        return result.stderr
    return run


def lint(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), "lint", "--strict", str(FLEET), *args],
                          capture_output=True, text=True, timeout=120, check=False)


def cube(name: str, **fields: Any) -> Obj:
    return {"name": name, **fields}


def with_cubes(*cubes: Obj, **top: Any) -> Obj:
    values = json.loads(json.dumps(KROVA))
    values["cubes"] = list(cubes)
    for k, v in top.items():
        values[k] = v
    return values


# ---------------------------------------------------------------- chart, lint, schema

def test_chart_metadata_and_files():
    chart = yaml.safe_load((FLEET / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["name"], chart["type"]) == ("v2", "cube-fleet", "application")
    schema = json.loads((FLEET / "values.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert (FLEET / "templates" / "NOTES.txt").exists()
    assert {p.name.split("-")[0] for p in CI_VALUES} == set(PROVIDERS), CI_VALUES


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_helm_lint_strict_is_clean_for_every_provider(helm, values):
    result = lint(helm, "--values", str(values))
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out, out


def test_bare_chart_asks_for_the_krova_space(helm):
    """The defaults are Krova, whose ProviderConfig needs a spaceId: lint says so."""
    result = lint(helm)
    assert result.returncode != 0
    assert "spaceId" in result.stdout + result.stderr
    result = lint(helm, "--set", "providerConfig.settings.spaceId=sp_x")
    assert result.returncode == 0, result.stdout + result.stderr


def test_invalid_values_file_is_rejected_naming_each_mistake(helm, refuse):
    error = refuse(INVALID_VALUES)
    assert "values don't meet the specifications of the schema" in error
    for needle in ("'powerstate' not allowed", "'apiKey' not allowed", "/cubes/0/name",
                   "/cubes/0/powerState", "'tcpMapping' not allowed", "/cubes/0/resources"):
        assert needle in error, (needle, error)
    result = lint(helm, "--values", str(INVALID_VALUES))
    assert result.returncode != 0 and "[ERROR]" in result.stdout + result.stderr


@pytest.mark.parametrize(("values", "needle"), [
    ({"cube": [{"name": "a"}]}, "'cube' not allowed"),
    ({"cubes": [{"name": "a", "sshPublicKeySecretRef": {"name": "k"}}]}, "missing property 'key'"),
    ({"cubes": [{"name": "a", "sshPublicKey": "ssh-ed25519 AAAA x",
                 "sshPublicKeySecretRef": {"name": "k", "key": "pub"}}]}, "/cubes/0/sshPublicKeySecretRef"),
    ({"cubes": [{"name": "a", "sshPublicKey": "not a key"}]}, "/cubes/0/sshPublicKey"),
    ({"cubes": [{"name": "a", "resources": {"vcpu": 0, "ramGb": 1, "diskGb": 10}}]}, "/cubes/0/resources/vcpu"),
    ({"cubes": [{"name": "a", "deletionPolicy": "Keep"}]}, "/cubes/0/deletionPolicy"),
    ({"cubes": [{"name": "a", "userData": {"template": "x", "inline": "y"}}]}, "/cubes/0/userData"),
    ({"cubes": [{"name": "a", "domains": [{"domain": "Not A Domain", "port": 80}]}]}, "/cubes/0/domains/0/domain"),
    ({"cubes": [{"name": "a", "tcpMappings": [{"cubePort": 70000}]}]}, "/cubes/0/tcpMappings/0/cubePort"),
    ({"cubes": [{"name": "a", "snapshots": [{"providerName": "x"}]}]}, "missing property 'name'"),
    ({"providerConfig": {"provider": "aws", "settings": {}}}, "/providerConfig/provider"),
    ({"providerConfig": {"provider": "nokyc", "settings": {},
                         "credentialsSecretRef": {"name": "c", "apiKey": "nk_live_x"}}}, "'apiKey' not allowed"),
    ({"providerConfig": {"provider": "krova", "settings": {"spaceId": "s"}, "rateLimit": {"requests": 10}}},
     "/providerConfig/rateLimit"),
    ({"providerConfig": {"create": False}}, "/providerConfig/name"),
    ({"providerConfig": {"provider": "krova", "settings": {"spaceId": "s"}, "endpoint": "ftp://x"}},
     "/providerConfig/endpoint"),
])
def test_schema_rejects(refuse, values, needle):
    error = refuse(KROVA, values)
    assert needle in error, error


@pytest.mark.parametrize(("values", "needle"), [
    (with_cubes(cube("a"), cube("a")), 'the name "a" appears twice'),
    (with_cubes(cube("a", userData={"template": "missing"})), '"missing" is not a key of cloudInitTemplates'),
    (with_cubes(cube("a", tcpMappings=[{"cubePort": 80}, {"cubePort": 80, "label": "again"}])),
     'two TcpMappings are named "a-tcp-80"'),
])
def test_render_refuses_what_the_schema_cannot_see(refuse, values, needle):
    assert needle in refuse(values)


# ---------------------------------------------------------------- what it renders

@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_every_provider_renders_one_provider_config_and_its_cubes(render, values):
    given = yaml.safe_load(values.read_text())
    provider = given["providerConfig"]["provider"]
    objs = render(values)
    assert not by_kind(objs, "Secret"), "the chart must never render a credential"
    assert {o["kind"] for o in objs} <= {"ProviderConfig", "Cube", *ATTACHMENTS}
    pc = one(objs, "ProviderConfig")
    assert pc["metadata"]["name"] == provider
    assert pc["spec"]["provider"] == provider
    assert set(pc["spec"]) & set(PROVIDERS) == {provider}, "only the provider's own settings block"
    assert pc["spec"][provider] == (given["providerConfig"].get("settings") or {})
    assert pc["spec"]["credentialsSecretRef"]["name"] == given["providerConfig"]["credentialsSecretRef"]["name"]
    cubes = by_kind(objs, "Cube")
    assert [c["metadata"]["name"] for c in cubes] == [c["name"] for c in given["cubes"]]
    for c in cubes:
        assert c["apiVersion"] == API
        assert c["spec"]["providerConfigRef"] == {"name": provider}
        assert ("plan" in c["spec"]) != ("resources" in c["spec"]), c["spec"]
        assert ("plan" in c["spec"]) == (provider != "krova"), "plan-based providers get plans"
        assert c["spec"]["powerState"] in ("Running", "Stopped")
    for o in objs:
        meta = o["metadata"]
        assert meta["namespace"] == NAMESPACE
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert meta["labels"]["app.kubernetes.io/name"] == "cube-fleet"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        if o["kind"] in ATTACHMENTS:
            owner = o["spec"]["cubeRef"]["name"]
            assert owner in {c["metadata"]["name"] for c in cubes}
            assert meta["labels"]["cube-fleet.cube-operator.io/cube"] == owner
            assert meta["name"].startswith(owner + "-")


def test_sync_waves_put_the_provider_config_first(render):
    objs = render(FLEET / "ci" / "krova-values.yaml")
    waves = {o["kind"]: {int(x["metadata"]["annotations"][WAVE]) for x in by_kind(objs, o["kind"])}
             for o in objs}
    assert waves["ProviderConfig"] == {-1}
    assert waves["Cube"] == {0}
    for kind in ATTACHMENTS:
        assert waves[kind] == {1}, kind
    objs = render(FLEET / "ci" / "krova-values.yaml",
                  {"syncWaves": {"providerConfig": -5, "cubes": 3, "attachments": 7}})
    assert one(objs, "ProviderConfig")["metadata"]["annotations"][WAVE] == "-5"
    assert one(objs, "Cube", "web-1")["metadata"]["annotations"][WAVE] == "3"
    assert one(objs, "Domain")["metadata"]["annotations"][WAVE] == "7"


def test_krova_example_renders_every_feature(render):
    objs = render(FLEET / "ci" / "krova-values.yaml")
    web, db, batch = (one(objs, "Cube", n) for n in ("web-1", "db-1", "batch-1"))
    assert web["spec"] == {
        "providerConfigRef": {"name": "krova"}, "image": "ubuntu-24.04", "region": "eu-nuremberg",
        "resources": {"vcpu": 2, "ramGb": 4, "diskGb": 30},
        "sshPublicKeySecretRef": {"name": "ssh-keys", "key": "id_ed25519.pub"},
        "userData": "#cloud-config\nhostname: web-1\npackage_update: true\n",
        "powerState": "Running", "deletionPolicy": "Delete",
    }
    assert web["metadata"]["labels"]["tier"] == "web" and web["metadata"]["labels"]["team"] == "a"
    assert db["spec"]["resources"] == {"vcpu": 4, "ramGb": 16, "diskGb": 200}
    assert db["spec"]["userDataSecretRef"] == {"name": "db-cloud-init", "key": "user-data"}
    assert "userData" not in db["spec"]
    assert batch["spec"]["image"] == "debian-12"
    assert batch["spec"]["powerState"] == "Stopped"
    assert batch["spec"]["deletionPolicy"] == "Orphan"
    tcp = one(objs, "TcpMapping", "web-1-tcp-8443")
    assert tcp["spec"] == {"cubeRef": {"name": "web-1"}, "cubePort": 8443, "label": "admin",
                           "whitelistedIps": ["203.0.113.0/24"]}
    assert one(objs, "TcpMapping", "db-1-postgres")["spec"]["cubePort"] == 5432
    assert one(objs, "Domain", "web-1-web-1-example-com")["spec"] == {
        "cubeRef": {"name": "web-1"}, "domain": "web-1.example.com", "port": 8080}
    assert one(objs, "Snapshot", "web-1-baseline")["spec"] == {
        "cubeRef": {"name": "web-1"}, "deletionPolicy": "Delete"}


def test_keep_is_opt_in_and_covers_the_cube_and_what_hangs_off_it(render):
    objs = render(FLEET / "ci" / "krova-values.yaml")
    kept = {key(o) for o in objs if o["metadata"]["annotations"].get(KEEP) == "keep"}
    assert kept == {("Cube", NAMESPACE, "db-1"), ("TcpMapping", NAMESPACE, "db-1-postgres")}
    db = one(objs, "Cube", "db-1")
    assert db["spec"]["deletionPolicy"] == "Orphan", "a kept Cube's VM survives its deletion too"
    assert one(objs, "Cube", "web-1")["spec"]["deletionPolicy"] == "Delete"

    objs = render(with_cubes(cube("a", snapshots=[{"name": "s"}]),
                             cube("b", deletionPolicy="Delete"), cube("c", keep=False),
                             defaults={"keep": True, "sshPublicKey": "ssh-ed25519 AAAA k"}))
    a, b, c = (one(objs, "Cube", n) for n in "abc")
    assert a["metadata"]["annotations"][KEEP] == "keep" and a["spec"]["deletionPolicy"] == "Orphan"
    assert one(objs, "Snapshot", "a-s")["spec"]["deletionPolicy"] == "Orphan"
    assert one(objs, "Snapshot", "a-s")["metadata"]["annotations"][KEEP] == "keep"
    assert b["metadata"]["annotations"][KEEP] == "keep" and b["spec"]["deletionPolicy"] == "Delete"
    assert KEEP not in c["metadata"]["annotations"] and c["spec"]["deletionPolicy"] == "Delete"


def test_defaults_and_overrides(render):
    objs = render(with_cubes(cube("a"), cube("b", plan="big"), cube("c", region="us-east", sshPort=2222,
                                                                      sshPublicKey="ssh-rsa AAAA b")))
    a, b, c = (one(objs, "Cube", n)["spec"] for n in "abc")
    assert a == {"providerConfigRef": {"name": "krova"}, "image": "ubuntu-24.04",
                 "resources": {"vcpu": 1, "ramGb": 2, "diskGb": 20},
                 "powerState": "Running", "deletionPolicy": "Delete"}
    assert b["plan"] == "big" and "resources" not in b
    assert (c["region"], c["sshPort"], c["sshPublicKey"]) == ("us-east", 2222, "ssh-rsa AAAA b")
    objs = render(with_cubes(cube("a"), cube("b", resources={"vcpu": 2, "ramGb": 0.5, "diskGb": 10}),
                             defaults={"plan": "small"}))
    assert one(objs, "Cube", "a")["spec"]["plan"] == "small"
    assert one(objs, "Cube", "b")["spec"]["resources"] == {"vcpu": 2, "ramGb": 0.5, "diskGb": 10}


def test_provider_specific_fields_pass_through(render):
    objs = render(with_cubes(
        cube("a", extraSpec={"futureField": {"x": 1}, "powerState": "Stopped"}),
        providerConfig={"provider": "krova", "settings": {"spaceId": "sp_1", "newSetting": True},
                        "endpoint": "http://127.0.0.1:9/api/v1",
                        "rateLimit": {"requests": 10, "periodSeconds": 3},
                        "pollIntervalSeconds": 1},
        defaults={"extraSpec": {"futureField": {"z": 2}, "other": "d"}}))
    pc = one(objs, "ProviderConfig")["spec"]
    assert pc["krova"] == {"spaceId": "sp_1", "newSetting": True}
    assert pc["endpoint"] == "http://127.0.0.1:9/api/v1"
    assert pc["rateLimit"] == {"requests": 10, "periodSeconds": 3}
    assert pc["pollIntervalSeconds"] == 1
    spec = one(objs, "Cube", "a")["spec"]
    assert spec["futureField"] == {"x": 1, "z": 2} and spec["other"] == "d"
    assert spec["powerState"] == "Stopped", "a Cube's extraSpec wins"


def test_an_existing_provider_config_instead_of_a_new_one(render):
    objs = render(with_cubes(cube("a"), providerConfig={"create": False, "name": "shared"}))
    assert not by_kind(objs, "ProviderConfig")
    assert one(objs, "Cube", "a")["spec"]["providerConfigRef"] == {"name": "shared"}
    objs = render(with_cubes(cube("a"), providerConfig={
        "provider": "lunanode", "name": "luna", "settings": {},
        "credentialsSecretRef": {"name": "luna-api", "key": "apiKey"}}))
    pc = one(objs, "ProviderConfig")
    assert pc["metadata"]["name"] == "luna" and pc["spec"]["lunanode"] == {}
    assert pc["spec"]["credentialsSecretRef"] == {"name": "luna-api", "key": "apiKey"}


def test_cloud_init_templates_see_the_cube_and_the_release(render):
    objs = render(with_cubes(
        cube("a", labels={"role": "api"}),
        cube("b", userData={"inline": "#cloud-config\nfqdn: {{ .cube.name }}.{{ .Release.Namespace }}\n"}),
        cube("c", userData={"secretRef": {"name": "ci", "key": "user-data"}}),
        defaults={"userData": {"template": "t"}},
        cloudInitTemplates={"t": "#cloud-config\nhostname: {{ .cube.name }}\n"
                                 "write_files: [{path: /etc/role, content: {{ .cube.labels.role | quote }}}]\n"}))
    assert one(objs, "Cube", "a")["spec"]["userData"] == (
        '#cloud-config\nhostname: a\nwrite_files: [{path: /etc/role, content: "api"}]\n')
    assert one(objs, "Cube", "b")["spec"]["userData"] == "#cloud-config\nfqdn: b.fleet\n"
    c = one(objs, "Cube", "c")["spec"]
    assert c["userDataSecretRef"] == {"name": "ci", "key": "user-data"} and "userData" not in c


def test_common_labels_never_replace_the_release_labels(render):
    objs = render(with_cubes(cube("a", labels={"app.kubernetes.io/instance": "other", "x": "cube"}),
                             commonLabels={"x": "common", "cost-center": "42"},
                             commonAnnotations={"owner": "team-a"}))
    for o in objs:
        assert o["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert o["metadata"]["labels"]["cost-center"] == "42"
        assert o["metadata"]["annotations"]["owner"] == "team-a"
    assert one(objs, "Cube", "a")["metadata"]["labels"]["x"] == "cube"
    assert one(objs, "ProviderConfig")["metadata"]["labels"]["x"] == "common"


def test_notes_tell_how_to_watch_the_cubes_become_ready(helm):
    result = subprocess.run(
        [str(helm), "install", RELEASE, str(FLEET), "--namespace", NAMESPACE, "--dry-run=client",
         "--values", str(FLEET / "ci" / "krova-values.yaml")],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert f"kubectl -n {NAMESPACE} wait --for=condition=Ready cubes -l app.kubernetes.io/instance={RELEASE}" in notes
    assert f"kubectl -n {NAMESPACE} get cubes -l app.kubernetes.io/instance={RELEASE} -w" in notes
    assert "get providerconfig krova" in notes
    assert "Cube db-1 has keep" in notes and "Cube web-1 has keep" not in notes


# ---------------------------------------------------------------- GitOps examples

def gitops(*parts: str) -> list[Obj]:
    return load_all((GITOPS.joinpath(*parts)).read_text())


def test_argocd_application_syncs_the_chart_with_health_checks(render):
    (app,) = gitops("argocd", "application.yaml")
    assert (app["apiVersion"], app["kind"]) == ("argoproj.io/v1alpha1", "Application")
    source = app["spec"]["source"]
    assert (ROOT / source["path"] / "Chart.yaml").exists(), source["path"]
    assert source["path"] == "examples/charts/cube-fleet"
    assert source["helm"]["releaseName"] == app["metadata"]["name"]
    assert app["spec"]["destination"]["namespace"]
    policy = app["spec"]["syncPolicy"]
    assert policy["automated"]["prune"] is True and policy["automated"]["selfHeal"] is True
    assert "resources-finalizer.argocd.argoproj.io" not in app["metadata"].get("finalizers", []), (
        "deleting the Application must not delete the VMs unless the user opts in")
    objs = render(source["helm"]["valuesObject"])
    assert by_kind(objs, "Cube") and one(objs, "ProviderConfig")
    # How to install the health checks is spelt out, and what it names exists.
    text = (GITOPS / "argocd" / "application.yaml").read_text()
    assert "deploy/argocd/argocd-cm.yaml" in text
    cm = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    named = set(re.findall(r"resource\.customizations\.health\.cube-operator\.io_\w+", text))
    assert named >= {f"resource.customizations.health.cube-operator.io_{k}"
                     for k in ("ProviderConfig", "Cube", *ATTACHMENTS)}
    assert named <= set(cm["data"]), named - set(cm["data"])


def test_flux_helm_release_and_kustomizations(render):
    (release,) = gitops("flux", "fleet", "helmrelease.yaml")
    assert (release["apiVersion"], release["kind"]) == ("helm.toolkit.fluxcd.io/v2", "HelmRelease")
    chart = release["spec"]["chart"]["spec"]
    assert (ROOT / chart["chart"] / "Chart.yaml").exists(), chart["chart"]
    assert chart["chart"] == "./examples/charts/cube-fleet"
    assert chart["reconcileStrategy"] == "Revision"
    assert release["spec"]["install"]["remediation"]["retries"] >= 1
    assert release["spec"]["upgrade"]["remediation"]["retries"] >= 1
    namespace = release["metadata"]["namespace"]
    objs = render(release["spec"]["values"])
    cube_names = {c["metadata"]["name"] for c in by_kind(objs, "Cube")}
    assert cube_names

    source, sync = gitops("flux", "sync.yaml")
    assert (source["apiVersion"], source["kind"]) == ("source.toolkit.fluxcd.io/v1", "GitRepository")
    ref = release["spec"]["chart"]["spec"]["sourceRef"]
    assert (ref["kind"], ref["name"], ref["namespace"]) == (
        "GitRepository", source["metadata"]["name"], source["metadata"]["namespace"])
    (variant,) = gitops("flux", "sync-healthchecks.yaml")
    for ks in (sync, variant):
        assert (ks["apiVersion"], ks["kind"]) == ("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
        assert ks["spec"]["sourceRef"] == {"kind": "GitRepository", "name": source["metadata"]["name"]}
        path = ks["spec"]["path"]
        assert (ROOT / path / "helmrelease.yaml").exists(), path
        assert ks["spec"]["prune"] is True and ks["spec"]["timeout"]
    assert sync["spec"]["wait"] is True and "healthChecks" not in sync["spec"]
    assert variant["spec"]["wait"] is False
    checks = variant["spec"]["healthChecks"]
    assert {(c["kind"], c["name"], c["namespace"]) for c in checks if c["kind"] == "HelmRelease"} == {
        ("HelmRelease", release["metadata"]["name"], namespace)}
    cubes = [c for c in checks if c["kind"] == "Cube"]
    assert {c["apiVersion"] for c in cubes} == {API}
    assert {c["namespace"] for c in cubes} == {namespace}
    assert {c["name"] for c in cubes} == cube_names, "healthChecks must name every Cube of the release"


def test_argocd_and_flux_examples_bundle_the_same_fleet():
    (app,) = gitops("argocd", "application.yaml")
    (release,) = gitops("flux", "fleet", "helmrelease.yaml")
    assert app["spec"]["source"]["helm"]["valuesObject"] == release["spec"]["values"]
    assert app["spec"]["destination"]["namespace"] == release["metadata"]["namespace"]


# ---------------------------------------------------------------- README

def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    assert f"\n## {title}\n" in text, f"README has no section {title!r}"
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_sections_sit_after_running_it_on_a_cluster():
    text = (ROOT / "README.md").read_text()
    order = [text.index(h) for h in ("\n## Running it on a cluster\n", "\n### Flux and kstatus\n",
                                     "\n## Bundle VMs in a Helm chart\n", "\n## GitOps\n", "\n## Commands\n")]
    assert order == sorted(order), order


def test_readme_paths_exist():
    for title in ("Bundle VMs in a Helm chart", "GitOps"):
        paths = set(re.findall(r"(?<![\w/.])((?:examples|deploy)/[\w./-]*[\w-])", readme_section(title)))
        assert len(paths) >= 3, paths
        for path in paths:
            assert (ROOT / path).exists(), f"README ({title}) names {path}, which does not exist"


def test_readme_sandbox_values_render_in_order(helm, tmp_path):
    """The values files the sandbox walk-through writes render, each on top of the first,
    into what the text says."""
    section = readme_section("Bundle VMs in a Helm chart")
    files = dict(re.findall(r"cat > (/tmp/[\w.-]+) <<'EOF'\n(.*?)\nEOF\n", section, re.DOTALL))
    assert list(files) == ["/tmp/fleet.yaml", "/tmp/fleet-2.yaml", "/tmp/fleet-3.yaml"], list(files)
    paths = {}
    for name, body in files.items():
        paths[name] = tmp_path / Path(name).name
        paths[name].write_text(body + "\n")
    endpoint = {"providerConfig": {"endpoint": "http://127.0.0.1:1/api/v1"}}

    def cubes(*extra: Path) -> dict[str, Obj]:
        objs = load_all(helm_template(helm, tmp_path, paths["/tmp/fleet.yaml"], endpoint, *extra).stdout)
        assert one(objs, "ProviderConfig")["spec"]["krova"] == {"spaceId": "sp_sandbox"}
        return {o["metadata"]["name"]: o for o in by_kind(objs, "Cube")}

    assert set(cubes()) == {"web-1", "web-2"}
    step2 = cubes(paths["/tmp/fleet-2.yaml"])
    assert set(step2) == {"web-1", "web-2", "web-3"}
    assert step2["web-2"]["spec"]["powerState"] == "Stopped"
    assert step2["web-3"]["metadata"]["annotations"][KEEP] == "keep"
    assert step2["web-3"]["spec"]["deletionPolicy"] == "Orphan"
    assert set(cubes(paths["/tmp/fleet-3.yaml"])) == {"web-1"}
    # The GitOps walk-through applies the HelmRelease's values on top of /tmp/fleet.yaml.
    (release,) = gitops("flux", "fleet", "helmrelease.yaml")
    objs = load_all(helm_template(helm, tmp_path, paths["/tmp/fleet.yaml"], endpoint, release["spec"]["values"],
                                  {"providerConfig": {"settings": {"spaceId": "sp_sandbox"}}}).stdout)
    assert {o["metadata"]["name"] for o in by_kind(objs, "Cube")} == {"web-1", "web-2", "db-1"}
    assert [o["metadata"]["name"] for o in by_kind(objs, "TcpMapping")] == ["web-1-tcp-8443"]
    # The prune selector of the walk-through is the chart's labels.
    assert "-l app.kubernetes.io/name=cube-fleet,app.kubernetes.io/instance=fleet" in section
    for kind in ("ProviderConfig", "Cube", *ATTACHMENTS):
        assert f"--prune-allowlist=cube-operator.io/v1alpha1/{kind}" in section
