"""The docker target's pure pieces: the crash back-off, Go durations, the pod phase, and the
Deployment/StatefulSet/Job status computed from pod JSON (no engine needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from stagegate.manifests import ManifestObject
from stagegate.targets.docker.controllers import JobRun, Progress, deployment_json, job_json, statefulset_json
from stagegate.targets.docker.status import Backoff, go_duration, pod_phase
from stagegate.targets.docker.translate import translate

T0 = datetime(2026, 12, 1, 22, 5, 5, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_back_off_restarts_the_first_exit_at_once_then_doubles_to_its_cap() -> None:
    backoff = Backoff(10, 40)
    waits = []
    exited = at(0)
    for _ in range(5):
        assert not backoff.in_backoff_since("c", exited, exited) or backoff.get("c") > 0
        wait = 0.0
        while backoff.in_backoff_since("c", exited, exited + timedelta(seconds=wait)):
            wait += 1
        waits.append(wait)
        backoff.next("c", exited, exited + timedelta(seconds=wait))
        exited += timedelta(seconds=wait + 1)  # it runs a second, then exits again
    assert waits == [0, 10, 20, 40, 40]


def test_the_back_off_expires_after_twice_its_cap_and_reset_goes_back_to_base() -> None:
    backoff = Backoff(10, 40)
    backoff.next("c", at(0), at(0))
    backoff.next("c", at(1), at(11))
    assert backoff.get("c") == 20
    assert not backoff.in_backoff_since("c", at(11 + 81), at(11 + 82))  # ran > 80 s: a fresh start
    backoff.reset("c", at(100))
    assert backoff.get("c") == 10


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.5, "500ms"), (1, "1s"), (10, "10s"), (80, "1m20s"), (300, "5m0s"), (2.5, "2.5s")]
)
def test_durations_read_as_go_prints_them(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


def running() -> dict:
    return {"state": {"running": {"startedAt": "2026-12-01T22:05:05Z"}}, "lastState": {}}


def terminated(code: int) -> dict:
    return {"state": {"terminated": {"exitCode": code}}, "lastState": {}}


def backing_off(code: int) -> dict:
    return {
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": code}},
    }


WAITING = {"state": {"waiting": {"reason": "ContainerCreating"}}, "lastState": {}}


@pytest.mark.parametrize(
    ("policy", "init", "containers", "phase"),
    [
        ("Always", [], [WAITING], "Pending"),
        ("Always", [], [running()], "Running"),
        ("Always", [], [backing_off(1)], "Running"),  # restarting
        ("Never", [], [terminated(0)], "Succeeded"),
        ("OnFailure", [], [terminated(0), terminated(0)], "Succeeded"),
        ("Never", [], [terminated(0), terminated(2)], "Failed"),
        ("OnFailure", [], [terminated(0), backing_off(2)], "Running"),
        ("Never", [], [running(), terminated(2)], "Running"),
        ("Never", [terminated(1)], [WAITING], "Failed"),
        ("Always", [backing_off(1)], [WAITING], "Pending"),
        ("Always", [terminated(0), running()], [WAITING], "Pending"),
    ],
)
def test_the_pod_phase_is_the_kubelets(policy: str, init: list, containers: list, phase: str) -> None:
    assert pod_phase(policy, init, containers) == phase


def pod_json(ready: bool, phase: str = "Running") -> dict:
    return {"status": {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]}}


def plans(text: str, tmp_path: Path):
    return translate([ManifestObject("k8s.yaml", d) for d in yaml.safe_load_all(text) if d], workdir=tmp_path)


DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: demo, generation: 3, annotations: {note: kept}}
spec:
  replicas: 2
  progressDeadlineSeconds: 30
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: example/api}]}
"""


def test_a_deployment_status_counts_its_pods_and_says_why(tmp_path: Path) -> None:
    plan = plans(DEPLOY, tmp_path)[0].owner
    progress = Progress()
    half = deployment_json(plan, [pod_json(True), pod_json(False)], progress, 0.0, "2026-12-01T22:05:05Z")
    assert half["metadata"]["annotations"] == {"note": "kept"}
    assert half["status"]["observedGeneration"] == half["metadata"]["generation"] == 3
    assert half["spec"]["progressDeadlineSeconds"] == 30
    status = half["status"]
    assert (status["replicas"], status["readyReplicas"], status["unavailableReplicas"]) == (2, 1, 1)
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("Available", "False", "MinimumReplicasUnavailable"),
        ("Progressing", "True", "ReplicaSetUpdated"),
    ]
    late = deployment_json(plan, [pod_json(True), pod_json(False)], progress, 31.0, "2026-12-01T22:05:36Z")
    assert late["status"]["conditions"][1]["reason"] == "ProgressDeadlineExceeded"
    done = deployment_json(plan, [pod_json(True), pod_json(True)], progress, 40.0, "2026-12-01T22:05:45Z")
    assert "unavailableReplicas" not in done["status"]  # zero: left out, as the API does
    assert [(c["type"], c["status"], c["reason"]) for c in done["status"]["conditions"]] == [
        ("Available", "True", "MinimumReplicasAvailable"),
        ("Progressing", "True", "NewReplicaSetAvailable"),
    ]
    default = plans(DEPLOY.replace("  progressDeadlineSeconds: 30\n", ""), tmp_path)[0].owner
    assert (
        deployment_json(default, [], Progress(), 0.0, "2026-12-01T22:05:05Z")["spec"][
            "progressDeadlineSeconds"
        ]
        == 600
    )


def test_a_statefulset_status_has_one_revision(tmp_path: Path) -> None:
    plan = plans(DEPLOY.replace("kind: Deployment", "kind: StatefulSet"), tmp_path)[0].owner
    status = statefulset_json(plan, [pod_json(True), pod_json(False)])["status"]
    assert (status["replicas"], status["readyReplicas"], status["currentReplicas"]) == (2, 1, 2)
    assert status["currentRevision"] == status["updateRevision"] == f"api-{plan.template_hash}"


def test_a_job_status_before_and_after_it_finishes(tmp_path: Path) -> None:
    job_yaml = """
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: demo}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: example/migrate}]
"""
    template = plans(job_yaml, tmp_path)[0]
    job = JobRun(template.owner, template, T0)
    running = job_json(job, [pod_json(False, "Failed"), pod_json(True)], "2026-12-01T22:05:05Z")
    assert running["spec"]["backoffLimit"] == 6 and running["spec"]["completions"] == 1
    assert running["status"]["active"] == 1 and running["status"]["ready"] == 1
    assert "conditions" not in running["status"] and running["status"]["startTime"] == "2026-12-01T22:05:05Z"
    job.failed_at = at(9)
    failed = job_json(job, [pod_json(False, "Failed")] * 7, "2026-12-01T22:05:14Z")["status"]
    assert failed["failed"] == 7 and "active" not in failed
    assert [(c["type"], c["reason"]) for c in failed["conditions"]] == [
        ("FailureTarget", "BackoffLimitExceeded"),
        ("Failed", "BackoffLimitExceeded"),
    ]
