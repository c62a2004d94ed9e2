"""The readiness policy over pod and workload JSON shaped like the Kubernetes API's.

The objects below follow `kubectl get pods -o json` / `kubectl get deployments -o json`
(core/v1 Pod, apps/v1 Deployment), trimmed to the fields the policy reads plus their usual
neighbours; they are hand-written, not recorded.
"""

from __future__ import annotations

from typing import Any

import pytest
from stagegate.clock import Clock
from stagegate.errors import Code, StagegateError
from stagegate.readiness import ImageFacts, ReadinessPolicy, ReadinessWaiter, Snapshot, Tracker

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


def check(workloads, pods, *, elapsed=0.0, facts=FACTS, policy=POLICY, config=None, tracker=None):
    """One poll judged by a fresh tracker (or by ``tracker``, to judge polls in order)."""
    tracker = tracker or Tracker(policy, facts)
    return tracker.assess(Snapshot(workloads, pods, config=config), elapsed)


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
        "Deployment/api-server: available 0/1 — api-server-5d9c7b8f6d-x7k2p Running (api-server not ready)"
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


@pytest.mark.parametrize("reason", ["CreateContainerError", "RunContainerError"])
def test_container_create_and_run_errors_are_fatal_at_once(reason: str) -> None:
    message = 'exec: "api-serve": executable file not found in $PATH'
    error = fatal(
        [deployment()], [pod(containers=[container_status(waiting=reason, message=message)], phase="Pending")]
    )
    assert error.code == Code.CONTAINER_CONFIG_ERROR
    assert error.subject["detail"] == message


def with_secret_env(workload_pod: dict[str, Any]) -> dict[str, Any]:
    workload_pod["spec"]["containers"][0]["env"] = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-credentials", "key": "password"}}}
    ]
    return workload_pod


def config_error_pod() -> dict[str, Any]:
    waiting = container_status(
        waiting="CreateContainerConfigError", message='secret "db-credentials" not found'
    )
    return with_secret_env(pod(containers=[waiting], phase="Pending"))


def test_a_config_error_the_deploy_cannot_resolve_is_fatal_at_once_and_names_what_is_missing() -> None:
    error = fatal(
        [deployment()], [config_error_pod()], config={("ConfigMap", "example", "settings"): frozenset()}
    )
    assert error.code == Code.CONTAINER_CONFIG_ERROR
    assert error.subject["missing"] == ["Secret example/db-credentials"]


def test_a_config_error_naming_a_key_the_applied_secret_lacks_is_fatal() -> None:
    error = fatal(
        [deployment()],
        [config_error_pod()],
        config={("Secret", "example", "db-credentials"): frozenset({"user"})},
    )
    assert error.subject["missing"] == ["key 'password' of Secret example/db-credentials"]


def test_a_config_error_whose_references_the_deploy_provides_is_waited_for() -> None:
    result = check(
        [deployment()],
        [config_error_pod()],
        config={("Secret", "example", "db-credentials"): frozenset({"password"})},
    )
    assert result.fatal is None and "CreateContainerConfigError" in result.not_ready[0]


def test_a_config_error_is_waited_for_when_the_provided_config_is_unknown() -> None:
    result = check([deployment()], [config_error_pod()], config=None)
    assert result.fatal is None


def crashing(restarts: int, exit_code: int = 3, reason: str = "Error", name: str = "api-server"):
    return container_status(
        name, waiting="CrashLoopBackOff", restarts=restarts, last={"exitCode": exit_code, "reason": reason}
    )


def test_crashloop_is_fatal_once_its_restart_budget_is_spent() -> None:
    database = deployment("database", ready=0)  # still coming up: the crash may be waiting on it
    error = fatal([deployment(), database], [pod(containers=[crashing(2)])])
    assert error.code == Code.CONTAINER_CRASHLOOP
    assert (error.subject["exit_code"], error.subject["restarts"]) == (3, 2)
    assert "restart budget of 1 is spent" in error.message


def test_crashloop_within_its_budget_while_another_workload_comes_up_is_converging() -> None:
    database = deployment("database", ready=0)
    result = check([deployment(), database], [pod(containers=[crashing(1)])])
    assert result.fatal is None and result.restart == []
    assert "crash-looping (1 restart(s))" in result.not_ready[0]


def test_the_restart_budget_annotation_of_the_workload_overrides_the_policy() -> None:
    database = deployment("database", ready=0)
    generous = deployment()
    generous["metadata"]["annotations"] = {"stagegate.dev/restart-budget": "4"}
    assert check([generous, database], [pod(containers=[crashing(3)])]).fatal is None
    assert fatal([generous, database], [pod(containers=[crashing(5)])]).code == Code.CONTAINER_CRASHLOOP


@pytest.mark.parametrize("exit_code", [126, 127])
def test_a_command_that_cannot_run_is_fatal_at_once_even_while_others_come_up(exit_code: int) -> None:
    database = deployment("database", ready=0)
    error = fatal([deployment(), database], [pod(containers=[crashing(0, exit_code)])])
    assert "cannot run" in error.message and "command" in error.hint


def test_oomkilled_twice_is_fatal_and_once_is_not() -> None:
    tracker = Tracker(ReadinessPolicy(crashloop_restarts=5), FACTS)
    database = deployment("database", ready=0)
    first = check(
        [deployment(), database], [pod(containers=[crashing(1, 137, "OOMKilled")])], tracker=tracker
    )
    assert first.fatal is None
    error = fatal(
        [deployment(), database], [pod(containers=[crashing(2, 137, "OOMKilled")])], tracker=tracker
    )
    assert (error.subject["reason"], error.subject["exit_code"]) == ("OOMKilled", 137)
    assert "memory" in error.hint


def test_a_failing_init_container_is_named_as_init() -> None:
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


# -- convergence: broken or still coming up? ---------------------------------------------------


def database_pod(ready: bool) -> dict[str, Any]:
    return pod(
        "database-0",
        "database",
        containers=[container_status("postgres", "postgres:16", ready=ready)],
        ready=ready,
    )


def race_poll(tracker: Tracker, database_ready: bool, api: dict[str, Any], at: float):
    database = deployment("database", ready=1 if database_ready else 0)
    api_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in api["status"]["conditions"])
    workloads = [deployment(ready=1 if api_ready else 0), database]
    return tracker.assess(Snapshot(workloads, [api, database_pod(database_ready)]), at)


def test_a_crash_once_the_rest_is_ready_asks_for_a_restart_and_a_crash_after_it_is_fatal() -> None:
    tracker = Tracker(ReadinessPolicy(crashloop_restarts=5), FACTS)
    assert race_poll(tracker, False, pod(containers=[crashing(2)]), 0).fatal is None
    settled = race_poll(tracker, True, pod(containers=[crashing(2)]), 2)
    assert settled.fatal is None
    assert settled.restart == [("example", "api-server-5d9c7b8f6d-x7k2p")]
    still = race_poll(tracker, True, pod(containers=[crashing(2)]), 4)  # the same crash, not a new one
    assert still.fatal is None and still.restart == []  # asked once
    error = race_poll(tracker, True, pod(containers=[crashing(3)]), 6).fatal
    assert error is not None and error.code == Code.CONTAINER_CRASHLOOP
    assert "crashed again after everything it could be waiting for was ready" in error.message


def test_a_crash_that_recovers_once_the_rest_is_ready_converges() -> None:
    tracker = Tracker(ReadinessPolicy(crashloop_restarts=5), FACTS)
    for at, restarts in ((0, 1), (2, 2), (4, 3)):
        assert race_poll(tracker, False, pod(containers=[crashing(restarts)]), at).fatal is None
    race_poll(tracker, True, pod(containers=[crashing(3)]), 6)
    recovered = race_poll(tracker, True, pod(ready=True), 8)
    assert (recovered.ready, recovered.fatal) == (True, None)


def test_a_crash_of_a_run_that_began_before_the_rest_was_ready_is_not_yet_fatal() -> None:
    tracker = Tracker(ReadinessPolicy(crashloop_restarts=5), FACTS)
    running = pod(containers=[container_status(restarts=2, last={"exitCode": 1, "reason": "Error"})])
    race_poll(tracker, True, running, 0)  # running when the rest turned ready
    result = race_poll(tracker, True, pod(containers=[crashing(2)]), 2)  # that run crashed
    assert result.fatal is None and result.restart  # restart it and see


def test_a_crash_after_the_rest_turned_unready_again_is_converging_again() -> None:
    tracker = Tracker(ReadinessPolicy(crashloop_restarts=5), FACTS)
    race_poll(tracker, True, pod(containers=[crashing(1)]), 0)
    race_poll(tracker, False, pod(containers=[crashing(1)]), 2)  # the database went away
    assert race_poll(tracker, False, pod(containers=[crashing(2)]), 4).fatal is None


# -- unschedulable -----------------------------------------------------------------------------


def test_unschedulable_pod_gets_a_grace_period() -> None:
    message = "0/1 nodes are available: 1 Insufficient cpu."
    pods = [pod(unschedulable=message)]
    tracker = Tracker(POLICY, FACTS)
    within = check([deployment()], pods, elapsed=0, tracker=tracker)
    assert within.fatal is None and within.unschedulable == ["api-server-5d9c7b8f6d-x7k2p"]
    assert check([deployment()], pods, elapsed=9.5, tracker=tracker).fatal is None
    after = fatal([deployment()], pods, elapsed=10, tracker=tracker)
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
    assert result == {"ready_after_s": 2.0, "polls": 2, "restarted": [], "jobs": {}}


def test_waiter_reports_each_jobs_succeeded_and_failed_attempts_when_ready() -> None:
    time = FakeTime()
    migrate = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "shop", "generation": 1},
        "spec": {"backoffLimit": 3, "template": {"spec": {"containers": [{"name": "m", "image": "x"}]}}},
        "status": {
            "succeeded": 1,
            "failed": 2,
            "conditions": [{"type": "Complete", "status": "True", "reason": "Completed"}],
        },
    }
    ready = Snapshot([deployment(ready=1), migrate], [pod(ready=True)])
    result = ReadinessWaiter(POLICY, time.clock(), FACTS).wait(scripted([(0, ready)], time))
    assert result["jobs"] == {"Job/migrate": {"succeeded": 1, "failed": 2}}


def test_waiter_reports_a_fatal_state_within_one_poll() -> None:
    time = FakeTime()
    timeline = [
        (0, Snapshot([deployment()], [pod(containers=[container_status(waiting="ContainerCreating")])])),
        (5.0, Snapshot([deployment()], [pod(containers=[container_status(waiting="ErrImagePull")])])),
    ]
    with pytest.raises(StagegateError) as caught:
        ReadinessWaiter(POLICY, time.clock(), FACTS).wait(scripted(timeline, time))
    assert caught.value.code == Code.IMAGE_PULL_ERROR
    # polls at 0, 2, 4 saw it creating; the one at 6, the first after 5.0, gives the verdict
    subject = caught.value.subject
    assert (subject["detected_after_s"], subject["polls"], subject["previous_poll_after_s"]) == (6.0, 4, 4.0)


def test_a_fatal_state_on_the_first_poll_has_no_previous_poll() -> None:
    time = FakeTime()
    timeline = [(0, Snapshot([deployment()], [pod(containers=[container_status(waiting="ErrImagePull")])]))]
    with pytest.raises(StagegateError) as caught:
        ReadinessWaiter(POLICY, time.clock(), FACTS).wait(scripted(timeline, time))
    assert (caught.value.subject["detected_after_s"], caught.value.subject["polls"]) == (0.0, 1)
    assert "previous_poll_after_s" not in caught.value.subject


def test_waiter_gives_the_unschedulable_verdict_on_the_first_poll_after_the_grace() -> None:
    time = FakeTime()
    message = "0/1 nodes are available: 1 Insufficient cpu."
    unschedulable = Snapshot([deployment()], [pod(unschedulable=message)])
    with pytest.raises(StagegateError) as caught:
        ReadinessWaiter(POLICY, time.clock(), FACTS).wait(scripted([(0, unschedulable)], time))
    assert caught.value.code == Code.POD_UNSCHEDULABLE
    # seen from the poll at 0; the grace (10 s) is up at the poll at 10, not at 8, nor at 12
    subject = caught.value.subject
    assert (subject["unschedulable_for_s"], subject["detected_after_s"]) == (10.0, 10.0)
    assert (subject["polls"], subject["previous_poll_after_s"]) == (6, 8.0)


def test_waiter_honours_the_deadline_for_slow_pods_and_lists_them() -> None:
    time = FakeTime()
    slow = Snapshot([deployment()], [pod(ready=False)])
    with pytest.raises(StagegateError) as caught:
        ReadinessWaiter(POLICY, time.clock(), FACTS).wait(scripted([(0, slow)], time))
    assert caught.value.code == Code.READINESS_TIMEOUT
    assert time.now == POLICY.timeout
    assert caught.value.subject["not_ready"][0].startswith("Deployment/api-server: available 0/1")


def test_waiter_stops_at_its_deadline_when_the_poll_interval_does_not_divide_it() -> None:
    # 60 s is not a multiple of 7 s: the last sleep is cut to 4 s, the timeout is not overrun
    policy = ReadinessPolicy(poll_interval=7, timeout=60, crashloop_restarts=1, unschedulable_grace=10)
    time = FakeTime()
    slow = Snapshot([deployment()], [pod(ready=False)])
    with pytest.raises(StagegateError) as caught:
        ReadinessWaiter(policy, time.clock(), FACTS).wait(scripted([(0, slow)], time))
    assert caught.value.code == Code.READINESS_TIMEOUT
    assert time.now == 60


def test_waiter_forgets_an_unschedulable_pod_that_got_scheduled() -> None:
    time = FakeTime()
    timeline = [
        (0, Snapshot([deployment()], [pod(unschedulable="0/1 nodes are available")])),
        (6, Snapshot([deployment(ready=1)], [pod(ready=True)])),
    ]
    result = ReadinessWaiter(POLICY, time.clock(), FACTS).wait(scripted(timeline, time))
    assert result["ready_after_s"] == 8.0


def test_waiter_restarts_a_pod_that_crashes_once_the_rest_is_ready_and_reports_it() -> None:
    time = FakeTime()
    crashing_api = Snapshot(
        [deployment(), deployment("database", ready=1)], [pod(containers=[crashing(2)]), database_pod(True)]
    )
    recovered = Snapshot(
        [deployment(ready=1), deployment("database", ready=1)], [pod(ready=True), database_pod(True)]
    )
    asked: list[tuple[str, str]] = []
    seen: list[str] = []

    def restart(namespace: str, name: str) -> bool:
        asked.append((namespace, name))
        return True

    result = ReadinessWaiter(ReadinessPolicy(crashloop_restarts=5), time.clock(), FACTS).wait(
        scripted([(0, crashing_api), (2, recovered)], time), lambda a, t: seen.extend(a.notes), restart
    )
    assert asked == [("example", "api-server-5d9c7b8f6d-x7k2p")]
    assert result["restarted"] == ["api-server-5d9c7b8f6d-x7k2p"]
    assert seen == [
        "restarted pod api-server-5d9c7b8f6d-x7k2p at once (skipping the back-off): everything it may wait on is ready"
    ]


def test_waiter_without_a_restart_hook_keeps_waiting_for_the_kubelet() -> None:
    time = FakeTime()
    crashing_api = Snapshot(
        [deployment(), deployment("database", ready=1)], [pod(containers=[crashing(2)]), database_pod(True)]
    )
    with pytest.raises(StagegateError) as caught:
        ReadinessWaiter(ReadinessPolicy(crashloop_restarts=5, timeout=10), time.clock(), FACTS).wait(
            scripted([(0, crashing_api)], time)
        )
    assert caught.value.code == Code.READINESS_TIMEOUT
    assert "crash" in caught.value.hint
