"""Properties of the Dockerfile and .dockerignore, checked by parsing them (no container
engine on these machines)."""
from __future__ import annotations

import ast
import email
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# The test bed in src/ next to the operator: never in the image.
TESTBED_PACKAGES = ("kubeapi", "cloudsim")
# Distribution name -> the module it is imported as, where they differ.
IMPORT_NAMES = {"pyyaml": "yaml", "prometheus-client": "prometheus_client"}


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



# --- the image holds the operator only, not the test bed ---------------------------------

def _context_copies(stage: Stage) -> list[tuple[str, str, str]]:
    """(source, destination, workdir) of each COPY from the build context, in order."""
    out: list[tuple[str, str, str]] = []
    workdir = "/"
    for ins in stage.instructions:
        if ins.op == "WORKDIR":
            workdir = str(PurePosixPath(workdir, ins.args))
        elif ins.op == "COPY" and not ins.args.startswith("--from"):
            words = [w for w in ins.args.split() if not w.startswith("--")]
            *sources, dest = words
            out.extend((source, dest, workdir) for source in sources)
    return out


def _dockerignore_patterns() -> list[str]:
    return [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines()
            if ln.strip() and not ln.strip().startswith("#")]


def _build_stage_tree(builder: Stage, root: Path) -> Path:
    """Recreate under `root` what the builder's COPY instructions put in the image (minus
    what .dockerignore drops), and return the directory `python -m build` runs in."""
    patterns = _dockerignore_patterns()
    for source, dest, workdir in _context_copies(builder):
        target = root / PurePosixPath(workdir, dest).relative_to("/")
        origin = ROOT / source
        if origin.is_dir():
            for path in sorted(origin.rglob("*")):
                rel = path.relative_to(ROOT).as_posix()
                if path.is_file() and not _ignored(rel, patterns):
                    copy = target / path.relative_to(origin)
                    copy.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, copy)
        else:
            copy = target / origin.name if dest.endswith("/") or target.is_dir() else target
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, copy)
    run = next(r.args for r in builder.all("RUN") if "-m build" in r.args)
    assert run.split()[-1] == ".", run  # the wheel is built from the WORKDIR
    return root / PurePosixPath(_context_copies(builder)[-1][2]).relative_to("/")


def test_builder_copies_only_the_operator_package_from_src(dockerfile):
    _, stages, _ = dockerfile
    sources = [source.rstrip("/") for source, _, _ in _context_copies(stages[0])]
    assert "src/cube_operator" in sources, sources
    for source in sources:
        parts = PurePosixPath(source).parts
        # `COPY src ./src` (or `COPY . .`) would put kubeapi and cloudsim in the wheel.
        assert source not in (".", "src"), f"COPY {source}: copies the test bed too"
        if parts[0] == "src":
            assert parts[:2] == ("src", "cube_operator"), f"COPY {source}: not the operator"
    # What setuptools' package discovery (pyproject: packages.find where=src) then finds.
    where = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["where"]
    assert where == ["src"]
    copied_packages = {PurePosixPath(s).parts[1] for s in sources
                       if PurePosixPath(s).parts[0] == "src" and len(PurePosixPath(s).parts) > 1}
    assert copied_packages == {"cube_operator"}


@pytest.fixture(scope="module")
def image_wheel(dockerfile, tmp_path_factory) -> Path:
    """The wheel the builder stage builds, made from a copy of exactly what it COPYs.

    `pip wheel --no-deps` stands in for `python -m build --wheel` (same PEP 517 backend).
    With setuptools>=68 and wheel importable here it builds offline; otherwise pip fetches
    the build backend from the index into an isolated environment."""
    _, stages, _ = dockerfile
    root = tmp_path_factory.mktemp("image")
    build_dir = _build_stage_tree(stages[0], root)
    dist = root / "dist"
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
               "--disable-pip-version-check", "--wheel-dir", str(dist), str(build_dir)]
    offline = subprocess.run(
        [sys.executable, "-c",
         "import setuptools, wheel; assert int(setuptools.__version__.split('.')[0]) >= 68"],
        check=False, capture_output=True).returncode == 0
    if offline:
        command.insert(4, "--no-build-isolation")
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"building the image's wheel failed:\n{result.stderr}"
    wheels = list(dist.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_image_wheel_holds_cube_operator_only(image_wheel):
    names = zipfile.ZipFile(image_wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"cube_operator"}, sorted(tops)
    for package in TESTBED_PACKAGES:
        assert not [n for n in names if n.startswith(f"{package}/")], f"{package} in the wheel"
    assert "cube_operator/cli.py" in names and "cube_operator/py.typed" in names
    # The e2e helpers are test code (tests/support/e2e.py), not part of the package.
    assert not [n for n in names if n.startswith("cube_operator/") and n.endswith("/testing.py")]


def test_image_wheel_requires_no_sandbox_dependencies(image_wheel):
    with zipfile.ZipFile(image_wheel) as wheel:
        metadata_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(wheel.read(metadata_name))
    unconditional = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert unconditional == PYPROJECT["project"]["dependencies"]
    assert not [r for r in unconditional if r.lower().startswith("jsonschema")], unconditional
    assert "sandbox" in (metadata.get_all("Provides-Extra") or [])


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _third_party_imports(package: str) -> set[str]:
    """Top-level names of the non-stdlib modules a src/ package imports (anywhere, lazily
    or not), minus the project's own packages."""
    names: set[str] = set()
    for path in (ROOT / "src" / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"cube_operator", *TESTBED_PACKAGES}


def test_runtime_requirements_are_what_the_operator_imports():
    """The image installs [project].dependencies: each must be something cube_operator
    itself imports, so nothing only the test bed needs (jsonschema) gets in."""
    deps = [_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]]
    assert "jsonschema" not in deps
    operator_imports = _third_party_imports("cube_operator")
    for dep in deps:
        module = IMPORT_NAMES.get(dep, dep.replace("-", "_"))
        assert module in operator_imports, f"{dep}: in the image, but cube_operator never imports it"


def test_sandbox_extra_covers_the_test_bed():
    """kubeapi and cloudsim import only what [project] dependencies plus the `sandbox`
    extra install (the Makefile installs `.[sandbox,test]`)."""
    extras = PYPROJECT["project"]["optional-dependencies"]
    sandbox = [_requirement_name(r) for r in extras["sandbox"]]
    assert "jsonschema" in sandbox
    pinned = {r for r in extras["sandbox"] if _requirement_name(r) == "jsonschema"}
    assert all("==" in r for r in pinned), pinned
    available = {IMPORT_NAMES.get(d, d.replace("-", "_"))
                 for d in sandbox + [_requirement_name(r) for r in PYPROJECT["project"]["dependencies"]]}
    for package in TESTBED_PACKAGES:
        missing = _third_party_imports(package) - available
        assert not missing, f"src/{package} imports {sorted(missing)}, not in the sandbox extra"
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install [^\n]*-e '\.\[[^\]]*\bsandbox\b[^\]]*\]'", makefile), \
        "the Makefile's install must include the sandbox extra (make dev, make test)"


def test_cube_operator_imports_the_test_bed_only_lazily():
    """No module of the operator imports kubeapi, cloudsim or jsonschema when it is loaded:
    only inside functions (the sandbox runner's), so the image can import everything."""
    lazy_only = {*TESTBED_PACKAGES, "jsonschema"}
    for path in (ROOT / "src" / "cube_operator").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        functions = [n for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
        inside = {id(sub) for f in functions for sub in ast.walk(f)}
        for node in ast.walk(tree):
            if id(node) in inside:
                continue
            if isinstance(node, ast.Import):
                found = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found = {node.module.split(".")[0]}
            else:
                continue
            assert not found & lazy_only, f"{path.relative_to(ROOT)}:{node.lineno} imports {found}"


def test_image_wheel_dev_command_asks_for_the_sandbox_extra(image_wheel, tmp_path):
    """`cube-operator dev` from the image's wheel (no kubeapi, cloudsim or jsonschema)
    prints one line naming the sandbox extra and exits non-zero, without a traceback."""
    unpacked = tmp_path / "wheel"
    zipfile.ZipFile(image_wheel).extractall(unpacked)
    # -S: no site, so neither this checkout's editable install nor its src/ is importable;
    # only the unpacked wheel and the third-party packages of this environment are.
    paths = [str(unpacked), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    code = ("import sys; sys.path[:0] = sys.argv[1:]; "
            "sys.modules['jsonschema'] = None  # not installed in the image\n"
            "import cube_operator.cli as cli; assert cli.__file__.startswith(sys.argv[1]), cli.__file__\n"
            "sys.exit(cli.main(['dev']))")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run([sys.executable, "-S", "-c", code, *paths], check=False, cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "sandbox" in lines[0] and "pip install 'cube-operator[sandbox]'" in lines[0], lines[0]
    assert "make dev" in lines[0]
    assert not list(tmp_path.glob("cube-operator-dev-*")) and result.stdout == ""


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
