"""`cube-operator` command line (placeholder until the operator lands)."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("cube-operator: not wired yet", file=sys.stderr)
    return 2
