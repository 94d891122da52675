"""The API of cube-operator: pydantic models of every kind, the source of the CRDs."""
from ._common import Condition, LocalObjectReference, SecretKeySelector, StatusBase
from ._kind import API_VERSION, CATEGORY, GROUP, VERSION, KindInfo
from .cube import CUBE, CubeResources, CubeSpec, CubeStatus
from .providerconfig import PROVIDER_CONFIG, ProviderConfigSpec, ProviderConfigStatus

KINDS: tuple[KindInfo, ...] = (PROVIDER_CONFIG, CUBE)

__all__ = [
    "API_VERSION", "CATEGORY", "CUBE", "GROUP", "KINDS", "PROVIDER_CONFIG", "VERSION",
    "Condition", "CubeResources", "CubeSpec", "CubeStatus", "KindInfo", "LocalObjectReference",
    "ProviderConfigSpec", "ProviderConfigStatus", "SecretKeySelector", "StatusBase",
]
