"""Cube: one virtual machine at a provider."""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from ._common import (
    DELETION_POLICY_DESCRIPTION,
    ApiModel,
    DeletionPolicy,
    NamespacedObjectReference,
    SecretKeySelector,
    StatusBase,
)
from ._kind import AGE_COLUMN, READY_COLUMN, REASON_COLUMN, KindInfo

# One key: type, base64 blob, optional comment, and nothing after it (no second key on a
# new line).
SSH_KEY_PATTERN = (r"^(ssh-ed25519|ssh-rsa|ssh-dss|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9-]+@openssh\.com) "
                   r"[A-Za-z0-9+/]+={0,3}( [^\r\n]*)?$")


class CubeResources(ApiModel):
    vcpu: int = Field(ge=1, le=256, description="Number of virtual CPU cores (integer).")
    ram_gb: float = Field(gt=0, le=2048, description="Memory in GB.")
    disk_gb: int = Field(ge=1, le=65536, description="Disk size in GB.")


class CubeGpus(ApiModel):
    model: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9.-]*$",
                       description="GPU model as the provider names it, e.g. h100-sxm5-80gb.")
    count: int = Field(ge=1, le=64, description="Number of GPUs.")


class CubePort(ApiModel):
    vm_port: int = Field(description="Port inside the VM.")
    host_port: int | None = Field(default=None, description="Public port forwarded to it.")
    protocol: str = Field(default="tcp", description="tcp or udp.")


# Fields with no update at the provider: immutable once a VM exists (status.id), editable
# before (a create the provider rejected can be fixed by editing the Cube). Presence is
# immutable too, so a field cannot be removed and set anew in two patches.
IMMUTABLE_ONCE_CREATED = ("image", "region", "resources", "plan", "gpus")


def _immutable_once_created(name: str) -> dict[str, str]:
    same = (f"self.spec.{name} == oldSelf.spec.{name}" if name == "image" else
            f"(has(self.spec.{name}) == has(oldSelf.spec.{name}) && "
            f"(!has(self.spec.{name}) || self.spec.{name} == oldSelf.spec.{name}))")
    return {"rule": f"!has(oldSelf.status) || !has(oldSelf.status.id) || {same}",
            "message": f"spec.{name} is immutable once the Cube has a VM (status.id); recreate the Cube to "
                       "change it"}


#: Fields given inline or from a Secret: one of each pair, never both (which would win?).
EXCLUSIVE = (("sshPublicKey", "sshPublicKeySecretRef"), ("userData", "userDataSecretRef"))


def _exclusive(first: str, second: str) -> dict[str, str]:
    return {"rule": f"!has(self.spec.{first}) || !has(self.spec.{second})",
            "message": f"spec.{first} and spec.{second} are exclusive: set one of them"}


class CubeSpec(ApiModel):
    provider_config_ref: NamespacedObjectReference = Field(
        description="The ProviderConfig (same namespace) used to manage this Cube."
    )
    image: str = Field(
        min_length=1, max_length=128,
        description="OS image id, e.g. ubuntu-24.04: one of the ProviderConfig's status.catalogue.images "
                    "(kubectl describe providerconfig). Immutable once the VM exists.",
    )
    region: str | None = Field(
        default=None, min_length=1, max_length=64,
        description="Region slug, e.g. eu-nuremberg (the ProviderConfig's status.catalogue.regions); the provider's "
                    "default when omitted. Immutable once the VM exists.",
    )
    resources: CubeResources | None = Field(
        default=None,
        description="vCPU, RAM and disk for resource-based providers (Krova). Immutable once the VM exists.",
    )
    plan: str | None = Field(
        default=None, min_length=1, max_length=128,
        description="Plan/preset name for plan-based providers (the ProviderConfig's status.catalogue.plans). "
                    "Immutable once the VM exists.",
    )
    gpus: CubeGpus | None = Field(
        default=None,
        description="GPUs for GPU providers (Voltage Park): with spec.resources, matched to an available "
                    "preset. Immutable once the VM exists.",
    )
    ssh_public_key: str | None = Field(
        default=None, max_length=16384, pattern=SSH_KEY_PATTERN,
        description="SSH public key installed at first boot (ssh-ed25519, ssh-rsa, ecdsa-sha2-*, ssh-dss, sk-*@openssh.com).",
    )
    ssh_public_key_secret_ref: SecretKeySelector | None = Field(
        default=None, description="Read the SSH public key from a Secret instead of sshPublicKey."
    )
    user_data: str | None = Field(
        default=None, max_length=16384, description="cloud-init user data (max 16 KB)."
    )
    user_data_secret_ref: SecretKeySelector | None = Field(
        default=None, description="Read cloud-init user data from a Secret instead of userData."
    )
    root_password_secret_ref: SecretKeySelector | None = Field(
        default=None,
        description="Root password for providers that set one at create (CyberPanel). When omitted there, "
                    "the operator generates one into the Secret <cube>-root-password, owned by the Cube.",
    )
    power_state: Literal["Running", "Stopped"] = Field(
        default="Running",
        description="Desired power state. Stopped puts the Cube to sleep (Krova sleep); Running wakes it.",
    )
    ssh_port: int = Field(
        default=22, ge=1, le=65535,
        description="Port sshd listens on inside the Cube; the SSH port-forward follows it.",
    )
    deletion_policy: DeletionPolicy = Field(default="Delete", description=DELETION_POLICY_DESCRIPTION)

    @model_validator(mode="after")
    def _one_source_each(self) -> CubeSpec:
        for inline, ref in (("ssh_public_key", "ssh_public_key_secret_ref"), ("user_data", "user_data_secret_ref")):
            if getattr(self, inline) is not None and getattr(self, ref) is not None:
                raise ValueError(f"spec.{to_camel(inline)} and spec.{to_camel(ref)} are exclusive: set one of them")
        return self


class CubeProvisioning(ApiModel):
    progress_percent: int | None = Field(default=None, description="How far the deployment has got (0-100).")
    current_task: str | None = Field(default=None, description="The deployment task running (or that failed).")
    failed: bool | None = Field(default=None, description="The deployment stopped at currentTask for good.")


class CubeStatus(StatusBase):
    id: str | None = Field(default=None, description="Provider-side id of the VM.")
    state: str | None = Field(
        default=None,
        description="The provider's own word for the VM's state (Krova: pending, booting, running, "
                    "stopped, ...; NoKYC: provisioning, installing, running, ...).",
    )
    vm_state: str | None = Field(
        default=None,
        description="The VM's state in the operator's words, the same for every provider: provisioning, "
                    "running, stopping, stopped, error, suspended, deleting, deleted, unknown.")
    public_ipv4: str | None = Field(default=None, description="Address to reach mapped ports.")
    public_ipv6: str | None = Field(default=None, description="IPv6 address, where the provider assigns one.")
    private_ipv4: str | None = Field(default=None, description="Private network address, where the provider has one.")
    ports: list[CubePort] | None = Field(
        default=None, description="Port forwards the provider reports (e.g. Voltage Park's 22 → a public port).")
    gpus: list[CubeGpus] | None = Field(default=None, description="GPUs the VM has, as the provider reports them.")
    plan: str | None = Field(
        default=None, description="Plan the VM runs (plan-based providers; chosen from spec.resources "
                                  "when spec.plan is not set).")
    server_domain: str | None = Field(default=None, description="Host server's domain name.")
    ssh_host_port: int | None = Field(default=None, description="Public host port forwarded to sshd.")
    ssh_port: int | None = Field(default=None, description="Port sshd is forwarded to inside the Cube.")
    cost_per_hour: str | None = Field(
        default=None, description="Current hourly cost as reported by the provider (USD), exact as text."
    )
    hourly_cost: float | None = Field(
        default=None, description="The same cost as a number, for sorting: "
                                  "kubectl get cubes --sort-by=.status.hourlyCost.")
    image: str | None = Field(default=None, description="Image the VM was created with.")
    image_name: str | None = Field(
        default=None, description="The image's display name, where the provider's image ids are not names "
                                  "(CyberPanel template 9000: Ubuntu 22.04).")
    provisioning: CubeProvisioning | None = Field(
        default=None, description="Deployment progress while the provider deploys the VM (CyberPanel).")
    root_password_secret: str | None = Field(
        default=None, description="Secret (same namespace) holding the root password the VM was created with.")
    create_attempt: int | None = Field(
        default=None,
        description="Create attempt counter; with the object UID it forms the idempotency key.",
    )
    create_requested_at: str | None = Field(
        default=None, description="When the operator last asked the provider to create the VM."
    )


CUBE = KindInfo(
    kind="Cube",
    plural="cubes",
    spec=CubeSpec,
    status=CubeStatus,
    short_names=("cb",),
    description="A virtual machine at a cloud provider, kept in the declared state.",
    validations=(tuple(_immutable_once_created(f) for f in IMMUTABLE_ONCE_CREATED)
                 + tuple(_exclusive(a, b) for a, b in EXCLUSIVE)),
    printer_columns=(
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "IP", "type": "string", "jsonPath": ".status.publicIpv4"},
        {"name": "Cost/h", "type": "number", "jsonPath": ".status.hourlyCost",
         "description": "Hourly cost in USD as the provider reports it."},
        {"name": "SSH", "type": "integer", "jsonPath": ".status.sshHostPort", "priority": 1},
        READY_COLUMN,
        REASON_COLUMN,
        AGE_COLUMN,
    ),
)
