"""When is a workload ready? One function per kind, registered in :data:`RULES`, after the
generic rules that apply to every kind — the shape of kstatus' ``core.go``
(kubernetes-sigs/cli-utils ``pkg/kstatus/status``). Deliberate differences from kstatus and
the other anchors are listed, with their reasons, in CONTRIBUTING.md.

Each rule reads the object's own ``status`` and the pods of the same snapshot that the
object selects (``pods``: not terminating). It answers ready, waiting (with what is
missing), or fatal (with the error). Reasons and conditions only, never message text.
Container states (pull errors, crashes, config errors) are judged in :mod:`.podstate`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import kinds
from ..errors import Code, StagegateError
from .model import (
    READY,
    WorkloadStatus,
    condition,
    condition_is,
    count,
    name_of,
    namespace_of,
    pod_ready,
    spec_of,
    status_of,
    waiting,
    workload_id,
)

Rule = Callable[[dict[str, Any], list[dict[str, Any]]], WorkloadStatus]


def workload_status(obj: dict[str, Any], pods: list[dict[str, Any]]) -> WorkloadStatus:
    """The verdict on ``obj``: the generic rules first, then its kind's."""
    generic = _generic(obj)
    if generic is not None:
        return generic
    rule = RULES.get(str(obj.get("kind")), _custom_resource)
    return rule(obj, pods)


def _fatal(obj: dict[str, Any], code: Code, message: str, hint: str, **subject: Any) -> WorkloadStatus:
    where = workload_id(obj)
    return WorkloadStatus(
        "fatal",
        message,
        StagegateError(
            code,
            f"{where}: {message}",
            hint,
            {"resource": where, "namespace": namespace_of(obj), **subject},
        ),
    )


def _generic(obj: dict[str, Any]) -> WorkloadStatus | None:
    """kstatus' ``checkGenericProperties``: Stalled, deletion, generation observed."""
    stalled = condition(obj, "Stalled")
    if stalled is not None and stalled.get("status") == "True":
        return _fatal(
            obj,
            Code.ROLLOUT_FAILED,
            f"Stalled: {stalled.get('reason') or 'no reason given'}",
            "its controller reports that it cannot make progress: read its conditions and events",
            reason=stalled.get("reason") or "Stalled",
            detail=stalled.get("message") or "",
        )
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return waiting("being deleted")
    if obj.get("kind") == "Deployment" and spec_of(obj).get("paused"):
        return WorkloadStatus("ready", "paused (spec.paused): not waited for")
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status_of(obj).get("observedGeneration")
    strict = obj.get("kind") in kinds.APPS  # their controllers always report observedGeneration
    if (
        generation is not None
        and (observed is not None or strict)
        and (observed is None or int(observed) < int(generation))
    ):
        return waiting(f"generation {generation} not observed yet by its controller")
    return None


def _unready_pods(pods: list[dict[str, Any]]) -> WorkloadStatus | None:
    unready = [
        p for p in pods if not pod_ready(p) and status_of(p).get("phase") not in ("Succeeded", "Failed")
    ]
    if unready:
        return waiting(f"pod {', '.join(name_of(p) for p in unready)} not ready")
    return None


def deployment(obj: dict[str, Any], pods: list[dict[str, Any]]) -> WorkloadStatus:
    """Rolled out: every replica updated, available and ready, no old replicas left, and
    the controller's ``Progressing``/``Available`` conditions agree.
    ``ProgressDeadlineExceeded`` is fatal."""
    spec, status = spec_of(obj), status_of(obj)
    progressing = condition(obj, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return _fatal(
            obj,
            Code.ROLLOUT_FAILED,
            f"ProgressDeadlineExceeded: no progress within {spec.get('progressDeadlineSeconds', 600)} s",
            "its pods do not become available: read the pod states in the diagnostics",
            reason="ProgressDeadlineExceeded",
            detail=progressing.get("message") or "",
        )
    wanted = count(spec, "replicas", 1)
    replicas, updated = count(status, "replicas"), count(status, "updatedReplicas")
    available, ready = _available_and_ready(spec, status)
    if wanted > replicas:
        return waiting(f"replicas {replicas}/{wanted}")
    if wanted > updated:
        return waiting(f"updated {updated}/{wanted}")
    if replicas > wanted:
        return waiting(f"{replicas - wanted} old replica(s) still terminating")
    if updated > available:
        return waiting(f"available {available}/{updated}")
    if wanted > ready:
        return waiting(f"ready {ready}/{wanted}")
    if "progressDeadlineSeconds" in spec and not (
        progressing is not None
        and progressing.get("status") == "True"
        and progressing.get("reason") == "NewReplicaSetAvailable"
    ):
        reason = (progressing or {}).get("reason") or "no Progressing condition"
        return waiting(f"rollout not complete (Progressing: {reason})")
    if condition_is(obj, "Available", "False"):
        return waiting("Available=False")
    return _unready_pods(pods) or READY


def statefulset(obj: dict[str, Any], pods: list[dict[str, Any]]) -> WorkloadStatus:
    """Ready replicas, no extra pods, and every pod at the update revision — except those a
    RollingUpdate ``partition`` keeps back. ``OnDelete`` rolls out only as pods are deleted:
    until then it is waiting, and says so."""
    spec, status = spec_of(obj), status_of(obj)
    wanted = count(spec, "replicas", 1)
    ready = count(status, "readyReplicas")
    current, updated = count(status, "currentReplicas"), count(status, "updatedReplicas")
    strategy = spec.get("updateStrategy") or {}
    if "replicas" in status and count(status, "replicas") < wanted:
        return waiting(f"replicas {count(status, 'replicas')}/{wanted}")
    if wanted > ready:
        return waiting(f"ready {ready}/{wanted}")
    if count(status, "replicas") > wanted:
        return waiting(f"{count(status, 'replicas') - wanted} extra pod(s) still terminating")
    revisions_match = status.get("currentRevision", "") == status.get("updateRevision", "")
    if strategy.get("type") == "OnDelete":
        if not revisions_match and updated < wanted:
            return waiting(
                f"OnDelete: {updated}/{wanted} pods at the new revision; delete the old pods to roll out"
            )
        return _unready_pods(pods) or READY
    partition = count(strategy.get("rollingUpdate") or {}, "partition")
    if partition > 0:
        if updated < max(0, wanted - partition):
            return waiting(f"updated {updated}/{wanted - partition} (partition {partition})")
        return _unready_pods(pods) or READY
    if max(current, updated) < wanted:
        return waiting(f"current {max(current, updated)}/{wanted}")
    if not revisions_match:
        return waiting(
            f"revision {status.get('updateRevision', '?')} not rolled out to every pod "
            f"(current {status.get('currentRevision', '?')})"
        )
    return _unready_pods(pods) or READY


def daemonset(obj: dict[str, Any], pods: list[dict[str, Any]]) -> WorkloadStatus:
    """Every desired node runs an updated, available, ready pod."""
    status = status_of(obj)
    if "desiredNumberScheduled" not in status:
        return waiting("desiredNumberScheduled not reported yet")
    desired = count(status, "desiredNumberScheduled")
    updated = count(status, "updatedNumberScheduled")
    if "numberAvailable" in status:
        available = count(status, "numberAvailable")
    elif "numberUnavailable" in status:
        available = desired - count(status, "numberUnavailable")
    else:
        available = count(status, "numberReady")
    ready = count(status, "numberReady") if "numberReady" in status else available
    for label, value in (("updated", updated), ("available", available), ("ready", ready)):
        if value < desired:
            return waiting(f"{label} {value}/{desired}")
    return _unready_pods(pods) or READY


def replicaset(obj: dict[str, Any], pods: list[dict[str, Any]]) -> WorkloadStatus:
    """Available and ready replicas, no extra pods; ``ReplicaFailure`` waits (kstatus)."""
    spec, status = spec_of(obj), status_of(obj)
    failure = condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return waiting(f"ReplicaFailure: {failure.get('reason') or 'pods cannot be created'}")
    wanted = count(spec, "replicas", 1)
    available, ready = _available_and_ready(spec, status)
    if wanted > available:
        return waiting(f"available {available}/{wanted}")
    if wanted > ready:
        return waiting(f"ready {ready}/{wanted}")
    if count(status, "replicas") > wanted:
        return waiting(f"{count(status, 'replicas') - wanted} extra pod(s) still terminating")
    return _unready_pods(pods) or READY


def job(obj: dict[str, Any], pods: list[dict[str, Any]]) -> WorkloadStatus:
    """Done when ``Complete``; fatal when ``Failed`` or when its failures pass
    ``backoffLimit`` (failures within the limit are retries, not failures). A suspended Job
    is not waited for."""
    spec, status = spec_of(obj), status_of(obj)
    failed_condition = condition(obj, "Failed")
    limit = count(spec, "backoffLimit", 6)
    failures = max(count(status, "failed"), sum(1 for p in pods if status_of(p).get("phase") == "Failed"))
    if condition_is(obj, "Complete", "True"):
        return READY  # a complete Job never fails afterwards
    restarts_exhausted = False
    if (spec.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
        # the Job controller's pastBackoffLimitOnFailure: restarts of its active pods count
        restarts = sum(
            count(c, "restartCount")
            for p in pods
            if status_of(p).get("phase") in ("Running", "Pending")
            for c in [
                *(status_of(p).get("initContainerStatuses") or []),
                *(status_of(p).get("containerStatuses") or []),
            ]
        )
        restarts_exhausted = restarts >= limit if limit > 0 else restarts > 0
        failures += restarts
    failed = failed_condition is not None and failed_condition.get("status") == "True"
    if failed or restarts_exhausted or failures > limit:
        reason = (failed_condition or {}).get("reason") or "BackoffLimitExceeded"
        return _fatal(
            obj,
            Code.JOB_FAILED,
            f"failed: {reason} ({failures} failed attempt(s), backoffLimit {limit})",
            "read the log of its last failed pod (in error.json and the diagnostics)",
            reason=reason,
            failed=failures,
            backoff_limit=limit,
            detail=(failed_condition or {}).get("message") or "",
            **_last_failed_container(pods),
        )
    suspended = condition_is(obj, "Suspended", "True")
    if spec.get("suspend"):
        return (
            WorkloadStatus("ready", "suspended: not waited for") if suspended else waiting("being suspended")
        )
    if suspended:
        return waiting("resuming")
    succeeded = count(status, "succeeded")
    if "completions" in spec and spec["completions"] is not None:
        completions = count(spec, "completions", 1)
        if succeeded >= completions:
            return READY
        return waiting(f"completed {succeeded}/{completions}")
    if succeeded >= 1 and count(status, "active") == 0:
        return READY
    return waiting(f"completed {succeeded}/1" + (f", {failures} failed attempt(s)" if failures else ""))


def pod(obj: dict[str, Any], pods: list[dict[str, Any]]) -> WorkloadStatus:
    """A bare Pod: ready when Ready (or Succeeded); phase ``Failed`` is fatal."""
    phase = status_of(obj).get("phase")
    if phase == "Succeeded":
        return READY
    if phase == "Failed":
        exits = [
            f"{c.get('name')} exit code {((c.get('state') or {}).get('terminated') or {}).get('exitCode')}"
            for c in status_of(obj).get("containerStatuses") or []
            if (c.get("state") or {}).get("terminated")
        ]
        return _fatal(
            obj,
            Code.POD_FAILED,
            "phase Failed" + (f" ({', '.join(exits)})" if exits else ""),
            "its containers ended and will not be restarted: read its log in the diagnostics",
            reason=status_of(obj).get("reason") or "Failed",
            pod=name_of(obj),
        )
    if pod_ready(obj):
        return READY
    if phase is None:
        return waiting("not observed by a kubelet yet")
    return waiting(f"pod {name_of(obj)} {phase}, not ready")


def _custom_resource(obj: dict[str, Any], pods: list[dict[str, Any]]) -> WorkloadStatus:
    """Anything else: its ``Ready`` condition when it has one, else nothing to wait for."""
    ready = condition(obj, "Ready")
    if ready is None or ready.get("status") == "True":
        return READY
    return waiting(f"Ready={ready.get('status')}: {ready.get('reason') or ''}".rstrip(": "))


def _last_failed_container(pods: list[dict[str, Any]]) -> dict[str, str]:
    """``pod`` and ``container`` of the Job pod that failed last (its log explains the Job)."""
    ended = []
    for candidate in pods:
        for entry in [
            *(status_of(candidate).get("initContainerStatuses") or []),
            *(status_of(candidate).get("containerStatuses") or []),
        ]:
            for state in (
                (entry.get("state") or {}).get("terminated"),
                (entry.get("lastState") or {}).get("terminated"),
            ):
                if state and state.get("exitCode") not in (0, None):
                    ended.append(
                        (str(state.get("finishedAt") or ""), name_of(candidate), str(entry.get("name")))
                    )
    if not ended:
        return {}
    _, pod_name, container = max(ended)
    return {"pod": pod_name, "container": container}


def _available_and_ready(spec: dict[str, Any], status: dict[str, Any]) -> tuple[int, int]:
    """(available, ready) replicas. An available pod is a ready one; with ``minReadySeconds``
    0 a ready pod is an available one — so a count the status omits is taken from the other."""
    available = count(status, "availableReplicas")
    ready = count(status, "readyReplicas") if "readyReplicas" in status else available
    if "availableReplicas" not in status and count(spec, "minReadySeconds") == 0:
        available = ready
    return available, ready


RULES: dict[str, Rule] = {
    "Deployment": deployment,
    "StatefulSet": statefulset,
    "DaemonSet": daemonset,
    "ReplicaSet": replicaset,
    "Job": job,
    "Pod": pod,
}
