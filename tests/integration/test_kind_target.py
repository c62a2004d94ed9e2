"""The kind target through the real stages, against the fake kind and kubectl of
tests/fakes (no cluster can run here). Each scenario scripts the pods over time; the tests
assert the error code, its subject, how fast the failure was seen, and the diagnostics."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, Repo, signallable
from tests.integration.conftest import Fake, image_table, pipeline, run

pytestmark = pytest.mark.docker

POLL = 0.3

MANIFEST = """\
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: demo
spec:
  replicas: 1
  selector:
    matchLabels: {{app: api}}
  template:
    metadata:
      labels: {{app: api}}
    spec:
      initContainers:
        - name: migrate
          image: {image}
          imagePullPolicy: IfNotPresent
      containers:
        - name: api
          image: {image}
          imagePullPolicy: IfNotPresent
---
apiVersion: v1
kind: Service
metadata:
  name: {service}
  namespace: demo
spec:
  selector: {{app: api}}
  ports:
    - port: 8080
"""


def stack(
    repo: Repo,
    ns: str,
    busybox_image: str,
    *,
    cluster: str,
    e2e: str = "",
    timeout: float = 20,
    service: str = "api",
    cluster_extra: str = "",
) -> None:
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nCOPY . /app\n")
    repo.write("app/version.txt", ns)
    repo.write("k8s/app.yaml", MANIFEST.format(image=f"{ns}/app", service=service))
    repo.config(
        'target = "kind"\n'
        + image_table(ns, ("app", "app"))
        + f'[tool.stagegate.cluster]\nname = "{cluster}"\n{cluster_extra}'
        + f'[tool.stagegate.deploy]\nmanifests = "k8s"\npoll_interval = {POLL}\ntimeout = {timeout}\n'
        + "unschedulable_grace = 1.5\n"
        + (f"[tool.stagegate.e2e]\ncommand = {e2e}\n" if e2e else "")
    )


def chain(repo: Repo, docker, reporter, *stages: str, argv: tuple[str, ...] = ()) -> int:
    code = pipeline(repo, *argv, docker=docker, reporter=reporter)
    for stage in ("verify", *stages):
        if code:
            return code
        code = run(repo, stage, *argv, docker=docker, reporter=reporter)
    return code


def deploy_scenario(fake: Fake, timeline: list[dict], **extra) -> None:
    fake.scenario(workloads={"Deployment/api": timeline}, **extra)


def test_healthy_rollout_creates_the_cluster_loads_the_image_and_passes(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    deploy_scenario(
        fake,
        [
            {"at": 0, "phase": "Pending", "waiting": "ContainerCreating"},
            {"at": 0.6, "phase": "Running", "ready": True},
        ],
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0, reporter.console.file.getvalue()
    record = repo.run_record()
    cluster = record["stages"]["cluster"]["outputs"]
    assert (cluster["target"], cluster["cluster"]["action"], cluster["cluster"]["created_by_stagegate"]) == (
        "kind",
        "created",
        True,
    )
    assert cluster["load"]["images"][f"{ns}/app"]["loaded_to"] == [f"{cluster_name}-control-plane"]
    assert record["target"] == "kind"
    assert record["stages"]["deploy"]["outputs"]["readiness"]["ready_after_s"] >= 0.6
    kubeconfig = repo.artifacts / "kubeconfig"
    assert f"kind-{cluster_name}" in kubeconfig.read_text()
    applied = (repo.artifacts / "applied.yaml").read_text()
    assert record["stages"]["build"]["outputs"]["images"][f"{ns}/app"]["ref"] in applied


def test_a_reused_cluster_gets_no_second_load_of_an_image_it_has(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    deploy_scenario(fake, [{"at": 0, "phase": "Running", "ready": True}])
    assert chain(repo, docker, reporter, "cluster") == 0
    assert chain(repo, docker, reporter, "cluster") == 0
    cluster = repo.run_record()["stages"]["cluster"]["outputs"]
    assert cluster["cluster"]["action"] == "reused"
    assert cluster["load"]["images"][f"{ns}/app"] == {
        "ref": cluster["load"]["images"][f"{ns}/app"]["ref"],
        "loaded_to": [],
        "already_on": [f"{cluster_name}-control-plane"],
        "summary": "already on every node",
    }
    shown = reporter.console.file.getvalue()
    assert f"cluster {cluster_name}: reused" in shown
    assert f"✓ {ns}/app: already on every node" in shown  # kind's words stay kind's
    assert len(fake.calls("kind", "load")) == 1
    assert len(fake.calls("kind", "create")) == 1


def test_kind_load_failing_once_is_retried(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    ref = repo.run_record()["stages"]["build"]["outputs"]["images"][f"{ns}/app"]["ref"]
    fake.scenario(load_failures={ref: 1})
    assert run(repo, "verify", docker=docker, reporter=reporter) == 0
    assert run(repo, "cluster", docker=docker, reporter=reporter) == 0
    assert len(fake.calls("kind", "load")) == 2


def assert_fast(error: dict, fake: Fake, fatal_at: float) -> None:
    """The verdict came on the first poll that saw the fatal state (scripted from ``fatal_at``):
    not before it (that poll saw it), not a poll later (the poll before had not seen it). Told by
    what each poll of the fake was served, so it holds however slowly a loaded machine polls."""
    pod = error["subject"]["pod"]
    seen = [poll.get(pod) for poll in fake.polls_seen(error["subject"]["polls"])]
    assert seen[-1] is not None and seen[-1] >= fatal_at, (seen, error)
    assert all(at is None or at < fatal_at for at in seen[:-1]), (seen, error)


def assert_diagnostics(repo: Repo, error: dict) -> Path:
    diagnostics = repo.root / error["subject"]["diagnostics"]
    for name in ("pods.json", "workloads.json", "events.json", "describe-pods.txt"):
        assert (diagnostics / "demo" / name).stat().st_size > 0, name
    assert (diagnostics / "kind").is_dir()
    return diagnostics


def test_err_image_pull_then_backoff_fails_within_a_poll(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    deploy_scenario(
        fake,
        [
            {"at": 0, "phase": "Pending", "waiting": "ContainerCreating"},
            {"at": 1.0, "phase": "Pending", "waiting": "ErrImagePull", "message": "pull access denied"},
            {"at": 2.0, "phase": "Pending", "waiting": "ImagePullBackOff"},
        ],
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("deploy", "IMAGE_PULL_ERROR")
    assert error["subject"]["reason"] in ("ErrImagePull", "ImagePullBackOff")
    assert error["subject"]["pod"].startswith("api-")
    # loaded, yet pulled: the explanation names the likely cause rather than only the reason
    assert "imagePullPolicy" in error["subject"]["root_cause"]
    assert_fast(error, fake, 1.0)
    # not the deadline: IMAGE_PULL_ERROR (asserted above) is the fatal verdict, READINESS_TIMEOUT
    # the deadline's; assert_fast says it came on the first poll that saw the pull fail
    assert_diagnostics(repo, error)


def test_crashloop_with_rising_restarts(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    deploy_scenario(
        fake,
        [
            {"at": 0, "phase": "Running", "ready": False},
            {
                "at": 0.8,
                "phase": "Running",
                "waiting": "CrashLoopBackOff",
                "restarts": 1,
                "last_exit_code": 3,
                "container": "api",
            },
            {
                "at": 2.0,
                "phase": "Running",
                "waiting": "CrashLoopBackOff",
                "restarts": 2,
                "last_exit_code": 3,
                "container": "api",
            },
        ],
        logs={"api:previous": "Traceback (most recent call last):\nValueError: boom"},
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "CONTAINER_CRASHLOOP"
    assert (error["subject"]["container"], error["subject"]["exit_code"]) == ("api", 3)
    assert_fast(error, fake, 0.8)
    diagnostics = assert_diagnostics(repo, error)
    previous = list((diagnostics / "demo" / "logs").rglob("api.previous.log"))
    assert previous and "ValueError: boom" in previous[0].read_text()


def test_missing_secret_is_container_config_error(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    needs_secret = (
        "          imagePullPolicy: IfNotPresent\n"
        "          env:\n"
        "            - name: DB_PASSWORD\n"
        "              valueFrom: {secretKeyRef: {name: db-credentials, key: password}}\n"
    )
    manifest = repo.root / "k8s" / "app.yaml"
    text = manifest.read_text()
    at = text.rindex("          imagePullPolicy: IfNotPresent\n")  # the api container's
    manifest.write_text(
        text[:at] + needs_secret + text[at + len("          imagePullPolicy: IfNotPresent\n") :]
    )
    deploy_scenario(
        fake,
        [
            {
                "at": 0,
                "phase": "Pending",
                "waiting": "CreateContainerConfigError",
                "message": 'secret "db-credentials" not found',
            }
        ],
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "CONTAINER_CONFIG_ERROR"
    assert error["subject"]["missing"] == ["Secret demo/db-credentials"]
    assert error["subject"]["detail"] == 'secret "db-credentials" not found'
    assert_fast(error, fake, 0)


def test_failing_init_container(repo, docker, busybox_image, reporter, ns, fake, cluster_name) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    deploy_scenario(
        fake,
        [
            {
                "at": 0,
                "phase": "Pending",
                "init": {"waiting": "CrashLoopBackOff", "restarts": 1, "last_exit_code": 2},
            },
        ],
        # nothing else it could wait for: stagegate deletes the pod at once (its cluster), and
        # the pod its controller starts instead crashes the same way
        replacements={
            "Deployment/api": [
                {"at": 0, "phase": "Pending", "init": {"restarts": 0}},  # migrate running
                {
                    "at": 0.3,
                    "phase": "Pending",
                    "init": {"waiting": "CrashLoopBackOff", "restarts": 1, "last_exit_code": 2},
                },
            ]
        },
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "CONTAINER_CRASHLOOP"
    assert (error["subject"]["container"], error["subject"]["init_container"]) == ("migrate", True)
    assert (error["subject"]["restarts"], error["subject"]["exit_code"]) == (1, 2)
    assert "crashed again" in error["message"]
    assert len(fake.calls("kubectl", "delete", "pod")) == 1


def test_unschedulable_that_resolves_within_the_grace_period_passes(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    deploy_scenario(
        fake,
        [
            {
                "at": 0,
                "phase": "Pending",
                "scheduled": False,
                "message": "0/1 nodes are available: 1 Insufficient cpu.",
            },
            {"at": 0.8, "phase": "Running", "ready": True},
        ],
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0


def test_unschedulable_forever_fails_after_the_grace_period(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    deploy_scenario(
        fake,
        [
            {
                "at": 0,
                "phase": "Pending",
                "scheduled": False,
                "message": "0/1 nodes are available: 1 Insufficient cpu.",
            }
        ],
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "POD_UNSCHEDULABLE"
    assert "Insufficient cpu" in error["subject"]["detail"]
    # on the first poll after the 1.5 s grace: it had been unschedulable that long (not early), and
    # not yet at the poll before (not a poll late), on the waiter's own clock
    subject = error["subject"]
    held, since_previous = (
        subject["unschedulable_for_s"],
        subject["detected_after_s"] - subject["previous_poll_after_s"],
    )
    assert held >= 1.5, error
    assert held - since_previous < 1.5, error


def test_a_slow_healthy_rollout_is_waited_for(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    deploy_scenario(
        fake, [{"at": 0, "phase": "Running", "ready": False}, {"at": 2.5, "phase": "Running", "ready": True}]
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0
    assert repo.run_record()["stages"]["deploy"]["outputs"]["readiness"]["ready_after_s"] >= 2.5


def test_the_deadline_is_honoured_and_names_what_is_not_ready(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name, timeout=2)
    deploy_scenario(fake, [{"at": 0, "phase": "Running", "ready": False}])
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "READINESS_TIMEOUT"
    assert error["subject"]["not_ready"][0].startswith("Deployment/api: available 0/1")
    # the configured 2 s, not the default 300 s (a margin no loaded machine needs to use up)
    assert 2 <= repo.run_record()["stages"]["deploy"]["duration_s"] < 60


def test_cluster_create_failure(repo, docker, busybox_image, reporter, ns, fake, cluster_name) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    fake.scenario(
        create_cluster_error='could not find a log line that matches "Reached target .*Multi-User System.*"'
    )
    assert chain(repo, docker, reporter, "cluster") == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("cluster", "CLUSTER_CREATE_FAILED")
    assert "Multi-User System" in error["message"]


def test_apply_failure_keeps_kubectls_message(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    fake.scenario(apply_error='error validating "applied.yaml": unknown field "replica"')
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "APPLY_FAILED"
    assert 'unknown field "replica"' in error["message"]


def test_kind_missing_is_tool_missing(
    repo, docker, busybox_image, reporter, ns, tmp_path, monkeypatch
) -> None:
    stack(repo, ns, busybox_image, cluster="nowhere")
    assert chain(repo, docker, reporter) == 0  # up to verify, with the machine's PATH
    only_docker = tmp_path / "bin"
    only_docker.mkdir()
    (only_docker / "docker").symlink_to(
        subprocess.run(["which", "docker"], capture_output=True, text=True).stdout.strip()
    )
    monkeypatch.setenv("PATH", str(only_docker))
    assert run(repo, "cluster", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"], error["subject"]["tool"]) == ("cluster", "TOOL_MISSING", "kind")
    assert "kind.sigs.k8s.io" in error["hint"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def local_api(tmp_path: Path):
    """The example API and worker, run on this machine: the backend the fake port-forward reaches."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'example/base'}:{ROOT / 'example/api'}:{ROOT / 'example/worker'}",
    }
    api = signallable([sys.executable, "-m", "api", "--host", "127.0.0.1", "--port", str(port)], env=env)
    worker = signallable(
        [sys.executable, "-m", "worker", "--api-url", f"http://127.0.0.1:{port}", "--ready-file", ""], env=env
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    for process in (worker, api):
        process.terminate()
        process.wait(5)


def test_e2e_reaches_the_service_through_port_forward_and_deletes_the_cluster_after(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name, local_api
) -> None:
    suite = (
        f'["{sys.executable}", "-m", "pytest", "{ROOT / "example" / "e2e"}", "-q", "-p", "no:cacheprovider"]'
    )
    stack(repo, ns, busybox_image, cluster=cluster_name, e2e=suite, service="api-server")
    fake.scenario(port_forward={"service/api-server": local_api})
    assert chain(repo, docker, reporter, "cluster", "deploy", "e2e") == 0, reporter.console.file.getvalue()
    outputs = repo.run_record()["stages"]["e2e"]["outputs"]
    assert outputs["tests"]["exit_code"] == 0
    assert (repo.artifacts / "e2e-junit.xml").exists()
    assert outputs["teardown"]["deleted"] == "cluster"
    assert fake.calls("kind", "delete", "cluster")
    forwards = fake.calls("kubectl", "port-forward")
    assert forwards and all("service/api-server" in argv for argv in forwards)
    assert "passed" in (repo.artifacts / "logs" / "e2e" / "tests.log").read_text()


def test_failing_e2e_names_the_tests_and_keeps_the_cluster(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    repo.write("e2e/test_smoke.py", "def test_fine():\n    pass\n\ndef test_broken():\n    assert 1 == 2\n")
    suite = f'["{sys.executable}", "-m", "pytest", "e2e", "-q", "-p", "no:cacheprovider"]'
    stack(repo, ns, busybox_image, cluster=cluster_name, e2e=suite)
    fake.scenario()
    assert chain(repo, docker, reporter, "cluster", "deploy", "e2e") == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("e2e", "E2E_FAILED")
    assert [name.split("::")[-1] for name in error["subject"]["failed_tests"]] == ["test_broken"]
    assert "test_broken" in error["message"]
    assert_diagnostics(repo, error)
    assert not fake.calls("kind", "delete")  # kept for debugging


def test_losing_the_api_server_while_waiting_is_cluster_unreachable(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    from stagegate.clock import Clock
    from stagegate.errors import Code, StagegateError
    from stagegate.manifests import render
    from stagegate.readiness import ImageFacts, ReadinessPolicy, Watch
    from stagegate.targets.kind import KindTarget

    stack(repo, ns, busybox_image, cluster=cluster_name)
    fake.scenario()
    assert chain(repo, docker, reporter, "cluster") == 0
    target = KindTarget(cluster=cluster_name, artifacts=repo.artifacts, docker=docker, clock=Clock())
    objects = render(repo.root / "k8s", repo.root)
    target.apply(objects)
    subprocess.run(["kind", "delete", "cluster", "--name", cluster_name], check=True, capture_output=True)
    with pytest.raises(StagegateError) as caught:
        target.wait_ready(
            objects, Watch(ReadinessPolicy(poll_interval=POLL, timeout=5), ImageFacts(built={}), print)
        )
    assert caught.value.code == Code.CLUSTER_UNREACHABLE
    assert "refused" in caught.value.message
    assert caught.value.subject == {"namespace": "demo"}


# -- a startup race: the API crashes until its database answers --------------------------------

RACE_MANIFEST = (
    MANIFEST
    + """\
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: database
  namespace: demo
spec:
  replicas: 1
  selector:
    matchLabels: {{app: database}}
  template:
    metadata:
      labels: {{app: database}}
    spec:
      containers:
        - name: db
          image: {image}
          imagePullPolicy: IfNotPresent
"""
)
DATABASE_READY_AT = 2.0
API_CRASHING = [  # the kubelet's view while the database is down: crash, back-off, crash
    {"at": 0, "phase": "Running", "waiting": "CrashLoopBackOff", "restarts": 1},
    {"at": 0.8, "phase": "Running", "waiting": "CrashLoopBackOff", "restarts": 2},
    {"at": 1.6, "phase": "Running", "waiting": "CrashLoopBackOff", "restarts": 3},
]


def race(
    repo: Repo, ns: str, busybox_image: str, fake: Fake, cluster: str, replacement: list[dict], timeout=20
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster, timeout=timeout)
    repo.write("k8s/app.yaml", RACE_MANIFEST.format(image=f"{ns}/app", service="api"))
    fake.scenario(
        workloads={
            "Deployment/database": [
                {"at": 0, "phase": "Pending", "waiting": "ContainerCreating"},
                {"at": DATABASE_READY_AT, "phase": "Running", "ready": True},
            ],
            "Deployment/api": API_CRASHING,
        },
        replacements={"Deployment/api": replacement},  # the pod stagegate deletes comes back as this
    )


def test_startup_race_that_converges_passes_and_skips_the_back_off(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    race(
        repo,
        ns,
        busybox_image,
        fake,
        cluster_name,
        [{"at": 0, "phase": "Running", "ready": False}, {"at": 0.5, "phase": "Running", "ready": True}],
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0, reporter.console.file.getvalue()
    readiness = repo.run_record()["stages"]["deploy"]["outputs"]["readiness"]
    assert len(readiness["restarted"]) == 1 and readiness["restarted"][0].startswith("api-")
    assert readiness["ready_after_s"] >= DATABASE_READY_AT
    assert "restarted pod api-" in reporter.console.file.getvalue()
    assert len(fake.calls("kubectl", "delete", "pod")) == 1


def test_startup_race_that_still_crashes_once_the_database_is_ready_is_fatal_at_once(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    race(
        repo,
        ns,
        busybox_image,
        fake,
        cluster_name,
        [
            {"at": 0, "phase": "Running", "ready": False},
            {"at": 0.3, "phase": "Running", "waiting": "CrashLoopBackOff", "restarts": 1},
        ],
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "CONTAINER_CRASHLOOP", error
    assert "crashed again after everything it could be waiting for was ready" in error["message"]
    # by cause and count, not by seconds: the pod was restarted once the database was seen ready
    # (on that poll, or the next: ready means stable over two polls), and the verdict came on
    # the first poll that saw the restarted pod crash (its entry at 0.3)
    seen = fake.polls_seen(error["subject"]["polls"])
    database = [
        max((at for pod, at in poll.items() if pod.startswith("database-")), default=None) for poll in seen
    ]
    first_ready = database.index(DATABASE_READY_AT)
    calls = fake.records("kubectl")
    [delete] = [i for i, call in enumerate(calls) if {"delete", "pod"} <= set(call["argv"])]
    restarted_on = sum(1 for call in calls[:delete] if {"get", "pods"} <= set(call["argv"])) - 1
    assert first_ready <= restarted_on <= first_ready + 1, (seen, restarted_on, error)
    crashed = [i for i, poll in enumerate(seen) if poll.get(error["subject"]["pod"]) == 0.3]
    assert crashed and crashed[0] == len(seen) - 1 > restarted_on, (seen, restarted_on, error)


def test_a_crash_loop_on_a_cluster_stagegate_did_not_create_is_never_restarted_by_it(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    race(
        repo, ns, busybox_image, fake, cluster_name, [{"at": 0, "phase": "Running", "ready": True}], timeout=4
    )
    assert chain(repo, docker, reporter, "cluster") == 0
    (repo.root / ".stagegate" / "cluster.json").unlink()  # as if the cluster were the user's own
    assert run(repo, "deploy", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert error["code"] == "READINESS_TIMEOUT"  # it waits for the kubelet's next restart
    assert "crash-looping" in error["message"] and "crash" in error["hint"]
    assert fake.calls("kubectl", "delete") == []


def test_a_readiness_probe_on_the_wrong_port_is_named_while_waiting_and_in_the_timeout(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name, timeout=3)
    manifest = repo.root / "k8s" / "app.yaml"
    probe = "          readinessProbe: {httpGet: {path: /ready, port: 8081}, periodSeconds: 1}\n"
    text = manifest.read_text()
    at = text.rindex("          imagePullPolicy: IfNotPresent\n") + len(
        "          imagePullPolicy: IfNotPresent\n"
    )
    manifest.write_text(text[:at] + probe + text[at:])
    deploy_scenario(fake, [{"at": 0, "phase": "Running", "ready": False}])
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "READINESS_TIMEOUT"
    assert "api not ready: readinessProbe httpGet :8081/ready failing" in error["message"]
    assert "dial tcp" in error["message"] and ":8081: connect: connection refused" in error["message"]
    assert "probe" in error["hint"] and "port" in error["hint"]
    shown = " ".join(reporter.console.file.getvalue().split())  # the console wraps long lines
    assert "Running (api not ready: readinessProbe httpGet :8081/ready failing" in shown, shown


def test_a_cluster_stagegate_did_not_create_for_this_checkout_is_reused_never_deleted(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name, tmp_path
) -> None:
    from stagegate.cli import teardown
    from stagegate.targets.kind import KindTarget

    stack(repo, ns, busybox_image, cluster=cluster_name)
    assert chain(repo, docker, reporter, "cluster") == 0  # this checkout creates it
    mine = KindTarget(cluster=cluster_name, artifacts=repo.artifacts, docker=docker)
    assert mine.created_by_stagegate()
    # a second checkout with the same cluster name: the cluster is the user's own to it
    other = Repo(tmp_path / "other")
    other.root.mkdir()
    stack(other, ns, busybox_image, cluster=cluster_name)
    assert chain(other, docker, reporter, "cluster") == 0
    assert other.run_record()["stages"]["cluster"]["outputs"]["cluster"]["created_by_stagegate"] is False
    assert run(other, "cluster", "--recreate", docker=docker, reporter=reporter) == 1
    error = other.error()
    assert (error["code"], error["subject"]["cluster"]) == ("RESOURCE_CONFLICT", cluster_name)
    assert teardown(other.root) is None
    assert fake.calls("kind", "delete") == []
    # someone deletes it and makes one of the same name: the marker no longer matches the node
    subprocess.run(["kind", "delete", "cluster", "--name", cluster_name], check=True, capture_output=True)
    subprocess.run(
        ["kind", "create", "cluster", "--name", cluster_name, "--kubeconfig", str(tmp_path / "kc")],
        check=True,
        capture_output=True,
    )
    assert not mine.created_by_stagegate()
    assert teardown(repo.root) is None
    assert len(fake.calls("kind", "delete")) == 1  # only the one above


CRD_STACK = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {{kind: Widget, plural: widgets, singular: widget}}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {{openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}}}
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: gear
  namespace: demo
spec: {{size: 3}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: demo
spec:
  selector:
    matchLabels: {{app: api}}
  template:
    metadata:
      labels: {{app: api}}
    spec:
      containers:
        - name: api
          image: {image}:dev
          imagePullPolicy: IfNotPresent
          env:
            - {{name: DRIVER_IMAGE, value: "{image}:ci"}}
            - {{name: API_URL, value: "http://api:8080"}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: demo
"""


def crd_stack(repo: Repo, ns: str, busybox_image: str, cluster: str, timeout: float = 20) -> None:
    stack(repo, ns, busybox_image, cluster=cluster, timeout=timeout)
    repo.write("k8s/app.yaml", CRD_STACK.format(image=f"{ns}/app"))


def test_a_crd_and_its_custom_resource_deploy_in_one_pass_crd_first(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    crd_stack(repo, ns, busybox_image, cluster_name)
    fake.scenario(crds={"widgets.example.com": {"established_after": 0.8}})
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0, reporter.console.file.getvalue()
    applies = fake.calls("kubectl", "apply")
    assert len(applies) == 2
    waits = fake.calls("kubectl", "get", "customresourcedefinitions", "widgets.example.com")
    assert len(waits) >= 2  # Installing at first, then Established
    calls = [json.loads(line) for line in (fake.state / "calls.jsonl").read_text().splitlines()]
    second_apply = [c for c in calls if "apply" in c["argv"]][1]
    last_wait = [c for c in calls if "customresourcedefinitions" in c["argv"]][-1]
    assert last_wait["time"] < second_apply["time"]
    outputs = repo.run_record()["stages"]["deploy"]["outputs"]["apply"]
    assert outputs["first"] == ["CustomResourceDefinition/widgets.example.com", "Namespace/demo"]
    assert outputs["applied"][:2] == [
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created",
        "namespace/demo created",
    ]
    assert "widget.example.com/gear created" in outputs["applied"]
    kubeconfig = str(repo.artifacts / "kubeconfig")
    got = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "get", "widgets", "-n", "demo", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [w["spec"] for w in json.loads(got.stdout)["items"]] == [{"size": 3}]
    # the image named in an env var runs at this run's tag, as the container's own image does
    built = repo.run_record()["stages"]["build"]["outputs"]["images"][f"{ns}/app"]["ref"]
    pods = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "get", "pods", "-n", "demo", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    container = json.loads(pods.stdout)["items"][0]["spec"]["containers"][0]
    assert container["image"] == built
    assert container["env"] == [
        {"name": "DRIVER_IMAGE", "value": built},
        {"name": "API_URL", "value": "http://api:8080"},
    ]


def test_the_same_manifests_in_one_apply_are_refused_by_kubectl(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    """The ordering matters: one `kubectl apply` of the same set meets the real error."""
    crd_stack(repo, ns, busybox_image, cluster_name)
    assert chain(repo, docker, reporter, "cluster") == 0, reporter.console.file.getvalue()
    rendered = (repo.artifacts / "manifests.yaml").read_text()
    one_shot = subprocess.run(
        ["kubectl", "--kubeconfig", str(repo.artifacts / "kubeconfig"), "apply", "-f", "-"],
        input=rendered,
        capture_output=True,
        text=True,
    )
    assert one_shot.returncode == 1
    assert 'no matches for kind "Widget" in version "example.com/v1"' in one_shot.stderr
    assert "ensure CRDs are installed first" in one_shot.stderr


def test_a_crd_that_never_becomes_established_is_a_clear_error(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    crd_stack(repo, ns, busybox_image, cluster_name, timeout=1)  # the deploy's deadline bounds it
    fake.scenario(crds={"widgets.example.com": {"established_after": None}})
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "CRD_NOT_ESTABLISHED"
    assert error["subject"]["resource"] == "customresourcedefinition/widgets.example.com"
    assert "Established=False (Installing" in error["message"]
    assert len(fake.calls("kubectl", "apply")) == 1  # the rest was never applied


WEB_WITHOUT_SERVICE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: leeroy-web
  namespace: demo
spec:
  selector:
    matchLabels: {{app: leeroy-web}}
  template:
    metadata:
      labels: {{app: leeroy-web}}
    spec:
      containers:
        - name: web
          image: {image}
          imagePullPolicy: IfNotPresent
          ports: [{{name: http, containerPort: 8080}}]
"""

# The e2e command: reads the URL stagegate hands over and fails unless the backend answers.
CHECK_URL = """\
import os, sys, urllib.request
body = urllib.request.urlopen(os.environ["STAGEGATE_URL_LEEROY_WEB"], timeout=5).read()
sys.exit(0 if body == b"leeroy" else 1)
"""


@pytest.fixture
def leeroy_backend():
    """What the fake port-forward reaches for the workload: an HTTP server answering 'leeroy'."""
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"leeroy")

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("taken", [False, True], ids=["local-port-free", "local-port-taken"])
def test_a_deployment_without_a_service_is_reached_through_port_forward(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name, leeroy_backend, taken
) -> None:
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nCOPY . /app\n")
    repo.write("app/version.txt", ns)
    repo.write("k8s/web.yaml", WEB_WITHOUT_SERVICE.format(image=f"{ns}/app"))
    repo.write("check.py", CHECK_URL)
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    preferred = holder.getsockname()[1]
    if taken:
        holder.listen()
    else:
        holder.close()
    repo.config(
        'target = "kind"\n'
        + image_table(ns, ("app", "app"))
        + f'[tool.stagegate.cluster]\nname = "{cluster_name}"\n'
        + f'[tool.stagegate.deploy]\nmanifests = "k8s"\npoll_interval = {POLL}\ntimeout = 20\n'
        + f'[tool.stagegate.e2e]\ncommand = ["{sys.executable}", "check.py"]\n'
        + 'port_forward = [{ resource_type = "deployment", resource_name = "leeroy-web", port = "http", '
        + f"local_port = {preferred} }}]\n"
    )
    fake.scenario(port_forward={"deployment/leeroy-web": leeroy_backend})
    try:
        code = chain(repo, docker, reporter, "cluster", "deploy", "e2e")
    finally:
        holder.close()
    output = reporter.console.file.getvalue()
    assert code == 0, output
    [argv] = fake.calls("kubectl", "port-forward")
    assert argv[-2:] == ["deployment/leeroy-web", ":8080" if taken else f"{preferred}:8080"]
    if taken:
        assert f"local_port {preferred} was not available" in output
        assert f"STAGEGATE_URL_LEEROY_WEB=http://127.0.0.1:{preferred}" not in output
    else:
        assert f"STAGEGATE_URL_LEEROY_WEB=http://127.0.0.1:{preferred}" in output
        assert "was not available" not in output
    assert "no endpoint for" not in output


def test_a_port_forward_naming_a_missing_deployment_fails_verify(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name, e2e='["true"]')
    repo.write(
        "pyproject.toml",
        (repo.root / "pyproject.toml").read_text()
        + 'port_forward = [{ resource_type = "deployment", resource_name = "apj", port = 8080 }]\n',
    )
    assert chain(repo, docker, reporter, "cluster") == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("verify", "CONFIG_INVALID")
    assert error["message"] == "port_forward[0]: deployment/apj is not in the rendered manifests"
    assert error["hint"] == "did you mean 'api'?"
    assert not fake.calls("kind", "create", "cluster")
