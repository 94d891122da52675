"""Where the operator's own Kubernetes client connects and who it is there, read from a
kubeconfig (kubectl's rules) or a pod's ServiceAccount, without the official client; and
the `run` process that never imports that client."""
from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cube_operator.controllers import _kube
from cube_operator.controllers._kube import Kube, KubeConfigError, load_connection


def write_kubeconfig(path: Path, user: dict[str, Any], cluster: dict[str, Any] | None = None,
                     name: str = "ctx") -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": name,
        "clusters": [{"name": f"{name}-cluster", "cluster": cluster or {"server": "https://127.0.0.1:6443/"}}],
        "users": [{"name": f"{name}-user", "user": user}],
        "contexts": [{"name": name, "context": {"cluster": f"{name}-cluster", "user": f"{name}-user"}}],
    }))
    return path


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "client.crt", directory / "client.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


def test_relative_paths_are_relative_to_the_kubeconfig_that_names_them(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    cert, key = self_signed(tmp_path / "pki")
    config = write_kubeconfig(tmp_path / "config", {"client-certificate": "pki/client.crt", "client-key": "pki/client.key"},
                              {"server": "https://10.0.0.1:6443/", "certificate-authority": "pki/client.crt"})
    connection = load_connection(config)
    assert connection.server == "https://10.0.0.1:6443"
    assert connection.ca_file == str(cert) and connection.cert_file == str(cert) and connection.key_file == str(key)
    connection.ssl_context()  # the files load: a CA and a certificate chain


def test_inline_data_is_decoded_and_a_client_certificate_loads(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    config = write_kubeconfig(tmp_path / "config", {
        "client-certificate-data": base64.b64encode(cert.read_bytes()).decode(),
        "client-key-data": base64.b64encode(key.read_bytes()).decode(),
    }, {"server": "https://127.0.0.1:6443", "certificate-authority-data": base64.b64encode(cert.read_bytes()).decode()})
    connection = load_connection(config)
    assert connection.ca_pem == cert.read_text() and connection.cert_pem == cert.read_bytes()
    assert connection.ssl_context().cert_store_stats()["x509_ca"] == 1


def test_the_first_kubeconfig_on_the_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write_kubeconfig(tmp_path / "first", {"token": "first-token"}, name="shared")
    second = write_kubeconfig(tmp_path / "second", {"token": "second-token"}, name="shared")
    monkeypatch.setenv("KUBECONFIG", f"{first}{os.pathsep}{second}")
    assert load_connection().token == "first-token"


def test_basic_auth_and_an_auth_provider_token(tmp_path: Path) -> None:
    basic = load_connection(write_kubeconfig(tmp_path / "basic", {"username": "admin", "password": "s3cret"}))
    kube = Kube(basic)
    assert kube._headers()["Authorization"] == "Basic " + base64.b64encode(b"admin:s3cret").decode()
    provider = load_connection(write_kubeconfig(tmp_path / "provider",
                                                {"auth-provider": {"config": {"access-token": "ya29.x"}}}))
    assert Kube(provider)._headers()["Authorization"] == "Bearer ya29.x"


@pytest.mark.parametrize(("mangle", "says"), [
    (lambda c: c.pop("current-context"), "no current context"),
    (lambda c: c["clusters"][0]["cluster"].pop("server"), "has no server"),
    (lambda c: c["contexts"][0]["context"].update(cluster="elsewhere"), "names no known cluster"),
    (lambda c: c["users"][0].update(user={"exec": {"command": "aws"}}), "exec plugin"),
])
def test_a_kubeconfig_that_cannot_work_says_what_to_fix(tmp_path: Path, mangle: Any, says: str) -> None:
    path = write_kubeconfig(tmp_path / "config", {"token": "t"})
    config = yaml.safe_load(path.read_text())
    mangle(config)
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(KubeConfigError, match=says):
        load_connection(path)
    with pytest.raises(KubeConfigError, match="cannot read kubeconfig"):
        load_connection(tmp_path / "missing")


def test_a_service_account_token_is_read_again_once_rotated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("first\n")
    (tmp_path / "ca.crt").write_bytes(self_signed(tmp_path)[0].read_bytes())
    monkeypatch.setattr(_kube, "SERVICE_ACCOUNT_DIR", tmp_path)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    connection = load_connection()
    assert connection.server == "https://[fd00::1]:6443" and connection.ca_file == str(tmp_path / "ca.crt")
    kube = Kube(connection)
    assert kube._headers()["Authorization"] == "Bearer first"
    (tmp_path / "token").write_text("rotated\n")
    assert kube._headers()["Authorization"] == "Bearer first"  # not a file read per request
    kube._token_read_at -= _kube.TOKEN_FILE_REREAD_SECONDS
    assert kube._headers()["Authorization"] == "Bearer rotated"


def test_the_run_process_never_imports_the_kubernetes_client() -> None:
    """What `cube-operator run` does before importing kopf (cli.main) keeps the official
    client's models out of the process, and kopf still imports and registers every kind."""
    script = (
        "import sys\n"
        "from cube_operator.cli import without_kubernetes_client\n"
        "without_kubernetes_client()\n"
        "import cube_operator.operator\n"
        "from cube_operator.controllers import registry\n"
        "assert registry._spawning.get_all_handlers(), 'no daemons registered'\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'kubernetes' and sys.modules[m] is not None)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
