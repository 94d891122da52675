"""README.md's operations sections stay true to the code."""
from __future__ import annotations

import re

from deploy_helpers import CHART, ROOT


def _docs() -> str:
    return (ROOT / "README.md").read_text()


def test_every_metric_is_documented():
    from cube_operator.metrics import REGISTRY

    names = {metric.name for metric in REGISTRY.collect()}
    assert names, "the operator's registry has no metrics"
    docs = _docs()
    for name in names:
        # prometheus-client drops the _total suffix of counters from the family name
        assert re.search(rf"`{re.escape(name)}(_total)?`", docs), f"metric {name} is not documented"


def test_documented_metrics_exist():
    from cube_operator.metrics import REGISTRY

    exported = set()
    for metric in REGISTRY.collect():
        exported.add(metric.name)
        exported.update(sample.name for sample in metric.samples)
    documented = set(re.findall(r"^\| `(cube_operator_[a-z_]+)`", _docs(), re.MULTILINE))
    assert documented, "no metrics table found"
    assert documented <= exported | {n + "_total" for n in exported}, documented - exported


def test_documented_chart_values_exist():
    import yaml

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    table = _docs().split("Values worth knowing", 1)[1].split("\n\n", 2)[1]
    first_cells = [row.split(" | ")[0] for row in table.splitlines() if row.startswith("| `")]
    cells = [c for cell in first_cells
             for c in re.findall(r"`([a-zA-Z]+(?:\.[a-zA-Z]+)*)(?:\.\*)?`", cell)]
    assert len(cells) > 10, table
    for cell in cells:
        node = values
        for part in cell.split("."):
            assert isinstance(node, dict) and part in node, f"{cell} is not a chart value"
            node = node[part]


# ---------------------------------------------------------------- the kinds and their examples

def _section(title: str) -> str:
    """The text under a heading, up to the next heading (code blocks left out: a shell
    comment there is no heading)."""
    docs = re.sub(r"\n```.*?\n```", "", _docs(), flags=re.DOTALL)
    assert f"\n{title}\n" in docs, f"README has no section {title!r}"
    return re.split(r"\n#{1,6} ", docs.split(f"\n{title}\n", 1)[1], maxsplit=1)[0]


def _table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row in ``text`` (header and separator included)."""
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.strip().startswith("|")]


def test_readme_names_every_kinds_short_names_and_the_category() -> None:
    from cube_operator.api import CATEGORY, KINDS

    docs = _docs()
    assert f"`{CATEGORY}`" in docs and f"kubectl get {CATEGORY}" in docs
    for info in KINDS:
        for short in info.short_names:
            assert f"`{short}`" in docs, f"README does not name {info.kind}'s short name {short}"


def test_readme_kinds_table_matches_the_crds() -> None:
    """One row per kind: its short names, its printer columns as kubectl prints them (NAME
    first, the -o wide ones in parentheses), and an example file of that kind."""
    import yaml

    from cube_operator.api import KINDS

    rows = {row[0].strip("`"): row for row in _table_rows(_section("### Kinds")) if len(row) == 5}
    for info in KINDS:
        assert info.kind in rows, f"the Kinds table has no row for {info.kind}"
        _kind, short, _what, columns, example = rows[info.kind]
        assert short.replace("`", "").split(", ") == list(info.short_names), short
        default = [str(c["name"]).upper() for c in info.printer_columns if not c.get("priority")]
        wide = [str(c["name"]).upper() for c in info.printer_columns if c.get("priority")]
        assert columns == " ".join(default) + (f" ({' '.join(wide)})" if wide else ""), (info.kind, columns)
        (path,) = re.findall(r"\]\((examples/[^)]+)\)", example)
        docs = [d for d in yaml.safe_load_all((ROOT / path).read_text()) if d]
        assert info.kind in {d["kind"] for d in docs}, f"{path} has no {info.kind}"


def test_readme_support_table_matches_the_providers() -> None:
    from deploy_helpers import KINDS
    from example_helpers import KNOWN_PROVIDERS, supported_kinds

    rows = [row for row in _table_rows(_section("### Kinds")) if len(row) == 1 + len(KNOWN_PROVIDERS)]
    header = rows[0]
    providers = [cell.strip("`") for cell in header[1:]]
    assert sorted(providers) == sorted(KNOWN_PROVIDERS), header
    seen = set()
    for row in rows[1:]:
        kinds = re.findall(r"`(\w+)`", row[0])
        for kind in (k for k in kinds if k in KINDS):
            seen.add(kind)
            for provider, cell in zip(providers, row[1:], strict=True):
                said = cell.startswith("✓")
                assert said == (kind in supported_kinds(provider)), (kind, provider, cell)
    assert seen == set(KINDS), f"the support table lacks {set(KINDS) - seen}"


def test_readme_example_paths_exist() -> None:
    paths = set(re.findall(r"(?<![\w/.])(examples/[\w./-]*[\w/-])", _docs()))
    assert len(paths) > 10, paths
    for path in paths:
        assert (ROOT / path).exists(), f"README names {path}, which does not exist"


def test_readme_says_how_to_apply_what_the_sandbox_does_not() -> None:
    from example_helpers import MORE, provider_dirs

    docs = _docs()
    for directory in provider_dirs():
        if (directory / MORE).is_dir():
            command = f"kubectl apply -f examples/{directory.name}/{MORE}/"
            assert command in docs, f"README does not say `{command}`"


def test_readme_says_what_deleting_a_cube_does_for_every_provider_with_children() -> None:
    """The section names the ownerReference and, per provider that has Snapshots,
    TcpMappings or Domains, what becomes of them at the provider."""
    from example_helpers import KNOWN_PROVIDERS, supported_kinds

    section = _section("### What deleting a Cube does")
    assert "ownerReference" in section and "deletionPolicy: Orphan" in section
    header = next(row for row in _table_rows(section) if row[0].startswith("deleted with the VM"))
    with_children = {p for p in KNOWN_PROVIDERS if supported_kinds(p) & {"Snapshot", "TcpMapping", "Domain"}}
    assert {cell.strip("`") for cell in header[1:]} == with_children, header
