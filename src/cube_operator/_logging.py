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
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    handler.addFilter(UserDataFilter())
    handler.addFilter(ExpectedWaitFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs full URLs at INFO; keep it quiet, our client logs what matters.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
