"""Built-in kinds. They are schemaless (stored as given) apart from the behaviours a real
kube-apiserver has that clients rely on: Secret ``stringData``, Namespace finalization,
Event time normalisation and the events.k8s.io/v1 view of core Events, Service defaults."""

from __future__ import annotations

import base64
import binascii
import itertools
from typing import Any

from .errors import Cause
from .meta import age, parse_time, rfc3339, rfc3339_micro, validate_name
from .resources import ColumnSpec, Obj, ResourceType, ResourceVersion, Strategy

# ---------------------------------------------------------------------------------------------
# Strategies


class NamespaceStrategy(Strategy):
    def prepare_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}
        labels = obj["metadata"].setdefault("labels", {})
        # Like the NamespaceDefaultLabelName admission (1.21+).
        labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")

    def prepare_update(self, new: Obj, old: Obj) -> None:
        new.setdefault("spec", {}).setdefault("finalizers",
                                              old.get("spec", {}).get("finalizers", []))
        labels = new["metadata"].setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = new["metadata"].get("name", "")

    def validate(self, obj: Obj, old: Obj | None) -> list[Cause]:
        if old is not None:
            return []
        return validate_name(obj["metadata"].get("name"), "metadata.name", label=True)


class SecretStrategy(Strategy):
    """``stringData`` is write-only: merged into base64 ``data`` and dropped."""

    def _normalise(self, obj: Obj) -> None:
        if not obj.get("type"):
            obj["type"] = "Opaque"
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.get("data") or {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data

    def prepare_create(self, obj: Obj) -> None:
        self._normalise(obj)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        self._normalise(new)

    def validate(self, obj: Obj, old: Obj | None) -> list[Cause]:
        causes = []
        for key, value in (obj.get("data") or {}).items():
            try:
                base64.b64decode(str(value), validate=True)
            except (binascii.Error, ValueError):
                causes.append(Cause("FieldValueInvalid", "Invalid value: \"<secret contents "
                                    "redacted>\": illegal base64 data", f"data[{key}]"))
        if old is not None and old.get("type") != obj.get("type"):
            causes.append(Cause("FieldValueInvalid",
                                f'Invalid value: "{obj.get("type")}": field is immutable',
                                "type"))
        return causes


_TIME_FIELDS = ("firstTimestamp", "lastTimestamp", "deprecatedFirstTimestamp",
                "deprecatedLastTimestamp")
_MICRO_FIELDS = ("eventTime",)

# core/v1 Event field -> events.k8s.io/v1 Event field
_EVENT_RENAMES = {
    "involvedObject": "regarding", "message": "note", "source": "deprecatedSource",
    "firstTimestamp": "deprecatedFirstTimestamp", "lastTimestamp": "deprecatedLastTimestamp",
    "count": "deprecatedCount", "reportingComponent": "reportingController",
}


def _normalise_times(obj: Obj) -> None:
    """Timestamps round-trip through metav1.Time/MicroTime on a real server."""
    for name in _TIME_FIELDS:
        t = parse_time(obj.get(name))
        if t is not None:
            obj[name] = rfc3339(t)
    for name in _MICRO_FIELDS:
        t = parse_time(obj.get(name))
        if t is not None:
            obj[name] = rfc3339_micro(t)
    series = obj.get("series")
    if isinstance(series, dict) and parse_time(series.get("lastObservedTime")):
        series["lastObservedTime"] = rfc3339_micro(parse_time(series["lastObservedTime"]))


class CoreEventStrategy(Strategy):
    def prepare_create(self, obj: Obj) -> None:
        _normalise_times(obj)

    def prepare_update(self, new: Obj, old: Obj) -> None:
        _normalise_times(new)


class EventsV1Strategy(CoreEventStrategy):
    """events.k8s.io/v1 is another representation of the core/v1 Event storage."""

    def to_version(self, obj: Obj, version: str) -> Obj:
        out = {_EVENT_RENAMES.get(k, k): v for k, v in obj.items()}
        out["apiVersion"] = f"events.k8s.io/{version}"
        return out

    def from_version(self, obj: Obj, version: str) -> Obj:
        back = {v: k for k, v in _EVENT_RENAMES.items()}
        out = {back.get(k, k): v for k, v in obj.items()}
        out["apiVersion"] = "v1"
        return out


_cluster_ips = itertools.count(1)


class ServiceStrategy(Strategy):
    def prepare_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") != "None" and spec["type"] != "ExternalName":
            n = next(_cluster_ips)
            spec.setdefault("clusterIP", f"10.96.{n // 250}.{n % 250 + 1}")
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])
        obj.setdefault("status", {"loadBalancer": {}})

    def prepare_update(self, new: Obj, old: Obj) -> None:
        spec, old_spec = new.setdefault("spec", {}), old.get("spec", {})
        for key in ("clusterIP", "clusterIPs"):
            if key in old_spec:
                spec.setdefault(key, old_spec[key])
        spec.setdefault("type", old_spec.get("type", "ClusterIP"))
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if "port" in port:
                    port.setdefault("targetPort", port["port"])


class DeploymentStrategy(Strategy):
    def prepare_create(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("strategy", {"type": "RollingUpdate", "rollingUpdate": {
            "maxUnavailable": "25%", "maxSurge": "25%"}})

    def prepare_update(self, new: Obj, old: Obj) -> None:
        self.prepare_create(new)


# ---------------------------------------------------------------------------------------------
# Printer columns


def _cell(path: str) -> Any:
    def get(obj: Obj) -> Any:
        cur: Any = obj
        for part in path.split("."):
            if not isinstance(cur, dict):
                return None
            cur = cur.get(part)
        return cur
    return get


def _created_at(obj: Obj) -> Any:
    return obj.get("metadata", {}).get("creationTimestamp")


def _event_object(obj: Obj) -> str:
    ref = obj.get("involvedObject") or obj.get("regarding") or {}
    return f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}"


def _event_last_seen(obj: Obj) -> str:
    for key in ("lastTimestamp", "deprecatedLastTimestamp", "eventTime"):
        if obj.get(key):
            return age(obj[key])
    return age(obj.get("metadata", {}).get("creationTimestamp"))


AGE = ColumnSpec("Age", "date", "CreationTimestamp is a timestamp representing the "
                 "server time when this object was created.",
                 lambda o: age(o.get("metadata", {}).get("creationTimestamp")))
CREATED_AT = ColumnSpec("Created At", "date", "Creation timestamp", _created_at)


def _event_columns(message_field: str) -> list[ColumnSpec]:
    # The real event printer: the object name is a wide (priority 1) column.
    return [ColumnSpec("Last Seen", "string", "Time since the last event", _event_last_seen),
            ColumnSpec("Type", "string", "Type of the event", _cell("type")),
            ColumnSpec("Reason", "string", "Short, machine understandable string",
                       _cell("reason")),
            ColumnSpec("Object", "string", "The object this event is about", _event_object),
            ColumnSpec("Message", "string", "A human-readable description",
                       _cell(message_field)),
            ColumnSpec("Name", "string", "Name of the event",
                       _cell("metadata.name"), priority=1, format="name")]


def _data_count(obj: Obj) -> int:
    return len(obj.get("data") or {}) + len(obj.get("binaryData") or {})


def _ports(obj: Obj) -> str:
    ports = obj.get("spec", {}).get("ports") or []
    out = [f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports if isinstance(p, dict)]
    return ",".join(out) or "<none>"


def _deploy_ready(obj: Obj) -> str:
    st = obj.get("status") or {}
    return f"{st.get('readyReplicas', 0)}/{obj.get('spec', {}).get('replicas', 1)}"


# ---------------------------------------------------------------------------------------------
# The built-in resource types


def _v(name: str = "v1", subresources: tuple[str, ...] = ()) -> dict[str, ResourceVersion]:
    return {name: ResourceVersion(name, subresources=frozenset(subresources))}


def builtin_types() -> list[ResourceType]:
    status = ("status",)
    return [
        ResourceType("", "namespaces", "namespace", "Namespace", False, _v("v1", status),
                     "v1", short_names=["ns"], strategy=NamespaceStrategy(),
                     columns=[ColumnSpec("Status", "string", "The status of the namespace",
                                         _cell("status.phase")), AGE],
                     extra_subresources={"finalize": ("update",)}),
        ResourceType("", "secrets", "secret", "Secret", True, _v(), "v1",
                     strategy=SecretStrategy(),
                     columns=[ColumnSpec("Type", "string", "The type of the secret",
                                         _cell("type")),
                              ColumnSpec("Data", "string", "The number of items in the secret",
                                         _data_count), AGE]),
        ResourceType("", "configmaps", "configmap", "ConfigMap", True, _v(), "v1",
                     short_names=["cm"],
                     columns=[ColumnSpec("Data", "string", "Number of data in the configmap",
                                         _data_count), AGE]),
        ResourceType("", "events", "event", "Event", True, _v(), "v1", short_names=["ev"],
                     strategy=CoreEventStrategy(), name_column=False,
                     columns=_event_columns("message")),
        ResourceType("", "serviceaccounts", "serviceaccount", "ServiceAccount", True, _v(),
                     "v1", short_names=["sa"],
                     columns=[ColumnSpec("Secrets", "string", "Number of secrets",
                                         lambda o: len(o.get("secrets") or [])), AGE]),
        ResourceType("", "services", "service", "Service", True, _v("v1", status), "v1",
                     short_names=["svc"], categories=["all"], strategy=ServiceStrategy(),
                     columns=[ColumnSpec("Type", "string", "Service type", _cell("spec.type")),
                              ColumnSpec("Cluster-IP", "string", "Cluster IP",
                                         _cell("spec.clusterIP")),
                              ColumnSpec("External-IP", "string", "External IP",
                                         lambda o: "<none>"),
                              ColumnSpec("Port(s)", "string", "Ports", _ports), AGE]),
        ResourceType("apps", "deployments", "deployment", "Deployment", True,
                     _v("v1", status), "v1", short_names=["deploy"], categories=["all"],
                     has_generation=True, strategy=DeploymentStrategy(),
                     columns=[ColumnSpec("Ready", "string", "Ready replicas", _deploy_ready),
                              ColumnSpec("Up-to-date", "integer", "Updated replicas",
                                         lambda o: (o.get("status") or {}).get(
                                             "updatedReplicas", 0)),
                              ColumnSpec("Available", "integer", "Available replicas",
                                         lambda o: (o.get("status") or {}).get(
                                             "availableReplicas", 0)), AGE]),
        ResourceType("coordination.k8s.io", "leases", "lease", "Lease", True, _v(), "v1",
                     columns=[ColumnSpec("Holder", "string", "Holder identity",
                                         _cell("spec.holderIdentity")), AGE]),
        ResourceType("events.k8s.io", "events", "event", "Event", True, _v(), "v1",
                     short_names=["ev"], storage=("", "events"), strategy=EventsV1Strategy(),
                     name_column=False, columns=_event_columns("note")),
        ResourceType("rbac.authorization.k8s.io", "roles", "role", "Role", True, _v(), "v1",
                     columns=[CREATED_AT]),
        ResourceType("rbac.authorization.k8s.io", "rolebindings", "rolebinding", "RoleBinding",
                     True, _v(), "v1",
                     columns=[ColumnSpec("Role", "string", "Role",
                                         lambda o: f"{o.get('roleRef', {}).get('kind')}/"
                                                   f"{o.get('roleRef', {}).get('name')}"), AGE]),
        ResourceType("rbac.authorization.k8s.io", "clusterroles", "clusterrole", "ClusterRole",
                     False, _v(), "v1", columns=[CREATED_AT]),
        ResourceType("rbac.authorization.k8s.io", "clusterrolebindings", "clusterrolebinding",
                     "ClusterRoleBinding", False, _v(), "v1",
                     columns=[ColumnSpec("Role", "string", "Role",
                                         lambda o: f"{o.get('roleRef', {}).get('kind')}/"
                                                   f"{o.get('roleRef', {}).get('name')}"), AGE]),
        ResourceType("policy", "poddisruptionbudgets", "poddisruptionbudget",
                     "PodDisruptionBudget", True, _v("v1", status), "v1", short_names=["pdb"],
                     has_generation=True, columns=[AGE]),
        ResourceType("networking.k8s.io", "ingresses", "ingress", "Ingress", True,
                     _v("v1", status), "v1", short_names=["ing"], has_generation=True,
                     columns=[ColumnSpec("Class", "string", "Ingress class",
                                         lambda o: o.get("spec", {}).get("ingressClassName")
                                         or "<none>"),
                              ColumnSpec("Hosts", "string", "Hosts",
                                         lambda o: ",".join(r.get("host", "*") for r in
                                                            o.get("spec", {}).get("rules") or [])
                                         or "*"), AGE]),
    ]
