from __future__ import annotations

import json
import logging
from typing import Any

from cube_operator._logging import JsonFormatter, RepeatFilter, TextFormatter


def test_json_lines_name_the_object() -> None:
    record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, "Handler %s succeeded.", ("x",), None)
    record.k8s_ref = {"apiVersion": "cube-operator.io/v1alpha1", "kind": "Cube", "name": "web-1",
                      "namespace": "team-a", "uid": "u"}
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "Handler x succeeded."
    assert (entry["namespace"], entry["name"], entry["kind"]) == ("team-a", "web-1", "Cube")
    assert entry["level"] == "info" and entry["logger"] == "kopf.objects"


def test_user_data_never_reaches_the_log() -> None:
    import logging

    from cube_operator._logging import UserDataFilter, redact_user_data

    repr_form = "Creation is in progress: {'spec': {'userData': '#cloud-config\\npassword: hunter2', 'image': 'x'}}"
    assert "hunter2" not in redact_user_data(repr_form) and "'image': 'x'" in redact_user_data(repr_form)
    annotation = '{"a": "{\\"spec\\":{\\"userData\\":\\"#cloud-config\\\\npassword: hunter2\\",\\"image\\":\\"x\\"}}"}'
    assert "hunter2" not in redact_user_data(annotation) and '\\"image\\":\\"x\\"' in redact_user_data(annotation)
    record = logging.LogRecord("kopf.objects", logging.DEBUG, __file__, 1, "body: %r",
                               ({"spec": {"userData": "secret-token"}},), None)
    assert UserDataFilter().filter(record) and "secret-token" not in record.getMessage()


def test_an_ssh_key_is_one_key() -> None:
    import pytest
    from pydantic import ValidationError

    from cube_operator.api import CubeSpec

    base = {"providerConfigRef": {"name": "p"}, "image": "i"}
    ok = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2eTestKey== me@host"
    assert CubeSpec.model_validate({**base, "sshPublicKey": ok}).ssh_public_key == ok
    assert CubeSpec.model_validate({**base, "sshPublicKey": ok.rsplit(" ", 1)[0]})
    for bad in (ok + "\nssh-rsa AAAAB3Nza attacker@evil", ok + "\n", "ssh-ed25519 !!not-base64"):
        with pytest.raises(ValidationError):
            CubeSpec.model_validate({**base, "sshPublicKey": bad})


def test_expected_waits_are_info_and_retried_failures_warnings() -> None:
    from cube_operator._logging import WAITING, ExpectedWaitFilter

    def kopf_record(text: str) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", logging.ERROR, __file__, 1,
                                 "Handler 'cubes-deleted' failed temporarily: %s", (text,), None)

    waiting = kopf_record(WAITING + "waiting for krova to delete VM cube_1 (state deleting)")
    assert ExpectedWaitFilter().filter(waiting)
    assert waiting.levelno == logging.INFO and "failed" not in waiting.getMessage()
    assert "waiting for krova to delete VM cube_1" in waiting.getMessage()
    outage = kopf_record("krova is unavailable: HTTP 503")
    assert ExpectedWaitFilter().filter(outage) and outage.levelno == logging.WARNING
    real = logging.LogRecord("kopf.objects", logging.ERROR, __file__, 1, "Handler crashed", (), None)
    assert ExpectedWaitFilter().filter(real) and real.levelno == logging.ERROR


async def test_an_api_outage_is_one_warning_per_object_without_a_traceback(caplog: Any, monkeypatch: Any) -> None:
    import asyncio

    import httpx

    from cube_operator.controllers._common import run_daemon_loop
    from cube_operator.controllers._kube import KubeError
    from cube_operator.controllers._runtime import Kick

    class Stop:
        def __init__(self) -> None:
            self.flag = False

        def __bool__(self) -> bool:
            return self.flag

        async def wait(self) -> None:
            while not self.flag:
                await asyncio.sleep(0.001)

    stopped = Stop()
    outcomes: list[BaseException | None] = [httpx.ConnectError("refused"), KubeError(503, "", "down"),
                                            httpx.ReadTimeout("slow"), None, ValueError("a bug")]

    async def reconcile() -> float:
        outcome = outcomes.pop(0) if outcomes else None
        if not outcomes:
            stopped.flag = True
        if outcome is not None:
            raise outcome
        return 0.0

    class NoSleep(Kick):
        async def sleep(self, timeout: float) -> bool:
            return False  # the loop's sleeps, skipped

    kick = NoSleep()
    logger = logging.getLogger("test.outage")
    with caplog.at_level(logging.INFO, logger="test.outage"):
        await run_daemon_loop("Cube", reconcile, kick, stopped, logger)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "unavailable" in warnings[0].getMessage() and not warnings[0].exc_info
    assert any("answers again" in r.getMessage() for r in caplog.records)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info  # a real bug keeps its traceback


def _record(message: str, *, level: int = logging.WARNING, created: float = 1000.0,
            ref: dict[str, str] | None = None) -> logging.LogRecord:
    record = logging.LogRecord("kopf.objects", level, __file__, 1, message, (), None)
    record.created = created
    if ref is not None:
        record.k8s_ref = ref
    return record


def test_a_line_about_an_object_names_its_kind_namespace_and_name() -> None:
    line = TextFormatter().format(_record("Ready=False, InvalidSpec: spec.plan ...",
                                          ref={"kind": "Cube", "namespace": "team-a", "name": "web-1"}))
    assert "WARNING kopf.objects [Cube team-a/web-1] Ready=False, InvalidSpec" in line
    assert "[" not in TextFormatter().format(_record("cube-operator started"))


def test_a_repeating_failure_is_logged_once_then_summarised() -> None:
    repeats = RepeatFilter(window=300)
    ref = {"kind": "ProviderConfig", "namespace": "team-a", "name": "krova"}
    first = _record("krova is unavailable: connect to 127.0.0.1:1 failed; retrying in 10s", ref=ref)
    assert repeats.filter(first)
    held = [repeats.filter(_record(f"krova is unavailable: connect to 127.0.0.1:1 failed; retrying in {s}s",
                                   created=1000 + s, ref=ref)) for s in (20, 40, 80, 160)]
    assert held == [False] * 4
    # Another object's, or another failure, is its own line at once.
    assert repeats.filter(_record("krova is unavailable: connect failed", ref={**ref, "name": "other"}))
    assert repeats.filter(_record("krova rejected the API key (401)", created=1001, ref=ref))
    summary = _record("krova is unavailable: connect to 127.0.0.1:1 failed; retrying in 300s", created=1400, ref=ref)
    assert repeats.filter(summary)
    assert summary.getMessage().endswith("(and 4 more like it in the last 7 min)")
    assert repeats.filter(_record("routine", level=logging.INFO, ref=ref))  # INFO is never held back
