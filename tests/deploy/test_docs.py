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
