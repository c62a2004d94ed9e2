"""Contract: every object the fake kubectl prints is shaped as the Kubernetes v1.32 API sends it.

A representative scenario (every workload kind, crash loops, pull failures, unschedulable and
initialising pods, a finished and a failed Job, Services, a CRD and its custom resource) is
applied to a fake kind cluster (its node is a container on the real engine), then every
`kubectl get … -o json` List, its items, and the single objects by name are validated against
the schemas of kubernetes-validate (strict: no field the API lacks) with tests/k8s_schema.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import yaml

from tests.integration.test_fakes import Cluster, fake_cluster
from tests.k8s_schema import NotAPIShaped, assert_api_shaped
from tests.unit.test_fakes import ok

pytestmark = pytest.mark.docker

CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: featureflags.shop.example.com
spec:
  group: shop.example.com
  names: {kind: FeatureFlag, plural: featureflags, singular: featureflag, shortNames: [ff]}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                enabled: {type: boolean}
"""

STACK = """\
apiVersion: v1
kind: Namespace
metadata: {name: NS}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: NS, labels: {app: api}}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: example/api:1
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /healthz, port: http}}
          resources: {requests: {cpu: 100m, memory: 64Mi}, limits: {memory: 128Mi}}
          env: [{name: MODE, value: prod}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: crashy, namespace: NS}
spec:
  selector: {matchLabels: {app: crashy}}
  template:
    metadata: {labels: {app: crashy}}
    spec:
      containers: [{name: crashy, image: example/crashy:1}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: unpulled, namespace: NS}
spec:
  selector: {matchLabels: {app: unpulled}}
  template:
    metadata: {labels: {app: unpulled}}
    spec:
      initContainers: [{name: setup, image: example/missing-init:1}]
      containers: [{name: unpulled, image: example/missing:1}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: NS}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: api-nodeport, namespace: NS}
spec:
  type: NodePort
  selector: {app: api}
  ports: [{port: 8080}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: NS}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: db, image: example/db:1}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: NS}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      initContainers: [{name: wait, image: example/agent:1}]
      containers: [{name: agent, image: example/agent:1}]
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: bare-rs, namespace: NS}
spec:
  selector: {matchLabels: {app: bare-rs}}
  template:
    metadata: {labels: {app: bare-rs}}
    spec:
      containers: [{name: main, image: example/api:1}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: NS}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: example/api:1}]
---
apiVersion: batch/v1
kind: Job
metadata: {name: broken, namespace: NS}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: broken, image: example/api:1}]
---
apiVersion: v1
kind: Pod
metadata: {name: lonely, namespace: NS, labels: {app: lonely}}
spec:
  containers: [{name: lonely, image: example/api:1}]
---
apiVersion: v1
kind: Pod
metadata: {name: pending, namespace: NS}
spec:
  containers: [{name: pending, image: example/api:1}]
---
apiVersion: shop.example.com/v1
kind: FeatureFlag
metadata: {name: new-checkout, namespace: NS}
spec: {enabled: true}
"""

SCENARIO = {
    "pullable": ["example/api", "example/db", "example/agent", "example/crashy"],
    "workloads": {
        "Deployment/crashy": [{"at": 0, "phase": "Running", "waiting": "CrashLoopBackOff", "restarts": 3}],
        "StatefulSet/db": [{"at": 0, "phase": "Running", "ready": False}],
        "DaemonSet/agent": [
            {"at": 0, "phase": "Pending", "init": {"waiting": "CrashLoopBackOff", "restarts": 2}}
        ],
        "Job/migrate": [{"at": 0, "phase": "Succeeded"}],
        "Job/broken": [{"at": 0, "phase": "Failed", "last_exit_code": 2}],
        "Pod/pending": [
            {"at": 0, "phase": "Pending", "scheduled": False, "message": "0/1 nodes are available"}
        ],
    },
}

TYPES = [
    "pods",
    "deployments",
    "replicasets",
    "statefulsets",
    "daemonsets",
    "jobs",
    "services",
    "events",
    "namespaces",
    "customresourcedefinitions",
]


@pytest.fixture(scope="module")
def scenario_cluster(docker, busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    with fake_cluster(tmp_path_factory.mktemp("contract")) as cluster:
        cluster.fakes.scenario(**SCENARIO)
        ok(cluster.fakes.kubectl("apply", "-f", "-", stdin=CRD))
        ns = cluster.deploy(STACK)
        time.sleep(1.2)  # past the first second: pull failures back off
        yield cluster, ns


def crds(cluster: Cluster) -> list[dict]:
    return cluster.fakes.json("get", "crd")["items"]


@pytest.mark.parametrize("resource", TYPES)
def test_every_listed_object_is_api_shaped(scenario_cluster: tuple, resource: str) -> None:
    cluster, ns = scenario_cluster
    listed = cluster.fakes.json("get", resource, "-n", ns)
    assert listed["items"], f"the scenario has {resource}"
    assert assert_api_shaped(listed, crds=crds(cluster)) == len(listed["items"])
    everywhere = cluster.fakes.json("get", resource, "-A")
    assert_api_shaped(everywhere)


@pytest.mark.parametrize("resource", [t for t in TYPES if t != "events"])
def test_every_object_by_name_is_api_shaped(scenario_cluster: tuple, resource: str) -> None:
    cluster, ns = scenario_cluster
    for item in cluster.fakes.json("get", resource, "-n", ns)["items"]:
        single = cluster.fakes.json("get", resource, item["metadata"]["name"], "-n", ns)
        assert single == item
        assert_api_shaped(single)


def test_several_types_at_once_and_yaml(scenario_cluster: tuple) -> None:
    cluster, ns = scenario_cluster
    listed = cluster.fakes.json("get", "deployments,replicasets,statefulsets,daemonsets,jobs", "-n", ns)
    assert {o["kind"] for o in listed["items"]} == {
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
    }
    assert_api_shaped(listed)
    as_yaml = ok(cluster.fakes.kubectl("get", "pods", "-n", ns, "-o", "yaml")).stdout
    assert yaml.safe_load(as_yaml) == cluster.fakes.json("get", "pods", "-n", ns)


def test_custom_resources_match_their_crd(scenario_cluster: tuple) -> None:
    cluster, ns = scenario_cluster
    flags = cluster.fakes.json("get", "featureflags", "-n", ns)
    assert assert_api_shaped(flags, crds=crds(cluster)) == 1
    with pytest.raises(NotAPIShaped, match=r"no schema for shop\.example\.com/v1 FeatureFlag"):
        assert_api_shaped(flags)
