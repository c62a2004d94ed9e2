"""The controllers' part: Jobs run to completion, and every workload's status computed from
its pods as kube-controller-manager would write it.

Job semantics (``pkg/controller/job``): ``completions`` successful pods wanted (default 1),
``parallelism`` at a time (default 1, capped like replicas); with ``restartPolicy: Never`` a
failed pod stays (phase Failed, logs kept) and a new pod replaces it after the pod-failure
back-off (``base``, doubling per failure up to ``cap``); with ``OnFailure`` the kubelet
restarts the container in place and the restarts count as failures. The Job fails when its
failures exceed ``backoffLimit`` (default 6): ``FailureTarget`` then ``Failed``, reason
``BackoffLimitExceeded``; it completes with ``SuccessCriteriaMet`` then ``Complete``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ...clock import Clock, iso
from .events import EventRecorder, ObjectRef
from .labels import LABEL_WORKLOAD
from .plans import PodPlan, WorkloadPlan
from .status import condition, counts, is_ready

COMPLETE = ("CompletionsReached", "Reached expected number of succeeded pods")
FAILED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")


@dataclass
class JobRun:
    plan: WorkloadPlan
    template: PodPlan  # the pod template, as any of its pods (renamed for each new one)
    start_time: datetime
    pods: list[Any] = field(default_factory=list)  # the kubelet's PodRuns of this Job
    completion_time: datetime | None = None
    failed_at: datetime | None = None  # when the Job failed
    last_failure: datetime | None = None  # the latest pod failure: the back-off counts from it
    counted_failures: set[str] = field(default_factory=set)  # uids of failed pods counted

    @property
    def backoff_limit(self) -> int:
        return int(self.plan.spec.get("backoffLimit", 6))

    @property
    def completions(self) -> int:
        return int(self.plan.spec.get("completions", 1))


@dataclass
class JobController:
    clock: Clock
    events: EventRecorder
    backoff_base: float
    backoff_cap: float

    def sync(
        self,
        job: JobRun,
        phase_of: Callable[[Any], str],
        restarts_of: Callable[[Any], int],
        new_pod: Callable[[PodPlan], Any],
        kill: Callable[[Any, str], None],
        new_name: Callable[[str], str],
    ) -> None:
        """Count the Job's pods, finish it or create the pods it still needs."""
        if job.completion_time is not None or job.failed_at is not None:
            return
        ref = ObjectRef("Job", job.plan.name, job.plan.namespace, job.plan.uid, "batch/v1")
        phases = {pod.uid: phase_of(pod) for pod in job.pods}
        for pod in job.pods:
            if phases[pod.uid] == "Failed" and pod.uid not in job.counted_failures:
                job.counted_failures.add(pod.uid)
                job.last_failure = self.clock.now()
        active = [p for p in job.pods if phases[p.uid] not in ("Succeeded", "Failed")]
        succeeded = sum(1 for p in phases.values() if p == "Succeeded")
        failed = len(job.counted_failures)
        restarts = sum(restarts_of(p) for p in active) if job.plan.restart_policy == "OnFailure" else 0
        if succeeded >= job.completions:
            job.completion_time = self.clock.now()
            for pod in active:
                kill(pod, "Stopping container: the Job completed")
            self.events.record(ref, "Completed", "Job completed", component="job-controller")
            return
        over_limit = failed > job.backoff_limit or (
            job.plan.restart_policy == "OnFailure"
            and (restarts > 0 if job.backoff_limit == 0 else restarts >= job.backoff_limit)
        )
        if over_limit:
            job.failed_at = self.clock.now()
            for pod in active:
                kill(pod, "Stopping container: the Job failed")
            self.events.record(ref, FAILED[0], FAILED[1], warning=True, component="job-controller")
            return
        wanted = min(job.plan.replicas, job.completions - succeeded) - len(active)
        if wanted <= 0 or self._backing_off(job, failed):
            return
        for _ in range(wanted):
            plan = job.template.renamed(new_name(job.plan.name))
            job.pods.append(new_pod(plan))
            self.events.record(
                ref, "SuccessfulCreate", f"Created pod: {plan.name}", component="job-controller"
            )

    def _backing_off(self, job: JobRun, failed: int) -> bool:
        """The pod-failure back-off: ``base * 2**(failures-1)``, capped, since the last failure."""
        if not failed or job.last_failure is None:
            return False
        delay = min(self.backoff_base * 2 ** (failed - 1), self.backoff_cap)
        return (self.clock.now() - job.last_failure).total_seconds() < delay


def job_json(job: JobRun, pods: list[dict[str, Any]], now: str) -> dict[str, Any]:
    phases = [p["status"]["phase"] for p in pods]
    active = sum(1 for p in phases if p not in ("Succeeded", "Failed"))
    status: dict[str, Any] = {
        "startTime": iso(job.start_time),
        **counts(
            active=0 if job.completion_time or job.failed_at else active,
            succeeded=phases.count("Succeeded"),
            failed=len(job.counted_failures) if job.failed_at is None else phases.count("Failed"),
        ),
        "ready": sum(1 for p in pods if is_ready(p)),
        "terminating": 0,
        "uncountedTerminatedPods": {},
    }
    if job.completion_time is not None:
        at = iso(job.completion_time)
        status["completionTime"] = at
        status["conditions"] = [
            _job_condition("SuccessCriteriaMet", *COMPLETE, at),
            _job_condition("Complete", *COMPLETE, at),
        ]
    elif job.failed_at is not None:
        at = iso(job.failed_at)
        status["conditions"] = [
            _job_condition("FailureTarget", *FAILED, at),
            _job_condition("Failed", *FAILED, at),
        ]
    spec = job.plan.spec
    return _workload(
        job.plan,
        {
            "backoffLimit": int(spec.get("backoffLimit", 6)),
            "completions": job.completions,
            "parallelism": int(spec.get("parallelism", 1)),
            "completionMode": "NonIndexed",
            "suspend": False,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": job.plan.uid}},
            "template": spec.get("template") or {},
        },
        status,
    )


def _job_condition(kind: str, reason: str, message: str, at: str) -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True",
        "lastProbeTime": at,
        "lastTransitionTime": at,
        "reason": reason,
        "message": message,
    }


@dataclass
class Progress:
    """When a Deployment last made progress (its available count changed)."""

    available: int = -1
    since: float = 0.0


def deployment_json(
    plan: WorkloadPlan, pods: list[dict[str, Any]], progress: Progress, monotonic: float, now: str
) -> dict[str, Any]:
    replicas = len(pods)
    ready = sum(1 for p in pods if is_ready(p))
    if ready != progress.available:
        progress.available, progress.since = ready, monotonic
    deadline = int(plan.spec.get("progressDeadlineSeconds", 600))
    replica_set = f'ReplicaSet "{plan.name}-{plan.template_hash}"'
    if ready >= replicas:
        progressing = condition(
            "Progressing", True, "NewReplicaSetAvailable", f"{replica_set} has successfully progressed.", now
        )
    elif monotonic - progress.since > deadline:
        progressing = condition(
            "Progressing", False, "ProgressDeadlineExceeded", f"{replica_set} has timed out progressing.", now
        )
    else:
        progressing = condition(
            "Progressing", True, "ReplicaSetUpdated", f"{replica_set} is progressing.", now
        )
    available = (
        condition("Available", True, "MinimumReplicasAvailable", "Deployment has minimum availability.", now)
        if ready >= replicas
        else condition(
            "Available",
            False,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
        )
    )
    status = {
        "observedGeneration": _generation(plan),
        **counts(
            replicas=replicas,
            updatedReplicas=replicas,
            readyReplicas=ready,
            availableReplicas=ready,
            unavailableReplicas=replicas - ready,
        ),
        "conditions": [available, progressing],
    }
    spec = {
        "replicas": replicas,
        "progressDeadlineSeconds": deadline,
        "revisionHistoryLimit": int(plan.spec.get("revisionHistoryLimit", 10)),
        "strategy": plan.spec.get("strategy")
        or {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": plan.spec.get("template") or {},
    }
    return _workload(plan, spec, status)


def statefulset_json(plan: WorkloadPlan, pods: list[dict[str, Any]]) -> dict[str, Any]:
    replicas = len(pods)
    ready = sum(1 for p in pods if is_ready(p))
    revision = f"{plan.name}-{plan.template_hash}"
    status = {
        "observedGeneration": _generation(plan),
        "replicas": replicas,
        **counts(
            readyReplicas=ready, currentReplicas=replicas, updatedReplicas=replicas, availableReplicas=ready
        ),
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    }
    spec = {
        "replicas": replicas,
        "serviceName": plan.spec.get("serviceName", ""),
        "podManagementPolicy": plan.spec.get("podManagementPolicy", "OrderedReady"),
        "updateStrategy": plan.spec.get("updateStrategy")
        or {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
        "template": plan.spec.get("template") or {},
    }
    return _workload(plan, spec, status)


def _generation(plan: WorkloadPlan) -> int:
    return int(plan.metadata.get("generation") or 1)


def _workload(plan: WorkloadPlan, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """The object with the manifest's metadata (labels, annotations) and the selector that
    picks its pods here."""
    metadata = {
        "name": plan.name,
        "namespace": plan.namespace,
        "uid": plan.uid,
        "generation": _generation(plan),
        **({"labels": plan.metadata["labels"]} if plan.metadata.get("labels") else {}),
        **({"annotations": plan.metadata["annotations"]} if plan.metadata.get("annotations") else {}),
    }
    spec.setdefault("selector", {"matchLabels": {LABEL_WORKLOAD: plan.id}})
    return {
        "apiVersion": "batch/v1" if plan.kind == "Job" else "apps/v1",
        "kind": plan.kind,
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }
