"""The kubelet's record of its pods (what runs, what ran, what the probes said) and the pod as
the API shows it: ``metadata`` (uid, creationTimestamp, labels, annotations, ownerReferences),
``spec`` (the containers as written, restartPolicy) and ``status`` (phase, conditions, container
statuses with ``state``/``lastState``, ``restartCount``, ``containerID``, ``imageID``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from python_on_whales import Container

from ...clock import iso
from .events import ObjectRef
from .labels import LABEL_WORKLOAD
from .plans import ContainerPlan, PodPlan
from .status import pod_conditions, pod_phase


@dataclass
class ProbeState:
    successes: int = 0
    failures: int = 0
    last_run: float | None = None
    passed: bool = False


@dataclass
class ContainerRun:
    plan: ContainerPlan
    current: Container | None = None  # the latest Docker container: running, or the last exited
    previous: Container | None = None  # the one before, kept for its logs
    restart_count: int = 0
    last_terminated: dict[str, Any] | None = None  # lastState.terminated
    terminated: dict[str, Any] | None = None  # state.terminated: exited and not restarted
    waiting: tuple[str, str] | None = None  # (reason, message) while no container runs
    handled: str | None = None  # the Docker container whose exit was handled
    started_at: float = 0.0  # monotonic, of the current container
    started_iso: str = ""  # RFC 3339, the engine's start time of the current container
    running: bool = False
    ip: str = ""  # the current container's address on the target's network
    image_id: str = ""
    probes: dict[str, ProbeState] = field(default_factory=dict)

    @property
    def started(self) -> bool:
        """The startup probe passed (or there is none) and the container runs."""
        return self.running and (
            self.plan.startup is None or self.probes.get("startupProbe", ProbeState()).passed
        )

    @property
    def ready(self) -> bool:
        if self.plan.init or not self.started:
            return False
        return self.plan.readiness is None or self.probes.get("readinessProbe", ProbeState()).passed


@dataclass
class PodRun:
    plan: PodPlan
    uid: str
    created: datetime
    init: list[ContainerRun]
    containers: list[ContainerRun]
    start_time: datetime | None = None
    ip: str = ""
    killed: bool = False  # stopped by its controller (a finished Job): never restarted
    transitions: dict[str, tuple[str, str]] = field(default_factory=dict)  # condition -> (status, time)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef("Pod", self.plan.name, self.plan.namespace, self.uid)

    @property
    def key(self) -> str:
        return f"{self.plan.name}_{self.plan.namespace}({self.uid})"  # the kubelet's format.Pod


def pod_json(pod: PodRun, moment: datetime) -> dict[str, Any]:
    """The pod as the API shows it at ``moment``."""
    plan = pod.plan
    initialized = all(r.terminated is not None and r.terminated["exitCode"] == 0 for r in pod.init)
    init_statuses = [container_status(r, moment) for r in pod.init]
    statuses = [
        container_status(r, moment)
        if initialized or r.waiting is not None
        else {**container_status(r, moment), "state": {"waiting": {"reason": "PodInitializing"}}}
        for r in pod.containers
    ]
    phase = pod_phase(plan.restart_policy, init_statuses, statuses)
    if pod.killed and phase not in ("Succeeded", "Failed"):
        phase = "Failed"
    now = iso(moment)
    conditions = pod_conditions(phase, pod.init, pod.containers, pod.transitions, now)
    owner = plan.owner
    metadata: dict[str, Any] = {
        "name": plan.name,
        "namespace": plan.namespace,
        "uid": pod.uid,
        "creationTimestamp": iso(pod.created),
        "labels": {**plan.labels, LABEL_WORKLOAD: plan.workload},
    }
    if plan.annotations:
        metadata["annotations"] = dict(plan.annotations)
    if owner is not None and owner.kind != "Pod":
        kind, name = {
            "Deployment": ("ReplicaSet", f"{owner.name}-{owner.template_hash}"),
        }.get(owner.kind, (owner.kind, owner.name))
        metadata["ownerReferences"] = [
            {
                "apiVersion": "batch/v1" if kind == "Job" else "apps/v1",
                "kind": kind,
                "name": name,
                "uid": _derived_uid(owner.uid, kind) if kind == "ReplicaSet" else owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": conditions,
        "hostIP": "127.0.0.1",
        "qosClass": "BestEffort",
    }
    if pod.ip:
        status.update(podIP=pod.ip, podIPs=[{"ip": pod.ip}])
    if pod.start_time is not None:
        status["startTime"] = iso(pod.start_time)
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    status["containerStatuses"] = statuses
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": {
            "containers": [r.plan.spec for r in pod.containers],
            **({"initContainers": [r.plan.spec for r in pod.init]} if pod.init else {}),
            "restartPolicy": plan.restart_policy,
            "terminationGracePeriodSeconds": int(plan.termination_grace),
            "nodeName": "docker",
        },
        "status": status,
    }


def container_status(run: ContainerRun, moment: datetime) -> dict[str, Any]:
    """A container status as the API shows it."""
    plan = run.plan
    found: dict[str, Any] = {
        "name": plan.name,
        "image": plan.image,
        "imageID": run.image_id if run.current is not None else "",
        "ready": run.ready,
        "started": run.started,
        "restartCount": run.restart_count,
        "lastState": {},
    }
    if run.current is not None:
        found["containerID"] = f"docker://{run.current.id}"
    if run.last_terminated is not None and run.terminated is not run.last_terminated:
        found["lastState"] = {"terminated": _public(run.last_terminated)}
    if run.terminated is not None:
        found["state"] = {"terminated": _public(run.terminated)}
    elif run.waiting is not None:
        reason, message = run.waiting
        found["state"] = {"waiting": {"reason": reason, **({"message": message} if message else {})}}
    elif run.current is not None and run.running:
        found["state"] = {"running": {"startedAt": run.started_iso or iso(moment)}}
    else:
        found["state"] = {"waiting": {"reason": "ContainerCreating"}}
    return found


def _public(terminated: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in terminated.items() if not k.startswith("_") and v is not None}


def _derived_uid(uid: str, salt: str) -> str:
    raw = hashlib.sha256(f"{uid}/{salt}".encode()).hexdigest()
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:32]}"
