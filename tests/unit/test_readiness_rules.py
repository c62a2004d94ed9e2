"""The per-kind readiness rules (:func:`stagegate.readiness.rules.workload_status`) and pod selection.

The objects below are hand-written after the Kubernetes API types (apps/v1 Deployment,
StatefulSet, DaemonSet, ReplicaSet; batch/v1 Job; core/v1 Pod; a cert-manager Certificate as
the custom resource), shaped as ``kubectl get -o json`` prints them and trimmed to the fields
the rules read plus their usual neighbours. They are not recorded from a cluster. Fields the
API omits when zero (``omitempty``) are left out where the API would leave them out.

Each fixture is a finished, ready object; a test changes one field to show the rule it guards.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from stagegate.errors import Code
from stagegate.readiness.model import ImageFacts, ReadinessPolicy, Snapshot, selects
from stagegate.readiness.rules import workload_status
from stagegate.readiness.waiter import Tracker

NAMESPACE = "shop"
DROP = object()  # a field value that removes the field


def changed(
    obj: dict[str, Any],
    *,
    metadata: dict[str, Any] | None = None,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A copy of ``obj`` with top-level fields of its sections replaced (``DROP`` removes)."""
    new = copy.deepcopy(obj)
    for key, values in (("metadata", metadata), ("spec", spec), ("status", status)):
        section = new.setdefault(key, {})
        for name, value in (values or {}).items():
            if value is DROP:
                section.pop(name, None)
            else:
                section[name] = value
    return new


def condition(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "lastTransitionTime": "2026-11-28T20:01:10Z",
        **({"reason": reason} if reason else {}),
        **({"message": message} if message else {}),
    }


def with_condition(obj: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` whose condition of ``entry``'s type is ``entry`` (added if absent)."""
    new = copy.deepcopy(obj)
    status = new.setdefault("status", {})
    others = [c for c in status.get("conditions") or [] if c.get("type") != entry["type"]]
    status["conditions"] = [*others, entry]
    return new


def pod(
    name: str,
    labels: dict[str, str],
    *,
    ready: bool = True,
    phase: str = "Running",
    namespace: str = NAMESPACE,
    deleting: bool = False,
) -> dict[str, Any]:
    running = phase == "Running"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "creationTimestamp": "2026-11-28T20:00:00Z",
            **(
                {"deletionTimestamp": "2026-11-28T20:02:00Z", "deletionGracePeriodSeconds": 30}
                if deleting
                else {}
            ),
        },
        "spec": {
            "containers": [{"name": "app", "image": "example/app:1.4.2"}],
            "restartPolicy": "Always",
            "nodeName": "kind-worker",
        },
        "status": {
            "phase": phase,
            "conditions": [
                condition("PodScheduled", "True"),
                condition("Initialized", "True"),
                condition("ContainersReady", "True" if ready and running else "False"),
                condition("Ready", "True" if ready and running else "False"),
            ],
            "containerStatuses": [
                {
                    "name": "app",
                    "image": "example/app:1.4.2",
                    "ready": ready and running,
                    "started": running,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": "2026-11-28T20:00:05Z"}}
                    if running
                    else {
                        "terminated": {"exitCode": 0 if phase == "Succeeded" else 1, "reason": "Completed"}
                    },
                }
            ],
        },
    }


# -- fixtures: finished, ready objects -------------------------------------------------------

API_LABELS = {"app.kubernetes.io/name": "api-server"}


def deployment() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api-server", "namespace": NAMESPACE, "generation": 2, "labels": API_LABELS},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": API_LABELS},
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 10,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {"metadata": {"labels": API_LABELS}, "spec": {"containers": [{"name": "app"}]}},
        },
        "status": {
            "observedGeneration": 2,
            "replicas": 3,
            "updatedReplicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
            "conditions": [
                condition("Available", "True", "MinimumReplicasAvailable"),
                condition("Progressing", "True", "NewReplicaSetAvailable"),
            ],
        },
    }


def api_pods(ready: tuple[bool, ...] = (True, True, True)) -> list[dict[str, Any]]:
    return [pod(f"api-server-5d9c7b8f6d-{i}", API_LABELS, ready=r) for i, r in enumerate(ready)]


DB_LABELS = {"app.kubernetes.io/name": "db"}


def statefulset() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": NAMESPACE, "generation": 1},
        "spec": {
            "replicas": 3,
            "serviceName": "db",
            "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": DB_LABELS},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "template": {"metadata": {"labels": DB_LABELS}, "spec": {"containers": [{"name": "db"}]}},
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 3,
            "readyReplicas": 3,
            "availableReplicas": 3,
            "currentReplicas": 3,
            "updatedReplicas": 3,
            "currentRevision": "db-7d8f9c6b5",
            "updateRevision": "db-7d8f9c6b5",
            "collisionCount": 0,
        },
    }


def rolling_statefulset(partition: int, updated: int) -> dict[str, Any]:
    """A StatefulSet mid-rollout to a new revision: ``updated`` pods at it, the rest not."""
    sts = changed(
        statefulset(),
        metadata={"generation": 2},
        spec={"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}},
        status={
            "observedGeneration": 2,
            "currentReplicas": 3 - updated,
            "updatedReplicas": updated,
            "updateRevision": "db-59c6f8d4b7",
        },
    )
    for key in ("currentReplicas", "updatedReplicas"):
        if sts["status"][key] == 0:
            del sts["status"][key]  # omitempty
    return sts


def daemonset() -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "node-agent"}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "node-agent", "namespace": NAMESPACE, "generation": 1},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "agent"}]}},
        },
        "status": {
            "observedGeneration": 1,
            "currentNumberScheduled": 3,
            "desiredNumberScheduled": 3,
            "numberMisscheduled": 0,
            "numberReady": 3,
            "numberAvailable": 3,
            "updatedNumberScheduled": 3,
        },
    }


def replicaset() -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "worker", "pod-template-hash": "6c7d8f9b4"}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "worker-6c7d8f9b4", "namespace": NAMESPACE, "generation": 1},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "worker"}]}},
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "fullyLabeledReplicas": 2,
            "readyReplicas": 2,
            "availableReplicas": 2,
        },
    }


JOB_UID = "3f1c2b7e-9a4d-4c1e-8b2f-6d5e4a3b2c1d"
JOB_LABELS = {
    "batch.kubernetes.io/controller-uid": JOB_UID,
    "batch.kubernetes.io/job-name": "migrate",
    "controller-uid": JOB_UID,
    "job-name": "migrate",
}


def job(restart_policy: str = "Never") -> dict[str, Any]:
    """A Job that completed: one pod succeeded."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": NAMESPACE, "generation": 1, "uid": JOB_UID},
        "spec": {
            "backoffLimit": 2,
            "completionMode": "NonIndexed",
            "completions": 1,
            "parallelism": 1,
            "suspend": False,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": JOB_UID}},
            "template": {
                "metadata": {"labels": JOB_LABELS},
                "spec": {"containers": [{"name": "migrate"}], "restartPolicy": restart_policy},
            },
        },
        "status": {
            "startTime": "2026-11-28T20:00:00Z",
            "completionTime": "2026-11-28T20:00:40Z",
            "succeeded": 1,
            "ready": 0,
            "terminating": 0,
            "uncountedTerminatedPods": {},
            "conditions": [
                condition("SuccessCriteriaMet", "True", "CompletionsReached"),
                condition("Complete", "True", "CompletionsReached"),
            ],
        },
    }


def running_job(**status: Any) -> dict[str, Any]:
    """The Job of :func:`job` while it still runs (no terminal condition yet)."""
    base = {"completionTime": DROP, "succeeded": DROP, "conditions": DROP, "active": 1}
    return changed(job(), status={**base, **status})


def job_pod(index: int, phase: str) -> dict[str, Any]:
    return pod(f"migrate-{index}x7k2p", JOB_LABELS, ready=False, phase=phase)


def bare_pod(phase: str | None = "Running", ready: bool = True) -> dict[str, Any]:
    obj = pod("debug-shell", {"run": "debug-shell"}, ready=ready, phase=phase or "Running")
    if phase is None:
        del obj["status"]
    return obj


def certificate() -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "api-tls", "namespace": NAMESPACE, "generation": 1},
        "spec": {"secretName": "api-tls", "dnsNames": ["api.shop.example"]},
        "status": {
            "conditions": [{**condition("Ready", "True", "Ready"), "observedGeneration": 1}],
            "notAfter": "2027-02-26T20:01:10Z",
        },
    }


def verdict(obj: dict[str, Any], pods: list[dict[str, Any]] | None = None) -> str:
    return workload_status(obj, pods or []).verdict


# -- the fixtures are what they claim -------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "pods"),
    [
        (deployment(), api_pods()),
        (statefulset(), []),
        (daemonset(), []),
        (replicaset(), []),
        (job(), [job_pod(0, "Succeeded")]),
        (bare_pod(), []),
        (certificate(), []),
    ],
    ids=lambda v: v.get("kind", "") if isinstance(v, dict) else "",
)
def test_finished_workload_is_ready(obj: dict[str, Any], pods: list[dict[str, Any]]) -> None:
    assert workload_status(obj, pods).verdict == "ready"


# -- generic rules ----------------------------------------------------------------------------

ALL_KINDS = [deployment(), statefulset(), daemonset(), replicaset(), job(), bare_pod(), certificate()]
KIND_IDS = [o["kind"] for o in ALL_KINDS]


@pytest.mark.parametrize("obj", ALL_KINDS, ids=KIND_IDS)
def test_stalled_true_is_fatal_on_any_kind(obj: dict[str, Any]) -> None:
    stalled = with_condition(obj, condition("Stalled", "True", "QuotaExceeded", "exceeded quota: pods"))
    status = workload_status(stalled, [])
    assert status.verdict == "fatal"
    assert status.error is not None and status.error.code == Code.ROLLOUT_FAILED
    assert "QuotaExceeded" in status.message


@pytest.mark.parametrize("obj", ALL_KINDS, ids=KIND_IDS)
def test_stalled_false_does_not_fail_a_ready_workload(obj: dict[str, Any]) -> None:
    pods = api_pods() if obj["kind"] == "Deployment" else []
    assert verdict(with_condition(obj, condition("Stalled", "False")), pods) == "ready"


@pytest.mark.parametrize("obj", ALL_KINDS, ids=KIND_IDS)
def test_workload_being_deleted_waits(obj: dict[str, Any]) -> None:
    deleting = changed(obj, metadata={"deletionTimestamp": "2026-11-28T20:05:00Z"})
    status = workload_status(deleting, [])
    assert status.verdict == "waiting"
    assert "deleted" in status.message


@pytest.mark.parametrize(
    "obj", [deployment(), statefulset(), daemonset(), replicaset()], ids=lambda o: o["kind"]
)
def test_apps_workload_with_generation_not_observed_waits(obj: dict[str, Any]) -> None:
    behind = changed(obj, metadata={"generation": 3}, status={"observedGeneration": 2})
    status = workload_status(behind, api_pods() if obj["kind"] == "Deployment" else [])
    assert status.verdict == "waiting"
    assert "generation 3 not observed" in status.message


@pytest.mark.parametrize(
    "obj", [deployment(), statefulset(), daemonset(), replicaset()], ids=lambda o: o["kind"]
)
def test_apps_workload_without_observed_generation_waits(obj: dict[str, Any]) -> None:
    fresh = changed(obj, status={"observedGeneration": DROP})
    assert verdict(fresh, api_pods() if obj["kind"] == "Deployment" else []) == "waiting"


def test_custom_resource_with_observed_generation_behind_waits() -> None:
    cert = changed(certificate(), metadata={"generation": 2}, status={"observedGeneration": 1})
    assert verdict(cert) == "waiting"


def test_job_is_not_held_for_an_observed_generation_its_api_does_not_report() -> None:
    # batch/v1 JobStatus has no observedGeneration: only apps kinds must report one.
    assert "observedGeneration" not in job()["status"]
    assert verdict(job(), [job_pod(0, "Succeeded")]) == "ready"


# -- Deployment -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"replicas": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}, "replicas 2/3"),
        ({"updatedReplicas": 2}, "updated 2/3"),
        ({"replicas": 4}, "1 old replica(s)"),
        ({"availableReplicas": 2, "unavailableReplicas": 1}, "available 2/3"),
        ({"readyReplicas": 2, "availableReplicas": DROP}, "2/3"),  # available is taken from ready
    ],
    ids=["replicas-short", "updated-short", "surplus-old-replica", "available-short", "ready-short"],
)
def test_deployment_with_a_count_short_waits(status: dict[str, Any], expected: str) -> None:
    result = workload_status(changed(deployment(), status=status), api_pods())
    assert result.verdict == "waiting"
    assert expected in result.message


def test_deployment_with_available_false_waits() -> None:
    dep = with_condition(deployment(), condition("Available", "False", "MinimumReplicasUnavailable"))
    result = workload_status(dep, api_pods())
    assert (result.verdict, result.message) == ("waiting", "Available=False")


@pytest.mark.parametrize("reason", ["ReplicaSetUpdated", "NewReplicaSetCreated", "FoundNewReplicaSet"])
def test_deployment_whose_progressing_reason_is_not_new_replicaset_available_waits(reason: str) -> None:
    dep = with_condition(deployment(), condition("Progressing", "True", reason))
    result = workload_status(dep, api_pods())
    assert result.verdict == "waiting"
    assert reason in result.message


def test_deployment_without_progressing_condition_waits_when_a_deadline_is_set() -> None:
    dep = changed(
        deployment(), status={"conditions": [condition("Available", "True", "MinimumReplicasAvailable")]}
    )
    assert verdict(dep, api_pods()) == "waiting"


def test_deployment_without_progress_deadline_is_not_held_by_its_progressing_reason() -> None:
    dep = with_condition(
        changed(deployment(), spec={"progressDeadlineSeconds": DROP}),
        condition("Progressing", "True", "ReplicaSetUpdated"),
    )
    assert verdict(dep, api_pods()) == "ready"


def test_deployment_past_its_progress_deadline_is_fatal() -> None:
    dep = with_condition(
        changed(deployment(), status={"availableReplicas": 2, "readyReplicas": 2, "unavailableReplicas": 1}),
        condition(
            "Progressing", "False", "ProgressDeadlineExceeded", 'ReplicaSet "api-server-5d9c" has timed out'
        ),
    )
    result = workload_status(dep, api_pods((True, True, False)))
    assert result.verdict == "fatal"
    assert result.error is not None and result.error.code == Code.ROLLOUT_FAILED
    assert result.error.subject["reason"] == "ProgressDeadlineExceeded"


def test_deployment_with_a_selected_pod_not_ready_waits() -> None:
    result = workload_status(deployment(), api_pods((True, True, False)))
    assert result.verdict == "waiting"
    assert "api-server-5d9c7b8f6d-2" in result.message


def test_deployment_ignores_finished_pods_it_selects() -> None:
    evicted = pod("api-server-5d9c7b8f6d-old", API_LABELS, ready=False, phase="Failed")
    assert verdict(deployment(), [*api_pods(), evicted]) == "ready"


def test_paused_deployment_is_ready_and_says_it_is_not_waited_for() -> None:
    paused = changed(
        deployment(), metadata={"generation": 3}, spec={"paused": True}, status={"updatedReplicas": 1}
    )
    result = workload_status(paused, api_pods())
    assert result.verdict == "ready"
    assert "paused" in result.message and "not waited for" in result.message


def test_unpaused_deployment_with_the_same_status_waits() -> None:
    assert (
        verdict(changed(deployment(), spec={"paused": False}, status={"updatedReplicas": 1}), api_pods())
        == "waiting"
    )


# -- StatefulSet ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"replicas": 2, "readyReplicas": 2, "currentReplicas": 2, "updatedReplicas": 2}, "replicas 2/3"),
        ({"readyReplicas": 2, "availableReplicas": 2}, "ready 2/3"),
        ({"currentReplicas": 2, "updatedReplicas": 2}, "current 2/3"),
        ({"replicas": 4}, "1 extra pod(s)"),
    ],
    ids=["replicas-short", "ready-short", "current-short", "extra-pod"],
)
def test_statefulset_with_a_count_off_waits(status: dict[str, Any], expected: str) -> None:
    result = workload_status(changed(statefulset(), status=status), [])
    assert result.verdict == "waiting"
    assert expected in result.message


def test_statefulset_with_every_pod_updated_but_revisions_apart_waits() -> None:
    sts = rolling_statefulset(partition=0, updated=3)
    result = workload_status(sts, [])
    assert result.verdict == "waiting"
    assert "db-59c6f8d4b7" in result.message


def test_statefulset_mid_rollout_waits() -> None:
    assert verdict(rolling_statefulset(partition=0, updated=1)) == "waiting"


def test_statefulset_with_partition_is_ready_when_the_replicas_above_it_are_updated() -> None:
    result = workload_status(rolling_statefulset(partition=2, updated=1), [])
    assert result.verdict == "ready"


def test_statefulset_with_partition_waits_for_the_replicas_above_it() -> None:
    result = workload_status(rolling_statefulset(partition=1, updated=1), [])
    assert result.verdict == "waiting"
    assert "updated 1/2" in result.message and "partition 1" in result.message


def test_statefulset_with_partition_above_replicas_is_ready_with_none_updated() -> None:
    assert verdict(rolling_statefulset(partition=5, updated=0)) == "ready"


def on_delete_statefulset(updated: int) -> dict[str, Any]:
    sts = rolling_statefulset(partition=0, updated=updated)
    sts["spec"]["updateStrategy"] = {"type": "OnDelete"}
    return sts


def test_statefulset_on_delete_with_pods_at_the_old_revision_waits_and_says_to_delete_them() -> None:
    result = workload_status(on_delete_statefulset(updated=0), [])
    assert result.verdict == "waiting"
    assert "delete the old pods" in result.message


def test_statefulset_on_delete_is_ready_once_every_pod_is_at_the_new_revision() -> None:
    # Under OnDelete the controller never moves currentRevision on: the counts decide.
    sts = on_delete_statefulset(updated=3)
    assert sts["status"]["currentRevision"] != sts["status"]["updateRevision"]
    assert verdict(sts) == "ready"


def test_statefulset_with_a_selected_pod_not_ready_waits() -> None:
    pods = [pod(f"db-{i}", DB_LABELS, ready=i != 1) for i in range(3)]
    result = workload_status(statefulset(), pods)
    assert result.verdict == "waiting"
    assert "db-1" in result.message


# -- DaemonSet --------------------------------------------------------------------------------


def test_daemonset_without_desired_number_scheduled_waits() -> None:
    result = workload_status(changed(daemonset(), status={"desiredNumberScheduled": DROP}), [])
    assert result.verdict == "waiting"
    assert "desiredNumberScheduled" in result.message


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"updatedNumberScheduled": 2}, "updated 2/3"),
        ({"numberAvailable": 2, "numberUnavailable": 1}, "available 2/3"),
        ({"numberAvailable": DROP, "numberUnavailable": 1}, "available 2/3"),
        ({"numberReady": 2, "numberAvailable": DROP, "numberUnavailable": 1}, "available 2/3"),
        ({"numberReady": 2}, "ready 2/3"),
    ],
    ids=[
        "updated-short",
        "available-short",
        "available-from-unavailable",
        "ready-and-available",
        "ready-short",
    ],
)
def test_daemonset_with_a_count_short_waits(status: dict[str, Any], expected: str) -> None:
    result = workload_status(changed(daemonset(), status=status), [])
    assert result.verdict == "waiting"
    assert expected in result.message


def test_daemonset_on_no_nodes_is_ready() -> None:
    none = changed(
        daemonset(),
        status={
            "currentNumberScheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
            "numberAvailable": DROP,
            "updatedNumberScheduled": DROP,
        },
    )
    assert verdict(none) == "ready"


# -- ReplicaSet -------------------------------------------------------------------------------


def test_replicaset_with_replica_failure_waits() -> None:
    failing = with_condition(
        changed(replicaset(), status={"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}),
        condition("ReplicaFailure", "True", "FailedCreate", 'pods "worker-6c7d8f9b4-x" is forbidden'),
    )
    result = workload_status(failing, [])
    assert result.verdict == "waiting"
    assert "FailedCreate" in result.message


def test_replicaset_with_replica_failure_false_is_ready() -> None:
    assert verdict(with_condition(replicaset(), condition("ReplicaFailure", "False"))) == "ready"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"availableReplicas": 1}, "available 1/2"),
        ({"readyReplicas": 1, "availableReplicas": 1}, "available 1/2"),
        ({"replicas": 3}, "1 extra pod(s)"),
    ],
    ids=["available-short", "ready-short", "extra-pod"],
)
def test_replicaset_with_a_count_off_waits(status: dict[str, Any], expected: str) -> None:
    result = workload_status(changed(replicaset(), status=status), [])
    assert result.verdict == "waiting"
    assert expected in result.message


def test_replicaset_with_min_ready_seconds_and_no_available_replicas_waits() -> None:
    rs = changed(replicaset(), spec={"minReadySeconds": 10}, status={"availableReplicas": DROP})
    assert verdict(rs) == "waiting"


# -- Job --------------------------------------------------------------------------------------


def test_job_complete_by_its_success_policy_is_ready_before_all_completions() -> None:
    # batch/v1 successPolicy (Kubernetes 1.31+): an Indexed Job is Complete once its rule
    # is met, with fewer successes than completions; the condition decides, not the count.
    leader_done = changed(
        job(),
        spec={
            "completionMode": "Indexed",
            "completions": 5,
            "parallelism": 5,
            "successPolicy": {"rules": [{"succeededIndexes": "0", "succeededCount": 1}]},
        },
        status={
            "succeeded": 1,
            "completedIndexes": "0",
            "conditions": [
                condition("SuccessCriteriaMet", "True", "SuccessPolicy"),
                condition("Complete", "True", "SuccessPolicy"),
            ],
        },
    )
    assert verdict(leader_done) == "ready"


def test_job_with_failed_condition_is_fatal() -> None:
    failed = changed(
        job(),
        status={
            "succeeded": DROP,
            "completionTime": DROP,
            "failed": 3,
            "conditions": [
                condition("FailureTarget", "True", "BackoffLimitExceeded"),
                condition(
                    "Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
                ),
            ],
        },
    )
    result = workload_status(failed, [job_pod(i, "Failed") for i in range(3)])
    assert result.verdict == "fatal"
    assert result.error is not None and result.error.code == Code.JOB_FAILED
    assert result.error.subject["reason"] == "BackoffLimitExceeded"


def test_job_with_failed_condition_for_its_deadline_is_fatal_within_the_backoff_limit() -> None:
    failed = changed(
        running_job(active=DROP), status={"conditions": [condition("Failed", "True", "DeadlineExceeded")]}
    )
    result = workload_status(failed, [])
    assert result.error is not None and result.error.code == Code.JOB_FAILED
    assert "DeadlineExceeded" in result.message


@pytest.mark.parametrize("failed", [1, 2])
def test_job_with_failures_within_its_backoff_limit_waits(failed: int) -> None:
    result = workload_status(running_job(failed=failed), [job_pod(9, "Running")])
    assert (result.verdict, result.message) == ("waiting", "completed 0/1")


def test_job_without_completions_counts_its_failed_attempts_in_the_message() -> None:
    retrying = changed(running_job(failed=2), spec={"completions": DROP})
    assert workload_status(retrying, []).message == "completed 0/1, 2 failed attempt(s)"


def test_job_with_failures_past_its_backoff_limit_is_fatal_without_the_condition() -> None:
    result = workload_status(running_job(failed=3), [])
    assert result.verdict == "fatal"
    assert result.error is not None and result.error.code == Code.JOB_FAILED


def test_job_counts_its_failed_pods_in_the_snapshot_when_its_status_lags() -> None:
    lagging = running_job(failed=1, active=DROP)
    result = workload_status(lagging, [job_pod(i, "Failed") for i in range(3)])
    assert result.error is not None and result.error.code == Code.JOB_FAILED


def test_job_with_failed_pods_within_its_backoff_limit_waits() -> None:
    lagging = running_job(failed=1)
    assert verdict(lagging, [job_pod(0, "Failed"), job_pod(1, "Failed"), job_pod(2, "Running")]) == "waiting"


def test_job_with_on_failure_restarts_past_its_backoff_limit_is_fatal() -> None:
    running = changed(running_job(), spec={"template": job("OnFailure")["spec"]["template"]})
    crashing = job_pod(0, "Running")
    crashing["status"]["containerStatuses"][0]["restartCount"] = 3
    assert workload_status(running, [crashing]).verdict == "fatal"


def test_complete_job_is_ready_though_its_finished_on_failure_pods_restarted() -> None:
    done = changed(job("OnFailure"), spec={"completions": 3}, status={"succeeded": 3})
    pods = [job_pod(i, "Succeeded") for i in range(3)]
    for finished in pods:
        finished["status"]["containerStatuses"][0]["restartCount"] = 1  # one flaky retry each
    assert workload_status(done, pods).verdict == "ready"


def test_job_without_completions_is_not_done_before_a_pod_succeeded() -> None:
    fresh = changed(
        job(), spec={"completions": DROP, "parallelism": 2}, status={"conditions": DROP, "succeeded": DROP}
    )
    fresh["status"] = {}
    result = workload_status(fresh, [])
    assert result.verdict == "waiting"
    assert "completed 0/1" in result.message


def test_job_without_completions_is_done_once_a_pod_succeeded_and_none_is_active() -> None:
    queue = changed(job(), spec={"completions": DROP, "parallelism": 2}, status={"conditions": DROP})
    assert verdict(queue) == "ready"


def test_job_without_completions_waits_while_a_pod_is_still_active() -> None:
    queue = changed(
        job(), spec={"completions": DROP, "parallelism": 2}, status={"conditions": DROP, "active": 1}
    )
    assert verdict(queue) == "waiting"


@pytest.mark.parametrize(("succeeded", "expected"), [(0, "waiting"), (2, "waiting"), (3, "ready")])
def test_job_with_completions_needs_that_many_successes(succeeded: int, expected: str) -> None:
    batch = changed(
        running_job(succeeded=succeeded or DROP, active=3 - succeeded or DROP),
        spec={"completions": 3, "parallelism": 3},
    )
    assert verdict(batch) == expected


def test_suspended_job_is_ready_and_says_it_is_not_waited_for() -> None:
    suspended = changed(
        running_job(active=DROP, conditions=[condition("Suspended", "True", "JobSuspended")]),
        spec={"suspend": True},
    )
    result = workload_status(suspended, [])
    assert result.verdict == "ready"
    assert "suspended" in result.message


def test_job_being_suspended_waits() -> None:
    assert verdict(changed(running_job(), spec={"suspend": True})) == "waiting"


def test_job_being_resumed_waits() -> None:
    resuming = changed(
        running_job(active=DROP, conditions=[condition("Suspended", "True", "JobSuspended")]),
        spec={"suspend": False},
    )
    result = workload_status(resuming, [])
    assert (result.verdict, result.message) == ("waiting", "resuming")


def test_resumed_job_whose_suspended_condition_is_false_runs_on() -> None:
    resumed = running_job(
        succeeded=1, active=DROP, conditions=[condition("Suspended", "False", "JobResumed")]
    )
    assert verdict(resumed) == "ready"


# -- Pod --------------------------------------------------------------------------------------


def test_pod_succeeded_is_ready() -> None:
    assert verdict(bare_pod("Succeeded", ready=False)) == "ready"


def test_pod_failed_is_fatal() -> None:
    result = workload_status(bare_pod("Failed", ready=False), [])
    assert result.verdict == "fatal"
    assert result.error is not None and result.error.code == Code.POD_FAILED
    assert "exit code 1" in result.message


def test_a_failed_pods_error_names_the_pod_its_exits_and_the_reason() -> None:
    evicted = changed(bare_pod("Failed", ready=False), status={"reason": "Evicted"})
    error = workload_status(evicted, []).error
    assert error is not None
    assert error.message == "Pod/debug-shell: phase Failed (app exit code 1)"
    assert error.subject == {
        "resource": "Pod/debug-shell",
        "namespace": NAMESPACE,
        "reason": "Evicted",
        "pod": "debug-shell",
    }
    assert "read its log" in error.hint


def test_a_failed_pod_without_a_terminated_container_says_failed_only() -> None:
    failed = changed(bare_pod("Failed", ready=False), status={"containerStatuses": []})
    error = workload_status(failed, []).error
    assert error is not None
    assert error.message == "Pod/debug-shell: phase Failed"
    assert error.subject["reason"] == "Failed"


def test_pod_running_and_ready_is_ready() -> None:
    assert verdict(bare_pod("Running", ready=True)) == "ready"


@pytest.mark.parametrize("phase", ["Running", "Pending"])
def test_pod_not_ready_waits(phase: str) -> None:
    result = workload_status(bare_pod(phase, ready=False), [])
    assert result.verdict == "waiting"
    assert phase in result.message


def test_pod_without_status_waits() -> None:
    result = workload_status(bare_pod(None), [])
    assert result.verdict == "waiting"
    assert "kubelet" in result.message


# -- custom resources -------------------------------------------------------------------------


def test_custom_resource_with_ready_false_waits_and_gives_the_reason() -> None:
    cert = with_condition(certificate(), condition("Ready", "False", "DoesNotExist", "Issuing certificate"))
    result = workload_status(cert, [])
    assert result.verdict == "waiting"
    assert "DoesNotExist" in result.message


def test_custom_resource_with_ready_unknown_waits() -> None:
    assert verdict(with_condition(certificate(), condition("Ready", "Unknown"))) == "waiting"


def test_custom_resource_without_ready_condition_is_ready() -> None:
    assert verdict(changed(certificate(), status={"conditions": []})) == "ready"


# -- pod selection ----------------------------------------------------------------------------


def test_selects_a_pod_whose_labels_match_in_the_same_namespace() -> None:
    assert selects(deployment(), pod("a", {**API_LABELS, "pod-template-hash": "5d9c7b8f6d"}))


def test_selects_no_pod_of_another_namespace() -> None:
    assert not selects(deployment(), pod("a", API_LABELS, namespace="staging"))


def test_selects_no_pod_whose_label_value_differs() -> None:
    assert not selects(deployment(), pod("a", {"app.kubernetes.io/name": "api-worker"}))


def test_selects_requires_every_match_label() -> None:
    dep = changed(deployment(), spec={"selector": {"matchLabels": {**API_LABELS, "tier": "web"}}})
    assert not selects(dep, pod("a", API_LABELS))
    assert selects(dep, pod("a", {**API_LABELS, "tier": "web"}))


@pytest.mark.parametrize(
    ("requirement", "labels", "expected"),
    [
        ({"key": "tier", "operator": "In", "values": ["web", "api"]}, {"tier": "api"}, True),
        ({"key": "tier", "operator": "In", "values": ["web", "api"]}, {"tier": "batch"}, False),
        ({"key": "tier", "operator": "In", "values": ["web"]}, {}, False),
        ({"key": "tier", "operator": "NotIn", "values": ["batch"]}, {"tier": "web"}, True),
        ({"key": "tier", "operator": "NotIn", "values": ["batch"]}, {"tier": "batch"}, False),
        ({"key": "tier", "operator": "NotIn", "values": ["batch"]}, {}, True),
        ({"key": "tier", "operator": "Exists"}, {"tier": "anything"}, True),
        ({"key": "tier", "operator": "Exists"}, {}, False),
        ({"key": "canary", "operator": "DoesNotExist"}, {}, True),
        ({"key": "canary", "operator": "DoesNotExist"}, {"canary": "true"}, False),
    ],
)
def test_selects_by_match_expressions(
    requirement: dict[str, Any], labels: dict[str, str], expected: bool
) -> None:
    dep = changed(
        deployment(), spec={"selector": {"matchLabels": API_LABELS, "matchExpressions": [requirement]}}
    )
    assert selects(dep, pod("a", {**API_LABELS, **labels})) is expected


def test_selects_by_match_expressions_alone() -> None:
    dep = changed(
        deployment(),
        spec={
            "selector": {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/name", "operator": "In", "values": ["api-server"]}
                ]
            }
        },
    )
    assert selects(dep, pod("a", API_LABELS))
    assert not selects(dep, pod("b", {"app.kubernetes.io/name": "db"}))


def test_job_without_selector_selects_its_pods_by_job_name() -> None:
    bare = changed(job(), spec={"selector": DROP})
    assert selects(bare, pod("migrate-abc12", {"job-name": "migrate"}))
    assert not selects(bare, pod("seed-abc12", {"job-name": "seed"}))


def test_pod_workload_selects_only_itself() -> None:
    assert selects(bare_pod(), bare_pod())
    assert not selects(bare_pod(), pod("debug-shell-2", {"run": "debug-shell"}))


# -- terminating pods (the Tracker drops them before the rules) -------------------------------


def assess(workloads: list[dict[str, Any]], pods: list[dict[str, Any]]):
    return Tracker(ReadinessPolicy(), ImageFacts(built={})).assess(Snapshot(workloads, pods), 0.0)


def test_terminating_old_pod_does_not_hold_a_rolled_out_deployment() -> None:
    old = pod("api-server-7f6e5d4c3b-old", API_LABELS, ready=False, deleting=True)
    result = assess([deployment()], [*api_pods(), old])
    assert (result.ready, result.fatal) == (True, None)


def test_the_same_old_pod_not_terminating_holds_the_deployment() -> None:
    old = pod("api-server-7f6e5d4c3b-old", API_LABELS, ready=False)
    result = assess([deployment()], [*api_pods(), old])
    assert not result.ready
    assert "api-server-7f6e5d4c3b-old" in result.not_ready[0]


def test_a_failed_job_names_its_last_failed_pod_so_that_its_log_can_be_shown() -> None:
    pods = [job_pod(0, "Failed"), job_pod(1, "Failed"), job_pod(2, "Failed")]
    for index, finished in enumerate(pods):
        finished["status"]["containerStatuses"][0]["state"] = {
            "terminated": {"exitCode": 2, "reason": "Error", "finishedAt": f"2026-11-28T20:0{index}:00Z"}
        }
    failed = changed(running_job(failed=3, active=0), status={})
    status = workload_status(failed, [pods[2], pods[0], pods[1]])
    assert status.verdict == "fatal" and status.error is not None
    assert (status.error.subject["pod"], status.error.subject["container"]) == ("migrate-2x7k2p", "app")
