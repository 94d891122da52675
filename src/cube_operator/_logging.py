"""Log setup: text or JSON lines; every line about an object names it."""
from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

# kopf logs whole bodies at DEBUG ("Creation is in progress: {...}"), and kubectl's
# last-applied annotation repeats the spec as JSON: inline user data (cloud-init often
# carries secrets) must not reach the log either way.
_USER_DATA = re.compile(r"""(['"\\]*userData['"\\]*\s*:\s*)(['"])(?:\\.|(?!\2).)*\2""")


# The same inside a JSON string (kubectl's annotation): \"userData\":\"...\"
_ESCAPED_USER_DATA = re.compile(r'(\\"userData\\":\s*\\")(.*?)(\\"\s*[,}])')


def redact_user_data(text: str) -> str:
    text = _ESCAPED_USER_DATA.sub(lambda m: f"{m.group(1)}[REDACTED]{m.group(3)}", text)
    return _USER_DATA.sub(lambda m: f"{m.group(1)}{m.group(2)}[REDACTED]{m.group(2)}", text)


class UserDataFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "userData" in message:
            record.msg, record.args = redact_user_data(message), ()
        return True


#: How a TemporaryError for an expected wait starts (``kopf.TemporaryError(WAITING + ...)``).
WAITING = "waiting: "
_TEMPORARY = "failed temporarily: "


class ExpectedWaitFilter(logging.Filter):
    """kopf logs every TemporaryError at ERROR ("Handler ... failed temporarily: ...").
    Waiting for a provider to finish a delete is routine (INFO); a retried failure is a
    WARNING. Real errors keep their level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and record.name.startswith("kopf"):
            message = record.getMessage()
            if _TEMPORARY in message:
                level = logging.INFO if (_TEMPORARY + WAITING) in message else logging.WARNING
                record.msg, record.args = message.replace(" " + _TEMPORARY + WAITING, ": "), ()
                record.levelno, record.levelname = level, logging.getLevelName(level)
        return True


def object_of(record: logging.LogRecord) -> dict[str, Any] | None:
    """The object a line is about: kopf's per-object loggers (and ours) set ``k8s_ref``."""
    ref = getattr(record, "k8s_ref", None)
    return ref if isinstance(ref, dict) and ref.get("name") else None


def object_text(ref: dict[str, Any]) -> str:
    where = f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else str(ref["name"])
    return f"{ref['kind']} {where}" if ref.get("kind") else where


class TextFormatter(logging.Formatter):
    """One line each; a line about an object names it first: ``[Cube team-a/web-1] ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        ref = object_of(record)
        if ref is not None:
            record.message = f"[{object_text(ref)}] {record.message}"
        return super().formatMessage(record)


#: Digits vary between repeats of one failure (ports, seconds, counts): compared without them.
_DIGITS = re.compile(r"\d+")


class RepeatFilter(logging.Filter):
    """A failure that repeats is logged once, then summarised: the same WARNING or ERROR about
    the same object (digits aside) is held back for ``window`` seconds; the next one after
    that says how many were held back. A different message is logged at once."""

    def __init__(self, window: float = 300.0, max_keys: int = 10_000) -> None:
        super().__init__()
        self.window = window
        self.max_keys = max_keys
        self._seen: dict[tuple[str, str, str], tuple[float, int]] = {}  # key -> (logged at, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or record.exc_info:
            return True
        ref = object_of(record)
        who = object_text(ref) if ref else record.name
        key = (who, record.name, _DIGITS.sub("#", record.getMessage()))
        now = record.created
        logged_at, held = self._seen.get(key, (0.0, 0))
        if now - logged_at < self.window:
            self._seen[key] = (logged_at, held + 1)
            return False
        if held:
            record.msg, record.args = (f"{record.getMessage()} (and {held} more like it in the last "
                                       f"{(now - logged_at) / 60:.0f} min)"), ()
        if len(self._seen) >= self.max_keys:
            self._seen.clear()  # bounded; the worst case is one repeat logged again
        self._seen[key] = (now, 0)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        k8s_obj = getattr(record, "k8s_ref", None)
        if isinstance(k8s_obj, dict):
            entry["namespace"] = k8s_obj.get("namespace")
            entry["name"] = k8s_obj.get("name")
            entry["kind"] = k8s_obj.get("kind")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    handler.addFilter(UserDataFilter())
    handler.addFilter(ExpectedWaitFilter())  # before RepeatFilter: it sets the final level
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs full URLs at INFO; keep it quiet, our client logs what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
