"""Voltage Park's VMs in the neutral model: see :meth:`.provider.VoltageParkProvider.observe`."""

from __future__ import annotations

from .provider import VoltageParkProvider

observed_vm = VoltageParkProvider.observe

__all__ = ["observed_vm"]
