"""How the workloads' pods evolve over time: the scenario's timeline entry in force since the
apply (or the kubelet's pull failure without one), the pods each workload has (names, labels,
owners as the controllers make them, replacements of deleted pods), and their events."""

from __future__ import annotations

import json

from .events import workload_events
from .formats import safe_name, uid_of
from .objects import WORKLOAD_KINDS, records
from .pods import build_pod
from .pulls import image_available
from .state import served

DEFAULT_TIMELINE = [{"at": 0, "phase": "Running", "ready": True}]
# Without a scripted timeline, a pod with an image neither loaded nor pullable: ErrImagePull for
# this long after the apply, then ImagePullBackOff.
PULL_FAILURE_SECONDS = 1.0


def current_state(
    scenario: dict, kind: str, name: str, elapsed: float, spec: dict, cluster: dict
) -> tuple[dict, float]:
    """The timeline entry in force ``elapsed`` seconds after the apply, and its ``at``.

    Without a scripted timeline: DEFAULT_TIMELINE, unless an image of the pod ``spec`` is neither
    on the node nor pullable; then the kubelet's pull failure, ErrImagePull then ImagePullBackOff.
    """
    timelines = scenario.get("workloads") or {}
    timeline = timelines.get(f"{kind}/{name}") or timelines.get("*")
    if not timeline:
        containers = spec.get("initContainers", []) + spec.get("containers", [])
        missing = [
            c["name"] for c in containers if not image_available(c.get("image", ""), cluster, scenario)
        ]
        if missing:
            backing_off = elapsed >= PULL_FAILURE_SECONDS
            reason = "ImagePullBackOff" if backing_off else "ErrImagePull"
            state = {"phase": "Pending", "pull_failures": {n: reason for n in missing}}
            return state, PULL_FAILURE_SECONDS if backing_off else 0.0
        timeline = DEFAULT_TIMELINE
    entries = sorted(timeline, key=lambda e: e.get("at", 0))
    chosen = entries[0]
    for entry in entries:
        if entry.get("at", 0) <= elapsed:
            chosen = entry
    return chosen, float(chosen.get("at", 0))


def template_hash(template: dict) -> str:
    return safe_name(10, json.dumps(template, sort_keys=True))


def workload_pods(record: dict, cluster: dict, scenario: dict, now: float) -> list[tuple[dict, list[dict]]]:
    """(pod, its events) for each pod of a workload: names, labels and owners as the controllers make them."""
    obj = record["object"]
    kind, meta, spec = obj["kind"], obj["metadata"], obj.get("spec") or {}
    name, ns = meta["name"], meta["namespace"]
    pod_template_spec = spec if kind == "Pod" else (spec.get("template") or {}).get("spec") or {}
    state, at = current_state(scenario, kind, name, now - record["applied_at"], pod_template_spec, cluster)
    since = record["applied_at"] + at
    if kind == "Pod":
        template = {
            "metadata": {k: v for k, v in meta.items() if k in ("labels", "annotations")},
            "spec": spec,
        }
        served(kind, name, name, at)
        return [
            build_pod(name, "", dict(meta.get("labels") or {}), None, template, state, since, record, cluster)
        ]
    template = spec.get("template") or {}
    labels = dict((template.get("metadata") or {}).get("labels") or {})
    owner = {"apiVersion": obj["apiVersion"], "kind": kind, "name": name, "uid": meta["uid"]}
    count = int(
        spec.get("parallelism", 1) if kind == "Job" else 1 if kind == "DaemonSet" else spec.get("replicas", 1)
    )
    revision = f"{name}-{template_hash(template)}"
    pods = []
    for i in range(count):
        # A pod deleted with `kubectl delete pod` is replaced by its controller: a new pod (new
        # name, except a StatefulSet's, and a new uid) that follows the scenario's
        # `replacements` timeline from its creation, or the workload's own timeline.
        generation, replaced_at = (record.get("replaced") or {}).get(str(i), [0, None])
        pod_record, pod_state, pod_since, pod_at = record, state, since, at
        if generation:
            pod_record = {
                **record,
                "applied_at": replaced_at,
                "created_at": f"{record['created_at']}-{generation}",
            }
            timeline = (scenario.get("replacements") or {}).get(f"{kind}/{name}")
            if timeline:
                pod_scenario = {**scenario, "workloads": {f"{kind}/{name}": timeline}}
                pod_state, pod_at = current_state(
                    pod_scenario, kind, name, now - replaced_at, pod_template_spec, cluster
                )
                pod_since = replaced_at + pod_at
        extra: dict[str, str] = {}
        generate = f"{name}-"
        if kind == "Deployment":
            rs_hash = template_hash(template)
            extra = {"pod-template-hash": rs_hash}
            generate = f"{name}-{rs_hash}-"
            rs = f"{name}-{rs_hash}"
            pod_owner = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": rs,
                "uid": uid_of(ns, rs, record["created_at"]),
            }
        else:
            pod_owner = owner
        if kind == "StatefulSet":
            pod_name = f"{name}-{i}"
            extra = {
                "apps.kubernetes.io/pod-index": str(i),
                "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": pod_name,
            }
        else:
            pod_name = generate + safe_name(
                5, ns, generate, template_hash(template), i, pod_record["created_at"]
            )
        if kind == "DaemonSet":
            extra = {"controller-revision-hash": revision.rsplit("-", 1)[1], "pod-template-generation": "1"}
        if kind == "Job":
            extra = {
                "batch.kubernetes.io/controller-uid": meta["uid"],
                "batch.kubernetes.io/job-name": name,
                "controller-uid": meta["uid"],
                "job-name": name,
            }
        owner_ref = {**pod_owner, "blockOwnerDeletion": True, "controller": True}
        served(kind, name, pod_name, pod_at)
        pods.append(
            build_pod(
                pod_name,
                generate,
                {**labels, **extra},
                owner_ref,
                template,
                pod_state,
                pod_since,
                pod_record,
                cluster,
            )
        )
    return pods


def all_pods(
    api: dict, cluster: dict, scenario: dict, now: float, namespace: str | None = None
) -> list[dict]:
    return [pod for pod, _ in all_pods_with_events(api, cluster, scenario, now, namespace)]


def all_pods_with_events(
    api: dict, cluster: dict, scenario: dict, now: float, namespace: str | None
) -> list[tuple[dict, list[dict]]]:
    found = []
    for kind in WORKLOAD_KINDS:
        for record in records(api, kind, namespace):
            found.extend(workload_pods(record, cluster, scenario, now))
    return sorted(found, key=lambda p: (p[0]["metadata"]["namespace"], p[0]["metadata"]["name"]))


def all_events(api: dict, cluster: dict, scenario: dict, now: float, namespace: str | None) -> list[dict]:
    found = [e for e in api["events"] if namespace is None or e["metadata"]["namespace"] == namespace]
    for kind in WORKLOAD_KINDS:
        for record in records(api, kind, namespace):
            pods = workload_pods(record, cluster, scenario, now)
            found.extend(workload_events(record, [p for p, _ in pods]))
            for _, events in pods:
                found.extend(events)
    return sorted(found, key=lambda e: (e["metadata"]["namespace"], e["metadata"]["name"]))
