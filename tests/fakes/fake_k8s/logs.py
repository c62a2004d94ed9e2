"""``kubectl logs``: the scenario's log text of a container, and kubectl's refusals for a pod
that has none yet."""

from __future__ import annotations

import re
import sys
import time

from .kubectl import Kubectl
from .output import Failure, err
from .timelines import all_pods_with_events


def find_pod(k: Kubectl, name: str) -> tuple[dict, dict, list[dict]]:
    cluster = k.cluster()
    api = k.state.api(cluster["name"])
    for pod, events in all_pods_with_events(api, cluster, k.state.scenario(), time.time(), k.namespace):
        if pod["metadata"]["name"] == name:
            return cluster, pod, events
    raise Failure(f'Error from server (NotFound): pods "{name}" not found')


def log_text(scenario: dict, container: str, previous: bool) -> str:
    logs = scenario.get("logs") or {}
    text = logs.get(f"{container}:previous" if previous else container, f"{container} started")
    return text if text.endswith("\n") or not text else text + "\n"


def kubectl_logs(k: Kubectl, args: list[str]) -> int:
    if len(args) != 1:
        raise Failure(
            "error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required argument for the logs command\nSee 'kubectl logs -h' for help and examples"
        )
    name = args[0].removeprefix("pod/").removeprefix("pods/")
    if "/" in name:
        raise Failure(f"error: fake kubectl: logs supports POD or pod/POD, not {args[0]}")
    tail = k.opts.get("tail", "-1")
    if not re.fullmatch(r"-?\d+", tail):
        raise Failure(
            f'error: invalid argument "{tail}" for "--tail" flag: strconv.ParseInt: parsing "{tail}": invalid syntax'
        )
    _, pod, _ = find_pod(k, name)
    spec = pod["spec"]
    container = k.opts.get("container")
    if container is None:
        container = spec["containers"][0]["name"]
        if len(spec["containers"]) > 1 or spec.get("initContainers"):
            all_names = [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]
            err(
                f'Defaulted container "{container}" out of: {", ".join(all_names)}'
            )  # kubectl: polymorphichelpers
    statuses = {
        s["name"]: s
        for s in pod["status"].get("initContainerStatuses", []) + pod["status"].get("containerStatuses", [])
    }
    if container not in {c["name"] for c in spec.get("initContainers", []) + spec["containers"]}:
        raise Failure(f"error: container {container} is not valid for pod {name}")
    if not pod["spec"].get("nodeName"):
        return 0  # k8s: no host assigned yet, so an empty log
    status = statuses[container]
    previous = bool(k.opts.get("previous"))
    # k8s: pkg/kubelet/kubelet_pods.go validateContainerLogStatus
    if previous and not status["lastState"]:
        raise Failure(
            f'Error from server (BadRequest): previous terminated container "{container}" in pod "{name}" not found'
        )
    waiting = status["state"].get("waiting")
    if waiting and not status["lastState"]:
        reason = {
            "ErrImagePull": "image can't be pulled",
            "ImagePullBackOff": "trying and failing to pull image",
        }.get(waiting["reason"], waiting["reason"])
        raise Failure(
            f'Error from server (BadRequest): container "{container}" in pod "{name}" is waiting to start: {reason}'
        )
    text = log_text(k.state.scenario(), container, previous or bool(waiting))
    lines = text.splitlines(keepends=True)
    if int(tail) >= 0:
        lines = lines[len(lines) - int(tail) :] if int(tail) else []
    sys.stdout.write("".join(lines))
    sys.stdout.flush()
    return 0
