"""`cube-operator` command line: run, dev, crds."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cube-operator")
    except PackageNotFoundError:  # a source tree that is not installed
        return "unknown"


class _DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a flag's default where it has one worth saying (not None, not an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _parser() -> argparse.ArgumentParser:
    formatter = _DefaultsShown
    parser = argparse.ArgumentParser(prog="cube-operator", description=__doc__, formatter_class=formatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig", formatter_class=formatter,
                         description="Run the operator against the current kubeconfig (KUBECONFIG, or in-cluster).")
    run.add_argument("--namespace", "-n", action="append", default=None,
                     help="watch only this namespace (repeatable); default: all namespaces "
                          "(env CUBE_OPERATOR_NAMESPACES, comma-separated)")
    run.add_argument("--poll-interval", type=float,
                     default=float(os.environ.get("CUBE_OPERATOR_POLL_INTERVAL", "30")),
                     help="seconds between provider list calls per ProviderConfig")
    run.add_argument("--liveness-port", type=int, default=8080,
                     help="port of the /healthz endpoint (0 disables it)")
    run.add_argument("--metrics-port", type=int, default=9090, help="port of /metrics (0 disables it)")
    run.add_argument("--webhook-port", type=int, default=8443,
                     help="port of the inbound provider-webhook receiver (0 disables it)")
    run.add_argument("--bind-address", default=os.environ.get("CUBE_OPERATOR_BIND_ADDRESS", "0.0.0.0"),
                     metavar="ADDRESS",
                     help="address /healthz, /metrics and the receiver listen on, e.g. 127.0.0.1 for this "
                          "host only (env CUBE_OPERATOR_BIND_ADDRESS)")
    run.add_argument("--webhook-public-url", default=os.environ.get("CUBE_OPERATOR_WEBHOOK_PUBLIC_URL"),
                     help="URL providers use to reach the receiver (e.g. through an Ingress); "
                          "default http://127.0.0.1:<webhook-port>")
    run.add_argument("--webhook-tls-cert", default=os.environ.get("CUBE_OPERATOR_WEBHOOK_TLS_CERT"),
                     help="PEM certificate (chain) the receiver serves HTTPS with; providers such as "
                          "NoKYC only deliver to https URLs (default: plain HTTP)")
    run.add_argument("--webhook-tls-key", default=os.environ.get("CUBE_OPERATOR_WEBHOOK_TLS_KEY"),
                     help="PEM private key for --webhook-tls-cert")
    run.add_argument("--allow-endpoint", action="append", default=None, metavar="URL",
                     help="an endpoint besides each provider's documented API that ProviderConfigs may "
                          "name (scheme and host; port and path prefix if given), repeatable; env "
                          "CUBE_OPERATOR_ALLOW_ENDPOINTS, comma-separated. Tenants' credentials go there.")
    run.add_argument("--watch-inactivity-timeout", type=float, default=60.0, metavar="SECONDS",
                     help="a watch stream silent this long is taken for dead and reopened")
    run.add_argument("--max-concurrent-reconciles", type=int, default=32, metavar="K",
                     help="at most K reconcile passes run at once over all objects; the rest queue")
    run.add_argument("--delete-dependents", action="store_true",
                     help="delete a deleted Cube's Snapshots, Restores, TcpMappings and Domains itself, for "
                          "API servers without a garbage collector (the sandbox's emulator); needs delete "
                          "on those kinds, which the chart does not grant (a real cluster's garbage "
                          "collector deletes them through their ownerReferences)")
    run.add_argument("--budget-scale", type=float, default=1.0, metavar="X",
                     help="for simulators whose clock runs X times faster: every provider's documented "
                          "rate limit is X times faster too (1: real providers)")
    run.add_argument("--log-format", choices=("text", "json"),
                     default=os.environ.get("CUBE_OPERATOR_LOG_FORMAT", "text"))
    run.add_argument("--log-level", default=os.environ.get("CUBE_OPERATOR_LOG_LEVEL", "info"),
                     choices=("debug", "info", "warning", "error"))
    group = run.add_mutually_exclusive_group()
    group.add_argument("--peering", metavar="NAME",
                       help="coordinate replicas through kopf peering NAME (HA)")
    group.add_argument("--standalone", action="store_true", help="no peering (default)")
    run.add_argument("--priority", type=int, default=None,
                     help="peering priority; the highest live replica acts (default: random per process)")

    dev = sub.add_parser(
        "dev", help="run the sandbox: API emulator, simulators, operator, examples", formatter_class=formatter,
        description="The sandbox: a Kubernetes API emulator, the provider simulators and the operator, all on "
                    "127.0.0.1, with examples/<provider>/ applied. It prints a kubeconfig path: export "
                    "KUBECONFIG=<it> and use kubectl from another terminal. Ctrl-C stops everything.")
    dev.add_argument("--workdir", type=Path, default=None,
                     help="where the kubeconfig and operator.log go, kept after exit so KUBECONFIG stays the "
                          "same from run to run (default: a temporary directory, removed on exit)")
    dev.add_argument("--time-scale", type=float, default=10.0,
                     help="simulated provider time runs this much faster")
    dev.add_argument("--provider", choices=("krova", "nokyc", "cyberpanel", "lunanode", "voltagepark", "all"), default="krova",
                     help="which provider simulators run and which examples/<provider>/ are applied")
    dev.add_argument("--exit-when-ready", action="store_true",
                     help="stop once every example Cube is Running or Stopped (for scripts)")

    crds = sub.add_parser("crds", help="regenerate the CRDs from the API models", formatter_class=formatter)
    crds.add_argument("--output", type=Path, default=Path("crds"))
    return parser


def without_kubernetes_client() -> None:
    """Keep kopf from importing the official ``kubernetes`` client in this process.

    kopf imports it, when installed, only to recognise its model classes handed to
    ``kopf.adopt()`` and the like, which the operator never does; its generated models
    cost every replica about 10 MiB of memory. An import of it here fails instead (kopf
    takes that as "not installed"). Call before kopf is imported; a process that has
    already imported it keeps it."""
    sys.modules.setdefault("kubernetes", None)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run" and bool(args.webhook_tls_cert) != bool(args.webhook_tls_key):
        parser.error("--webhook-tls-cert and --webhook-tls-key go together")
    if args.command == "crds":
        from .api import KINDS
        from .api.crds import write_all

        for path in write_all(args.output, KINDS):
            print(path)
        return 0
    if args.command == "run":
        without_kubernetes_client()
        from .operator import env_list, run_operator

        run_operator(
            namespaces=args.namespace or env_list("CUBE_OPERATOR_NAMESPACES"),
            poll_interval=args.poll_interval,
            liveness_port=args.liveness_port or None,
            log_format=args.log_format,
            log_level=args.log_level,
            peering=args.peering,
            metrics_port=args.metrics_port or None,
            webhook_port=args.webhook_port or None,
            webhook_public_url=args.webhook_public_url,
            webhook_tls=(args.webhook_tls_cert, args.webhook_tls_key)
            if args.webhook_tls_cert or args.webhook_tls_key else None,
            priority=args.priority,
            budget_scale=args.budget_scale,
            watch_inactivity_timeout=args.watch_inactivity_timeout,
            delete_dependents=args.delete_dependents,
            max_concurrent_reconciles=args.max_concurrent_reconciles,
            allowed_endpoints=tuple(args.allow_endpoint or env_list("CUBE_OPERATOR_ALLOW_ENDPOINTS")),
            bind_address=args.bind_address,
        )
        return 0
    if args.command == "dev":
        from .sandbox import run_sandbox

        return run_sandbox(workdir=args.workdir, time_scale=args.time_scale,
                           exit_when_ready=args.exit_when_ready, provider=args.provider)
    return 2


if __name__ == "__main__":
    sys.exit(main())
