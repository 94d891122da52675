"""What LunaNode's missing power state costs: vm/info calls per VM, in the steady state.

LunaNode's vm/list has no power state, so the provider asks vm/info for a VM only while
it changes, after an action, and once per sweep (``spec.lunanode.stateSweepSeconds``,
jittered ±20 %). This runs the real LunaNode provider against the simulator: creates N
VMs, waits until they are Online, then polls vm/list once per "interval" for a number
of sweeps and counts the calls. The sweep is shortened (``--sweep``) so the run is short;
calls scale with 1/sweep, so the per-hour figures are given for the default 300 s.

    .venv/bin/python bench/lunanode_state_calls.py [--sizes 5 20 50] [--sweep 2] [--sweeps 5]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import struct
import time
import uuid

import httpx

from cloudsim.testing import running_simulator
from cube_operator.providers import CreateAttempt, Resources, VMSpec, VMState
from cube_operator.providers.lunanode import LunaNodeClient, LunaNodeProvider, vm_name

API_ID = "benchapiid000016"
API_KEY = "0123456789abcdef" * 4 + "fedcba9876543210" * 4
DEFAULT_SWEEP = 300.0


def ssh_key() -> str:
    def s(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b
    return "ssh-ed25519 " + base64.b64encode(s(b"ssh-ed25519") + s(hashlib.sha256(b"bench").digest())).decode()


async def calls(admin: httpx.AsyncClient) -> dict[str, int]:
    rows = (await admin.get("/stats")).json()["requests"]
    out: dict[str, int] = {}
    for row in rows:
        out[row["route"]] = out.get(row["route"], 0) + row["count"]
    return out


async def measure(size: int, sweep: float, sweeps: int, interval: float) -> tuple[int, int, float]:
    with running_simulator("lunanode", api_id=API_ID, api_key=API_KEY, time_scale=200.0) as sim:
        async with LunaNodeClient(api_id=API_ID, api_key=API_KEY, endpoint=sim.url) as client, \
                httpx.AsyncClient(base_url=sim.admin_url, timeout=10) as admin:
            provider = LunaNodeProvider(client, sweep_seconds=sweep)
            for i in range(size):
                spec = VMSpec(name=vm_name(f"bench-{i}", str(uuid.uuid4())), image="Ubuntu 22.04 64-bit",
                              region="toronto", resources=Resources(1, 1, 15), ssh_public_key=ssh_key())
                await provider.create_vm(spec, CreateAttempt(str(uuid.uuid4())))
            while not all(vm.state is VMState.RUNNING for vm in await provider.list_vms()):
                await asyncio.sleep(interval)
            await admin.delete("/stats")
            started = time.monotonic()
            while time.monotonic() - started < sweep * sweeps:
                await provider.list_vms()
                await asyncio.sleep(interval)
            elapsed = time.monotonic() - started
            counted = await calls(admin)
    return counted.get("/api/vm/list/", 0), counted.get("/api/vm/info/", 0), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--sweep", type=float, default=2.0, help="shortened sweep, seconds")
    parser.add_argument("--sweeps", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.2, help="poll interval, seconds")
    args = parser.parse_args()
    print(f"{'VMs':>5} {'vm/list':>8} {'vm/info':>8} {'info/VM/sweep':>14} "
          f"{'info/VM/hour @300s':>19} {'naive info/VM/hour @30s poll':>29}")
    for size in args.sizes:
        lists, infos, elapsed = asyncio.run(measure(size, args.sweep, args.sweeps, args.interval))
        per_sweep = infos / size / (elapsed / args.sweep)
        print(f"{size:>5} {lists:>8} {infos:>8} {per_sweep:>14.2f} {per_sweep * 3600 / DEFAULT_SWEEP:>19.1f} "
              f"{3600 / 30:>29.0f}")


if __name__ == "__main__":
    main()
