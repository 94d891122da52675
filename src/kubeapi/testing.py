"""Helpers for tests: run the emulator in a background thread, and run kubectl against it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .server import KubeAPIServer, RequestRecord

KUBECTL = "/usr/bin/kubectl"


@dataclass
class RunningEmulator:
    """A started emulator: ``url``, ``kubeconfig`` and the live ``server``."""

    server: KubeAPIServer
    url: str
    kubeconfig: Path
    loop: asyncio.AbstractEventLoop
    env: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def request_log(self) -> list[RequestRecord]:
        # A copy: the server thread keeps appending.
        return list(self.server.request_log)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the server's loop (for direct access to its state)."""
        async def run() -> Any:
            return fn(*args)
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)


@contextlib.contextmanager
def running_emulator(tmp_dir: str | os.PathLike[str], *, history_size: int = 5000,
                     bookmark_interval: float = 60.0) -> Iterator[RunningEmulator]:
    """Run a KubeAPIServer on 127.0.0.1 (free port) in a thread with its own event loop."""
    tmp = Path(tmp_dir)
    tmp.mkdir(parents=True, exist_ok=True)
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        holder["stop"] = stop
        try:
            async with KubeAPIServer(history_size=history_size,
                                     bookmark_interval=bookmark_interval) as srv:
                holder["server"] = srv
                holder["loop"] = asyncio.get_running_loop()
                ready.set()
                await stop.wait()
        except BaseException as e:
            holder["error"] = e
            ready.set()
            raise

    thread = threading.Thread(target=lambda: asyncio.run(main()), name="kubeapi-emulator",
                              daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the kubeapi emulator did not start in time")
    if "error" in holder:
        raise RuntimeError("the kubeapi emulator failed to start") from holder["error"]
    server: KubeAPIServer = holder["server"]
    loop: asyncio.AbstractEventLoop = holder["loop"]
    config = server.write_kubeconfig(tmp / "kubeconfig")
    try:
        yield RunningEmulator(server, server.url, config, loop,
                              {"KUBECONFIG": str(config)})
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(15)


def kubectl_command(kubeconfig: str | os.PathLike[str], *args: str) -> list[str]:
    """The kubectl argv, with a discovery cache private to this kubeconfig."""
    cache = Path(kubeconfig).parent / ".kube-cache"
    return [KUBECTL, f"--kubeconfig={kubeconfig}", f"--cache-dir={cache}", *args]


def kubectl(kubeconfig: str | os.PathLike[str], *args: str, input: str | None = None,
            check: bool = True, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run /usr/bin/kubectl against the emulator; raises with stderr shown if check fails."""
    proc = subprocess.run(kubectl_command(kubeconfig, *args), input=input, text=True,
                          check=False, capture_output=True, timeout=timeout, env=_kubectl_env(kubeconfig))
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n"
                             f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def kubectl_popen(kubeconfig: str | os.PathLike[str], *args: str) -> subprocess.Popen[str]:
    """Start kubectl in the background (``get -w``, ``wait``, ``delete``)."""
    return subprocess.Popen(kubectl_command(kubeconfig, *args), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_kubectl_env(kubeconfig))


def _kubectl_env(kubeconfig: str | os.PathLike[str]) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBECONFIG"] = str(kubeconfig)
    # Keep kubectl from touching the user's home (cache, config) during tests.
    env["HOME"] = str(Path(kubeconfig).parent)
    return env


def widget_crd(group: str = "example.test", kind: str = "Widget", plural: str = "widgets",
               scope: str = "Namespaced") -> dict[str, Any]:
    """An example CRD exercising what the emulator implements: printer columns (incl. a
    Ready-condition column), status subresource, categories, short names, defaults, ranges,
    enums, patterns, an immutable field (``self == oldSelf``) and a CEL cross-field rule."""
    condition = {"type": "object", "required": ["type", "status"], "properties": {
        "type": {"type": "string"}, "status": {"type": "string", "enum": ["True", "False",
                                                                           "Unknown"]},
        "reason": {"type": "string"}, "message": {"type": "string"},
        "observedGeneration": {"type": "integer"},
        "lastTransitionTime": {"type": "string", "format": "date-time"}}}
    spec = {
        "type": "object", "required": ["size"],
        "x-kubernetes-validations": [{"rule": "!has(self.minSize) || self.minSize <= self.size",
                                      "message": "minSize must not exceed size"}],
        "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10,
                     "description": "How big the widget is."},
            "minSize": {"type": "integer"},
            "color": {"type": "string", "enum": ["red", "green", "blue"], "default": "red",
                      "description": "The widget's color."},
            "shape": {"type": "string", "description": "Immutable once set.",
                      "x-kubernetes-validations": [{"rule": "self == oldSelf",
                                                    "message": "shape is immutable"}]},
            "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$", "maxLength": 20},
            "tags": {"type": "array", "maxItems": 3, "items": {"type": "string"}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "port": {"x-kubernetes-int-or-string": True},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "weight": {"type": "number", "nullable": True},
            "options": {"type": "object", "default": {},
                        "properties": {"verbose": {"type": "boolean", "default": False}}},
        },
    }
    status = {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {
        "phase": {"type": "string"}, "observedGeneration": {"type": "integer"},
        "conditions": {"type": "array", "items": condition,
                       "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group, "scope": scope,
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "shortNames": [kind.lower()[:2] + "d"], "categories": ["examples"]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Size", "type": "integer", "jsonPath": ".spec.size"},
                    {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                    {"name": "Ready", "type": "string",
                     "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object", "description": f"A {kind} for tests.",
                    "properties": {"spec": spec, "status": status}}},
            }],
        },
    }
