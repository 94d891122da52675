"""Provider API calls per poll interval as the fleet grows — the operator's steady-state cost.

Runs the real operator against the API emulator and the Krova simulator (time-scaled),
creates N Cubes, waits until all are Ready, resets the simulator's counters, then counts
the provider calls over a fixed number of poll intervals. A naive controller would GET
every Cube every interval (N calls); this one lists the space once per interval.

    .venv/bin/python bench/provider_calls.py [--sizes 5 20 50] [--intervals 10]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from cloudsim.testing import running_simulator
from cube_operator.api import KINDS
from cube_operator.api.crds import crd_for
from kubeapi.testing import running_emulator

# The e2e helpers (Cluster, Krova, Operator, ...) are test code in tests/support, not an
# installed package: put tests/ on sys.path, as pyproject.toml's pytest pythonpath does.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.e2e import (
    API_KEY,
    SPACE_ID,
    TIME_SCALE,
    Cluster,
    Krova,
    Operator,
    condition,
    cube_manifest,
    namespace_with_credentials,
    provider_config,
    wait_for,
)

POLL = 1.0


def measure(size: int, intervals: int, workdir: Path) -> dict[str, float]:
    with running_emulator(workdir / f"kube-{size}") as emulator, running_simulator(
        "krova", api_key=API_KEY, space_id=SPACE_ID, time_scale=TIME_SCALE
    ) as sim:
        cluster = Cluster(kubeconfig=Path(emulator.kubeconfig), url=emulator.url)
        krova = Krova(url=sim.url, admin_url=sim.admin_url)
        cluster.apply([crd_for(info) for info in KINDS])
        operator = Operator(kubeconfig=cluster.kubeconfig, log_path=workdir / f"op-{size}.log",
                            args=["--log-level", "warning"])
        operator.start()
        try:
            namespace = namespace_with_credentials(cluster, krova)
            config = provider_config(namespace, krova)
            config[0]["spec"]["pollIntervalSeconds"] = int(POLL)
            names = [f"b-{uuid.uuid4().hex[:6]}" for _ in range(size)]
            started = time.monotonic()
            cluster.apply(config + [cube_manifest(n, namespace, resources={"vcpu": 1, "ramGb": 1, "diskGb": 10})
                                    for n in names])
            items = lambda: cluster.kubectl("get", "cubes", "-n", namespace, "-o", "json").stdout
            wait_for(lambda: items().count('"reason": "Running"') >= size, timeout=600, interval=1.0,
                     what=f"{size} Cubes Ready")
            ready_seconds = time.monotonic() - started
            time.sleep(3 * POLL)  # let SSH/serverDomain look-ups of the last Cubes finish
            with krova.admin() as admin:
                admin.delete("/stats")
                time.sleep(intervals * POLL)
                stats = admin.get("/stats").json()["requests"]
            def calls(method: str, route: str | None = None) -> int:
                return sum(r["count"] for r in stats if r["method"] == method
                           and (route is None or r["route"] == route))
            lists = calls("GET", "/api/v1/spaces/{spaceId}/cubes")
            gets = calls("GET") - lists
            mutating = sum(r["count"] for r in stats if r["method"] != "GET")
            assert all(condition(cluster.get("cube", n, namespace), "Ready").get("status") == "True" for n in names[:3])
            return {"cubes": size, "ready_s": ready_seconds, "lists": lists / intervals,
                    "other_gets": gets / intervals, "mutating": mutating / intervals}
        finally:
            operator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--intervals", type=int, default=10)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            rows.append(measure(size, args.intervals, Path(tmp)))
    print(f"\nProvider calls per poll interval ({POLL:.0f}s), steady state over {args.intervals} intervals")
    print(f"{'cubes':>6} {'all Ready (s)':>14} {'list calls':>11} {'other GETs':>11} {'mutating':>9} "
          f"{'naive GETs':>11} {'naive/ours':>11}")
    for row in rows:
        ours = row["lists"] + row["other_gets"] + row["mutating"]
        naive = row["cubes"]
        print(f"{row['cubes']:>6} {row['ready_s']:>14.1f} {row['lists']:>11.2f} {row['other_gets']:>11.2f} "
              f"{row['mutating']:>9.2f} {naive:>11} {naive / ours if ours else float('inf'):>10.1f}x")
    httpx.Client().close()


if __name__ == "__main__":
    main()
