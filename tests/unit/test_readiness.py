"""The readiness policy over pod and workload JSON shaped like the Kubernetes API's.

The objects below follow `kubectl get pods -o json` / `kubectl get deployments -o json`
(core/v1 Pod, apps/v1 Deployment), trimmed to the fields the policy reads plus their usual
neighbours; they are hand-written, not recorded.
"""

from __future__ import annotations

from typing import Any

import pytest

from tasks.clock import Clock
from tasks.errors import Code, StagegateError
from tasks.readiness import ImageFacts, ReadinessPolicy, ReadinessWaiter, Snapshot, assess

POLICY = ReadinessPolicy(poll_interval=2, timeout=60, crashloop_restarts=1, unschedulable_grace=10)
BUILT = "example/api-server:sg-0123456789abcdef"
FACTS = ImageFacts(built={"example/api-server": BUILT}, loaded=frozenset({BUILT}))


def deployment(
    name: str = "api-server", replicas: int = 1, ready: int = 0, generation: int = 1
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "example", "generation": generation},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"metadata": {"labels": {"app.kubernetes.io/name": name}}},
        },
        "status": {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            **({"unavailableReplicas": replicas - ready} if ready < replicas else {}),
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if ready == replicas else "False",
                    "reason": "MinimumReplicasAvailable"
                    if ready == replicas
                    else "MinimumReplicasUnavailable",
                },
            ],
        },
    }


def container_status(
    name: str = "api-server",
    image: str = BUILT,
    *,
    waiting: str | None = None,
    message: str = "",
    ready: bool = False,
    restarts: int = 0,
    last: dict[str, Any] | None = None,
    terminated: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if waiting:
        state: dict[str, Any] = {"waiting": {"reason": waiting, **({"message": message} if message else {})}}
    elif terminated:
        state = {"terminated": terminated}
    else:
        state = {"running": {"startedAt": "2026-11-28T20:00:05Z"}}
    return {
        "name": name,
        "image": image,
        "imageID": "" if waiting else "docker.io/library/import-2026-11-28@sha256:" + "1" * 64,
        "ready": ready,
        "started": not waiting,
        "restartCount": restarts,
        "state": state,
        "lastState": {"terminated": last} if last else {},
    }


def pod(
    name: str = "api-server-5d9c7b8f6d-x7k2p",
    app: str = "api-server",
    *,
    containers: list[dict[str, Any]] | None = None,
    init: list[dict[str, Any]] | None = None,
    phase: str = "Running",
    ready: bool = False,
    unschedulable: str | None = None,
) -> dict[str, Any]:
    statuses = containers if containers is not None else [container_status(ready=ready)]
    conditions = [
        {
            "type": "PodScheduled",
            "status": "False" if unschedulable else "True",
            **({"reason": "Unschedulable", "message": unschedulable} if unschedulable else {}),
        },
    ]
    if not unschedulable:
        conditions += [
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": "True" if ready else "False"},
            {"type": "Ready", "status": "True" if ready else "False"},
        ]
    status: dict[str, Any] = {"phase": "Pending" if unschedulable else phase, "conditions": conditions}
    if not unschedulable:
        status["containerStatuses"] = statuses
        if init is not None:
            status["initContainerStatuses"] = init
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "example", "labels": {"app.kubernetes.io/name": app}},
        "spec": {
            "containers": [{"name": s["name"], "image": s["image"]} for s in statuses],
            **({"initContainers": [{"name": s["name"], "image": s["image"]} for s in init]} if init else {}),
        },
        "status": status,
    }


def check(workloads, pods, *, elapsed=0.0, since=None, facts=FACTS):
    return assess(
        Snapshot(workloads, pods), POLICY, elapsed=elapsed, unschedulable_since=since or {}, images=facts
    )


def fatal(workloads, pods, **kwargs) -> StagegateError:
    result = check(workloads, pods, **kwargs)
    assert result.fatal is not None, result
    return result.fatal


# -- ready / not ready -------------------------------------------------------------------------


def test_rolled_out_deployment_with_ready_pod_is_ready() -> None:
    result = check([deployment(ready=1)], [pod(ready=True)])
    assert (result.ready, result.fatal) == (True, None)


def test_running_but_not_ready_pod_is_waited_for_and_named() -> None:
    result = check([deployment(ready=0)], [pod(ready=False)])
    assert not result.ready and result.fatal is None
    assert result.not_ready == [
        "Deployment/api-server: 0/1 ready — api-server-5d9c7b8f6d-x7k2p Running "
        "(containers not ready: api-server)"
    ]


def test_rollout_not_observed_yet_is_not_ready() -> None:
    workload = deployment(ready=1, generation=2)
    workload["status"]["observedGeneration"] = 1
    assert not check([workload], [pod(ready=True)]).ready


def test_pods_of_other_workloads_do_not_count() -> None:
    other = pod(
        name="worker-1", app="worker", containers=[container_status("worker", waiting="ErrImagePull")]
    )
    result = check([deployment(ready=1)], [pod(ready=True), other])
    assert result.ready and result.fatal is None


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing"])
def test_normal_waiting_reasons_are_not_fatal(reason: str) -> None:
    result = check([deployment()], [pod(containers=[container_status(waiting=reason)], phase="Pending")])
    assert result.fatal is None and reason in result.not_ready[0]


# -- fatal reasons -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"]
)
def test_image_pull_reasons_are_fatal_at_once(reason: str) -> None:
    error = fatal(
        [deployment()], [pod(containers=[container_status(waiting=reason, message="Back-off pulling image")])]
    )
    assert error.code == Code.IMAGE_PULL_ERROR
    assert error.subject["reason"] == reason
    assert (error.subject["pod"], error.subject["container"]) == ("api-server-5d9c7b8f6d-x7k2p", "api-server")


def test_pull_error_of_a_built_image_that_was_not_loaded_says_so() -> None:
    facts = ImageFacts(built={"example/api-server": BUILT}, loaded=frozenset())
    error = fatal([deployment()], [pod(containers=[container_status(waiting="ErrImagePull")])], facts=facts)
    assert "built by this run but not loaded onto the cluster's nodes" in error.subject["root_cause"]


def test_pull_error_of_a_wrongly_rewritten_tag_says_so() -> None:
    wrong = "example/api-server:dev"
    error = fatal([deployment()], [pod(containers=[container_status(image=wrong, waiting="ErrImagePull")])])
    assert f"this run built {BUILT}" in error.subject["root_cause"]


def test_pull_error_of_a_loaded_image_points_at_the_pull_policy() -> None:
    error = fatal([deployment()], [pod(containers=[container_status(waiting="ImagePullBackOff")])])
    assert "imagePullPolicy Always" in error.subject["root_cause"]


def test_pull_error_of_an_external_image() -> None:
    error = fatal(
        [deployment()], [pod(containers=[container_status(image="postgres:16", waiting="ErrImagePull")])]
    )
    assert "not an image of this run" in error.subject["root_cause"]


@pytest.mark.parametrize(
    "reason", ["CreateContainerConfigError", "CreateContainerError", "RunContainerError"]
)
def test_container_config_reasons_are_fatal_at_once(reason: str) -> None:
    message = 'secret "db-credentials" not found'
    error = fatal(
        [deployment()], [pod(containers=[container_status(waiting=reason, message=message)], phase="Pending")]
    )
    assert error.code == Code.CONTAINER_CONFIG_ERROR
    assert error.subject["detail"] == message


def test_crashloop_is_fatal_after_the_configured_restarts() -> None:
    crashing = container_status(
        waiting="CrashLoopBackOff", restarts=1, last={"exitCode": 3, "reason": "Error"}
    )
    error = fatal([deployment()], [pod(containers=[crashing])])
    assert error.code == Code.CONTAINER_CRASHLOOP
    assert (error.subject["exit_code"], error.subject["restarts"]) == (3, 1)


def test_crashloop_below_the_restart_threshold_is_waited_for() -> None:
    policy = ReadinessPolicy(crashloop_restarts=3)
    crashing = container_status(
        waiting="CrashLoopBackOff", restarts=2, last={"exitCode": 1, "reason": "Error"}
    )
    result = assess(
        Snapshot([deployment()], [pod(containers=[crashing])]),
        policy,
        elapsed=0,
        unschedulable_since={},
        images=FACTS,
    )
    assert result.fatal is None


def test_oomkilled_is_reported_with_its_reason() -> None:
    killed = container_status(restarts=1, last={"exitCode": 137, "reason": "OOMKilled"})
    error = fatal([deployment()], [pod(containers=[killed])])
    assert (error.code, error.subject["reason"], error.subject["exit_code"]) == (
        Code.CONTAINER_CRASHLOOP,
        "OOMKilled",
        137,
    )
    assert "memory" in error.hint


def test_a_failing_init_container_is_fatal_and_named_as_init() -> None:
    init = [
        container_status(
            "migrate", waiting="CrashLoopBackOff", restarts=2, last={"exitCode": 2, "reason": "Error"}
        )
    ]
    main = [container_status(waiting="PodInitializing")]
    error = fatal([deployment()], [pod(containers=main, init=init, phase="Pending")])
    assert error.code == Code.CONTAINER_CRASHLOOP
    assert (error.subject["container"], error.subject["init_container"]) == ("migrate", True)
    assert "init container 'migrate'" in error.message


# -- unschedulable -----------------------------------------------------------------------------


def test_unschedulable_pod_gets_a_grace_period() -> None:
    message = "0/1 nodes are available: 1 Insufficient cpu."
    pods = [pod(unschedulable=message)]
    within = check([deployment()], pods, elapsed=5, since={"api-server-5d9c7b8f6d-x7k2p": 0})
    assert within.fatal is None and within.unschedulable == ["api-server-5d9c7b8f6d-x7k2p"]
    after = fatal([deployment()], pods, elapsed=10, since={"api-server-5d9c7b8f6d-x7k2p": 0})
    assert after.code == Code.POD_UNSCHEDULABLE and after.subject["detail"] == message


# -- the waiter over time ----------------------------------------------------------------------


class FakeTime:
    """An injected clock whose sleep advances time instead of waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> Clock:
        return Clock(monotonic=lambda: self.now, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.now += seconds


def scripted(timeline: list[tuple[float, Snapshot]], time: FakeTime):
    """A poll function returning the snapshot in force at the fake time."""

    def poll() -> Snapshot:
        return [snap for at, snap in timeline if at <= time.now][-1]

    return poll


def test_waiter_needs_two_ready_polls_in_a_row() -> None:
    time = FakeTime()
    ready = Snapshot([deployment(ready=1)], [pod(ready=True)])
    result = ReadinessWaiter(POLICY, time.clock(), FACTS).wait(scripted([(0, ready)], time))
    assert result == {"ready_after_s": 2.0, "polls": 2}


def test_waiter_reports_a_fatal_state_within_one_poll() -> None:
    time = FakeTime()
    timeline = [
        (0, Snapshot([deployment()], [pod(containers=[container_status(waiting="ContainerCreating")])])),
        (5.0, Snapshot([deployment()], [pod(containers=[container_status(waiting="ErrImagePull")])])),
    ]
    with pytest.raises(StagegateError) as caught:
        ReadinessWaiter(POLICY, time.clock(), FACTS).wait(scripted(timeline, time))
    assert caught.value.code == Code.IMAGE_PULL_ERROR
    assert 5.0 <= caught.value.subject["detected_after_s"] <= 5.0 + POLICY.poll_interval


def test_waiter_honours_the_deadline_for_slow_pods_and_lists_them() -> None:
    time = FakeTime()
    slow = Snapshot([deployment()], [pod(ready=False)])
    with pytest.raises(StagegateError) as caught:
        ReadinessWaiter(POLICY, time.clock(), FACTS).wait(scripted([(0, slow)], time))
    assert caught.value.code == Code.READINESS_TIMEOUT
    assert time.now == POLICY.timeout
    assert caught.value.subject["not_ready"][0].startswith("Deployment/api-server: 0/1 ready")


def test_waiter_forgets_an_unschedulable_pod_that_got_scheduled() -> None:
    time = FakeTime()
    timeline = [
        (0, Snapshot([deployment()], [pod(unschedulable="0/1 nodes are available")])),
        (6, Snapshot([deployment(ready=1)], [pod(ready=True)])),
    ]
    result = ReadinessWaiter(POLICY, time.clock(), FACTS).wait(scripted(timeline, time))
    assert result["ready_after_s"] == 8.0
