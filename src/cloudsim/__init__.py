"""Provider simulators (aiohttp) for cube-operator's tests, sandbox and benchmarks.

One subpackage per provider (only ``krova`` so far) on top of :mod:`cloudsim.common`.
Entry points: :class:`KrovaSimulator` (async context manager),
:func:`cloudsim.testing.running_simulator` (background thread) and
``python -m cloudsim krova ...`` (see :mod:`cloudsim.cli`).
"""

from collections.abc import Callable

from .common.server import SimServer
from .krova import KrovaSettings, KrovaSimulator

# Provider name -> simulator factory; each takes ``{api_key: account_id}`` first.
PROVIDERS: dict[str, Callable[..., SimServer]] = {"krova": KrovaSimulator}

__all__ = ["PROVIDERS", "KrovaSettings", "KrovaSimulator", "SimServer"]
