"""Provider simulators (aiohttp) for cube-operator's tests, sandbox and benchmarks.

One subpackage per provider (``krova``, ``nokyc``, ``lunanode``, ``voltagepark``,
``cyberpanel``) on top of :mod:`cloudsim.common`.  Entry points: :class:`KrovaSimulator` /
:class:`NoKycSimulator` / :class:`LunaNodeSimulator` / :class:`VoltageParkSimulator` /
:class:`CyberPanelSimulator` (async context managers),
:func:`cloudsim.testing.running_simulator` (background thread) and
``python -m cloudsim {krova,nokyc,lunanode,voltagepark,cyberpanel} ...`` (see
:mod:`cloudsim.cli`).
"""

from collections.abc import Callable

from .common.server import SimServer
from .cyberpanel import CyberPanelSettings, CyberPanelSimulator
from .krova import KrovaSettings, KrovaSimulator
from .lunanode import LunaNodeSettings, LunaNodeSimulator
from .nokyc import NoKycSettings, NoKycSimulator
from .voltagepark import VoltageParkSettings, VoltageParkSimulator

# Provider name -> simulator factory.  Each takes its credentials first: Krova
# ``{api_key: space_id}``, NoKYC ``{token: scope}``, LunaNode ``api_id, api_key``, Voltage Park ``key`` or
# ``{key: organization_id}``, CyberPanel ``key`` or ``{key: scopes}``.
PROVIDERS: dict[str, Callable[..., SimServer]] = {
    "krova": KrovaSimulator,
    "nokyc": NoKycSimulator,
    "lunanode": LunaNodeSimulator,
    "voltagepark": VoltageParkSimulator,
    "cyberpanel": CyberPanelSimulator,
}

__all__ = [
    "PROVIDERS", "CyberPanelSettings", "CyberPanelSimulator", "KrovaSettings",
    "KrovaSimulator", "LunaNodeSettings", "LunaNodeSimulator", "NoKycSettings",
    "NoKycSimulator", "SimServer", "VoltageParkSettings", "VoltageParkSimulator",
]
