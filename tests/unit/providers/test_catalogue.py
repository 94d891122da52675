"""The catalogue on the provider seam: each provider's listings mapped to the neutral
:class:`Catalogue` (pure functions, no HTTP), the message helper that names valid choices,
and the choice functions' messages naming them."""
from __future__ import annotations

import pytest

from cube_operator.providers import (
    CATALOGUE_HINT,
    Catalogue,
    CatalogueEntry,
    Gpus,
    Resources,
    SpecRejected,
    VMSpec,
)
from cube_operator.providers.base import money_text, not_offered, one_of, size_text
from cube_operator.providers.cyberpanel import choose_plan as cyberpanel_plan
from cube_operator.providers.cyberpanel.models import Location, Template
from cube_operator.providers.cyberpanel.models import Plan as CyberPanelPlan
from cube_operator.providers.cyberpanel.provider import catalogue_of as cyberpanel_catalogue
from cube_operator.providers.krova.mapping import catalogue_of as krova_catalogue
from cube_operator.providers.krova.models import Image as KrovaImage
from cube_operator.providers.krova.models import Pricing
from cube_operator.providers.krova.models import Region as KrovaRegion
from cube_operator.providers.lunanode.mapping import catalogue_of as lunanode_catalogue
from cube_operator.providers.lunanode.models import Image as LunaImage
from cube_operator.providers.lunanode.models import Plan as LunaPlan
from cube_operator.providers.lunanode.provider import choose_plan as lunanode_plan
from cube_operator.providers.nokyc import choose_plan as nokyc_plan
from cube_operator.providers.nokyc.mapping import catalogue_of as nokyc_catalogue
from cube_operator.providers.nokyc.models import Image as NoKycImage
from cube_operator.providers.nokyc.models import Plan as NoKycPlan
from cube_operator.providers.nokyc.models import Region as NoKycRegion
from cube_operator.providers.voltagepark import choose_preset
from cube_operator.providers.voltagepark.models import Location as VpLocation
from cube_operator.providers.voltagepark.models import Preset
from cube_operator.providers.voltagepark.provider import catalogue_of as voltagepark_catalogue


def ids(entries: tuple[CatalogueEntry, ...] | None) -> list[str]:
    assert entries is not None
    return [e.id for e in entries]


def described(entries: tuple[CatalogueEntry, ...] | None, entry_id: str) -> str:
    assert entries is not None
    found = next(e for e in entries if e.id == entry_id)
    assert found.description
    return found.description


# -- helpers -------------------------------------------------------------------------


def test_not_offered_names_field_choices_and_where_to_look() -> None:
    message = not_offered("spec.image", "image", "ubuntu-99", "krova", ["ubuntu-24.04", "debian-12"])
    assert message == ("spec.image: image 'ubuntu-99' is not offered by krova; choose one of: "
                       f"ubuntu-24.04, debian-12 ({CATALOGUE_HINT})")
    assert "kubectl describe providerconfig" in message and "/images" not in message
    many = one_of([f"p{i}" for i in range(25)] + ["p0"])  # duplicates once
    assert many.startswith("p0, p1,") and many.endswith("p19, and 5 more")
    assert one_of([]) == "none"


def test_money_and_size_text() -> None:
    assert money_text(0.0082) == "$0.0082/h" and money_text(3.5, "month") == "$3.5/month"
    assert money_text(12.0) == "$12/h" and money_text(None) is None and money_text(float("inf")) is None
    assert size_text(2, 4, 80, None, "$0.02/h") == "2 vCPU, 4 GB RAM, 80 GB disk, $0.02/h"
    assert size_text(1, 0.5) == "1 vCPU, 0.5 GB RAM"


# -- each provider's mapping ----------------------------------------------------------


def test_krova_lists_images_by_id_regions_by_slug_and_prices_resources() -> None:
    images = [KrovaImage.model_validate({"id": "ubuntu-24.04", "name": "Ubuntu 24.04 LTS",
                                         "description": "Ubuntu 24.04 LTS (Noble Numbat)"}),
              KrovaImage.model_validate({"id": "debian-12", "name": "Debian 12"})]
    regions = [KrovaRegion.model_validate({"id": "rgn_1", "name": "Germany (Nuremberg)", "slug": "eu-nuremberg"})]
    pricing = Pricing.model_validate({
        "currency": "USD", "rates": {"vcpuPerHour": 0.001, "ramGbPerHour": 0.0025, "diskGbPerHour": 0.00005},
        "tiers": [{"minVcpus": 1, "maxVcpus": 2, "multiplier": 1.0, "label": "Standard"},
                  {"minVcpus": 9, "maxVcpus": None, "multiplier": 0.8, "label": "Enterprise"}]})
    catalogue = krova_catalogue(images, regions, pricing)
    assert ids(catalogue.images) == ["ubuntu-24.04", "debian-12"]
    assert described(catalogue.images, "ubuntu-24.04") == "Ubuntu 24.04 LTS (Noble Numbat)"
    assert described(catalogue.images, "debian-12") == "Debian 12"  # no description: the name
    assert ids(catalogue.regions) == ["eu-nuremberg"]  # the slug: what spec.region takes
    assert described(catalogue.regions, "eu-nuremberg") == "Germany (Nuremberg)"
    assert catalogue.plans is None  # sized by spec.resources
    assert catalogue.note and "spec.resources" in catalogue.note and "0.0025 per GB RAM" in catalogue.note
    assert "0.00005 per GB disk" in catalogue.note
    assert "Enterprise 9+ vCPU x0.8" in catalogue.note
    assert krova_catalogue([], [], None).note == ("krova sizes Cubes by spec.resources {vcpu, ramGb, diskGb}; "
                                                  "there are no plans")


def test_nokyc_lists_plans_with_size_price_and_regions_and_marks_deprecated_images() -> None:
    plans = [NoKycPlan(id="ded-e24", category="dedicated", cpu=24, ram_mb=131072, disk_gb=3840, price_usd_hour=0.45,
                       available_in=["par"]),
             NoKycPlan(id="vps-s2", cpu=2, ram_mb=2048, disk_gb=50, price_usd_hour=0.02, available_in=["par", "rkv"]),
             NoKycPlan(id="vps-s1", cpu=1, ram_mb=1024, disk_gb=25, price_usd_hour=0.01, available_in=[])]
    images = [NoKycImage(id="debian-13-minimal", family="debian", version="13", variant="minimal", cloud_init=True),
              NoKycImage(id="debian-12-minimal", family="debian", version="12", variant="minimal",
                         deprecated_at="2026-02-01"),
              NoKycImage(id="alpine-3.22-minimal", family="alpine", version="3.22", cloud_init=False)]
    regions = [NoKycRegion(id="par", name="Paris", country="FR"), NoKycRegion(id="buh", name="Bucharest",
                                                                              available=False)]
    catalogue = nokyc_catalogue(plans, images, regions)
    assert ids(catalogue.plans) == ["vps-s1", "vps-s2", "ded-e24"]  # VPS first, cheapest first
    assert described(catalogue.plans, "vps-s2") == "2 vCPU, 2 GB RAM, 50 GB disk, $0.02/h, in par, rkv"
    assert described(catalogue.plans, "vps-s1").endswith("in no region now")
    assert "dedicated" in described(catalogue.plans, "ded-e24")
    assert described(catalogue.images, "debian-13-minimal") == "debian 13 minimal"
    assert "deprecated since 2026-02-01" in described(catalogue.images, "debian-12-minimal")
    assert "no cloud-init" in described(catalogue.images, "alpine-3.22-minimal")
    assert described(catalogue.regions, "par") == "Paris (FR)"
    assert "no plan can be provisioned" in described(catalogue.regions, "buh")


def test_cyberpanel_lists_plan_ids_location_codes_and_template_ids() -> None:
    plans = [CyberPanelPlan(id=2, name="Basic", cpu_cores=2, ram_mb=2048, disk_gb=50, price_hourly="0.0164",
                            monthly_price="12.00"),
             CyberPanelPlan(id=1, name="Starter", cpu_cores=1, ram_mb=1024, disk_gb=25, price_hourly="0.0082",
                            monthly_price="6.00")]
    locations = [Location(code="la", name="Los Angeles, USA"), Location(code="de", name="Falkenstein",
                                                                        is_available=False)]
    templates = [Template(id="9000", name="Ubuntu 22.04", description="Clean Ubuntu 22.04 LTS installation")]
    catalogue = cyberpanel_catalogue(plans, locations, templates)
    assert ids(catalogue.plans) == ["1", "2"]  # cheapest first; the id is what spec.plan takes
    assert described(catalogue.plans, "1") == "Starter: 1 vCPU, 1 GB RAM, 25 GB disk, $0.0082/h, $6/month"
    assert ids(catalogue.regions) == ["la", "de"]
    assert described(catalogue.regions, "de") == "Falkenstein, not available now"
    assert described(catalogue.images, "9000") == "Ubuntu 22.04 - Clean Ubuntu 22.04 LTS installation"


def test_lunanode_lists_public_images_once_by_name_and_own_images_by_id() -> None:
    images = [LunaImage(image_id="702761", name="Ubuntu 24.04 64-bit (template)", status="active", region="toronto"),
              LunaImage(image_id="702762", name="Ubuntu 24.04 64-bit (template)", status="active", region="montreal"),
              LunaImage(image_id="702770", name="Ubuntu 24.04 Server 64-bit (ISO)", status="active", region="toronto"),
              LunaImage(image_id="9001", name="golden", status="active", region="toronto"),
              LunaImage(image_id="9002", name="cube-operator-vm1-nightly", status="active", region="toronto"),
              LunaImage(image_id="9003", name="half-done", status="queued", region="toronto")]
    plans = [LunaPlan.model_validate({"plan_id": "88", "name": "m.4", "vcpu": "2", "ram": "4096", "storage": "60",
                                      "price": "14", "regions": ["toronto", "montreal"]}),
             LunaPlan.model_validate({"plan_id": 134, "name": "m.1s", "vcpu": 1, "ram": 1024, "storage": 15,
                                      "price": "3.5"})]
    catalogue = lunanode_catalogue(plans, images, [("toronto", "Toronto"), ("roubaix", "roubaix")])
    assert ids(catalogue.images) == ["Ubuntu 24.04 64-bit", "Ubuntu 24.04 Server 64-bit", "9001"]
    assert described(catalogue.images, "Ubuntu 24.04 64-bit") == "template in toronto, montreal"
    assert described(catalogue.images, "Ubuntu 24.04 Server 64-bit") == "ISO in toronto"
    assert described(catalogue.images, "9001") == "own image 'golden' in toronto"
    assert ids(catalogue.plans) == ["m.1s", "m.4"]  # cheapest first, by name
    assert described(catalogue.plans, "m.4") == ("plan_id 88: 2 vCPU, 4 GB RAM, 60 GB disk, $14/month ($0.0192/h), "
                                                 "in toronto, montreal")
    assert ids(catalogue.regions) == ["toronto", "roubaix"]
    assert catalogue.regions is not None and catalogue.regions[1].description is None  # name = id says nothing


def test_voltagepark_lists_presets_their_operating_systems_and_locations() -> None:
    seattle, allen = "0b4f1a52-0000-4000-8000-000000000001", "0b4f1a52-0000-4000-8000-000000000002"
    presets = [Preset.model_validate({
        "id": "p-2x", "resources": {"gpus": {"h100-sxm5-80gb": {"count": 2}}, "vcpu_count": 52, "ram_gb": 240,
                                    "storage_gb": 1000},
        "operating_system": "Ubuntu 22.04 LTS", "compute_rate_hourly": "4.0", "storage_rate_hourly": "0.1",
        "location_ids_with_availability": [seattle]}),
        Preset.model_validate({
            "id": "p-1x", "resources": {"gpus": {"h100-sxm5-80gb": {"count": 1}}, "vcpu_count": 4, "ram_gb": 16,
                                        "storage_gb": 40},
            "operating_system": "Ubuntu 22.04 LTS", "compute_rate_hourly": "2.0", "storage_rate_hourly": "0.0",
            "location_ids_with_availability": []})]
    locations = [VpLocation(id=seattle, city="Seattle", region="Washington", country="United States"),
                 VpLocation(id=allen)]
    catalogue = voltagepark_catalogue(presets, locations)
    assert ids(catalogue.plans) == ["p-1x", "p-2x"]
    assert described(catalogue.plans, "p-2x") == ("2x h100-sxm5-80gb, 52 vCPU, 240 GB RAM, 1000 GB disk, "
                                                  "Ubuntu 22.04 LTS, $4.1/h, available in Seattle, Washington, "
                                                  "United States")
    assert described(catalogue.plans, "p-1x").endswith("sold out now")
    assert ids(catalogue.images) == ["Ubuntu 22.04 LTS"]
    assert ids(catalogue.regions) == [seattle, allen]
    assert catalogue.regions is not None and catalogue.regions[1].description is None


def test_the_default_catalogue_is_empty() -> None:
    assert Catalogue() == Catalogue(images=None, regions=None, plans=None, note=None)


# -- choice functions name the valid choices -------------------------------------------


def spec(**kw: object) -> VMSpec:
    base: dict[str, object] = {"name": "web", "image": "i", "ssh_public_key": "ssh-ed25519 AAAA k"}
    base.update(kw)
    return VMSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("choose", "plans", "choices"), [
    (nokyc_plan, [NoKycPlan(id="vps-s1", cpu=1, ram_mb=1024, disk_gb=25)], "vps-s1"),
    (cyberpanel_plan, [CyberPanelPlan(id=1, name="Starter")], "1 (Starter)"),
    (lunanode_plan, [LunaPlan(plan_id="88", name="m.4")], "m.4"),
])
def test_an_unknown_plan_names_the_plans(choose: object, plans: list[object], choices: str) -> None:
    with pytest.raises(SpecRejected) as rejected:
        choose(plans, spec(plan="xxl"))  # type: ignore[operator]
    message = rejected.value.message
    assert message.startswith("spec.plan: plan 'xxl' is not offered by")
    assert f"choose one of: {choices} (" in message and CATALOGUE_HINT in message


def test_voltagepark_an_unknown_preset_and_operating_system_name_the_choices() -> None:
    preset = Preset.model_validate({"id": "p-1x", "resources": {"gpus": {"h100-sxm5-80gb": {"count": 1}},
                                                                "vcpu_count": 4, "ram_gb": 16, "storage_gb": 40},
                                    "operating_system": "Ubuntu 22.04 LTS"})
    with pytest.raises(SpecRejected) as unknown:
        choose_preset([preset], {"p-1x"}, spec(plan="p-9x"))
    assert "choose one of: p-1x (1x h100-sxm5-80gb)" in unknown.value.message
    with pytest.raises(SpecRejected) as wrong_os:
        choose_preset([preset], {"p-1x"}, spec(image="Windows", resources=Resources(4, 16, 40),
                                                gpus=Gpus("h100-sxm5-80gb", 1)))
    assert wrong_os.value.message.startswith("spec.image: image 'Windows' is not the operating system of any")
    assert "choose one of: 'Ubuntu 22.04 LTS'" in wrong_os.value.message
