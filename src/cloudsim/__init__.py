"""Provider simulators (aiohttp) for cube-operator's tests, sandbox and benchmarks.

One subpackage per provider (``krova``, ``nokyc``) on top of :mod:`cloudsim.common`.
Entry points: :class:`KrovaSimulator` / :class:`NoKycSimulator` (async context
managers), :func:`cloudsim.testing.running_simulator` (background thread) and
``python -m cloudsim {krova,nokyc} ...`` (see :mod:`cloudsim.cli`).
"""

from collections.abc import Callable

from .common.server import SimServer
from .krova import KrovaSettings, KrovaSimulator
from .nokyc import NoKycSettings, NoKycSimulator

# Provider name -> simulator factory.  Each takes its credentials first: Krova
# ``{api_key: space_id}``, NoKYC ``{token: scope}``.
PROVIDERS: dict[str, Callable[..., SimServer]] = {
    "krova": KrovaSimulator,
    "nokyc": NoKycSimulator,
}

__all__ = [
    "PROVIDERS", "KrovaSettings", "KrovaSimulator", "NoKycSettings", "NoKycSimulator",
    "SimServer",
]
