"""The status the controllers write: Deployments (with their ReplicaSet), StatefulSets,
DaemonSets, ReplicaSets, Jobs; and a Service with the API server's defaults."""

from __future__ import annotations

import copy
import hashlib

from .formats import rfc3339, uid_of
from .pods import condition
from .timelines import template_hash


def service_as_served(record: dict) -> dict:
    """A Service as the API server returns it: a cluster IP from kind's service range
    (10.96.0.0/16), the defaults of pkg/apis/core/v1/defaults.go (protocol TCP, targetPort = port,
    sessionAffinity None, type ClusterIP, internalTrafficPolicy Cluster, single-stack IPv4) and an
    empty load-balancer status; a NodePort/LoadBalancer port gets a nodePort (30000-32767)."""
    obj = copy.deepcopy(record["object"])
    spec = obj.setdefault("spec", {})
    uid = obj["metadata"]["uid"]
    number = int(hashlib.sha256(uid.encode()).hexdigest(), 16)
    kind = spec.setdefault("type", "ClusterIP")
    if kind != "ExternalName":
        if spec.get("clusterIP") != "None":
            spec["clusterIP"] = spec.get("clusterIP") or f"10.96.{number % 254 + 1}.{number // 254 % 254 + 1}"
        spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("internalTrafficPolicy", "Cluster")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
    for i, port in enumerate(spec.get("ports") or []):
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if kind in ("NodePort", "LoadBalancer"):
            port.setdefault("nodePort", 30000 + (number + i) % 2768)
    spec.setdefault("sessionAffinity", "None")
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    obj["status"] = {"loadBalancer": {}}
    return obj


def deployment_replicaset(record: dict, pods: list[dict]) -> dict:
    """The ReplicaSet of a Deployment's current template, as the deployment controller makes it
    (k8s: pkg/controller/deployment/sync.go getNewReplicaSet: name ``<deployment>-<hash>``, the
    ``pod-template-hash`` label on it, its selector and its template, the ``desired-replicas``,
    ``max-replicas`` and ``revision`` annotations, the Deployment as its controller); its pods are
    the Deployment's (their ownerReferences name it, with its uid)."""
    deployment = record["object"]
    meta, spec = deployment["metadata"], deployment.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    rs_hash = template_hash(spec.get("template") or {})
    name, ns = f"{meta['name']}-{rs_hash}", meta["namespace"]
    labels = {**((template.get("metadata") or {}).get("labels") or {}), "pod-template-hash": rs_hash}
    template.setdefault("metadata", {})["labels"] = labels
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {**(selector.get("matchLabels") or {}), "pod-template-hash": rs_hash}
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    if strategy.get("type") == "Recreate":
        surge = 0
    # k8s: pkg/controller/deployment/util MaxSurge: a percentage rounds up
    extra = -(-replicas * int(surge[:-1]) // 100) if isinstance(surge, str) else int(surge)
    obj = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(replicas),
                "deployment.kubernetes.io/max-replicas": str(replicas + extra),
                "deployment.kubernetes.io/revision": meta["annotations"]["deployment.kubernetes.io/revision"],
            },
            "creationTimestamp": rfc3339(record["applied_at"]),
            "generation": 1,
            "labels": labels,
            "name": name,
            "namespace": ns,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "blockOwnerDeletion": True,
                    "controller": True,
                    "kind": "Deployment",
                    "name": meta["name"],
                    "uid": meta["uid"],
                }
            ],
            "resourceVersion": meta["resourceVersion"],
            "uid": uid_of(ns, name, record["created_at"]),
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
    }
    return with_status({**record, "object": obj}, pods, record["applied_at"])


def with_status(record: dict, pods: list[dict], now: float) -> dict:
    """The object as `kubectl get -o json` returns it: as applied, with the server's metadata and status.

    k8s: api/apps/v1 and api/batch/v1 types; the reasons and messages of pkg/controller/deployment/util
    (MinimumReplicasAvailable, NewReplicaSetAvailable, ReplicaSetUpdated, ProgressDeadlineExceeded).
    """
    obj = copy.deepcopy(record["object"])
    kind, name, meta, spec = obj["kind"], obj["metadata"]["name"], obj["metadata"], obj.get("spec") or {}
    total = len(pods)
    ready = sum(
        all(s["ready"] for s in p["status"].get("containerStatuses", []))
        and p["status"]["phase"] == "Running"
        for p in pods
    )
    applied = record["applied_at"]
    generation = meta.get("generation", 1)
    if kind == "Deployment":
        rs = (
            pods[0]["metadata"]["ownerReferences"][0]["name"]
            if pods
            else f"{name}-{template_hash(spec.get('template') or {})}"
        )
        available = ready >= total
        deadline = spec.get("progressDeadlineSeconds", 600)
        if available:
            progressing = condition("Progressing", True, applied)
            progressing.update(
                reason="NewReplicaSetAvailable", message=f'ReplicaSet "{rs}" has successfully progressed.'
            )
        elif now - applied > deadline:
            progressing = condition(
                "Progressing",
                False,
                applied + deadline,
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{rs}" has timed out progressing.',
            )
        else:
            progressing = condition("Progressing", True, applied)
            progressing.update(reason="ReplicaSetUpdated", message=f'ReplicaSet "{rs}" is progressing.')
        if available:
            availability = condition("Available", True, applied)
            availability.update(
                reason="MinimumReplicasAvailable", message="Deployment has minimum availability."
            )
        else:
            availability = condition(
                "Available",
                False,
                applied,
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        for found in (availability, progressing):
            found.pop("lastProbeTime")
            found["lastUpdateTime"] = found["lastTransitionTime"]
        status = {
            "availableReplicas": ready,
            "conditions": [availability, progressing],
            "observedGeneration": generation,
            "readyReplicas": ready,
            "replicas": total,
            "unavailableReplicas": total - ready,
            "updatedReplicas": total,
        }
    elif kind == "StatefulSet":
        revision = f"{name}-{template_hash(spec.get('template') or {})}"
        status = {
            "availableReplicas": ready,
            "collisionCount": 0,
            "currentReplicas": total,
            "currentRevision": revision,
            "observedGeneration": generation,
            "readyReplicas": ready,
            "replicas": total,
            "updateRevision": revision,
            "updatedReplicas": total,
        }
    elif kind == "DaemonSet":
        status = {
            "currentNumberScheduled": total,
            "desiredNumberScheduled": total,
            "numberAvailable": ready,
            "numberMisscheduled": 0,
            "numberReady": ready,
            "numberUnavailable": total - ready,
            "observedGeneration": generation,
            "updatedNumberScheduled": total,
        }
    elif kind == "ReplicaSet":  # k8s: pkg/controller/replicaset calculateStatus
        status = {
            "availableReplicas": ready,
            "fullyLabeledReplicas": total,
            "observedGeneration": generation,
            "readyReplicas": ready,
            "replicas": total,
        }
    elif kind == "Job":
        phases = [p["status"]["phase"] for p in pods]
        status = {
            "active": sum(p in ("Pending", "Running") for p in phases),
            "failed": phases.count("Failed"),
            "ready": ready,
            "startTime": rfc3339(applied),
            "succeeded": phases.count("Succeeded"),
            "terminating": 0,
            "uncountedTerminatedPods": {},
        }
        # k8s: pkg/controller/job: SuccessCriteriaMet + Complete, or FailureTarget + Failed.
        if phases and set(phases) == {"Succeeded"}:
            finished = [
                c["state"]["terminated"]["finishedAt"] for p in pods for c in p["status"]["containerStatuses"]
            ]
            status["completionTime"] = max(finished)
            status["conditions"] = [
                {
                    **condition(c, True, applied),
                    "lastProbeTime": rfc3339(applied),
                    "message": "Reached expected number of succeeded pods",
                    "reason": "CompletionsReached",
                }
                for c in ("SuccessCriteriaMet", "Complete")
            ]
        elif "Failed" in phases:
            status["conditions"] = [
                {
                    **condition(c, True, applied),
                    "lastProbeTime": rfc3339(applied),
                    "message": "Job has reached the specified backoff limit",
                    "reason": "BackoffLimitExceeded",
                }
                for c in ("FailureTarget", "Failed")
            ]
    else:
        return obj
    kept = {
        "observedGeneration",
        "ready",
        "terminating",
        "numberMisscheduled",
        "numberReady",
        "collisionCount",
    }
    kept |= {"currentNumberScheduled", "desiredNumberScheduled", "updatedNumberScheduled", "replicas"}
    if kind == "StatefulSet":
        kept.add("availableReplicas")
    obj["status"] = {k: v for k, v in status.items() if v != 0 or k in kept}  # the API's omitempty
    return obj
