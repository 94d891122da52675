"""``python -m kubeapi --port N --kubeconfig PATH [--host 127.0.0.1]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .server import KubeAPIServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m kubeapi",
                                description="Kubernetes API server emulator")
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--kubeconfig", required=True, help="where to write a kubeconfig")
    p.add_argument("--history-size", type=int, default=5000,
                   help="watch history window in events (older resourceVersions get 410)")
    p.add_argument("--bookmark-interval", type=float, default=60.0,
                   help="seconds between watch BOOKMARK events")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    return p


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with KubeAPIServer(args.host, args.port, history_size=args.history_size,
                             bookmark_interval=args.bookmark_interval) as server:
        path = server.write_kubeconfig(args.kubeconfig)
        print(f"kubeapi: serving {server.url}; kubeconfig written to {path}", flush=True)
        await stop.wait()
        print("kubeapi: shutting down", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
