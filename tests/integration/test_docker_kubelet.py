"""The docker target's kubelet and Job controller on the real engine, with busybox workloads:
restarts and their back-off, restart_now, Jobs, emptyDir, named ports, probe events.

The target is driven as the readiness waiter drives it (``apply``, then ``snapshot`` per
poll) with back-offs of a fraction of a second, so that each test takes a few seconds."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from python_on_whales import DockerClient
from stagegate.manifests import ManifestObject
from stagegate.readiness import Snapshot
from stagegate.targets.docker import DockerTarget

pytestmark = pytest.mark.docker


def objects(text: str, **values: str) -> list[ManifestObject]:
    return [ManifestObject("k8s/test.yaml", doc) for doc in yaml.safe_load_all(text.format(**values)) if doc]


def until(target: DockerTarget, wanted: Callable[[Snapshot], Any], timeout: float = 20) -> Snapshot:
    """Poll like the readiness waiter (but every 0.1 s) until ``wanted`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = target.snapshot()
        if wanted(snapshot):
            return snapshot
        if time.monotonic() > deadline:
            pytest.fail(
                f"not reached in {timeout} s; last pods: {[(pod(snapshot, p)) for p in _names(snapshot)]}"
            )
        time.sleep(0.1)


def _names(snapshot: Snapshot) -> list[str]:
    return [p["metadata"]["name"] for p in snapshot.pods]


def pod(snapshot: Snapshot, name: str) -> dict[str, Any]:
    return next(p for p in snapshot.pods if p["metadata"]["name"] == name)


def container(snapshot: Snapshot, pod_name: str, index: int = 0) -> dict[str, Any]:
    return pod(snapshot, pod_name)["status"]["containerStatuses"][index]


def workload(snapshot: Snapshot, kind: str, name: str) -> dict[str, Any]:
    return next(w for w in snapshot.workloads if (w["kind"], w["metadata"]["name"]) == (kind, name))


def events(snapshot: Snapshot, reason: str) -> list[dict[str, Any]]:
    return [e for e in snapshot.events if e["reason"] == reason]


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

CRASHER = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: crasher, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: crasher}}}}
  template:
    metadata: {{labels: {{app: crasher}}, annotations: {{team: core}}}}
    spec:
      containers:
        - {{name: api, image: {image}, command: ["sh", "-c", "{script}"]}}
"""


def test_restart_count_grows_with_the_back_off_that_doubles(target: DockerTarget, busybox_image: str) -> None:
    target.apply(objects(CRASHER, image=busybox_image, script="echo attempt; exit 1"))
    restarted_at: dict[int, float] = {}
    messages: list[str] = []
    container_ids: set[str] = set()

    def four_restarts(snapshot: Snapshot) -> bool:
        status = container(snapshot, "crasher-0")
        restarted_at.setdefault(status["restartCount"], time.monotonic())
        container_ids.add(status["containerID"])
        waiting = status["state"].get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff" and waiting["message"] not in messages:
            messages.append(waiting["message"])
        return status["restartCount"] >= 4

    snapshot = until(target, four_restarts)
    uid = pod(snapshot, "crasher-0")["metadata"]["uid"]
    assert [m.split(" restarting")[0] for m in messages] == ["back-off 500ms", "back-off 1s", "back-off 2s"]
    assert messages[0].endswith(f"restarting failed container=api pod=crasher-0_demo({uid})")
    # the first exit restarts at once; then each wait is at least the back-off, and it doubles
    gaps = [restarted_at[n + 1] - restarted_at[n] for n in (1, 2, 3)]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0 and gaps[2] >= 2.0, gaps
    assert gaps[2] > gaps[1] * 1.3 and gaps[1] > gaps[0] * 1.2, gaps
    snapshot = until(target, lambda s: "waiting" in container(s, "crasher-0")["state"])  # between runs
    status = container(snapshot, "crasher-0")
    last = status["lastState"]["terminated"]
    assert (last["exitCode"], last["reason"]) == (1, "Error")
    assert RFC3339.match(last["startedAt"]) and RFC3339.match(last["finishedAt"])
    assert last["containerID"] == status["containerID"]  # the latest container, waiting to be replaced
    assert len(container_ids) >= 4 and all(c.startswith("docker://") for c in container_ids)  # one per run
    assert status["imageID"].startswith(("docker://sha256:", "docker-pullable://"))
    [backoff] = events(snapshot, "BackOff")
    assert backoff["message"] == f"Back-off restarting failed container api in pod crasher-0_demo({uid})"
    assert backoff["count"] >= 3 and backoff["involvedObject"]["fieldPath"] == "spec.containers{api}"
    assert events(snapshot, "Started")[0]["count"] >= 4
    metadata = pod(snapshot, "crasher-0")["metadata"]
    assert metadata["annotations"] == {"team": "core"}
    assert metadata["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert pod(snapshot, "crasher-0")["spec"]["restartPolicy"] == "Always"
    deployment = workload(snapshot, "Deployment", "crasher")
    assert [(c["type"], c["status"], c["reason"]) for c in deployment["status"]["conditions"]] == [
        ("Available", "False", "MinimumReplicasUnavailable"),
        ("Progressing", "True", "ReplicaSetUpdated"),
    ]
    assert deployment["status"]["unavailableReplicas"] == 1


EXIT_ZERO = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: always, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: always}}}}
  template:
    metadata: {{labels: {{app: always}}}}
    spec:
      containers: [{{name: once, image: {image}, command: ["true"]}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: never, namespace: demo}}
spec:
  restartPolicy: Never
  containers: [{{name: once, image: {image}, command: ["true"]}}]
"""


def test_an_exit_0_is_restarted_under_always_and_succeeds_under_never(
    target: DockerTarget, busybox_image: str
) -> None:
    target.apply(objects(EXIT_ZERO, image=busybox_image))

    def settled(snapshot: Snapshot) -> bool:
        waiting = container(snapshot, "always-0")["state"].get("waiting") or {}
        return (
            waiting.get("reason") == "CrashLoopBackOff"
            and pod(snapshot, "never")["status"]["phase"] != "Pending"
        )

    snapshot = until(target, settled)
    always = container(snapshot, "always-0")
    assert always["restartCount"] >= 1
    assert always["lastState"]["terminated"]["reason"] == "Completed"
    assert pod(snapshot, "always-0")["status"]["phase"] == "Running"  # restarting, as the kubelet says
    never = pod(snapshot, "never")
    assert never["status"]["phase"] == "Succeeded"
    once = never["status"]["containerStatuses"][0]
    assert (once["restartCount"], once["state"]["terminated"]["exitCode"]) == (0, 0)
    assert once["state"]["terminated"]["reason"] == "Completed"
    ready = next(c for c in never["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "PodCompleted")
    assert workload(snapshot, "Pod", "never") == never


def test_restart_now_skips_a_long_back_off(
    docker: DockerClient, ns: str, tmp_path: Path, busybox_image: str
) -> None:
    target = DockerTarget(project=ns, artifacts=tmp_path, docker=docker, backoff_base=30.0, backoff_cap=60.0)
    try:
        target.apply(objects(CRASHER, image=busybox_image, script="exit 2"))
        until(
            target,
            lambda s: (
                (container(s, "crasher-0")["state"].get("waiting") or {}).get("reason") == "CrashLoopBackOff"
            ),
        )
        assert target.restart_now("demo", "other-pod") is False
        called = time.monotonic()
        assert target.restart_now("demo", "crasher-0") is True
        # restarted now, not after the 30 s back-off (20 s: a margin for a loaded engine, still
        # well short of the back-off it skips)
        snapshot = until(target, lambda s: container(s, "crasher-0")["restartCount"] == 2, timeout=20)
        assert time.monotonic() - called < 20
        # the back-off starts again from its base: 30 s, no longer 60 s
        snapshot = until(target, lambda s: "waiting" in container(s, "crasher-0")["state"], timeout=5)
        assert container(snapshot, "crasher-0")["state"]["waiting"]["message"].startswith("back-off 30s ")
        assert target.restart_now("demo", "crasher-0") is True
    finally:
        target.teardown(delete=True)


COUNTER_AND_JOB = """
apiVersion: v1
kind: ConfigMap
metadata: {{name: scripts, namespace: demo}}
data:
  attempt: |
    #!/bin/sh
    n=$(($(cat /www/attempts 2>/dev/null || echo 0) + 1))
    echo $n > /www/attempts
    printf 'Content-Type: text/plain\\r\\n\\r\\n'
    if [ $n -le 2 ]; then echo "attempt $n: not yet"; else echo "attempt $n: ok"; fi
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: counter, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: counter}}}}
  template:
    metadata: {{labels: {{app: counter}}}}
    spec:
      volumes:
        - {{name: scripts, configMap: {{name: scripts}}}}
        - {{name: www, emptyDir: {{}}}}
      containers:
        - name: counter
          image: {image}
          command: ["sh", "-c", "mkdir -p /www/cgi-bin && echo up > /www/index.html && cp /scripts/attempt /www/cgi-bin/ && chmod +x /www/cgi-bin/attempt && exec httpd -f -p 8080 -h /www"]
          ports: [{{name: http, containerPort: 8080}}]
          volumeMounts: [{{name: scripts, mountPath: /scripts}}, {{name: www, mountPath: /www}}]
---
apiVersion: v1
kind: Service
metadata: {{name: counter, namespace: demo}}
spec:
  selector: {{app: counter}}
  ports: [{{port: 8080, targetPort: http}}]
---
apiVersion: batch/v1
kind: Job
metadata: {{name: migrate, namespace: demo}}
spec:
  backoffLimit: {limit}
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: {image}
          command: ["sh", "-c", "{script}"]
"""
# The migration waits for its "database" to answer, then asks it whether it may succeed: the
# counter says no to the first two attempts, so exactly two pods fail.
MIGRATE = (
    "until wget -qO /dev/null http://counter:8080/; do sleep 0.2; done; "
    "wget -qO- http://counter:8080/cgi-bin/attempt | tee /dev/stderr | grep -q ok"
)


def test_a_job_that_fails_twice_then_succeeds_is_complete(target: DockerTarget, busybox_image: str) -> None:
    target.apply(objects(COUNTER_AND_JOB, image=busybox_image, limit="6", script=MIGRATE))
    snapshot = until(target, lambda s: workload(s, "Job", "migrate")["status"].get("conditions"), timeout=30)
    job = workload(snapshot, "Job", "migrate")
    status = job["status"]
    assert (status.get("failed"), status.get("succeeded"), status.get("active")) == (2, 1, None)
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [
        ("SuccessCriteriaMet", "True"),
        ("Complete", "True"),
    ]
    assert RFC3339.match(status["completionTime"]) and RFC3339.match(status["startTime"])
    job_pods = [p for p in snapshot.pods if p["metadata"]["labels"].get("job-name") == "migrate"]
    assert sorted(p["status"]["phase"] for p in job_pods) == ["Failed", "Failed", "Succeeded"]
    for job_pod in job_pods:
        assert re.fullmatch(r"migrate-[bcdfghjklmnpqrstvwxz2456789]{5}", job_pod["metadata"]["name"])
        assert job_pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "migrate"
        assert job_pod["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    assert len({p["metadata"]["name"] for p in job_pods}) == 3
    assert [e["message"] for e in events(snapshot, "Completed")] == ["Job completed"]
    assert len(events(snapshot, "SuccessfulCreate")) == 3
    # the failed pods stay, with their logs
    written = target.collect_diagnostics([], target.artifacts / "diagnostics")
    logs = [Path(p).read_text() for p in written if p.endswith(".log") and "migrate-" in p]
    assert sum("attempt 1: not yet" in text for text in logs) == 1
    assert sum("attempt 3: ok" in text for text in logs) == 1


def test_a_job_past_its_backoff_limit_fails(target: DockerTarget, busybox_image: str) -> None:
    target.apply(objects(COUNTER_AND_JOB, image=busybox_image, limit="1", script="exit 3"))
    snapshot = until(target, lambda s: workload(s, "Job", "migrate")["status"].get("conditions"), timeout=20)
    status = workload(snapshot, "Job", "migrate")["status"]
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("FailureTarget", "True", "BackoffLimitExceeded"),
        ("Failed", "True", "BackoffLimitExceeded"),
    ]
    assert status["conditions"][1]["message"] == "Job has reached the specified backoff limit"
    assert status.get("failed") == 2 and "succeeded" not in status and "completionTime" not in status
    job_pods = [p for p in snapshot.pods if p["metadata"]["labels"].get("job-name") == "migrate"]
    assert [p["status"]["phase"] for p in job_pods] == ["Failed", "Failed"]
    assert job_pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    time.sleep(1.5)  # longer than the next back-off would be: no third pod
    assert (
        len([p for p in target.snapshot().pods if p["metadata"]["labels"].get("job-name") == "migrate"]) == 2
    )


EMPTY_DIR = """
apiVersion: v1
kind: Pod
metadata: {{name: shared, namespace: demo}}
spec:
  restartPolicy: OnFailure
  volumes: [{{name: data, emptyDir: {{}}}}]
  initContainers:
    - name: writer
      image: {nonroot}
      command: ["sh", "-c", "id -u > /data/writer && echo from-writer >> /data/log"]
      volumeMounts: [{{name: data, mountPath: /data}}]
  containers:
    - name: counter
      image: {nonroot}
      command: ["sh", "-c", "{script}"]
      volumeMounts: [{{name: data, mountPath: /data}}]
"""
# fails until it has seen its own two earlier runs in the emptyDir: it outlives restarts
COUNT = "echo run >> /data/log; [ $(grep -c run /data/log) -ge 3 ]"


def test_an_empty_dir_is_writable_by_any_user_shared_and_kept_across_restarts(
    target: DockerTarget, docker: DockerClient, busybox_image: str, ns: str, tmp_path: Path
) -> None:
    (tmp_path / "nonroot").mkdir()
    # /data exists in the image, owned by root and not writable by others: the emptyDir hides it
    (tmp_path / "nonroot" / "Dockerfile").write_text(
        f"FROM {busybox_image}\nRUN mkdir -m 0755 /data\nUSER 1000\n"
    )
    docker.legacy_build(tmp_path / "nonroot", tags=[f"{ns}/nonroot:1"], quiet=True)
    target.apply(objects(EMPTY_DIR, nonroot=f"{ns}/nonroot:1", script=COUNT))
    snapshot = until(
        target, lambda s: pod(s, "shared")["status"]["phase"] in ("Succeeded", "Failed"), timeout=20
    )
    shared = pod(snapshot, "shared")
    assert shared["status"]["phase"] == "Succeeded", shared["status"]
    assert shared["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert shared["status"]["containerStatuses"][0]["restartCount"] == 2
    [volume] = docker.volume.list(filters=[("label", f"dev.stagegate.project={ns}")])
    assert docker.run(
        busybox_image, ["cat", "/v/writer", "/v/log"], volumes=[(volume, "/v")], remove=True
    ).split() == [
        "1000",
        "from-writer",
        "run",
        "run",
        "run",
    ]


NAMED_PORTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: {image}
          command: ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www"]
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /index.html, port: {probe_port}}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: demo}}
spec:
  selector: {{app: web}}
  ports: [{{name: web, port: 8080, targetPort: http}}]
---
apiVersion: v1
kind: Pod
metadata: {{name: client, namespace: demo}}
spec:
  restartPolicy: OnFailure
  containers:
    - {{name: client, image: {image}, command: ["wget", "-qO-", "http://web:8080/index.html"]}}
"""


def test_a_named_target_port_is_reached_through_its_service(target: DockerTarget, busybox_image: str) -> None:
    manifests = objects(NAMED_PORTS, image=busybox_image, probe_port="http")
    target.apply(manifests)
    snapshot = until(
        target,
        lambda s: (
            pod(s, "client")["status"]["phase"] == "Succeeded"
            and workload(s, "Deployment", "web")["status"].get("availableReplicas") == 1
        ),
    )
    spec = pod(snapshot, "web-0")["spec"]["containers"][0]
    assert spec["readinessProbe"]["httpGet"]["port"] == "http"  # the spec as written
    assert spec["ports"] == [{"name": "http", "containerPort": 8080}]
    assert [
        (c["type"], c["reason"]) for c in workload(snapshot, "Deployment", "web")["status"]["conditions"]
    ] == [
        ("Available", "MinimumReplicasAvailable"),
        ("Progressing", "NewReplicaSetAvailable"),
    ]
    with target.endpoints(manifests) as env:
        assert (
            urllib.request.urlopen(env["STAGEGATE_URL_WEB"] + "/index.html", timeout=5).read() == b"hello\n"
        )


def test_a_readiness_probe_on_the_wrong_port_is_an_unhealthy_event(
    target: DockerTarget, busybox_image: str
) -> None:
    target.apply(objects(NAMED_PORTS, image=busybox_image, probe_port="8081"))
    snapshot = until(target, lambda s: any(e["count"] >= 2 for e in events(s, "Unhealthy")), timeout=10)
    [unhealthy] = events(snapshot, "Unhealthy")
    assert unhealthy["type"] == "Warning"
    assert re.fullmatch(
        r'Readiness probe failed: Get "http://([\d.]+):(\d+)/index.html": dial tcp \1:\2: connect: connection refused',
        unhealthy["message"],
    ), unhealthy["message"]
    probed = unhealthy["message"].split('"')[1]
    assert probed.endswith(":8081/index.html") or probed.startswith("http://127.0.0.1:")
    involved = unhealthy["involvedObject"]
    assert (involved["kind"], involved["name"], involved["namespace"], involved["fieldPath"]) == (
        "Pod",
        "web-0",
        "demo",
        "spec.containers{web}",
    )
    assert RFC3339.match(unhealthy["firstTimestamp"]) and RFC3339.match(unhealthy["lastTimestamp"])
    status = container(snapshot, "web-0")
    assert (status["ready"], status["started"], "running" in status["state"]) == (False, True, True)


PROBED = """
apiVersion: v1
kind: Pod
metadata: {{name: probed, namespace: demo}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
    - name: app
      image: {image}
      command: ["sh", "-c", "sleep 2; touch /started; exec sleep 600"]
      startupProbe: {{exec: {{command: ["test", "-f", "/started"]}}, periodSeconds: 1, failureThreshold: 30}}
      livenessProbe: {{exec: {{command: ["sh", "-c", "echo not alive; exit 1"]}}, periodSeconds: 1, failureThreshold: 1}}
"""


def test_startup_gates_liveness_and_a_failing_liveness_probe_restarts(
    target: DockerTarget, busybox_image: str
) -> None:
    target.apply(objects(PROBED, image=busybox_image))
    snapshot = target.snapshot()
    assert container(snapshot, "probed")["started"] is False
    snapshot = until(target, lambda s: container(s, "probed")["restartCount"] >= 1, timeout=15)
    [killing] = events(snapshot, "Killing")
    assert killing["message"] == "Container app failed liveness probe, will be restarted"
    unhealthy = {e["message"] for e in events(snapshot, "Unhealthy")}
    assert "Liveness probe failed: not alive" in unhealthy
    assert "Startup probe failed: " in unhealthy  # before /started exists (the exec has no output)
    # liveness ran only once startup had passed: the first run lasted the two seconds of startup
    # (without the gate, the first liveness failure would have killed it at once)
    ended = container(snapshot, "probed")["lastState"]["terminated"]
    assert ended["exitCode"] in (137, 143)
    lasted = datetime.fromisoformat(ended["finishedAt"]) - datetime.fromisoformat(ended["startedAt"])
    assert lasted.total_seconds() >= 2
