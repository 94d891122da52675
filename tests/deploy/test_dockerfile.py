"""Properties of the Dockerfile and .dockerignore, checked by parsing them (no container
engine on these machines)."""
from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Instruction:
    op: str
    args: str


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, op: str) -> list[Instruction]:
        return [i for i in self.instructions if i.op == op]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ins in self.all("ENV"):
            for token in shlex.split(ins.args):
                name, _, value = token.partition("=")
                out[name] = value
        return out


def parse(text: str) -> tuple[dict[str, str], list[Stage], list[Instruction]]:
    """Global ARGs, the stages, and every instruction in order."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") and not pending:
            continue
        if stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are dropped
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = (pending + stripped).strip()
        pending = ""
        if line:
            lines.append(line)
    assert not pending, "dangling line continuation"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    everything: list[Instruction] = []
    for line in lines:
        op, _, args = line.partition(" ")
        ins = Instruction(op.upper(), args.strip())
        everything.append(ins)
        if ins.op == "FROM":
            words = ins.args.split()
            words = [w for w in words if not w.startswith("--platform")]
            image = words[0]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)",
                           lambda m: global_args.get(m.group(1) or m.group(2), m.group(0)), image)
            stages.append(Stage(image, name))
        elif not stages:
            assert ins.op == "ARG", f"only ARG may come before FROM, got {ins.op}"
            name, _, default = ins.args.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append(ins)
    return global_args, stages, everything


@pytest.fixture(scope="module")
def dockerfile() -> tuple[dict[str, str], list[Stage], list[Instruction]]:
    assert DOCKERFILE.exists(), "Dockerfile missing"
    return parse(DOCKERFILE.read_text())


def test_multi_stage_builder_then_python_slim_runtime(dockerfile):
    _, stages, _ = dockerfile
    assert len(stages) >= 2
    assert stages[0].name == "builder"
    runtime = stages[-1]
    assert runtime.image == "python:3.11-slim"
    copies = [c.args for c in runtime.all("COPY")]
    assert any(c.startswith("--from=builder ") for c in copies), copies
    # The runtime stage gets the built virtualenv only, never the source tree.
    assert all(c.startswith("--from=") for c in copies), copies


def test_builder_installs_the_project_from_pyproject(dockerfile):
    _, stages, _ = dockerfile
    builder = stages[0]
    copied = " ".join(c.args for c in builder.all("COPY"))
    assert "pyproject.toml" in copied and "src" in copied
    runs = " ".join(r.args for r in builder.all("RUN"))
    assert "python -m venv /opt/venv" in runs
    assert "-m build --wheel" in runs
    assert re.search(r"pip install [^&]*\.whl", runs), runs
    runtime_copy = [c.args for c in stages[-1].all("COPY") if c.args.startswith("--from=builder")]
    assert runtime_copy == ["--from=builder /opt/venv /opt/venv"]
    assert stages[-1].env()["PATH"].startswith("/opt/venv/bin:")


def test_builder_dependency_list_comes_from_pyproject(dockerfile, tmp_path):
    """Runs the builder's `python -c` that turns pyproject.toml into requirements.txt."""
    _, stages, _ = dockerfile
    run = next(r.args for r in stages[0].all("RUN") if "tomllib" in r.args)
    command = run.split(">", 1)[0].strip()
    argv = shlex.split(command)
    assert argv[:2] == ["python", "-c"]
    out = subprocess.run([sys.executable, "-c", argv[2]], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert out.split() == deps


def test_non_root_user_65532(dockerfile):
    _, stages, _ = dockerfile
    users = stages[-1].all("USER")
    assert users, "runtime stage sets no USER"
    user = users[-1].args
    assert user.split(":")[0] == "65532", user  # numeric, so runAsNonRoot can verify it
    assert user.split(":")[1] == "65532"
    runs = " ".join(r.args for r in stages[-1].all("RUN"))
    assert "--uid 65532" in runs and "--gid 65532" in runs


def test_read_only_root_filesystem_friendly(dockerfile):
    _, stages, _ = dockerfile
    runtime = stages[-1]
    env = runtime.env()
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("HOME") == "/tmp" and env.get("TMPDIR") == "/tmp"
    assert not runtime.all("VOLUME"), "no VOLUME: the chart mounts an emptyDir on /tmp"
    workdirs = [w.args for w in runtime.all("WORKDIR")]
    assert workdirs and workdirs[-1] == "/tmp"
    # Bytecode is compiled at build time, since nothing can write it at run time.
    assert "compileall" in " ".join(r.args for r in stages[0].all("RUN"))


def test_entrypoint_is_the_project_script(dockerfile):
    _, stages, _ = dockerfile
    entry = stages[-1].all("ENTRYPOINT")
    assert len(entry) == 1
    assert json.loads(entry[0].args) == ["cube-operator", "run"]  # exec form
    assert not stages[-1].all("CMD")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "cube-operator" in scripts


def test_no_healthcheck(dockerfile):
    _, _, everything = dockerfile
    assert not [i for i in everything if i.op == "HEALTHCHECK"], "Kubernetes probes do this"


def test_exposes_the_three_ports(dockerfile):
    _, stages, _ = dockerfile
    ports = {p.split("/")[0] for e in stages[-1].all("EXPOSE") for p in e.args.split()}
    assert ports == {"8080", "9090", "8443"}


def test_oci_labels(dockerfile):
    _, stages, _ = dockerfile
    labels: dict[str, str] = {}
    for ins in stages[-1].all("LABEL"):
        for token in shlex.split(ins.args):
            name, _, value = token.partition("=")
            labels[name] = value
    for name in ("title", "description", "version", "revision", "source", "licenses"):
        assert labels.get(f"org.opencontainers.image.{name}"), f"missing OCI label {name}"


def _ignored(path: str, patterns: list[str]) -> bool:
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        candidates = {pat, pat.replace("**/", "")}
        parts = path.split("/")
        hit = any(
            fnmatch.fnmatch(path, c) or any(fnmatch.fnmatch("/".join(parts[:i]), c)
                                            for i in range(1, len(parts)))
            or (c.startswith("*") and fnmatch.fnmatch(parts[-1], c))
            for c in candidates
        )
        if hit:
            result = not negate
    return result


def test_dockerignore_keeps_the_context_small_but_complete(dockerfile):
    patterns = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()
                if ln.strip() and not ln.strip().startswith("#")]
    for noise in (".venv", ".git", ".tools", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                  "src/cube_operator/__pycache__/cli.cpython-311.pyc", "tests/unit/test_x.py"):
        assert _ignored(noise, patterns), f"{noise} should be in .dockerignore"
    _, stages, _ = dockerfile
    # Everything the builder copies from the context exists and is not ignored.
    for ins in stages[0].all("COPY"):
        if ins.args.startswith("--from"):
            continue
        *sources, _dest = ins.args.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not _ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"
