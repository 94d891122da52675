"""Cube controller: one daemon per Cube reconciles it against its provider.

Why a daemon and not on-create/on-update handlers alone: observed state comes from the
provider (a shared list per ProviderConfig, or a webhook), not from Kubernetes events.
The daemon reconciles when kicked (spec change, webhook) or when its delay passes, so
every Cube is handled by one loop at a time and no two handlers race on its status.

Crash safety: the create attempt is recorded in status before the call. A restart that
finds an attempt but no id replays the idempotency key (providers that have one) or
looks the earlier VM up by its owner tag or deterministic name (the others). More than
one match is DuplicateExternalResource: nothing is adopted or deleted by guessing.
"""
from __future__ import annotations

import secrets
import time
from typing import Any

import kopf

from ..api import GROUP, VERSION, CubeSpec
from ..providers import (
    Capability,
    CreateAttempt,
    Gpus,
    InvalidState,
    NotFound,
    ObservedVM,
    ProviderError,
    Provisioning,
    Resources,
    SpecRejected,
    Transient,
    VMSpec,
    VMState,
    sizing_problems,
)
from ._common import (
    EXTERNAL_NAME_ANNOTATION,
    PROVIDER_EVENT_ANNOTATION,
    callback_secret_name,
    callback_url,
    root_password_secret_name,
)
from ._conditions import now_rfc3339, seconds_since
from ._kube import KubeError
from ._reconciler import DeletionPending, Reconciler, cube_owner, delete_dependent
from ._runtime import Runtime
from ._secrets import ensure_owned_secret, generate_password, read_material
from ._sessions import ConfigProblem, ProviderSession, unsupported
from ._wiring import register_reconciler

PLURAL = "cubes"
CONVERGING_DELAY = 1.0
# A VM that an earlier create attempt may have made can take this long to show up in
# the provider's list; only after it counts as never created.
CREATE_GRACE_SECONDS = 120.0
# Deployment progress (providers with a progress call) is read at most this often per Cube:
# every call counts against the provider's limit, and a callback reports the end at once.
PROGRESS_SECONDS = 5.0
# A converging Cube (just created, powering on or off) acts on an observation of its VM at
# most this old at first (a GET of that VM when the fleet's list is older), the bound growing
# with how long it has converged, up to the poll interval: the last of a thousand creates
# shows Ready seconds after its VM boots instead of at the next list, and a VM stuck in a
# state is soon left to the fleet's list again.
CONVERGING_LIST_AGE = 2.0


def fleet_view_age(poll_interval: float, converging_for: float | None) -> float:
    """How old an observation of its VM a Cube may act on (``converging_for``: None when steady)."""
    if converging_for is None:
        return poll_interval
    return min(poll_interval, max(CONVERGING_LIST_AGE, converging_for / 4))
CHILD_PLURALS = frozenset({"snapshots", "restores", "tcpmappings", "domains"})


def desired_state(power_state: str) -> VMState:
    return VMState.STOPPED if power_state == "Stopped" else VMState.RUNNING


def ready_for(observed: ObservedVM, power_state: str) -> tuple[bool, str, str]:
    want = desired_state(power_state)
    state = observed.state
    if observed.problem is not None:
        return False, *observed.problem
    if state == want:
        return True, "Running" if want == VMState.RUNNING else "Stopped", f"Cube is {want.value}"
    if state == VMState.ERROR:
        return False, "ProviderError", f"the provider reports the Cube in state {observed.provider_state}"
    if state == VMState.SUSPENDED:
        # Never "corrected" by a start: the provider suspended it (e.g. the balance ran out).
        return False, "ProviderSuspended", (f"the provider suspended the Cube ({observed.provider_state}); "
                                            "resolve it with the provider (e.g. top up the balance)")
    if state == VMState.PROVISIONING:
        return False, "Provisioning", f"waiting for the Cube to be {want.value} (now {observed.provider_state})"
    return False, "Converging", f"waiting for the Cube to be {want.value} (now {observed.provider_state})"


def progress_status(progress: Provisioning | None) -> dict[str, Any] | None:
    if progress is None:
        return None
    return {"progressPercent": progress.percent, "currentTask": progress.task, "failed": progress.failed or None}


def with_progress(readiness: tuple[bool, str, str], observed: ObservedVM, provider: str,
                  progress: dict[str, Any] | None) -> tuple[bool, str, str]:
    """The Ready condition, saying which deployment task runs, or which one failed."""
    ready, reason, _message = readiness
    if not progress or not progress.get("currentTask"):
        return readiness
    task, percent = progress["currentTask"], progress.get("progressPercent")
    if progress.get("failed"):
        return False, "ProvisioningFailed", (f"{provider}'s deployment of VM {observed.id} failed at task {task}; "
                                             "delete the Cube (which deletes the failed VM) and create it again")
    if observed.state == VMState.PROVISIONING:
        done = f", {percent}% done" if percent is not None else ""
        return ready, reason, f"{provider} is deploying the Cube: task {task}{done}"
    return readiness


def cost_text(value: float | None) -> str | None:
    return None if value is None else f"{value:.6f}".rstrip("0").rstrip(".")


def immutable_drift(spec: CubeSpec, observed: ObservedVM) -> str | None:
    """What the provider runs that the spec says otherwise, for fields with no update."""
    drift = []
    if observed.image and observed.image != spec.image:
        drift.append(f"spec.image is {spec.image!r} but the Cube runs {observed.image!r}")
    if spec.resources and observed.resources and (
        observed.resources.vcpu != spec.resources.vcpu
        or float(observed.resources.ram_gb) != float(spec.resources.ram_gb)
        or float(observed.resources.disk_gb) != float(spec.resources.disk_gb)
    ):
        drift.append("spec.resources differ from the Cube's resources")
    if spec.plan and observed.plan and observed.plan != spec.plan:
        drift.append(f"spec.plan is {spec.plan!r} but the Cube runs plan {observed.plan!r}")
    if spec.region and observed.region and observed.region != spec.region:
        drift.append(f"spec.region is {spec.region!r} but the Cube is in {observed.region!r}")
    if not drift:
        return None
    return "; ".join(drift) + " — these fields cannot change in place; recreate the Cube to change them"


class CubeReconciler(Reconciler):
    plural = PLURAL
    spec_model = CubeSpec

    def __init__(self, runtime: Runtime, body: Any, logger: Any) -> None:
        super().__init__(runtime, body, logger)
        # Power action we asked for and when; until an observation newer than that
        # arrives, the fleet view may still show the old state and must not re-trigger it.
        self.pending_power: tuple[VMState, float] | None = None
        self.seen_provider_event: str | None = None
        self.progress_at = 0.0  # when deployment progress was last read
        self.details_of: str | None = None  # the VM get_vm was asked about for list-row gaps
        self.converging_since: float | None = None  # monotonic; None while steady

    # --- the pass ---------------------------------------------------------------------
    async def reconcile_spec(self, obj: dict[str, Any], spec: CubeSpec) -> float:
        session = await self.provider_session(obj["metadata"]["namespace"], spec.provider_config_ref)
        self.check_capabilities(session, spec)
        if not (obj.get("status") or {}).get("id"):
            # Before a create only: a Cube that already runs is never stopped over it.
            ignored = sizing_problems(session.provider_name, session.provider.sizing_fields,
                                      plan=spec.plan is not None, resources=spec.resources is not None,
                                      gpus=spec.gpus is not None)
            if ignored:
                return await self.on_invalid_spec(obj, "; ".join(ignored))
        delay = await self.reconcile_with(session, obj, spec)
        if delay > CONVERGING_DELAY:
            self.converging_since = None
        elif self.converging_since is None:
            self.converging_since = time.monotonic()
        return delay

    @staticmethod
    def check_capabilities(session: ProviderSession, spec: CubeSpec) -> None:
        capabilities = session.provider.capabilities
        if spec.power_state == "Stopped" and Capability.POWER not in capabilities:
            raise unsupported(session.provider_name, "stopping VMs (spec.powerState: Stopped)")
        if spec.ssh_port != 22 and Capability.SSH_PORT not in capabilities:
            raise unsupported(session.provider_name, "moving the SSH port (spec.sshPort)")
        if (spec.user_data or spec.user_data_secret_ref) and Capability.USER_DATA not in capabilities:
            raise unsupported(session.provider_name,
                              "user data (spec.userData / spec.userDataSecretRef); remove it")
        if spec.root_password_secret_ref and Capability.ROOT_PASSWORD not in capabilities:
            raise unsupported(session.provider_name,
                              "a root password (spec.rootPasswordSecretRef); use an SSH key")

    def attempt(self, obj: dict[str, Any]) -> CreateAttempt:
        status = obj.get("status") or {}
        return CreateAttempt(owner_uid=obj["metadata"]["uid"], number=int(status.get("createAttempt") or 1))

    def vm_name(self, session: ProviderSession, obj: dict[str, Any]) -> str:
        return session.provider.vm_name(obj["metadata"]["name"], obj["metadata"]["uid"])

    async def vm_spec(self, session: ProviderSession, obj: dict[str, Any], spec: CubeSpec) -> VMSpec:
        """The spec with Secrets resolved, checked offline by the provider."""
        namespace = obj["metadata"]["namespace"]
        ssh_key = spec.ssh_public_key
        if spec.ssh_public_key_secret_ref:
            ssh_key = await self.material(obj, spec.ssh_public_key_secret_ref, "spec.sshPublicKeySecretRef")
        user_data = spec.user_data
        if spec.user_data_secret_ref:
            user_data = await self.material(obj, spec.user_data_secret_ref, "spec.userDataSecretRef")
        capabilities = session.provider.capabilities
        root_password = (await self.root_password(obj, spec)
                         if Capability.ROOT_PASSWORD in capabilities else None)
        callback, callback_secret = None, None
        # Only a public URL (--webhook-public-url) is worth giving: the provider calls it.
        public = (self.rt.options.webhook_public_url or "").rstrip("/")
        base = public if public and self.rt.options.webhook_port else ""
        if Capability.CREATE_CALLBACK in capabilities and base and session.plugin.verify_webhook is not None:
            # The provider reports the end of the deployment here, signed with this Cube's own secret.
            callback = callback_url(base, session.provider_name, namespace, obj["metadata"]["name"])
            callback_secret = await ensure_owned_secret(
                self.rt.kube, namespace, callback_secret_name(obj["metadata"]["name"]), "secret", self.owner(obj),
                lambda: secrets.token_hex(32), what="the deployment callback secret")
        resources = spec.resources
        vm_spec = VMSpec(
            name=self.vm_name(session, obj), image=spec.image, region=spec.region,
            resources=Resources(resources.vcpu, resources.ram_gb, resources.disk_gb) if resources else None,
            plan=spec.plan, ssh_public_key=ssh_key, user_data=user_data,
            gpus=Gpus(spec.gpus.model, spec.gpus.count) if spec.gpus else None,
            root_password=root_password, callback_url=callback, callback_secret=callback_secret,
        )
        problems = session.provider.validate_spec(vm_spec)
        if problems:
            raise ConfigProblem("InvalidSpec", "; ".join(problems))
        return vm_spec

    @staticmethod
    def owner(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Cube", "name": meta["name"], "uid": meta["uid"],
                "controller": True}

    @staticmethod
    def root_password_secret(obj: dict[str, Any], spec: CubeSpec) -> str:
        ref = spec.root_password_secret_ref
        return ref.name if ref else root_password_secret_name(obj["metadata"]["name"])

    async def root_password(self, obj: dict[str, Any], spec: CubeSpec) -> str:
        """From spec.rootPasswordSecretRef, else generated once into a Secret the Cube owns."""
        namespace = obj["metadata"]["namespace"]
        ref = spec.root_password_secret_ref
        if ref:
            return await self.material(obj, ref, "spec.rootPasswordSecretRef")
        return await ensure_owned_secret(self.rt.kube, namespace, self.root_password_secret(obj, spec), "password",
                                         self.owner(obj), generate_password, what="the generated root password")

    async def material(self, obj: dict[str, Any], ref: Any, what: str) -> str:
        """A Secret value shipped to the VM, never from a credentials Secret (see read_material)."""
        namespace = obj["metadata"]["namespace"]
        credentials = {
            str(((pc.get("spec") or {}).get("credentialsSecretRef") or {}).get("name")): pc["metadata"]["name"]
            for pc in await self.rt.kube.list_custom("providerconfigs", namespace)}
        try:
            return await read_material(self.rt.kube, namespace, ref.name, ref.key, what=what,
                                       credentials=credentials, owner_uid=obj["metadata"]["uid"])
        except ConfigProblem as problem:
            if problem.reason in ("SecretNotFound", "SecretKeyMissing") and self.rt.secret_watches is not None:
                # Go ahead as soon as the Secret is created or fixed, not at the next retry.
                name = obj["metadata"]["name"]
                self.rt.secret_watches.listen(namespace, ref.name, f"{self.plural}/{namespace}/{name}",
                                              lambda: self.rt.kick(self.plural, namespace, name))
            raise

    async def reconcile_with(self, session: ProviderSession, obj: dict[str, Any], spec: CubeSpec) -> float:
        status = obj.get("status") or {}
        meta = obj["metadata"]
        vm_id = status.get("id")
        if not vm_id and (meta.get("annotations") or {}).get(EXTERNAL_NAME_ANNOTATION):
            return await self.adopt(session, obj, meta["annotations"][EXTERNAL_NAME_ANNOTATION])
        if not vm_id:
            return await self.create(session, obj, spec)
        self.rt.vm_index.put(meta["namespace"], session.name, vm_id, meta["name"])
        marker = (meta.get("annotations") or {}).get(PROVIDER_EVENT_ANNOTATION)
        if marker and marker != self.seen_provider_event:
            # Another replica received a provider event for this Cube: look now.
            self.seen_provider_event = marker
            try:
                session.fleet.put(await session.provider.get_vm(vm_id))
            except NotFound:
                session.fleet.forget(vm_id)
        fleet = await session.fleet.get(max_age=session.poll_interval)
        observed = fleet.get(vm_id)
        since = self.converging_since
        if since is not None and observed is not None:
            now = time.monotonic()
            if now - session.fleet.observed_at(vm_id) > fleet_view_age(session.poll_interval, now - since):
                # Converging: this VM only, not the fleet's list (1,000 Cubes booting at
                # once would keep the whole list in flight).
                try:
                    observed = await session.provider.get_vm(vm_id)
                    session.fleet.put(observed)
                except NotFound:
                    session.fleet.forget(vm_id)
                    observed = None
        if observed is None or observed.state == VMState.DELETED:
            return await self.handle_missing(session, obj, vm_id)
        return await self.converge(session, obj, spec, observed)

    async def adopt(self, session: ProviderSession, obj: dict[str, Any], vm_id: str) -> float:
        if not session.plugin.valid_id(vm_id):
            raise ConfigProblem(
                "InvalidSpec",
                f"annotation {EXTERNAL_NAME_ANNOTATION}={vm_id!r} is not a {session.provider_name} VM id "
                f"(expected {session.plugin.id_pattern})")
        try:
            observed = await session.provider.get_vm(vm_id)
        except NotFound:
            raise ConfigProblem(
                "ExternalResourceNotFound",
                f"annotation {EXTERNAL_NAME_ANNOTATION}={vm_id} names no VM at {session.provider_name}",
            ) from None
        await self.check_adoptable(session, obj, observed)
        session.fleet.put(observed)
        obj = await self.patch_status(obj, {"id": observed.id, "state": observed.provider_state,
                                            "vmState": observed.state.value})
        self.event(obj, "Normal", "Adopted", f"adopted existing {session.provider_name} VM {observed.id}")
        return 0.0

    async def check_adoptable(self, session: ProviderSession, obj: dict[str, Any], observed: ObservedVM) -> None:
        """Adoption takes only a VM no other live Cube owns: not one whose owner marker names
        another Cube, nor one another Cube of the same provider account manages. (A VM left
        by a deleted Cube, e.g. with deletionPolicy Orphan, may be adopted.)"""
        meta = obj["metadata"]
        try:
            every = await self.rt.kube.list_custom_all(PLURAL)
        except KubeError as error:
            if error.status != 403:
                raise
            # Watching only some namespaces (a Role per namespace): those are all it manages.
            every = await self.rt.kube.list_custom(PLURAL, meta["namespace"])
        others = [c for c in every if c["metadata"].get("uid") != meta["uid"]]
        owner = next((c for c in others if observed.owner_uid and c["metadata"].get("uid") == observed.owner_uid),
                     None)
        claimants = [c for c in others if (c.get("status") or {}).get("id") == observed.id]
        for other in ([owner] if owner else []) + claimants:
            if other is not owner and not await self.same_account(session, other):
                continue  # the same id at another provider account is another VM
            where = (f"Cube {other['metadata']['name']}" if other["metadata"].get("namespace") == meta["namespace"]
                     else "a Cube in another namespace")
            why = "carries the owner marker of" if other is owner else "is already managed by"
            raise ConfigProblem(
                "AdoptionRefused",
                f"{session.provider_name} VM {observed.id} {why} {where}; it was not adopted (nothing was changed "
                f"or deleted): remove annotation {EXTERNAL_NAME_ANNOTATION}, or name a VM no other Cube manages")

    async def same_account(self, session: ProviderSession, other: dict[str, Any]) -> bool:
        ref = ((other.get("spec") or {}).get("providerConfigRef") or {}).get("name", "")
        try:
            theirs = await self.rt.sessions.session(other["metadata"]["namespace"], str(ref), require_ready=False)
        except ConfigProblem:
            return True  # cannot tell: refuse rather than share a VM
        return theirs.account == session.account and theirs.provider_name == session.provider_name

    async def create(self, session: ProviderSession, obj: dict[str, Any], spec: CubeSpec) -> float:
        status = obj.get("status") or {}
        vm_spec = await self.vm_spec(session, obj, spec)
        attempt = self.attempt(obj)
        earlier = bool(status.get("createRequestedAt")) and status.get("createAttempt") is not None
        if earlier and Capability.IDEMPOTENT_CREATE not in session.provider.capabilities:
            # Without idempotency keys, only a lookup tells whether the last try got through.
            found = await self.find_earlier(session, obj, vm_spec.name, attempt)
            if found is not None:
                session.fleet.put(found)
                obj = await self.record_created(session, obj, found, "Found",
                                                f"found {session.provider_name} VM {found.id} made by an "
                                                "earlier create attempt")
                return CONVERGING_DELAY
        if not earlier:
            # Record the attempt before the call: a crash after the provider accepted the
            # create finds (or replays) this attempt on restart instead of making another.
            extra = ({"rootPasswordSecret": self.root_password_secret(obj, spec)}
                     if vm_spec.root_password else {})
            obj = await self.set_conditions(
                obj,
                ready=(False, "Creating", f"creating the Cube at {session.provider_name}"),
                synced=(True, "Creating", "create requested"),
                createAttempt=attempt.number,
                createRequestedAt=now_rfc3339(),
                **extra,
            )
        try:
            created = await session.provider.create_vm(vm_spec, attempt)
        except SpecRejected:
            # Refused before or by the provider's validation: no VM exists, so deleting the
            # Cube need not look for one.
            await self.patch_status(self.current(), {"createRequestedAt": None})
            raise
        session.fleet.put(created)
        await self.record_created(session, obj, created, "Created",
                                  f"created {session.provider_name} VM {created.id}")
        return CONVERGING_DELAY

    async def find_earlier(self, session: ProviderSession, obj: dict[str, Any], name: str,
                           attempt: CreateAttempt) -> ObservedVM | None:
        """The VM an earlier attempt made; None if there is none; two or more → Duplicate."""
        matches = await session.provider.find_vms(name, attempt)
        if len(matches) > 1:
            ids = ", ".join(sorted(vm.id for vm in matches))
            raise ConfigProblem(
                "DuplicateExternalResource",
                f"{len(matches)} {session.provider_name} VMs match this Cube ({ids}); nothing was "
                f"adopted or deleted: delete the extra VMs at the provider, or set annotation "
                f"{EXTERNAL_NAME_ANNOTATION} to the one to keep")
        return matches[0] if matches else None

    async def record_created(self, session: ProviderSession, obj: dict[str, Any], vm: ObservedVM,
                             reason: str, message: str) -> dict[str, Any]:
        obj = await self.set_conditions(
            obj,
            ready=(False, "Provisioning", f"waiting for the Cube to be running (now {vm.provider_state})"),
            synced=(True, reason, message),
            id=vm.id,
            state=vm.provider_state,
            vmState=vm.state.value,
            costPerHour=cost_text(vm.cost_per_hour), hourlyCost=vm.cost_per_hour,
            image=vm.image,
            imageName=vm.extras.get("imageName"),
            plan=vm.plan,
        )
        meta = obj["metadata"]
        self.rt.vm_index.put(meta["namespace"], session.name, vm.id, meta["name"])
        self.unwatch_secrets()  # what it waited for was read
        self.event(obj, "Normal", reason, message)
        return obj

    async def handle_missing(self, session: ProviderSession, obj: dict[str, Any], vm_id: str) -> float:
        try:
            observed: ObservedVM | None = await session.provider.get_vm(vm_id)
        except NotFound:
            observed = None
        if observed is not None and observed.state != VMState.DELETED:
            session.fleet.put(observed)  # the list was older than the VM
            return CONVERGING_DELAY
        status = obj.get("status") or {}
        attempt = int(status.get("createAttempt") or 1) + 1
        message = (f"{session.provider_name} VM {vm_id} was deleted outside Kubernetes; "
                   f"creating a replacement (attempt {attempt})")
        self.logger.warning(message)
        self.event(obj, "Warning", "ExternallyDeleted", message)
        self.rt.vm_index.drop(obj["metadata"]["namespace"], obj["metadata"]["name"])
        await self.set_conditions(
            obj,
            ready=(False, "ExternallyDeleted", message),
            synced=(True, "ExternallyDeleted", message),
            id=None, state=None, vmState=None, publicIpv4=None, serverDomain=None, sshHostPort=None, sshPort=None,
            costPerHour=None, hourlyCost=None, createAttempt=attempt, createRequestedAt=None, provisioning=None,
        )
        return CONVERGING_DELAY

    async def converge(self, session: ProviderSession, obj: dict[str, Any], spec: CubeSpec,
                       observed: ObservedVM) -> float:
        status = obj.get("status") or {}
        capabilities = session.provider.capabilities
        if not observed.detailed and self.details_of != observed.id and (
                status.get("costPerHour") is None and observed.state in (VMState.RUNNING, VMState.STOPPED)):
            # The list lacks cost, plan and region: one get_vm per Cube, then kept in status.
            self.details_of = observed.id
            observed = await session.provider.get_vm(observed.id)
        fields: dict[str, Any] = {
            "state": observed.provider_state,
            "vmState": observed.state.value,
            "publicIpv4": observed.public_ipv4,
        }
        if observed.detailed or observed.cost_per_hour is not None:
            fields["costPerHour"] = cost_text(observed.cost_per_hour)
            fields["hourlyCost"] = observed.cost_per_hour
        elif status.get("costPerHour") and status.get("hourlyCost") is None:
            fields["hourlyCost"] = float(status["costPerHour"])  # a Cube from before the number existed
        if observed.public_ipv6 or status.get("publicIpv6"):
            fields["publicIpv6"] = observed.public_ipv6
        if observed.private_ipv4 or status.get("privateIpv4"):
            fields["privateIpv4"] = observed.private_ipv4
        ports = [{"vmPort": p.vm_port, "hostPort": p.host_port, "protocol": p.protocol}
                 for p in observed.port_forwards]
        if ports or status.get("ports"):
            fields["ports"] = ports or None
        gpus = [{"model": g.model, "count": g.count} for g in observed.gpus]
        if gpus or status.get("gpus"):
            fields["gpus"] = gpus or None
        if observed.detailed and (observed.plan or status.get("plan")):
            fields["plan"] = observed.plan
        progress = await self.provisioning_progress(session, observed, status)
        if progress or status.get("provisioning"):
            fields["provisioning"] = progress
        notes: list[str] = []
        converging = await self.converge_power(session, obj, spec, observed, notes)

        running = observed.state == VMState.RUNNING
        if running and Capability.SSH_PORT in capabilities and session.provider.ssh is not None and (
            status.get("sshPort") != spec.ssh_port or status.get("sshHostPort") is None
        ):
            fields.update(await self.sync_ssh(session, obj, observed.id, spec.ssh_port, notes))
        elif observed.ssh_forward is not None:
            # Read-only forwards some providers report with the VM (no call needed).
            fields.update({"sshHostPort": observed.ssh_forward.host_port,
                           "sshPort": observed.ssh_forward.vm_port})
        if running and Capability.SERVER_DOMAIN in capabilities and not status.get("serverDomain"):
            detailed = await session.provider.get_vm(observed.id)
            fields["serverDomain"] = detailed.extras.get("serverDomain")

        ready, reason, message = with_progress(ready_for(observed, spec.power_state), observed,
                                               session.provider_name, progress)
        drift = immutable_drift(spec, observed)
        if drift:
            ready, reason, message = False, "ImmutableFieldChanged", drift
        if (ready and not notes and running and Capability.SSH_PORT in capabilities
                and fields.get("sshHostPort", status.get("sshHostPort")) is None):
            ready, reason, message = False, "Provisioning", "waiting for the SSH port mapping"
        converging = converging or not ready or bool(notes)
        previous_state = status.get("state")
        obj = await self.set_conditions(
            obj,
            ready=(ready, reason, message),
            synced=(True, "ReconcileSuccess", "; ".join(notes) or "in sync with the provider"),
            **fields,
        )
        if previous_state != observed.provider_state:
            if previous_state is not None:
                self.event(obj, "Normal", "StateChanged", f"{previous_state} → {observed.provider_state}")
            self.kick_children(obj["metadata"]["namespace"])
        return CONVERGING_DELAY if converging else session.poll_interval

    async def after_delete(self) -> None:
        """With --delete-dependents, delete the objects this Cube owns, as the garbage
        collector does on a real cluster. Their finalizers see
        the Cube going and leave the provider side to the VM's deletion."""
        self.unwatch_secrets()
        if not self.rt.options.delete_dependents:
            return
        meta = self.live["metadata"]
        namespace, uid = meta["namespace"], meta["uid"]
        for plural in sorted(CHILD_PLURALS):
            for child in await self.rt.kube.list_custom(plural, namespace):
                owner = cube_owner(child)
                if owner is None or owner.get("uid") != uid or child["metadata"].get("deletionTimestamp"):
                    continue
                await delete_dependent(self.rt.kube, plural, namespace, child["metadata"]["name"])

    def unwatch_secrets(self) -> None:
        if self.rt.secret_watches is not None:
            meta = self.live["metadata"]
            self.rt.secret_watches.forget(f"{self.plural}/{meta['namespace']}/{meta['name']}")

    def kick_children(self, namespace: str) -> None:
        """Objects that wait on a Cube (Snapshots, TcpMappings, ...) look again now, not at
        their next retry, when it changes state."""
        for plural, ns, name in list(self.rt.triggers):
            if ns == namespace and plural in CHILD_PLURALS:
                self.rt.kick(plural, ns, name)

    async def provisioning_progress(self, session: ProviderSession, observed: ObservedVM,
                                    status: dict[str, Any]) -> dict[str, Any] | None:
        """Deployment progress for status: read while deploying (throttled), once when the
        deployment failed (to name the task), and cleared once the VM is up."""
        facet = session.provider.progress
        recorded = status.get("provisioning")
        if facet is None:
            return None
        failed = observed.problem is not None and observed.problem[0] == "ProvisioningFailed"
        if failed and recorded and recorded.get("failed"):
            return dict(recorded)
        if observed.state != VMState.PROVISIONING and not failed:
            return None
        if not failed and time.monotonic() - self.progress_at < PROGRESS_SECONDS:
            return dict(recorded) if recorded else None
        self.progress_at = time.monotonic()
        return progress_status(await facet.provisioning(observed.id))

    async def converge_power(self, session: ProviderSession, obj: dict[str, Any], spec: CubeSpec,
                             observed: ObservedVM, notes: list[str]) -> bool:
        """Act only on a view newer than our last action; True while converging."""
        want = desired_state(spec.power_state)
        power = session.provider.power
        if self.pending_power and session.fleet.observed_at(observed.id) < self.pending_power[1]:
            return True
        if power is None or observed.state not in (VMState.RUNNING, VMState.STOPPED) or observed.state == want:
            self.pending_power = None
            return False
        status = obj.get("status") or {}
        # The last state we reported was the wanted one: someone changed it outside Kubernetes.
        outside = (status.get("vmState") or status.get("state")) == want.value
        try:
            await power.set_power(observed.id, want == VMState.RUNNING)
        except InvalidState as error:
            notes.append(f"power change deferred: {error.message}")
            return True
        self.pending_power = (want, time.monotonic())
        verb = "started" if want == VMState.RUNNING else "stopped"
        why = " (its state was changed outside Kubernetes)" if outside else ""
        self.event(obj, "Normal", "PowerStateChanged", f"{verb} VM {observed.id}{why}")
        return True

    async def sync_ssh(self, session: ProviderSession, obj: dict[str, Any], vm_id: str,
                       port: int, notes: list[str]) -> dict[str, Any]:
        ssh = session.provider.ssh
        assert ssh is not None
        forward = await ssh.ssh_forward(vm_id)
        if forward is None:
            notes.append("waiting for the SSH mapping")
            return {}
        if forward.vm_port != port:
            try:
                await ssh.set_ssh_port(vm_id, port)
            except ProviderError as error:
                if isinstance(error, Transient):
                    raise
                notes.append(f"SSH port change to {port} deferred: {error.message}")
                return {"sshHostPort": forward.host_port, "sshPort": forward.vm_port}
            self.event(obj, "Normal", "SshPortChanged", f"SSH now forwarded to port {port} inside the Cube")
        return {"sshHostPort": forward.host_port, "sshPort": port}

    # --- deletion ---------------------------------------------------------------------
    async def delete_remote(self, memo: Any) -> str | None:
        """Deletion never creates: an id that never reached status is resolved with find."""
        meta, spec, status = self.live["metadata"], self.live.get("spec") or {}, self.live.get("status") or {}
        namespace, name = meta["namespace"], meta["name"]
        self.rt.vm_index.drop(namespace, name)
        # Only a VM this Cube created or adopted is deleted: an external-name that never
        # reached status.id (adoption refused, not found) names a VM that is not ours.
        vm_id = status.get("id")
        if not vm_id and not status.get("createRequestedAt"):
            return None  # never reached the provider
        session = await self.provider_session(namespace, spec.get("providerConfigRef") or {},
                                              require_ready=False)
        provider = session.provider
        if not vm_id:
            found = await self.find_earlier(session, dict(self.live), self.vm_name(session, dict(self.live)),
                                            self.attempt(dict(self.live)))
            if found is None:
                waited = seconds_since(status.get("createRequestedAt"))
                if waited < CREATE_GRACE_SECONDS:
                    raise DeletionPending(
                        f"no {session.provider_name} VM found yet for the create attempt of "
                        f"{waited:.0f}s ago; looking again until {CREATE_GRACE_SECONDS:.0f}s have passed",
                        delay=5.0)
                return (f"no {session.provider_name} VM was made by the create attempt at "
                        f"{status.get('createRequestedAt')}; nothing to delete")
            vm_id = found.id
        answered_404 = False
        if not memo.get("delete_requested"):
            try:
                await provider.delete_vm(vm_id)
            except NotFound:
                answered_404 = True  # gone, if a look confirms it: a 404 alone is no proof
            memo["delete_requested"] = True
            kopf.info(self.live, reason="Deleting", message=f"asked {session.provider_name} to delete VM {vm_id}")
        try:
            remaining = await provider.get_vm(vm_id)
        except NotFound:
            return f"provider VM {vm_id} is gone"
        if remaining.state == VMState.DELETED:
            return f"provider VM {vm_id} is gone"
        if answered_404 and remaining.state is not VMState.DELETING:
            memo["delete_requested"] = False  # send the delete again next time
            raise DeletionPending(f"{session.provider_name} answered 404 to deleting VM {vm_id}, but still "
                                  f"shows it ({remaining.provider_state}); asking again", delay=5.0)
        raise DeletionPending(f"waiting for {session.provider_name} to delete VM {vm_id} "
                              f"(state {remaining.provider_state})")


register_reconciler(PLURAL, CubeReconciler)
