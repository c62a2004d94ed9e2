"""The contract of the docker target: every object it reports — the workloads, pods and events
of each snapshot the readiness waiter reads, and the pods.json / events.json of its diagnostics —
is shaped as the Kubernetes API would send it (validated against the 1.32 schemas with
``tests.k8s_schema``, strict: a field the API does not have fails as well as a wrong type).

One stack covers every state the target reports: a Deployment turning ready behind a readiness
probe, a crash-looping Deployment (waiting with a back-off, lastState terminated), a Job that
fails and one that completes, a StatefulSet, a bare Pod with an init container, and a probe that
keeps failing (``Unhealthy`` events). Every snapshot of a few seconds of its life is checked."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from stagegate.manifests import ManifestObject
from stagegate.targets.docker import DockerTarget

from tests.k8s_schema import assert_api_shaped

pytestmark = pytest.mark.docker

STACK = """
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: demo}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
        - name: web
          image: {image}
          command: ["sh", "-c", "sleep 1; mkdir -p /www && echo up > /www/index.html && exec httpd -f -p 8080 -h /www"]
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /index.html, port: http}}, periodSeconds: 1}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: crasher, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: crasher}}}}
  template:
    metadata: {{labels: {{app: crasher}}}}
    spec:
      containers:
        - {{name: api, image: {image}, command: ["sh", "-c", "echo boom; exit 2"]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: unready, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: unready}}}}
  template:
    metadata: {{labels: {{app: unready}}}}
    spec:
      containers:
        - name: api
          image: {image}
          command: ["sleep", "3600"]
          readinessProbe: {{httpGet: {{path: /, port: 8081}}, periodSeconds: 1}}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: fails, namespace: demo}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - {{name: task, image: {image}, command: ["sh", "-c", "exit 3"]}}
---
apiVersion: batch/v1
kind: Job
metadata: {{name: migrate, namespace: demo}}
spec:
  template:
    spec:
      restartPolicy: OnFailure
      containers:
        - {{name: migrate, image: {image}, command: ["sh", "-c", "echo migrated"]}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: db, namespace: demo}}
spec:
  serviceName: db
  replicas: 1
  selector: {{matchLabels: {{app: db}}}}
  template:
    metadata: {{labels: {{app: db}}}}
    spec:
      containers:
        - {{name: db, image: {image}, command: ["sleep", "3600"]}}
---
apiVersion: v1
kind: Pod
metadata: {{name: bare, namespace: demo, labels: {{app: bare}}}}
spec:
  initContainers:
    - {{name: setup, image: {image}, command: ["sh", "-c", "echo set up"]}}
  containers:
    - {{name: main, image: {image}, command: ["sleep", "3600"]}}
"""


def test_every_snapshot_and_the_diagnostics_are_api_shaped(target: DockerTarget, busybox_image: str) -> None:
    objects = [
        ManifestObject("k8s/stack.yaml", doc) for doc in yaml.safe_load_all(STACK.format(image=busybox_image))
    ]
    target.apply(objects)
    seen: dict[str, set[str]] = {"workloads": set(), "pods": set(), "events": set()}
    checked = 0
    deadline = time.monotonic() + 30
    while True:
        snapshot = target.snapshot()
        for items in (snapshot.workloads, snapshot.pods, snapshot.events):
            for item in items:
                checked += assert_api_shaped(item)
        seen["workloads"] |= {f"{w['kind']}/{w['metadata']['name']}" for w in snapshot.workloads}
        seen["pods"] |= {
            f"{p['metadata']['name']}:{p['status']['phase']}:"
            + ",".join(sorted(k for c in p["status"].get("containerStatuses") or [] for k in c["state"]))
            for p in snapshot.pods
        }
        seen["events"] |= {e["reason"] for e in snapshot.events}
        done = {"Completed", "BackOff", "Unhealthy", "BackoffLimitExceeded"} <= seen["events"]
        if done and any(p.startswith("web-") and ":Running:running" in p for p in seen["pods"]):
            break
        assert time.monotonic() < deadline, f"the stack did not reach every state: {seen}"
        time.sleep(0.2)
    # the states the contract covered, so that a target that stopped reporting one fails here
    assert {
        "Deployment/web",
        "Deployment/crasher",
        "Job/fails",
        "Job/migrate",
        "StatefulSet/db",
        "Pod/bare",
    } <= seen["workloads"]
    assert any(":Failed:terminated" in p for p in seen["pods"]), seen["pods"]
    assert any(":Succeeded:terminated" in p for p in seen["pods"]), seen["pods"]
    assert any(p.startswith("crasher-") and "waiting" in p for p in seen["pods"]), seen["pods"]
    assert checked > 50

    written = target.collect_diagnostics(objects, target.artifacts / "diagnostics")
    for name in ("pods.json", "events.json"):
        (path,) = [p for p in written if Path(p).name == name]
        document = json.loads(Path(path).read_text())
        assert document["kind"] == "List" and document["items"], name
        assert assert_api_shaped(document) == len(document["items"])
