"""The fake API server's objects: the kinds it serves, the records of applied objects (by
kind, namespace and name), namespaces, and label selectors."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .output import Failure

SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system", "local-path-storage")


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def type_name(self) -> str:  # kubectl's "deployment.apps/api-server created"
        return f"{self.kind.lower()}.{self.group}" if self.group else self.kind.lower()

    @property
    def resource(self) -> str:  # the server's "deployments.apps \"x\" not found"
        return f"{self.plural}.{self.group}" if self.group else self.plural


KINDS = {
    k.kind: k
    for k in (
        Kind("Namespace", "v1", "namespaces", namespaced=False),
        Kind("Pod", "v1", "pods"),
        Kind("Service", "v1", "services"),
        Kind("ConfigMap", "v1", "configmaps"),
        Kind("Secret", "v1", "secrets"),
        Kind("ServiceAccount", "v1", "serviceaccounts"),
        Kind("PersistentVolumeClaim", "v1", "persistentvolumeclaims"),
        Kind("Deployment", "apps/v1", "deployments"),
        Kind("StatefulSet", "apps/v1", "statefulsets"),
        Kind("DaemonSet", "apps/v1", "daemonsets"),
        Kind("ReplicaSet", "apps/v1", "replicasets"),
        Kind("Job", "batch/v1", "jobs"),
        Kind("CronJob", "batch/v1", "cronjobs"),
        Kind("Ingress", "networking.k8s.io/v1", "ingresses"),
        Kind("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies"),
        Kind("Role", "rbac.authorization.k8s.io/v1", "roles"),
        Kind("RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings"),
        Kind("ClusterRole", "rbac.authorization.k8s.io/v1", "clusterroles", namespaced=False),
        Kind("ClusterRoleBinding", "rbac.authorization.k8s.io/v1", "clusterrolebindings", namespaced=False),
        Kind("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets"),
        Kind("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers"),
        Kind(
            "CustomResourceDefinition",
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            namespaced=False,
        ),
    )
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod")
# kubectl get TYPE, as the fake serves it: the names and short names kubectl accepts.
GET_TYPES = {
    **dict.fromkeys(("pods", "pod", "po"), "Pod"),
    **dict.fromkeys(("deployments", "deployment", "deploy", "deployments.apps"), "Deployment"),
    **dict.fromkeys(("statefulsets", "statefulset", "sts", "statefulsets.apps"), "StatefulSet"),
    **dict.fromkeys(("daemonsets", "daemonset", "ds", "daemonsets.apps"), "DaemonSet"),
    **dict.fromkeys(("replicasets", "replicaset", "rs", "replicasets.apps"), "ReplicaSet"),
    **dict.fromkeys(("services", "service", "svc"), "Service"),
    **dict.fromkeys(("jobs", "job", "jobs.batch"), "Job"),
    **dict.fromkeys(("events", "event", "ev"), "Event"),
    **dict.fromkeys(("namespaces", "namespace", "ns"), "Namespace"),
    **dict.fromkeys(("configmaps", "configmap", "cm"), "ConfigMap"),
    **dict.fromkeys(
        (
            "customresourcedefinitions",
            "customresourcedefinition",
            "crd",
            "crds",
            "customresourcedefinitions.apiextensions.k8s.io",
        ),
        "CustomResourceDefinition",
    ),
}


def object_key(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{namespace}/{name}"


def namespaces_of(api: dict) -> set[str]:
    return {
        *SYSTEM_NAMESPACES,
        *(
            r["object"]["metadata"]["name"]
            for r in api["objects"].values()
            if r["object"]["kind"] == "Namespace"
        ),
    }


def records(api: dict, kind: str, namespace: str | None) -> list[dict]:
    found = [r for r in api["objects"].values() if r["object"]["kind"] == kind]
    return [r for r in found if namespace is None or r["object"]["metadata"].get("namespace") == namespace]


def parse_selector(text: str) -> list[tuple[str, str, str]]:
    requirements = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(!?)([\w./-]+)\s*(?:(==|=|!=)\s*([\w.-]*))?\s*", part)
        if not match or (match[1] and match[3]):
            raise Failure(f'error: fake kubectl: unsupported label selector "{text}" (use k=v, k!=v, k, !k)')
        negate, key, op, value = match.groups()
        requirements.append((key, "!" if negate else (op or "exists").replace("==", "="), value or ""))
    return requirements


def selected(labels: dict, requirements: list[tuple[str, str, str]]) -> bool:
    for key, op, value in requirements:
        if (op == "=" and labels.get(key) != value) or (op == "!=" and labels.get(key) == value):
            return False
        if (op == "exists" and key not in labels) or (op == "!" and key in labels):
            return False
    return True
