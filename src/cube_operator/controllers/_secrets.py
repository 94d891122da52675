"""Reading Secrets: one reader for credentials, SSH keys, user data and webhook secrets.

Values never reach a message: problems name the Secret and the key, not the content.
"""
from __future__ import annotations

import base64
import binascii
from typing import Any

from ._kube import Kube, NotFoundError
from ._problems import ConfigProblem


def decode_secret_value(secret: dict[str, Any], key: str) -> str | None:
    """The value under ``key`` (``data`` base64, or ``stringData``), stripped; None if absent."""
    data = secret.get("data") or {}
    if key in data:
        try:
            return base64.b64decode(data[key]).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    string_data = secret.get("stringData") or {}
    value = string_data.get(key)
    return str(value).strip() if value is not None else None


async def read_secret(kube: Kube, namespace: str, name: str, keys: list[str], *,
                      what: str) -> dict[str, str]:
    """``keys`` of Secret ``namespace/name``, or a ConfigProblem naming what is missing.

    ``what`` says who needs it (``spec.sshPublicKeySecretRef``, ``credentials Secret``).
    """
    try:
        secret = await kube.get_secret(namespace, name)
    except NotFoundError:
        raise ConfigProblem("SecretNotFound", f"{what}: Secret {namespace}/{name} does not exist") from None
    values: dict[str, str] = {}
    missing = []
    for key in keys:
        value = decode_secret_value(secret, key)
        if value:
            values[key] = value
        else:
            missing.append(key)
    if missing:
        needs = f" (needs {' and '.join(keys)})" if len(keys) > 1 else ""
        raise ConfigProblem(
            "SecretKeyMissing",
            f"{what}: Secret {namespace}/{name} has no key {', '.join(repr(k) for k in missing)}{needs}",
        )
    return values


async def read_secret_value(kube: Kube, namespace: str, name: str, key: str, *, what: str) -> str:
    return (await read_secret(kube, namespace, name, [key], what=what))[key]
