"""Provider-aware sizing checks: a field the provider does not read, or a second way of
sizing it would ignore, is named before anything is sent."""
from __future__ import annotations

from cube_operator.providers import sizing_problems
from cube_operator.providers.cyberpanel import CyberPanelProvider
from cube_operator.providers.krova import KrovaProvider
from cube_operator.providers.lunanode import LunaNodeProvider
from cube_operator.providers.nokyc import NoKycProvider
from cube_operator.providers.voltagepark import VoltageParkProvider


def test_krova_reads_resources_only() -> None:
    fields = KrovaProvider.sizing_fields
    assert sizing_problems("krova", fields, plan=False, resources=True, gpus=False) == []
    [plan, gpus] = sizing_problems("krova", fields, plan=True, resources=True, gpus=True)
    assert plan == "spec.plan does not apply to krova, which sizes VMs by spec.resources; remove spec.plan"
    assert gpus.startswith("spec.gpus does not apply to krova")


def test_plan_providers_refuse_a_plan_with_resources_they_would_ignore() -> None:
    for name, provider in (("nokyc", NoKycProvider), ("lunanode", LunaNodeProvider),
                           ("cyberpanel", CyberPanelProvider)):
        assert sizing_problems(name, provider.sizing_fields, plan=True, resources=False, gpus=False) == []
        assert sizing_problems(name, provider.sizing_fields, plan=False, resources=True, gpus=False) == []
        [both] = sizing_problems(name, provider.sizing_fields, plan=True, resources=True, gpus=False)
        assert f"{name} would use spec.plan and ignore spec.resources" in both
        assert sizing_problems(name, provider.sizing_fields, plan=False, resources=True, gpus=True)[0].startswith(
            f"spec.gpus does not apply to {name}")


def test_voltage_park_sizes_by_preset_or_resources_with_gpus() -> None:
    fields = VoltageParkProvider.sizing_fields
    assert sizing_problems("voltagepark", fields, plan=False, resources=True, gpus=True) == []
    assert sizing_problems("voltagepark", fields, plan=True, resources=False, gpus=False) == []
    [both] = sizing_problems("voltagepark", fields, plan=True, resources=True, gpus=True)
    assert "ignore spec.resources and spec.gpus" in both
