"""``python -m cloudsim <provider> ...``: run one provider simulator in the foreground.

    python -m cloudsim krova --port 8081 --api-key kro_key --space-id sp_1 \\
        [--api-key kro_other:sp_2] [--api-key kro_ro:sp_1:view] [--time-scale 60] \\
        [--latency-ms 20] [--rate-limit 10] [--host 127.0.0.1] [--public-url URL] \\
        [--set provision_delay=0.5 ...] [--validate-responses] \\
        [--webhook-signature {sha256,v1}]

``--api-key`` repeats: ``KEY`` (Space from ``--space-id``), ``KEY:SPACE_ID``, or
``KEY:SPACE_ID:view`` for a read-only key.  ``--webhook-signature`` picks the
``X-Krova-Signature`` format (the ``webhook_signature`` knob; it wins over a ``--set``
of the same knob).  ``--port 0`` picks a free port.  Once listening it prints one line
to stdout::

    cloudsim krova listening on http://HOST:PORT/api/v1 (admin http://HOST:PORT/_sim)

and runs until SIGINT/SIGTERM.  ``GET /_sim/`` on any simulator lists its admin
endpoints (method, path, what each does).

    python -m cloudsim nokyc --port 8082 --token nkv_live_<52 [a-z0-9]>[:SCOPE] \\
        [--token ...] [--time-scale 60] [--latency-ms 20] [--rate-limit 60] \\
        [--host 127.0.0.1] [--public-url URL] [--set install_delay=5 ...] \\
        [--allow-http-webhooks] [--webhook-ca-file PEM]

``--token`` repeats; SCOPE is ``read``, ``write`` (the default) or ``billing``.
``--rate-limit`` is the general bucket's requests per minute (60; 0 turns every NoKYC
rate limit off).  ``--allow-http-webhooks`` and ``--webhook-ca-file`` set the knobs of
the same names.  The ready line is the same, with ``/v1`` as the API base.

    python -m cloudsim lunanode --port 8083 --api-id <16 chars> --api-key <128 chars> \\
        [--time-scale 60] [--latency-ms 20] [--rate-limit 0] [--host 127.0.0.1] \\
        [--public-url URL] [--set build_delay=5 ...]

LunaNode has one API id and key per simulator (lengths checked at startup, exit 2
otherwise) and no documented rate limit (``--rate-limit`` 0, off, by default: POSTs
per 60 s simulated per client IP).  The ready line is the same, with ``/api`` as the
API base (clients post to ``/api/{category}/{action}/``).

    python -m cloudsim voltagepark --port 8084 --api-key KEY[:ORGANIZATION_ID] \\
        [--api-key ...] [--time-scale 60] [--latency-ms 20] [--rate-limit 0] \\
        [--host 127.0.0.1] [--public-url URL] [--set provision_delay=5 ...]

Voltage Park: ``--api-key`` repeats; a key without an organization belongs to the
default one.  A key works as ``Authorization: Bearer KEY`` and as ``x-api-token: KEY``.
No documented rate limit (``--rate-limit`` 0, off, by default: API requests per 60 s
simulated per client IP).  The ready line is the same, with ``/api/v1`` as the API base.

    python -m cloudsim cyberpanel --port 8085 --api-key cyp_live_<64 hex>[:SCOPES] \\
        [--api-key ...] [--balance 150.00] [--time-scale 60] [--latency-ms 20] \\
        [--rate-limit 60] [--host 127.0.0.1] [--public-url URL] [--set deploy_delay=30 ...]

CyberPanel: ``--api-key`` repeats; the key is split from its scopes at the first colon
(``cyp_live_...:vps:read,vps:write``; comma-separated, default ``all``).  Keys must
match ``cyp_live_[0-9a-f]{64}`` (exit 2 otherwise).  ``--rate-limit`` is the per-minute
limit of every key (60; the hourly one is the ``rate_limit_per_hour`` knob, 1000); 0
turns both off.  ``--balance`` is the account balance in USD.  The ready line is the
same, with ``/api/v1`` as the API base.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import logging
import re
import signal
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from .common.server import SimServer
from .cyberpanel import KEY_PATTERN as CYBERPANEL_KEY_PATTERN
from .cyberpanel import CyberPanelSimulator
from .krova import KrovaSimulator
from .krova.engine import WEBHOOK_SIGNATURES
from .lunanode import LunaNodeSimulator
from .nokyc import NoKycSimulator
from .voltagepark import VoltageParkSimulator
from .voltagepark.simulator import DEFAULT_ORGANIZATION_ID

NOKYC_SCOPES = ("read", "write", "billing")


def _parse_keys(
    raw: Sequence[str], default_space: str | None, parser: argparse.ArgumentParser
) -> tuple[dict[str, str], set[str]]:
    keys: dict[str, str] = {}
    read_only: set[str] = set()
    for item in raw:
        key, _, rest = item.partition(":")
        space, _, scope = rest.partition(":")
        space = space or default_space or ""
        if not key or not space:
            parser.error(f"--api-key {item!r}: give KEY:SPACE_ID or a --space-id")
        if scope not in ("", "manage", "view"):
            parser.error(f"--api-key {item!r}: scope must be 'view' or 'manage'")
        keys[key] = space
        if scope == "view":
            read_only.add(key)
    return keys, read_only


def _parse_tokens(raw: Sequence[str], parser: argparse.ArgumentParser) -> dict[str, str]:
    tokens: dict[str, str] = {}
    for item in raw:
        token, _, scope = item.partition(":")
        scope = scope or "write"
        if scope not in NOKYC_SCOPES:
            parser.error(f"--token {item[:20]!r}...: scope must be read, write or billing")
        tokens[token] = scope
    return tokens


def _parse_sets(raw: Sequence[str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for item in raw:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--set {item!r}: expected NAME=VALUE")
        try:
            settings[name] = json.loads(value)
        except ValueError:
            settings[name] = value
    return settings


def _common(sub: argparse.ArgumentParser, *, rate_limit: int, rate_limit_help: str, knob: str) -> None:
    """The flags every simulator takes (provider-specific ones are added after)."""
    sub.add_argument("--port", type=int, default=0, help="listen port (0 = any free)")
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--time-scale", type=float, default=1.0,
                     help="simulated time runs this many times faster")
    sub.add_argument("--latency-ms", type=float, default=0.0,
                     help="added to every API request (real milliseconds)")
    sub.add_argument("--rate-limit", type=int, default=rate_limit, help=rate_limit_help)
    sub.add_argument("--public-url", help="the URL clients use, if not the listen address")
    sub.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                     help=f"any /_sim/config knob, e.g. {knob}")
    sub.set_defaults(parser=sub)


_RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_RST_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
HELP_WIDTH = 88


def plain_text(doc: str, width: int = HELP_WIDTH) -> str:
    """``doc`` (reStructuredText, as the docstrings here are written) as plain text for a
    terminal: inline literals and roles lose their markup (````--port 0```` and
    ``:class:`X``` read ``--port 0`` and ``X``), ``::`` ending a paragraph becomes
    ``:``, and paragraphs are refilled to ``width``; indented blocks (the command
    lines) stay as written."""
    text = _RST_LITERAL.sub(r"\1", _RST_ROLE.sub(r"\1", inspect.cleandoc(doc)))
    blocks = []
    for block in re.split(r"\n\s*\n", text):
        if block[:1].isspace():
            blocks.append(block)
            continue
        paragraph = " ".join(block.split())
        paragraph = paragraph[:-1] if paragraph.endswith("::") else paragraph
        blocks.append(textwrap.fill(paragraph, width, break_long_words=False, break_on_hyphens=False))
    return "\n\n".join(blocks)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cloudsim", description=plain_text(__doc__ or ""),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-level", default="WARNING", help="Python log level")
    providers = parser.add_subparsers(dest="provider", required=True, metavar="PROVIDER")

    krova = providers.add_parser("krova", help="Krova (krova.cloud) Cubes API")
    _common(krova, rate_limit=10, knob="provision_delay=0.5",
            rate_limit_help="mutating requests per 60 s (simulated) per client IP; 0 = off")
    krova.add_argument("--api-key", action="append", required=True, metavar="KEY[:SPACE[:view]]")
    krova.add_argument("--space-id", help="Space of keys given without one")
    krova.add_argument("--validate-responses", action="store_true",
                       help="check every API answer against the OpenAPI spec")
    krova.add_argument("--webhook-signature", choices=WEBHOOK_SIGNATURES,
                       help="X-Krova-Signature format: sha256 (the seed's, default) or v1 "
                            "(t=<unix seconds>,v1=<hex>)")

    nokyc = providers.add_parser("nokyc", help="NoKYC VPS (nokycvps.com) API")
    _common(nokyc, rate_limit=60, knob="install_delay=5",
            rate_limit_help="general requests per 60 s (simulated) per token, burst "
                            "rate_burst; 0 = every rate limit off")
    nokyc.add_argument("--token", action="append", required=True, metavar="TOKEN[:SCOPE]",
                       help="nkv_live_<52 [a-z0-9]> with scope read, write (default) or "
                            "billing; repeatable")
    nokyc.add_argument("--allow-http-webhooks", action="store_true",
                       help="sandbox only: accept http:// webhook URLs")
    nokyc.add_argument("--webhook-ca-file", metavar="PEM",
                       help="CA bundle webhook deliveries trust for https")

    lunanode = providers.add_parser("lunanode", help="LunaNode (lunanode.com) dynamic API")
    _common(lunanode, rate_limit=0, knob="build_delay=5",
            rate_limit_help="POSTs per 60 s (simulated) per client IP; 0 = off (LunaNode "
                            "documents no limit)")
    lunanode.add_argument("--api-id", required=True, metavar="ID",
                          help="the account's API ID (16 characters)")
    lunanode.add_argument("--api-key", required=True, metavar="KEY",
                          help="the account's API key (128 characters)")

    vp = providers.add_parser("voltagepark", help="Voltage Park On Demand API")
    _common(vp, rate_limit=0, knob="provision_delay=5",
            rate_limit_help="API requests per 60 s (simulated) per client IP; 0 = off (Voltage "
                            "Park documents no limit)")
    vp.add_argument("--api-key", action="append", required=True, metavar="KEY[:ORG_ID]",
                    help="API key (Bearer and x-api-token), optionally with its "
                         "organization id; repeatable")

    cp = providers.add_parser("cyberpanel", help="CyberPanel Cloud (platform.cyberpersons.com) "
                                                 "VPS API")
    _common(cp, rate_limit=60, knob="deploy_delay=30",
            rate_limit_help="requests per minute (simulated) per API key without its own "
                            "limit; 0 = every rate limit off (the hourly one too)")
    cp.add_argument("--api-key", action="append", required=True, metavar="KEY[:SCOPES]",
                    help="cyp_live_<64 lowercase hex>, optionally with comma-separated "
                         "scopes after the first colon (default all); repeatable")
    cp.add_argument("--balance", metavar="USD", help="account balance (default 150.00)")
    return parser


async def _serve(simulator: SimServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with simulator:
        print(
            f"cloudsim {simulator.provider} listening on {simulator.url} "
            f"(admin {simulator.admin_url})",
            flush=True,
        )
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sub: argparse.ArgumentParser = args.parser
    if args.provider == "nokyc":
        return _main_nokyc(args, sub)
    if args.provider == "lunanode":
        return _main_lunanode(args, sub)
    if args.provider == "voltagepark":
        return _main_voltagepark(args, sub)
    if args.provider == "cyberpanel":
        return _main_cyberpanel(args, sub)
    keys, read_only = _parse_keys(args.api_key, args.space_id, sub)
    settings = _parse_sets(args.set, sub)
    if args.webhook_signature is not None:
        settings["webhook_signature"] = args.webhook_signature
    try:
        simulator = KrovaSimulator(
            keys,
            read_only_keys=read_only,
            host=args.host,
            port=args.port,
            time_scale=args.time_scale,
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            public_url=args.public_url,
            validate_responses=args.validate_responses,
            settings=settings,
        )
    except ValueError as exc:
        sub.error(str(exc))
    asyncio.run(_serve(simulator))
    return 0


def _main_nokyc(args: argparse.Namespace, sub: argparse.ArgumentParser) -> int:
    tokens = _parse_tokens(args.token, sub)
    settings = _parse_sets(args.set, sub)
    if args.allow_http_webhooks:
        settings["allow_http_webhooks"] = True
    if args.webhook_ca_file is not None:
        settings["webhook_ca_file"] = args.webhook_ca_file
    try:
        simulator = NoKycSimulator(
            tokens,
            host=args.host,
            port=args.port,
            time_scale=args.time_scale,
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            public_url=args.public_url,
            settings=settings,
        )
    except ValueError as exc:
        sub.error(str(exc))
    asyncio.run(_serve(simulator))
    return 0


def _main_lunanode(args: argparse.Namespace, sub: argparse.ArgumentParser) -> int:
    settings = _parse_sets(args.set, sub)
    try:
        simulator = LunaNodeSimulator(
            args.api_id,
            args.api_key,
            host=args.host,
            port=args.port,
            time_scale=args.time_scale,
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            public_url=args.public_url,
            settings=settings,
        )
    except ValueError as exc:
        sub.error(str(exc))
    asyncio.run(_serve(simulator))
    return 0


def _main_voltagepark(args: argparse.Namespace, sub: argparse.ArgumentParser) -> int:
    keys: dict[str, str] = {}
    for item in args.api_key:
        key, _, org = item.partition(":")
        if not key:
            sub.error(f"--api-key {item!r}: empty key")
        keys[key] = org or DEFAULT_ORGANIZATION_ID
    settings = _parse_sets(args.set, sub)
    try:
        simulator = VoltageParkSimulator(
            keys,
            host=args.host,
            port=args.port,
            time_scale=args.time_scale,
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            public_url=args.public_url,
            settings=settings,
        )
    except ValueError as exc:
        sub.error(str(exc))
    asyncio.run(_serve(simulator))
    return 0


def _main_cyberpanel(args: argparse.Namespace, sub: argparse.ArgumentParser) -> int:
    keys: dict[str, str] = {}
    for item in args.api_key:
        key, _, scopes = item.partition(":")
        if not CYBERPANEL_KEY_PATTERN.match(key):
            sub.error(f"--api-key {key[:16]!r}...: must match cyp_live_[0-9a-f]{{64}}")
        keys[key] = scopes or "all"
    settings = _parse_sets(args.set, sub)
    try:
        simulator = CyberPanelSimulator(
            keys,
            host=args.host,
            port=args.port,
            time_scale=args.time_scale,
            latency_ms=args.latency_ms,
            rate_limit=args.rate_limit,
            public_url=args.public_url,
            settings=settings,
            balance=args.balance,
        )
    except ValueError as exc:
        sub.error(str(exc))
    asyncio.run(_serve(simulator))
    return 0
