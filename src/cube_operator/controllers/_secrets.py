"""Reading Secrets: one reader for credentials, SSH keys, user data and webhook secrets;
and the Secrets the operator makes itself (generated passwords, callback secrets).

Values never reach a message: problems name the Secret and the key, not the content.
"""
from __future__ import annotations

import base64
import binascii
import secrets
import string
from collections.abc import Callable
from typing import Any, Protocol

from ._kube import MANAGED_BY, MANAGED_BY_LABEL, Kube, KubeError, NotFoundError
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


class SecretSource(Protocol):
    """Where Secrets are read from: :class:`Kube` (a GET), or the watches that keep them."""

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any]: ...


async def read_secret(kube: SecretSource, namespace: str, name: str, keys: list[str], *,
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


async def read_secret_value(kube: SecretSource, namespace: str, name: str, key: str, *, what: str) -> str:
    return (await read_secret(kube, namespace, name, [key], what=what))[key]


def owned_by(secret: dict[str, Any], owner_uid: str) -> bool:
    return any(ref.get("uid") == owner_uid for ref in (secret.get("metadata") or {}).get("ownerReferences") or [])


def made_by_operator(secret: dict[str, Any]) -> bool:
    return ((secret.get("metadata") or {}).get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY


async def write_owned_secret(kube: Kube, namespace: str, name: str, key: str, value: str, owner: dict[str, Any],
                             *, what: str) -> None:
    """Write ``key`` of Secret ``name``: create it (owned by ``owner``, labelled), or update
    it when ``owner`` owns it already. A Secret someone else made is never overwritten: a
    tenant could otherwise have the operator write over, say, a credentials Secret."""
    encoded = {key: base64.b64encode(value.encode()).decode()}
    try:
        secret = await kube.get_secret(namespace, name)
    except NotFoundError:
        try:
            await kube.create_secret(namespace, name, encoded, owner)
            return
        except KubeError as error:
            if error.status != 409:
                raise
            secret = await kube.get_secret(namespace, name)
    if not owned_by(secret, owner["uid"]):
        raise foreign_secret(namespace, name, owner, what)
    await kube.apply_secret_data(namespace, name, encoded)


def foreign_secret(namespace: str, name: str, owner: dict[str, Any], what: str) -> ConfigProblem:
    return ConfigProblem("SecretConflict",
                         f"{what}: Secret {namespace}/{name} exists but was not made for this {owner['kind']}; "
                         "the operator neither reads nor overwrites it: delete it, or name another Secret")


async def read_material(kube: Kube, namespace: str, name: str, key: str, *, what: str,
                        credentials: dict[str, str], owner_uid: str) -> str:
    """A value a Cube ships to its VM (SSH key, user data, root password). Never from a
    Secret that holds provider credentials (``credentials``: Secret name -> the
    ProviderConfig using it) or that the operator made for another object (a signing
    secret): a tenant must not be able to ship those to a VM they control."""
    if name in credentials:
        raise ConfigProblem("SecretNotAllowed",
                            f"{what}: Secret {namespace}/{name} holds the credentials of ProviderConfig "
                            f"{credentials[name]}; it cannot be used as VM material")
    try:
        secret = await kube.get_secret(namespace, name)
    except NotFoundError:
        raise ConfigProblem("SecretNotFound", f"{what}: Secret {namespace}/{name} does not exist") from None
    if made_by_operator(secret) and not owned_by(secret, owner_uid):
        raise ConfigProblem("SecretNotAllowed",
                            f"{what}: Secret {namespace}/{name} was made by the operator for another object; "
                            "it cannot be used as VM material")
    value = decode_secret_value(secret, key)
    if not value:
        raise ConfigProblem("SecretKeyMissing", f"{what}: Secret {namespace}/{name} has no key {key!r}")
    return value


async def ensure_owned_secret(kube: Kube, namespace: str, name: str, key: str, owner: dict[str, Any],
                              generate: Callable[[], str], *, what: str) -> str:
    """The value under ``key`` of Secret ``name``, which this operator made for ``owner``
    (an ownerReference); created with a ``generate``d value when absent.

    A Secret of that name that ``owner`` does not own is never read or written: a tenant
    could otherwise point the operator at someone else's Secret (or have it overwrite one).
    """
    for _ in range(2):
        try:
            secret = await kube.get_secret(namespace, name)
        except NotFoundError:
            value = generate()
            try:
                await kube.create_secret(namespace, name, {key: base64.b64encode(value.encode()).decode()}, owner)
            except KubeError as error:
                if error.status == 409:
                    continue  # made meanwhile (another replica): read it
                raise
            return value
        if not owned_by(secret, owner["uid"]):
            raise foreign_secret(namespace, name, owner, what)
        stored = decode_secret_value(secret, key)
        if stored:
            return stored
        value = generate()
        await kube.apply_secret_data(namespace, name, {key: base64.b64encode(value.encode()).decode()})
        return value
    raise ConfigProblem("SecretConflict", f"{what}: Secret {namespace}/{name} could not be created")


def generate_password(length: int = 24) -> str:
    """Letters and digits, at least one of each (what providers' password rules ask)."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if any(c.isalpha() for c in password) and any(c.isdigit() for c in password):
            return password
