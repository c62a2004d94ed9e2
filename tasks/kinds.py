"""The sets of Kubernetes kinds stagegate treats alike, each with one name for what it is used
for: readiness, the docker target, port-forwards, the order of an apply, namespaces."""

from __future__ import annotations

#: apps/v1 controllers: their status always reports ``observedGeneration``.
APPS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
#: What a deploy waits on with readiness rules of its kind (the others by their conditions).
WATCHED = (*APPS, "Job", "Pod")
#: What a port-forward can reach: kinds whose pods serve (a Job's run to completion).
SERVING = (*APPS, "Pod")
#: Applied first and waited on to be established, before the objects that need them.
PREREQUISITE = ("CustomResourceDefinition", "Namespace")
#: Built-in kinds that live in no namespace.
CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "PersistentVolume",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
    }
)
#: Never judged by their conditions when a verdict is explained from kubectl JSON: data and
#: plumbing, nothing that becomes ready.
WITHOUT_READINESS = frozenset(
    {"Event", "ConfigMap", "Secret", "Service", "Endpoints", "EndpointSlice", "Namespace", "ServiceAccount"}
)
#: What the docker target runs as containers.
RUN_BY_DOCKER = ("Deployment", "StatefulSet", "Job", "Pod")
#: What the docker target accepts with nothing to run (a Service's ports come from its pods).
KEPT_BY_DOCKER = ("Namespace", "Service", "ConfigMap", "Secret", "ServiceAccount")
