"""The API of cube-operator: pydantic models of every kind, the source of the CRDs."""
from ._common import Condition, LocalObjectReference, SecretKeySelector, StatusBase
from ._kind import API_VERSION, CATEGORY, GROUP, VERSION, KindInfo
from .cube import CUBE, CubeResources, CubeSpec, CubeStatus
from .domain import DOMAIN, DomainSpec, DomainStatus
from .providerconfig import PROVIDER_CONFIG, ProviderConfigSpec, ProviderConfigStatus
from .restore import RESTORE, RestoreSpec, RestoreStatus
from .snapshot import SNAPSHOT, SnapshotSpec, SnapshotStatus
from .tcpmapping import TCP_MAPPING, TcpMappingSpec, TcpMappingStatus
from .webhook import WEBHOOK, WebhookSpec, WebhookStatus

KINDS: tuple[KindInfo, ...] = (PROVIDER_CONFIG, CUBE, SNAPSHOT, RESTORE, TCP_MAPPING, DOMAIN, WEBHOOK)

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "CUBE",
    "DOMAIN",
    "GROUP",
    "KINDS",
    "PROVIDER_CONFIG",
    "RESTORE",
    "SNAPSHOT",
    "TCP_MAPPING",
    "VERSION",
    "WEBHOOK",
    "Condition",
    "CubeResources",
    "CubeSpec",
    "CubeStatus",
    "DomainSpec",
    "DomainStatus",
    "KindInfo",
    "LocalObjectReference",
    "ProviderConfigSpec",
    "ProviderConfigStatus",
    "RestoreSpec",
    "RestoreStatus",
    "SecretKeySelector",
    "SnapshotSpec",
    "SnapshotStatus",
    "StatusBase",
    "TcpMappingSpec",
    "TcpMappingStatus",
    "WebhookSpec",
    "WebhookStatus",
]
