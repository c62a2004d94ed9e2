"""The events the scheduler, the kubelet and the controllers record (core/v1 Events as ``kubectl
get events -o json`` shows them), and the kubelet's message for each waiting reason."""

from __future__ import annotations

import time
from typing import Any

from .formats import digest, go_duration, normalized_image, rfc3339, to_epoch, uid_of


def backoff(restarts: int) -> str:
    # k8s: kubelet crash-loop back-off, 10s doubling up to 5m.
    return go_duration(min(10 * 2 ** max(restarts - 1, 0), 300))


def waiting_message(reason: str, container: dict, pod: str, ns: str, uid: str, restarts: int) -> str | None:
    """The kubelet's message for each waiting reason (k8s: pkg/kubelet/images, kuberuntime)."""
    image = container.get("image", "")
    full = normalized_image(image)
    command = (container.get("command") or [container["name"]])[0]
    return {
        # k8s: pkg/kubelet/images/image_manager.go: the message is the CRI error as is (gRPC's
        # "rpc error: code = … desc = …"); containerd's text for a Docker Hub repository that does
        # not exist, as a kind node shows it (kubernetes-sigs/kind#2474).
        "ErrImagePull": (
            f'rpc error: code = Unknown desc = failed to pull and unpack image "{full}": failed to resolve '
            f'reference "{full}": pull access denied, repository does not exist or may require '
            "authorization: server message: insufficient_scope: authorization failed"
        ),
        "ImagePullBackOff": f'Back-off pulling image "{image}"',
        "ErrImageNeverPull": f'Container image "{image}" is not present with pull policy of Never',
        "InvalidImageName": f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": invalid reference format',
        "CreateContainerConfigError": f'configmap "{container["name"]}-config" not found',
        "CreateContainerError": "context deadline exceeded",
        "RunContainerError": (
            "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc "
            f'create failed: unable to start container process: exec: "{command}": executable file not '
            "found in $PATH: unknown"
        ),
        "CrashLoopBackOff": f"back-off {backoff(restarts)} restarting failed container={container['name']} pod={pod}_{ns}({uid})",
    }.get(reason)


def event(
    involved: dict,
    reason: str,
    message: str,
    at: float,
    *,
    kind: str = "Normal",
    count: int = 1,
    first: float | None = None,
    component: str = "kubelet",
    host: str = "",
    field_path: str = "",
) -> dict:
    """A core/v1 Event as `kubectl get events -o json` shows it (k8s: api/core/v1 Event).

    The scheduler records through events.k8s.io, so its events have eventTime, a reporting
    controller, and null first/lastTimestamp and no count in the v1 view (kubernetes#89689).
    """
    first = at if first is None else first
    name = f"{involved['name']}.{int(first * 1e9) + int(digest(reason, field_path, message)[:6], 16):x}"
    ref = {
        "apiVersion": involved["apiVersion"],
        **({"fieldPath": field_path} if field_path else {}),
        "kind": involved["kind"],
        "name": involved["name"],
        "namespace": involved["namespace"],
        "resourceVersion": involved.get("resourceVersion", ""),
        "uid": involved["uid"],
    }
    found: dict[str, Any] = {
        "apiVersion": "v1",
        "involvedObject": ref,
        "kind": "Event",
        "message": message,
        "metadata": {
            "creationTimestamp": rfc3339(first),
            "name": name,
            "namespace": involved["namespace"],
            "resourceVersion": involved.get("resourceVersion", ""),
            "uid": uid_of("event", name),
        },
        "reason": reason,
        "type": kind,
    }
    if component == "default-scheduler":
        found.update(
            action="Binding" if reason == "Scheduled" else "Scheduling",
            eventTime=f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(first))}.{int(first % 1 * 1e6):06d}Z",
            firstTimestamp=None,
            lastTimestamp=None,
            reportingComponent="default-scheduler",
            reportingInstance=f"default-scheduler-{host}" if host else "default-scheduler",
            source={},
        )
    else:
        found.update(
            count=count,
            eventTime=None,
            firstTimestamp=rfc3339(first),
            lastTimestamp=rfc3339(at),
            reportingComponent=component,
            reportingInstance=host,
            source={"component": component, **({"host": host} if host else {})},
        )
    return found


def involved_of(obj: dict) -> dict:
    meta = obj["metadata"]
    return {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        **{k: meta.get(k, "") for k in ("name", "namespace", "uid", "resourceVersion")},
    }


def pod_events(pod: dict, since: float, unschedulable: str | None) -> list[dict]:
    """The events the scheduler and the kubelet record for a pod in this state (k8s: pkg/kubelet/events)."""
    involved = involved_of(pod)
    created = to_epoch(pod["metadata"]["creationTimestamp"])
    if unschedulable is not None:
        return [
            event(
                involved,
                "FailedScheduling",
                unschedulable,
                created,
                kind="Warning",
                component="default-scheduler",
            )
        ]
    ns, name, node = pod["metadata"]["namespace"], pod["metadata"]["name"], pod["spec"]["nodeName"]
    found = [
        event(
            involved,
            "Scheduled",
            f"Successfully assigned {ns}/{name} to {node}",
            created,
            component="default-scheduler",
            host=node,
        )
    ]
    for field in ("initContainers", "containers"):
        specs = {c["name"]: c for c in pod["spec"].get(field, [])}
        for status in pod["status"].get(
            "initContainerStatuses" if field == "initContainers" else "containerStatuses", []
        ):
            for reason, message, kind, count in container_events(specs[status["name"]], status, pod):
                path = f"spec.{field}{{{status['name']}}}"
                found.append(
                    event(
                        involved,
                        reason,
                        message,
                        since,
                        kind=kind,
                        count=count,
                        first=created,
                        host=node,
                        field_path=path,
                    )
                )
    return found


def container_events(container: dict, status: dict, pod: dict) -> list[tuple[str, str, str, int]]:
    """(reason, message, type, count) of the kubelet's events for one container."""
    image, name = status["image"], status["name"]
    waiting = status["state"].get("waiting", {})
    reason, message = waiting.get("reason"), waiting.get("message", "")
    if reason in ("ContainerCreating", "PodInitializing"):
        return []
    if reason in ("ErrImagePull", "ImagePullBackOff"):
        meta = pod["metadata"]
        pull_error = waiting_message(
            "ErrImagePull", container, meta["name"], meta["namespace"], meta["uid"], 0
        )
        found = [
            ("Pulling", f'Pulling image "{image}"', "Normal", 1),
            ("Failed", f'Failed to pull image "{image}": {pull_error}', "Warning", 1),
            ("Failed", "Error: ErrImagePull", "Warning", 1),
        ]
        if reason == "ImagePullBackOff":
            found += [
                ("BackOff", f'Back-off pulling image "{image}"', "Normal", 1),
                ("Failed", "Error: ImagePullBackOff", "Warning", 1),
            ]
        return found
    if reason in ("ErrImageNeverPull", "InvalidImageName"):
        first = "ErrImageNeverPull" if reason == "ErrImageNeverPull" else "InspectFailed"
        return [(first, message, "Warning", 1), ("Failed", f"Error: {reason}", "Warning", 1)]
    runs = status["restartCount"] + (0 if reason else 1)
    if container["imagePullPolicy"] == "Always":
        found = [
            ("Pulling", f'Pulling image "{image}"', "Normal", max(runs, 1)),
            (
                "Pulled",
                f'Successfully pulled image "{image}" in 1.2s (1.2s including waiting). Image size: 2104832 bytes.',
                "Normal",
                max(runs, 1),
            ),
        ]
    else:
        found = [("Pulled", f'Container image "{image}" already present on machine', "Normal", max(runs, 1))]
    if reason in ("CreateContainerConfigError", "CreateContainerError"):
        return [*found, ("Failed", f"Error: {message}", "Warning", 1)]
    if reason == "RunContainerError":
        return [
            *found,
            ("Created", f"Created container: {name}", "Normal", 1),
            ("Failed", f"Error: {message}", "Warning", 1),
        ]
    found += [
        ("Created", f"Created container: {name}", "Normal", runs),
        ("Started", f"Started container {name}", "Normal", runs),
    ]
    if reason == "CrashLoopBackOff":
        meta = pod["metadata"]
        found.append(
            (
                "BackOff",
                f"Back-off restarting failed container {name} in pod {meta['name']}_{meta['namespace']}({meta['uid']})",
                "Warning",
                status["restartCount"],
            )
        )
    probe = container.get("readinessProbe")
    if probe and "running" in status["state"] and not status["ready"]:
        found.append(("Unhealthy", f"Readiness probe failed: {probe_failure(probe, pod)}", "Warning", 1))
    return found


def probe_failure(probe: dict, pod: dict) -> str:
    ip = pod["status"].get("podIP", "")
    if "httpGet" in probe:
        port = probe["httpGet"].get("port")
        return f'Get "http://{ip}:{port}{probe["httpGet"].get("path", "/")}": dial tcp {ip}:{port}: connect: connection refused'
    if "tcpSocket" in probe:
        return f"dial tcp {ip}:{probe['tcpSocket'].get('port')}: connect: connection refused"
    return ""


def workload_events(record: dict, pods: list[dict]) -> list[dict]:
    """The controllers' events for a workload (k8s: pkg/controller/{deployment,replicaset,...})."""
    obj = record["object"]
    kind, name, ns = obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"]
    at = record["applied_at"]
    found = []
    if kind == "Deployment" and pods:
        owner = pods[0]["metadata"]["ownerReferences"][0]
        found.append(
            event(
                involved_of(obj),
                "ScalingReplicaSet",
                f"Scaled up replica set {owner['name']} from 0 to {len(pods)}",
                at,
                component="deployment-controller",
            )
        )
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": owner["name"],
            "namespace": ns,
            "uid": owner["uid"],
        }
        found.extend(
            event(
                rs,
                "SuccessfulCreate",
                f"Created pod: {p['metadata']['name']}",
                at,
                component="replicaset-controller",
            )
            for p in pods
        )
    elif kind == "StatefulSet":
        found.extend(
            event(
                involved_of(obj),
                "SuccessfulCreate",
                f"create Pod {p['metadata']['name']} in StatefulSet {name} successful",
                at,
                component="statefulset-controller",
            )
            for p in pods
        )
    elif kind in ("DaemonSet", "ReplicaSet", "Job"):
        component = {
            "DaemonSet": "daemonset-controller",
            "ReplicaSet": "replicaset-controller",
            "Job": "job-controller",
        }[kind]
        found.extend(
            event(
                involved_of(obj),
                "SuccessfulCreate",
                f"Created pod: {p['metadata']['name']}",
                at,
                component=component,
            )
            for p in pods
        )
        if kind == "Job" and pods:
            phases = {p["status"]["phase"] for p in pods}
            if phases == {"Succeeded"}:
                found.append(
                    event(involved_of(obj), "Completed", "Job completed", at, component="job-controller")
                )
            elif "Failed" in phases:
                found.append(
                    event(
                        involved_of(obj),
                        "BackoffLimitExceeded",
                        "Job has reached the specified backoff limit",
                        at,
                        kind="Warning",
                        component="job-controller",
                    )
                )
    return found
