"""A Kubernetes API server emulator (aiohttp) for tests and the sandbox.

It learns custom resources from the ``apiextensions.k8s.io/v1`` CRDs applied to it, and
behaves like kube-apiserver for what kopf, kubectl and the kubernetes client use.
"""

from .cluster import Cluster
from .errors import APIError
from .kubeconfig import write_kubeconfig
from .server import KubeAPIServer, RequestRecord

__all__ = ["APIError", "Cluster", "KubeAPIServer", "RequestRecord", "write_kubeconfig"]
