"""Container states read from pod JSON (stagegate.readiness.podstate): what is detected, and the
errors and progress clauses a person reads about it.

The pods and events below follow `kubectl get pods -o json` and `kubectl get events -o json`
(core/v1 Pod and Event), trimmed to the fields read here; they are hand-written, not recorded.
The event messages are the kubelet's own wording ("Readiness probe failed: ...",
"Liveness probe failed: ...", "Startup probe failed: ...").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from stagegate.errors import Code
from stagegate.readiness import ImageFacts, podstate
from stagegate.readiness.podstate import ContainerIssue

BUILT = "example/api-server:sg-0123456789abcdef"
WID = "Deployment/api-server"


def status(
    name: str = "api",
    *,
    waiting: str | None = None,
    message: str | None = None,
    terminated: dict[str, Any] | None = None,
    last: dict[str, Any] | None = None,
    ready: bool = False,
    restarts: int | None = 0,
    image: str = "docker.io/example/api-server:sg-0123456789abcdef",
) -> dict[str, Any]:
    """A containerStatuses entry; ``image`` is the kubelet's normalised form of the spec's."""
    if waiting:
        state: dict[str, Any] = {"waiting": {"reason": waiting}}
        if message is not None:
            state["waiting"]["message"] = message
    elif terminated is not None:
        state = {"terminated": terminated}
    else:
        state = {"running": {"startedAt": "2026-11-28T20:00:05Z"}}
    entry = {"name": name, "image": image, "ready": ready, "state": state, "lastState": {}}
    if restarts is not None:
        entry["restartCount"] = restarts
    if last is not None:
        entry["lastState"] = {"terminated": last}
    return entry


def pod(
    *containers: dict[str, Any],
    init: list[dict[str, Any]] | None = None,
    spec: dict[str, Any] | None = None,
    name: str = "api-7d9c-x2k",
    namespace: str | None = "example",
    phase: str | None = "Running",
    conditions: list[dict[str, Any]] | None = None,
    policy: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    pod_spec = (
        spec
        if spec is not None
        else {"containers": [{"name": c["name"], "image": BUILT} for c in containers]}
    )
    if policy is not None:
        pod_spec["restartPolicy"] = policy
    pod_status: dict[str, Any] = {"conditions": conditions or [{"type": "Ready", "status": "False"}]}
    if phase is not None:
        pod_status["phase"] = phase
    if containers:
        pod_status["containerStatuses"] = list(containers)
    if init is not None:
        pod_status["initContainerStatuses"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec, "status": pod_status}


def issues(p: dict[str, Any], kind: str = "Deployment", config=None) -> list[ContainerIssue]:
    return podstate.container_issues(p, kind, config)


def unschedulable_condition(message: str | None = "0/1 nodes are available: 1 Insufficient cpu.") -> dict:
    entry = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
    if message is not None:
        entry["message"] = message
    return entry


# -- detection: pull, config, run ----------------------------------------------------------------


@pytest.mark.parametrize(
    "reason",
    ["ErrImagePull", "ImagePullBackOff", "ErrImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"],
)
def test_each_pull_reason_is_a_pull_issue_with_the_kubelets_message(reason: str) -> None:
    [issue] = issues(pod(status(waiting=reason, message="pull access denied", restarts=2)))
    assert issue == ContainerIssue(
        "pull",
        "api-7d9c-x2k",
        "example",
        container="api",
        init=False,
        image=BUILT,  # the spec's reference, not the kubelet's normalised one
        reason=reason,
        message="pull access denied",
        restarts=2,
    )


def test_an_issue_of_a_container_missing_from_the_spec_names_the_image_of_its_status() -> None:
    p = pod(status(waiting="ErrImagePull"), spec={"containers": []})
    [issue] = issues(p)
    assert issue.image == "docker.io/example/api-server:sg-0123456789abcdef"
    assert issue.message == ""  # the kubelet gave none


def test_an_init_containers_issue_is_marked_init_and_named_by_its_spec_image() -> None:
    spec = {
        "initContainers": [{"name": "migrate", "image": "example/migrate:sg-1"}],
        "containers": [{"name": "api", "image": BUILT}],
    }
    p = pod(status(), init=[status("migrate", waiting="ErrImagePull")], spec=spec, phase="Pending")
    [issue] = issues(p)
    assert (issue.container, issue.init, issue.image) == ("migrate", True, "example/migrate:sg-1")


def test_init_containers_are_reported_before_the_app_containers() -> None:
    spec = {
        "initContainers": [{"name": "migrate", "image": "m"}],
        "containers": [{"name": "api", "image": "a"}],
    }
    p = pod(status(waiting="ErrImagePull"), init=[status("migrate", waiting="ErrImagePull")], spec=spec)
    assert [(i.container, i.init) for i in issues(p)] == [("migrate", True), ("api", False)]


def test_a_missing_restart_count_is_zero_restarts() -> None:
    [issue] = issues(pod(status(waiting="ErrImagePull", restarts=None)))
    assert issue.restarts == 0


@pytest.mark.parametrize("reason", ["CreateContainerError", "RunContainerError"])
def test_create_and_run_errors_are_run_issues(reason: str) -> None:
    [issue] = issues(pod(status(waiting=reason, message='exec: "srv": not found')))
    assert (issue.problem, issue.reason, issue.message) == ("run", reason, 'exec: "srv": not found')


@pytest.mark.parametrize("reason", ["ContainerCreating", "PodInitializing"])
def test_normal_waiting_reasons_are_no_issue(reason: str) -> None:
    assert issues(pod(status(waiting=reason))) == []


def test_a_running_container_is_no_issue() -> None:
    assert issues(pod(status(ready=True))) == []


def secret_env_spec() -> dict[str, Any]:
    return {
        "containers": [
            {
                "name": "api",
                "image": BUILT,
                "env": [
                    {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api-secrets", "key": "token"}}},
                    {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "api-secrets", "key": "token"}}},
                ],
                "envFrom": [{"configMapRef": {"name": "api-env"}}],
            }
        ]
    }


def config_pod(namespace: str | None = "example") -> dict[str, Any]:
    return pod(
        status(waiting="CreateContainerConfigError", message='secret "api-secrets" not found'),
        spec=secret_env_spec(),
        namespace=namespace,
        phase="Pending",
    )


def test_a_config_error_names_each_missing_object_once() -> None:
    [issue] = issues(config_pod(), config={})
    assert issue.problem == "config" and issue.reason == "CreateContainerConfigError"
    assert issue.message == 'secret "api-secrets" not found'
    assert issue.missing == ("ConfigMap example/api-env", "Secret example/api-secrets")


def test_a_config_error_names_the_key_a_provided_secret_lacks() -> None:
    config = {
        ("Secret", "example", "api-secrets"): frozenset({"password"}),
        ("ConfigMap", "example", "api-env"): frozenset(),
    }
    [issue] = issues(config_pod(), config=config)
    assert issue.missing == ("key 'token' of Secret example/api-secrets",)


def test_a_config_error_whose_references_are_all_provided_misses_nothing() -> None:
    config = {
        ("Secret", "example", "api-secrets"): frozenset({"token"}),
        ("ConfigMap", "example", "api-env"): frozenset(),  # envFrom needs no key
    }
    [issue] = issues(config_pod(), config=config)
    assert issue.problem == "config" and issue.missing == ()


def test_config_of_another_namespace_does_not_provide_a_pods_reference() -> None:
    config = {
        ("Secret", "other", "api-secrets"): frozenset({"token"}),
        ("ConfigMap", "other", "api-env"): frozenset(),
    }
    [issue] = issues(config_pod(), config=config)
    assert issue.missing == ("ConfigMap example/api-env", "Secret example/api-secrets")


def test_a_pod_without_namespace_looks_its_config_up_in_default() -> None:
    config = {("Secret", "default", "api-secrets"): frozenset({"token"})}
    [issue] = issues(config_pod(namespace=None), config=config)
    assert issue.namespace == "default"
    assert issue.missing == ("ConfigMap default/api-env",)


def test_a_config_error_with_unknown_provided_config_misses_nothing() -> None:
    [issue] = issues(config_pod(), config=None)
    assert issue.problem == "config" and issue.missing == ()


# -- detection: crashes, failures -------------------------------------------------------------


def test_crash_loop_back_off_is_a_crash_with_the_last_runs_reason_and_exit_code() -> None:
    last = {"reason": "OOMKilled", "exitCode": 137}
    [issue] = issues(pod(status(waiting="CrashLoopBackOff", last=last, restarts=4)))
    assert (issue.problem, issue.reason, issue.exit_code, issue.restarts) == ("crash", "OOMKilled", 137, 4)


def test_crash_loop_back_off_without_a_last_run_is_a_crash_of_unknown_exit_code() -> None:
    [issue] = issues(pod(status(waiting="CrashLoopBackOff")))
    assert (issue.problem, issue.reason, issue.exit_code) == ("crash", "CrashLoopBackOff", None)


@pytest.mark.parametrize("policy", [None, "Always", "OnFailure"])
def test_a_container_that_exited_in_failure_and_will_restart_is_a_crash(policy: str | None) -> None:
    [issue] = issues(pod(status(terminated={"exitCode": 3, "reason": "Error"}), policy=policy))
    assert (issue.problem, issue.reason, issue.exit_code) == ("crash", "Error", 3)


def test_a_crash_without_a_reason_is_called_error() -> None:
    [issue] = issues(pod(status(terminated={"exitCode": 2})))
    assert (issue.problem, issue.reason) == ("crash", "Error")


@pytest.mark.parametrize("terminated", [{"exitCode": 0, "reason": "Completed"}, {"reason": "Unknown"}])
def test_a_container_that_exited_0_or_of_unknown_code_is_no_issue(terminated: dict) -> None:
    assert issues(pod(status(terminated=terminated))) == []
    assert issues(pod(status(terminated=terminated), policy="Never")) == []


def test_a_container_that_failed_under_restart_policy_never_is_a_failed_issue() -> None:
    [issue] = issues(
        pod(status(terminated={"exitCode": 137, "reason": "OOMKilled"}), policy="Never", phase="Failed")
    )
    assert (issue.problem, issue.reason, issue.exit_code) == ("failed", "OOMKilled", 137)


def test_a_failure_without_a_reason_is_called_error() -> None:
    [issue] = issues(pod(status(terminated={"exitCode": 1}), policy="Never"))
    assert (issue.problem, issue.reason) == ("failed", "Error")


def test_a_jobs_crashing_and_failed_containers_are_left_to_the_job_rule() -> None:
    crashing = pod(status(waiting="CrashLoopBackOff", last={"exitCode": 1}), policy="OnFailure")
    failed = pod(status(terminated={"exitCode": 1}), policy="Never")
    assert issues(crashing, "Job") == [] and issues(failed, "Job") == []
    assert [i.problem for i in issues(crashing, "Deployment")] == ["crash"]


def test_a_jobs_pull_error_is_still_an_issue() -> None:
    assert [i.problem for i in issues(pod(status(waiting="ErrImagePull")), "Job")] == ["pull"]


# -- detection: unschedulable -----------------------------------------------------------------


def test_an_unschedulable_pod_is_an_issue_with_the_schedulers_message() -> None:
    p = pod(phase="Pending", conditions=[unschedulable_condition()])
    [issue] = issues(p)
    assert issue == ContainerIssue(
        "unschedulable", "api-7d9c-x2k", "example", message="0/1 nodes are available: 1 Insufficient cpu."
    )


def test_an_unschedulable_pod_without_a_message_says_unschedulable() -> None:
    [issue] = issues(pod(phase="Pending", conditions=[unschedulable_condition(None)]))
    assert issue.message == "Unschedulable"


@pytest.mark.parametrize(
    "condition",
    [
        {"type": "PodScheduled", "status": "True"},
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
        {"type": "Ready", "status": "False", "reason": "Unschedulable"},
    ],
)
def test_a_pod_not_reported_unschedulable_by_the_scheduler_is_no_issue(condition: dict) -> None:
    assert issues(pod(phase="Pending", conditions=[condition])) == []


# -- config references ------------------------------------------------------------------------


def test_config_references_lists_what_containers_and_volumes_need_but_not_optional_ones() -> None:
    spec = {
        "initContainers": [{"name": "migrate", "envFrom": [{"secretRef": {"name": "db"}}]}],
        "containers": [
            {
                "name": "api",
                "envFrom": [
                    {"configMapRef": {"name": "api-env"}},
                    {"configMapRef": {"name": "extra", "optional": True}},
                    {"prefix": "X_"},
                ],
                "env": [
                    {"name": "PLAIN", "value": "1"},
                    {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "api-env", "key": "level"}}},
                    {
                        "name": "TOKEN",
                        "valueFrom": {"secretKeyRef": {"name": "tok", "key": "t", "optional": True}},
                    },
                    {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                ],
            }
        ],
        "volumes": [
            {"name": "conf", "configMap": {"name": "api-conf"}},
            {
                "name": "tls",
                "secret": {
                    "secretName": "api-tls",
                    "items": [{"key": "tls.crt", "path": "c"}, {"key": "tls.key", "path": "k"}],
                },
            },
            {"name": "opt", "secret": {"secretName": "maybe", "optional": True}},
            {"name": "tmp", "emptyDir": {}},
        ],
    }
    assert podstate.config_references({"spec": spec}) == [
        ("Secret", "db", None),
        ("ConfigMap", "api-env", None),
        ("ConfigMap", "api-env", "level"),
        ("Secret", "db", "password"),
        ("ConfigMap", "api-conf", None),
        ("Secret", "api-tls", "tls.crt"),
        ("Secret", "api-tls", "tls.key"),
    ]


def test_a_pod_without_containers_or_volumes_needs_no_config() -> None:
    assert podstate.config_references({"spec": {}}) == []


# -- restart budget ---------------------------------------------------------------------------


def annotated(value: str | None) -> dict[str, Any]:
    return {"metadata": {"annotations": {"stagegate.dev/restart-budget": value} if value is not None else {}}}


@pytest.mark.parametrize(
    ("on_pod", "on_workload", "budget"),
    [
        ("5", "2", 5),  # the pod's own annotation first
        (None, "2", 2),
        (" 3 ", None, 3),
        ("many", "2", 2),  # not a number: ignored
        ("-1", None, 1),
        (None, None, 1),
        ("0", "4", 0),
    ],
)
def test_the_restart_budget_comes_from_the_pod_then_the_workload_then_the_policy(
    on_pod: str | None, on_workload: str | None, budget: int
) -> None:
    assert podstate.restart_budget(annotated(on_pod), annotated(on_workload), 1) == budget


# -- probes -----------------------------------------------------------------------------------


def probed_spec() -> dict[str, Any]:
    return {
        "initContainers": [
            {"name": "wait", "image": "busybox", "startupProbe": {"exec": {"command": ["test", "-f", "/ok"]}}}
        ],
        "containers": [
            {
                "name": "api",
                "image": BUILT,
                "readinessProbe": {"httpGet": {"port": 8080, "path": "/healthz"}},
                "livenessProbe": {"tcpSocket": {"port": 8080}},
                "startupProbe": {"grpc": {"port": 9090}},
            },
            {"name": "sidecar", "image": "envoy", "readinessProbe": {"httpGet": {"port": "admin"}}},
        ],
    }


@pytest.mark.parametrize(
    ("container", "kind", "described"),
    [
        ("api", "readinessProbe", "readinessProbe httpGet :8080/healthz"),
        ("api", "livenessProbe", "livenessProbe tcpSocket :8080"),
        ("api", "startupProbe", "startupProbe grpc :9090"),
        ("sidecar", "readinessProbe", "readinessProbe httpGet :admin/"),  # no path: the root
        ("wait", "startupProbe", "startupProbe exec test -f /ok"),
        ("sidecar", "livenessProbe", "livenessProbe"),  # it has none: the kind alone
        ("gone", "readinessProbe", "readinessProbe"),
        ("", "startupProbe", "startupProbe grpc :9090"),  # no container named: the first that has one
    ],
)
def test_a_probe_is_described_from_the_pod_spec(container: str, kind: str, described: str) -> None:
    assert podstate.describe_probe({"spec": probed_spec()}, container, kind) == described


def unhealthy(
    message: str = "Readiness probe failed: HTTP probe failed with statuscode: 503",
    *,
    field_path: str | None = "spec.containers{api}",
    name: str = "api-7d9c-x2k",
    namespace: str | None = "example",
    kind: str | None = "Pod",
    reason: str = "Unhealthy",
    count: int | None = 4,
    last: str | None = "2026-11-28T20:01:00Z",
    **times: str,
) -> dict[str, Any]:
    involved: dict[str, Any] = {"name": name}
    for key, value in (("kind", kind), ("namespace", namespace), ("fieldPath", field_path)):
        if value is not None:
            involved[key] = value
    event: dict[str, Any] = {
        "reason": reason,
        "type": "Warning",
        "message": message,
        "involvedObject": involved,
    }
    if count is not None:
        event["count"] = count
    if last is not None:
        event["lastTimestamp"] = last
    return {**event, **times}


def probed_pod(namespace: str | None = "example") -> dict[str, Any]:
    return pod(status("api"), status("sidecar"), spec=probed_spec(), namespace=namespace)


def test_an_unhealthy_event_is_the_containers_failing_probe() -> None:
    failures = podstate.probe_failures(probed_pod(), [unhealthy()])
    assert failures == {
        "api": podstate.ProbeFailure(
            "readinessProbe httpGet :8080/healthz",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            4,
        )
    }


@pytest.mark.parametrize(
    ("message", "probe"),
    [
        (
            "Liveness probe failed: dial tcp 10.244.0.5:8080: connect: connection refused",
            "livenessProbe tcpSocket :8080",
        ),
        ("Startup probe failed: rpc error: code = Unavailable", "startupProbe grpc :9090"),
        ("Readiness probe errored: rpc error", "readinessProbe httpGet :8080/healthz"),
    ],
)
def test_the_probe_is_the_one_the_kubelets_message_names(message: str, probe: str) -> None:
    [failure] = podstate.probe_failures(probed_pod(), [unhealthy(message)]).values()
    assert failure.probe == probe


def test_an_event_without_a_count_happened_once() -> None:
    assert podstate.probe_failures(probed_pod(), [unhealthy(count=None)])["api"].times == 1


@pytest.mark.parametrize(
    "event",
    [
        unhealthy(reason="BackOff"),
        unhealthy(name="api-7d9c-other"),
        unhealthy(namespace="other"),
        unhealthy(namespace=None),  # the default namespace, not the pod's
        unhealthy(kind="Node"),
    ],
    ids=["other-reason", "other-pod", "other-namespace", "default-namespace", "other-kind"],
)
def test_events_about_something_else_are_no_probe_failure(event: dict[str, Any]) -> None:
    assert podstate.probe_failures(probed_pod(), [event]) == {}


def test_an_event_without_kind_or_namespace_is_about_the_pod_of_that_name_in_default() -> None:
    failures = podstate.probe_failures(probed_pod(namespace=None), [unhealthy(kind=None, namespace=None)])
    assert list(failures) == ["api"]


def test_an_event_without_a_field_path_is_about_the_pod_as_a_whole() -> None:
    failures = podstate.probe_failures(probed_pod(), [unhealthy(field_path=None)])
    assert list(failures) == [""]
    assert failures[""].probe == "readinessProbe httpGet :8080/healthz"


def test_the_latest_event_of_a_container_wins_whatever_the_order() -> None:
    early = unhealthy("Readiness probe failed: early", last="2026-11-28T20:01:00Z", count=2)
    late = unhealthy("Readiness probe failed: late", last="2026-11-28T20:02:00Z", count=7)
    for events in ([early, late], [late, early]):
        failure = podstate.probe_failures(probed_pod(), events)["api"]
        assert (failure.last_error, failure.times) == ("Readiness probe failed: late", 7)


def test_event_time_then_first_timestamp_order_events_without_last_timestamp() -> None:
    by_event_time = unhealthy(
        "Readiness probe failed: new", last=None, eventTime="2026-11-28T20:05:00.000000Z"
    )
    by_first = unhealthy("Readiness probe failed: old", last=None, firstTimestamp="2026-11-28T20:03:00Z")
    for events in ([by_event_time, by_first], [by_first, by_event_time]):
        assert (
            podstate.probe_failures(probed_pod(), events)["api"].last_error == "Readiness probe failed: new"
        )


def test_of_events_with_no_time_the_last_listed_wins() -> None:
    first = unhealthy("Readiness probe failed: first", last=None)
    second = unhealthy("Readiness probe failed: second", last=None)
    assert podstate.probe_failures(probed_pod(), [first, second])["api"].last_error.endswith("second")


def test_each_container_has_its_own_failing_probe() -> None:
    events = [unhealthy(), unhealthy("Readiness probe failed: 500", field_path="spec.containers{sidecar}")]
    failures = podstate.probe_failures(probed_pod(), events)
    assert {c: f.probe for c, f in failures.items()} == {
        "api": "readinessProbe httpGet :8080/healthz",
        "sidecar": "readinessProbe httpGet :admin/",
    }


# -- pod_detail: the progress clause ----------------------------------------------------------


def test_a_ready_pod_has_no_detail() -> None:
    p = pod(status(ready=True), conditions=[{"type": "Ready", "status": "True"}])
    assert podstate.pod_detail(p, [unhealthy()]) == ""


def test_an_unschedulable_pods_detail_is_the_schedulers_message() -> None:
    p = pod(phase="Pending", conditions=[unschedulable_condition()])
    assert (
        podstate.pod_detail(p, [])
        == "api-7d9c-x2k unschedulable: 0/1 nodes are available: 1 Insufficient cpu."
    )


def test_the_detail_names_waiting_reasons_with_their_restarts_and_unready_containers_with_their_probe() -> (
    None
):
    spec = {**probed_spec(), "initContainers": [{"name": "wait", "image": "busybox"}]}
    p = pod(
        status("api"),
        status("sidecar", waiting="CrashLoopBackOff", restarts=3),
        init=[status("wait", terminated={"exitCode": 0})],
        spec=spec,
    )
    detail = podstate.pod_detail(p, [unhealthy()])
    assert detail == (
        "api-7d9c-x2k Running (api not ready: readinessProbe httpGet :8080/healthz failing (4×): "
        "Readiness probe failed: HTTP probe failed with statuscode: 503; sidecar CrashLoopBackOff (3 restart(s)))"
    )


def test_a_waiting_container_without_restarts_has_no_restart_count() -> None:
    p = pod(status(waiting="ContainerCreating"), phase="Pending")
    assert podstate.pod_detail(p, []) == "api-7d9c-x2k Pending (api ContainerCreating)"


def test_an_unready_container_without_a_probe_event_is_just_not_ready() -> None:
    assert podstate.pod_detail(pod(status()), []) == "api-7d9c-x2k Running (api not ready)"


def test_a_pod_wide_probe_event_explains_an_unready_container() -> None:
    detail = podstate.pod_detail(probed_pod(), [unhealthy(field_path=None, count=1)])
    assert "api not ready: readinessProbe httpGet :8080/healthz failing (1×)" in detail
    assert "sidecar not ready: readinessProbe httpGet :8080/healthz failing (1×)" in detail


def test_an_init_container_waits_before_the_app_containers_in_the_detail() -> None:
    p = pod(
        status(waiting="PodInitializing"),
        init=[status("wait", waiting="ErrImagePull", restarts=1)],
        phase="Pending",
    )
    assert (
        podstate.pod_detail(p, [])
        == "api-7d9c-x2k Pending (wait ErrImagePull (1 restart(s)); api PodInitializing)"
    )


def test_a_pod_whose_containers_are_ready_or_ended_names_only_its_phase() -> None:
    p = pod(status(ready=True), status("job", terminated={"exitCode": 0}), phase=None)
    assert podstate.pod_detail(p, []) == "api-7d9c-x2k ?"


# -- unschedulable_for ------------------------------------------------------------------------


WALL = datetime(2026, 11, 28, 20, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("created", "wall", "held", "expected"),
    [
        ("2026-11-28T20:00:00Z", WALL, 90.0, 60.0),  # never longer than the pod has existed
        ("2026-11-28T20:00:00Z", WALL, 30.0, 30.0),
        ("2026-11-28T20:02:00Z", WALL, 30.0, 0.0),  # created "after" the wall clock: skew, not age
        (None, WALL, 90.0, 90.0),
        ("2026-11-28T20:00:00Z", None, 90.0, 90.0),
    ],
)
def test_a_pod_is_unschedulable_for_the_seconds_seen_but_not_longer_than_its_age(
    created: str | None, wall: datetime | None, held: float, expected: float
) -> None:
    p = {"metadata": {"name": "p", **({"creationTimestamp": created} if created else {})}}
    assert podstate.unschedulable_for(p, held, wall) == expected


# -- explanation: the errors in error.json ----------------------------------------------------


def issue(problem: str = "pull", **fields: Any) -> ContainerIssue:
    base: dict[str, Any] = {"container": "api", "image": BUILT, "reason": "ErrImagePull", "message": "denied"}
    return ContainerIssue(problem, "api-7d9c-x2k", "example", **{**base, **fields})  # type: ignore[arg-type]


SUBJECT = {
    "resource": WID,
    "pod": "api-7d9c-x2k",
    "namespace": "example",
    "container": "api",
    "init_container": False,
    "image": BUILT,
}


def test_where_names_the_pod_resource_and_kind_of_container() -> None:
    assert podstate.where(issue(), WID) == "pod api-7d9c-x2k (Deployment/api-server) container 'api'"
    assert (
        podstate.where(issue(init=True), WID)
        == "pod api-7d9c-x2k (Deployment/api-server) init container 'api'"
    )


def test_a_pull_error_of_a_built_image_not_loaded_says_so_with_its_subject() -> None:
    error = podstate.pull_error(issue(), WID, ImageFacts(built={"example/api-server": BUILT}))
    cause = f"{BUILT} was built by this run but not loaded onto the cluster's nodes"
    assert error.code == Code.IMAGE_PULL_ERROR
    assert (
        error.message == f"pod api-7d9c-x2k (Deployment/api-server) container 'api': ErrImagePull — {cause}"
    )
    assert error.hint == "run the cluster stage (it loads the images); did it run for this build?"
    assert error.subject == {**SUBJECT, "reason": "ErrImagePull", "detail": "denied", "root_cause": cause}


def test_a_pull_error_on_the_docker_target_says_the_image_left_the_engine() -> None:
    error = podstate.pull_error(
        issue(), WID, ImageFacts(built={"example/api-server": BUILT}, target="docker")
    )
    assert (
        error.subject["root_cause"] == f"{BUILT} was built by this run but is no longer in the Docker engine"
    )
    assert error.hint == "something removed the image after the build; run `nox -s build` again"


@pytest.mark.parametrize(
    ("image", "facts", "cause", "hint"),
    [
        (
            "redis:7",
            ImageFacts(built={"example/api-server": BUILT}),
            "redis:7 is not an image of this run: the target must pull it from its registry",
            "check that the image exists in its registry and that the cluster can reach it",
        ),
        (
            "example/api-server:latest",
            ImageFacts(built={"example/api-server": BUILT}, loaded=frozenset({BUILT})),
            f"the manifest asks for example/api-server:latest, but this run built {BUILT} (the tag was rewritten wrongly)",
            "reference the configured image by name in the manifests; stagegate rewrites it to the built tag",
        ),
        (
            BUILT,
            ImageFacts(built={"example/api-server": BUILT}, loaded=frozenset({BUILT}), target="docker"),
            f"{BUILT} was built and loaded onto the nodes, yet the kubelet tries to pull it: is its imagePullPolicy Always?",
            "use imagePullPolicy: IfNotPresent for images of this run",
        ),
    ],
    ids=["external", "rewritten-wrongly", "loaded"],
)
def test_a_pull_errors_cause_and_hint_follow_what_the_run_did_with_the_image(
    image: str, facts: ImageFacts, cause: str, hint: str
) -> None:
    error = podstate.pull_error(issue(image=image), WID, facts)
    assert error.subject["root_cause"] == cause and error.message.endswith(f"ErrImagePull — {cause}")
    assert error.hint == hint and error.subject["image"] == image


def test_a_config_error_lists_what_is_missing() -> None:
    missing = ("Secret example/api-secrets", "key 'level' of ConfigMap example/api-env")
    error = podstate.config_error(
        issue("config", reason="CreateContainerConfigError", message="not found", missing=missing), WID
    )
    assert error.code == Code.CONTAINER_CONFIG_ERROR
    assert error.message == (
        "pod api-7d9c-x2k (Deployment/api-server) container 'api': CreateContainerConfigError: needs "
        "Secret example/api-secrets, key 'level' of ConfigMap example/api-env, which the deploy does not provide"
    )
    assert (
        error.hint
        == "add the missing ConfigMap/Secret (or key) to the manifests, or mark the reference optional"
    )
    assert error.subject == {
        **SUBJECT,
        "reason": "CreateContainerConfigError",
        "missing": list(missing),
        "detail": "not found",
    }


def test_a_run_error_quotes_the_kubelets_message() -> None:
    error = podstate.run_error(
        issue("run", reason="RunContainerError", message='exec: "srv": not found'), WID
    )
    assert error.code == Code.CONTAINER_CONFIG_ERROR
    assert error.message == (
        "pod api-7d9c-x2k (Deployment/api-server) container 'api': RunContainerError: exec: \"srv\": not found"
    )
    assert error.hint == (
        "the container cannot be created or started as configured: check its command, image and mounts"
    )
    assert error.subject == {**SUBJECT, "reason": "RunContainerError", "detail": 'exec: "srv": not found'}


def test_a_run_error_without_a_message_ends_with_the_reason() -> None:
    error = podstate.run_error(issue("run", reason="CreateContainerError", message=""), WID)
    assert error.message == "pod api-7d9c-x2k (Deployment/api-server) container 'api': CreateContainerError"


@pytest.mark.parametrize(
    ("reason", "exit_code", "hint"),
    [
        ("OOMKilled", 137, "it runs out of memory: raise its memory limit"),
        (
            "Error",
            127,
            "its command cannot be run (not found or not executable): check command/args and the image",
        ),
        (
            "Error",
            126,
            "its command cannot be run (not found or not executable): check command/args and the image",
        ),
        (
            "StartError",
            128,
            "its command cannot be run (not found or not executable): check command/args and the image",
        ),
        (
            "ContainerCannotRun",
            None,
            "its command cannot be run (not found or not executable): check command/args and the image",
        ),
        ("Error", 1, "read its logs (error.json has the last lines; the diagnostics have the rest)"),
    ],
)
def test_a_crashs_hint_follows_how_it_ended(reason: str, exit_code: int | None, hint: str) -> None:
    crash = issue("crash", reason=reason, exit_code=exit_code, restarts=3)
    assert podstate.crash_error(crash, WID, "why").hint == hint


def test_a_crash_error_says_how_it_ends_how_often_and_why_that_is_fatal() -> None:
    crash = issue("crash", reason="Error", exit_code=3, restarts=2, message="")
    error = podstate.crash_error(crash, WID, "its restart budget of 1 is spent")
    assert error.code == Code.CONTAINER_CRASHLOOP
    assert error.message == (
        "pod api-7d9c-x2k (Deployment/api-server) container 'api' keeps exiting: Error, exit code 3, "
        "2 restart(s) — its restart budget of 1 is spent"
    )
    assert error.subject == {
        **SUBJECT,
        "reason": "Error",
        "exit_code": 3,
        "restarts": 2,
        "why_fatal": "its restart budget of 1 is spent",
    }


def test_a_failed_error_says_the_container_will_not_be_restarted() -> None:
    error = podstate.failed_error(issue("failed", reason="Error", exit_code=1), WID)
    assert error.code == Code.POD_FAILED
    assert error.message == (
        "pod api-7d9c-x2k (Deployment/api-server) container 'api' ended: Error, exit code 1; "
        "restartPolicy Never: it will not be restarted"
    )
    assert error.hint == "read its log (error.json has the last lines)"
    assert error.subject == {**SUBJECT, "reason": "Error", "exit_code": 1}


def test_an_unschedulable_error_gives_the_grace_waited_and_the_schedulers_message() -> None:
    pending = ContainerIssue(
        "unschedulable", "api-7d9c-x2k", "example", message="0/1 nodes: Insufficient cpu."
    )
    error = podstate.unschedulable_error(pending, WID, 30.0)
    assert error.code == Code.POD_UNSCHEDULABLE
    assert error.message == (
        "pod api-7d9c-x2k of Deployment/api-server cannot be scheduled for 30 s: 0/1 nodes: Insufficient cpu."
    )
    assert error.hint == (
        "the cluster lacks what the pod asks for (resources, node selectors, taints): lower its requests or "
        "give the cluster more room"
    )
    assert error.subject == {
        "resource": WID,
        "pod": "api-7d9c-x2k",
        "namespace": "example",
        "reason": "Unschedulable",
        "detail": "0/1 nodes: Insufficient cpu.",
    }
    assert "for 2.5 s:" in podstate.unschedulable_error(pending, WID, 2.5).message


def test_an_issues_key_is_its_namespace_pod_and_container() -> None:
    assert issue().key == ("example", "api-7d9c-x2k", "api")
