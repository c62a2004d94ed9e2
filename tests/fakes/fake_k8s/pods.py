"""A pod as the API server returns it in a given state: the defaulted spec, the container
statuses, conditions and IPs the kubelet reports."""

from __future__ import annotations

import copy
from typing import Any

from .events import pod_events, waiting_message
from .formats import digest, normalized_image, rfc3339, safe_name, uid_of
from .output import Failure


def default_pull_policy(image: str) -> str:
    # k8s: pkg/apis/core/v1/defaults.go: Always for :latest or no tag, else IfNotPresent.
    last = image.rsplit("/", 1)[-1]
    return "Always" if "@" not in image and (":" not in last or last.endswith(":latest")) else "IfNotPresent"


def pod_spec(template_spec: dict, volume: str, node: str | None) -> dict:
    """The pod spec as the API server returns it: the template plus the defaulted fields."""
    spec = copy.deepcopy(template_spec)
    mount = {"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": volume, "readOnly": True}
    for container in spec.get("initContainers", []) + spec.get("containers", []):
        container.setdefault("imagePullPolicy", default_pull_policy(container.get("image", "")))
        container.setdefault("resources", {})
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")
        container["volumeMounts"] = [*container.get("volumeMounts", []), mount]
    defaults = {
        "dnsPolicy": "ClusterFirst",
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": "default",
        "serviceAccountName": "default",
        "terminationGracePeriodSeconds": 30,
        "tolerations": [
            {
                "effect": "NoExecute",
                "key": f"node.kubernetes.io/{k}",
                "operator": "Exists",
                "tolerationSeconds": 300,
            }
            for k in ("not-ready", "unreachable")
        ],
    }
    spec = {**defaults, **spec}
    spec["volumes"] = [
        *spec.get("volumes", []),
        {
            "name": volume,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {
                        "configMap": {
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            "name": "kube-root-ca.crt",
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                    "path": "namespace",
                                }
                            ]
                        }
                    },
                ],
            },
        },
    ]
    if node:
        spec["nodeName"] = node
    return spec


def container_status(
    container: dict, fields: dict, phase: str, since: float, pod: dict, init: bool = False
) -> dict:
    """A containerStatus in the API's shape (k8s: staging/src/k8s.io/api/core/v1/types.go).

    ``fields`` are the state's (waiting, message, ready, restarts, last_exit_code, last_reason);
    an init container with ``done`` has completed.
    """
    meta = pod["metadata"]
    name = container["name"]
    waiting = fields.get("waiting")
    crash_looped = waiting == "CrashLoopBackOff" or "last_exit_code" in fields
    restarts = int(fields.get("restarts", 1 if crash_looped else 0))
    exit_code = int(fields.get("last_exit_code", 1))
    reason = fields.get("last_reason", "Error" if exit_code else "Completed")
    current_id = f"containerd://{digest(meta['uid'], name, restarts)}"
    last: dict = {}
    if restarts:
        last = {
            "terminated": {
                "containerID": f"containerd://{digest(meta['uid'], name, restarts - 1)}",
                "exitCode": exit_code,
                "finishedAt": rfc3339(since),
                "reason": reason,
                "startedAt": rfc3339(since - 1),
            }
        }
    if waiting:
        message = fields.get("message") or waiting_message(
            waiting, container, meta["name"], meta["namespace"], meta["uid"], restarts
        )
        state: dict = {"waiting": {"reason": waiting, **({"message": message} if message else {})}}
    elif phase == "Pending" and not init:
        state = {"waiting": {"reason": "ContainerCreating"}}
    elif (phase in ("Succeeded", "Failed") and not init) or fields.get("done"):
        failed = phase == "Failed" and not init
        state = {
            "terminated": {
                "containerID": current_id,
                "exitCode": exit_code if failed else 0,
                "finishedAt": rfc3339(since),
                "reason": reason if failed else "Completed",
                "startedAt": rfc3339(since - 1),
            }
        }
    else:
        state = {"running": {"startedAt": rfc3339(since)}}
    running = "running" in state
    status: dict[str, Any] = {}
    if running or "terminated" in state:
        status["containerID"] = current_id
    elif last:  # waiting to restart: the kubelet still reports the last container
        status["containerID"] = last["terminated"]["containerID"]
    ready = (running and not init and fields.get("ready", True)) or (init and "terminated" in state)
    return {
        **status,
        "image": container.get("image", ""),
        "imageID": image_id(container.get("image", "")) if status else "",
        "lastState": last,
        "name": name,
        "ready": bool(ready),
        "restartCount": restarts,
        "started": running,
        "state": state,
        "volumeMounts": [
            {**m, "recursiveReadOnly": "Disabled"}
            for m in container.get("volumeMounts", [])
            if m.get("readOnly")
        ],
    }


def image_id(image: str) -> str:
    """containerd's image ID as the kubelet reports it: the repository @ a digest."""
    return f"{normalized_image(image).rsplit(':', 1)[0].split('@')[0]}@sha256:{digest('image', image)}"


def condition(kind: str, ok: bool, at: float, reason: str = "", message: str = "") -> dict:
    found = {
        "lastProbeTime": None,
        "lastTransitionTime": rfc3339(at),
        "status": "True" if ok else "False",
        "type": kind,
    }
    if not ok and reason:
        found["reason"] = reason
    if not ok and message:
        found["message"] = message
    return found


# The pod shapes mirror real `kubectl get pod -o json|yaml` output of kubernetes v1.3x: a full pod
# (kubernetes/kubernetes#137697), a CrashLoopBackOff containerStatus (traPtitech/NeoShowcase#725)
# and an ImagePullBackOff one (podman-desktop/podman-desktop#7521).
def build_pod(
    name: str,
    generate_name: str,
    labels: dict,
    owner: dict | None,
    template: dict,
    state: dict,
    since: float,
    record: dict,
    cluster: dict,
) -> tuple[dict, list[dict]]:
    obj_meta = record["object"]["metadata"]
    ns = obj_meta["namespace"]
    created = record["applied_at"]
    scheduled = state.get("scheduled", True)
    phase = state.get("phase", "Running") if scheduled else "Pending"
    uid = obj_meta["uid"] if owner is None else uid_of(ns, name, record["created_at"])
    meta: dict[str, Any] = {
        "creationTimestamp": rfc3339(created),
        **({"generateName": generate_name} if generate_name else {}),
        "labels": labels,
        "name": name,
        "namespace": ns,
        **({"ownerReferences": [owner]} if owner else {}),
        "resourceVersion": obj_meta["resourceVersion"],
        "uid": uid,
    }
    annotations = (template.get("metadata") or {}).get("annotations")
    if annotations:
        meta["annotations"] = annotations
    if not labels:
        meta.pop("labels")
    spec = pod_spec(
        template.get("spec") or {},
        f"kube-api-access-{safe_name(5, uid)}",
        cluster["node"] if scheduled else None,
    )
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    status: dict[str, Any] = {"phase": phase, "qosClass": qos_class(spec)}
    if not scheduled:
        message = state.get("message") or (
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: "
            "0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        )
        status["conditions"] = [condition("PodScheduled", False, created, "Unschedulable", message)]
        pod["status"] = status
        return pod, pod_events(pod, since, message)
    init_specs = spec.get("initContainers", [])
    init_fields = state.get("init")
    trouble = {
        k: state[k]
        for k in ("waiting", "message", "ready", "restarts", "last_exit_code", "last_reason")
        if k in state
    }
    target = state.get("container")
    names = [c["name"] for c in spec["containers"]]
    if target is not None and target not in names:
        raise Failure(f"fake: scenario state names container {target!r}, but the pod has {names}")
    # The default timeline's image pull failures (k8s: pkg/kubelet/kuberuntime SyncPod): init
    # containers run in order, so the first that cannot be pulled holds back the rest and every
    # container; after init, each container whose image cannot be pulled waits, the others run.
    pull_failures = state.get("pull_failures") or {}
    blocked = False
    init_statuses = []
    for i, container in enumerate(init_specs):
        if blocked:
            fields = {"waiting": "PodInitializing"}
        elif container["name"] in pull_failures:
            fields = {"waiting": pull_failures[container["name"]]}
            blocked = True
        elif init_fields is None:
            fields = {"done": True}
        elif i == 0:
            fields = init_fields
        else:
            fields = {"waiting": "PodInitializing"}
        init_statuses.append(container_status(container, fields, phase, since, pod, init=True))
    statuses = []
    for container in spec["containers"]:
        if init_fields is not None or blocked:
            statuses.append(container_status(container, {"waiting": "PodInitializing"}, phase, since, pod))
        elif container["name"] in pull_failures:
            statuses.append(
                container_status(container, {"waiting": pull_failures[container["name"]]}, phase, since, pod)
            )
        elif pull_failures or (target is not None and container["name"] != target):  # they run, ready
            statuses.append(
                container_status(container, {}, "Running" if phase == "Pending" else phase, since, pod)
            )
        else:
            statuses.append(container_status(container, trouble, phase, since, pod))
    creating = all(
        s["state"].get("waiting", {}).get("reason") == "ContainerCreating"
        for s in (init_statuses[:1] or statuses)
    )
    sandbox = not creating and phase not in ("Succeeded", "Failed")
    unready = [s["name"] for s in statuses if not s["ready"]]
    done = phase in ("Succeeded", "Failed")
    uninitialized = [s["name"] for s in init_statuses if not s["ready"]]
    status["conditions"] = [
        condition("PodReadyToStartContainers", sandbox, since),
        condition(
            "Initialized",
            not uninitialized,
            since,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(uninitialized)}]",
        ),
        condition(
            "Ready",
            not unready and not done,
            since,
            "PodCompleted" if done else "ContainersNotReady",
            "" if done else f"containers with unready status: [{' '.join(unready)}]",
        ),
        condition(
            "ContainersReady",
            not unready and not done,
            since,
            "PodCompleted" if done else "ContainersNotReady",
            "" if done else f"containers with unready status: [{' '.join(unready)}]",
        ),
        condition("PodScheduled", True, created),
    ]
    status["containerStatuses"] = statuses
    status["hostIP"] = cluster["host_ip"]
    status["hostIPs"] = [{"ip": cluster["host_ip"]}]
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if not creating:
        pod_ip = f"10.244.0.{2 + int(digest(uid), 16) % 250}"
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    status["startTime"] = rfc3339(created)
    pod["status"] = status
    return pod, pod_events(pod, since, None)


def qos_class(spec: dict) -> str:
    resources = [c.get("resources") or {} for c in spec.get("containers", [])]
    return "Burstable" if any(r.get("requests") or r.get("limits") for r in resources) else "BestEffort"
