"""The fake ``kind`` and ``kubectl`` of tests/fakes on a fake cluster, whose node is a container on the
real engine; run as subprocesses like the code under test runs them (what they do without a
cluster: tests/unit/test_fakes.py).

Covered: cluster create and delete, the JSON they print (parsed back), scenario timelines,
``kind load`` failures then success, port-forward proxying, and that every node container goes
away again. The tests share one fake cluster per module (namespaces keep them apart).
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import signallable
from tests.unit.test_fakes import Fakes, ok, refused

pytestmark = pytest.mark.docker
SAFE = "[bcdfghjklmnpqrstvwxz2456789]"


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path / "state", tmp_path / "kubeconfig")


def stack(ns: str, replicas: int = 1) -> str:
    """A namespace, a Deployment with a Service on a named port, and a second Deployment."""
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: Namespace
        metadata:
          name: {ns}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: api-server
          namespace: {ns}
          labels: {{app: api-server}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: api-server}}}}
          template:
            metadata:
              labels: {{app: api-server}}
            spec:
              containers:
                - name: api-server
                  image: example/api-server:sg-0123
                  imagePullPolicy: IfNotPresent
                  ports: [{{name: http, containerPort: 8080}}]
                  readinessProbe: {{httpGet: {{path: /healthz, port: http}}, periodSeconds: 2}}
        ---
        apiVersion: v1
        kind: Service
        metadata:
          name: api-server
          namespace: {ns}
        spec:
          selector: {{app: api-server}}
          ports: [{{name: http, port: 80, targetPort: http}}]
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: worker
          namespace: {ns}
        spec:
          selector: {{matchLabels: {{app: worker}}}}
          template:
            metadata:
              labels: {{app: worker}}
            spec:
              containers:
                - name: worker
                  image: example/worker:sg-0123
                  imagePullPolicy: IfNotPresent
        """)


# The stack's images were never `kind load`ed: they run only when a registry "serves" them.
STACK_PULLABLE = ["example/api-server:sg-0123", "example/worker"]


@dataclass
class Cluster:
    fakes: Fakes
    name: str

    @property
    def node(self) -> str:
        return f"{self.name}-control-plane"

    def deploy(self, template: str | None = None) -> str:
        """Apply ``template`` (NS: the namespace) or the stack into a new namespace; return it."""
        ns = f"t-{secrets.token_hex(3)}"
        path = self.fakes.state.parent / f"{ns}.yaml"
        path.write_text(template.replace("NS", ns) if template else stack(ns))
        ok(self.fakes.kubectl("apply", "-f", str(path)))
        return ns

    def pods(self, ns: str, *args: str) -> list[dict]:
        return self.fakes.json("get", "pods", "-n", ns, *args)["items"]


def node_containers(name: str) -> list[str]:
    found = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={name}"],
        capture_output=True,
        text=True,
    )
    return found.stdout.split()


def remove_nodes(name: str) -> None:
    if ids := node_containers(name):
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


@contextmanager
def fake_cluster(root: Path) -> Iterator[Cluster]:
    """A fake kind cluster in ``root`` (needs Docker: the node is a container), deleted after."""
    fakes = Fakes(root / "state", root / "kubeconfig")
    name = f"sgfake-{secrets.token_hex(3)}"
    try:
        ok(fakes.kind("create", "cluster", "--name", name, "--kubeconfig", str(fakes.kubeconfig)))
        yield Cluster(fakes, name)
    finally:
        fakes.kind("delete", "cluster", "--name", name)
        remove_nodes(name)


@pytest.fixture(scope="module")
def cluster(docker, busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with fake_cluster(tmp_path_factory.mktemp("fake-cluster")) as made:
        yield made


@pytest.fixture
def loadable_image(docker, busybox_image: str, tmp_path: Path) -> Iterator[str]:
    """An image of its own (busybox plus a label: its own ID), so that loads start from "not yet present"."""
    tag = f"sgfake-{secrets.token_hex(3)}/app:1"
    context = tmp_path / "loadable"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {busybox_image}\nLABEL sgfake.tag={tag}\n")
    docker.legacy_build(context, tags=[tag])
    yield tag
    docker.image.remove(tag)


LATER = 4.0  # seconds: the second state of the timeline tests; their first checks take far less


def wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment + 0.2 - time.time()))


def test_create_cluster_runs_one_labelled_node_and_writes_the_kubeconfig(
    fakes: Fakes, busybox_image: str
) -> None:
    name = f"sgfake-{secrets.token_hex(3)}"
    try:
        created = ok(
            fakes.kind(
                "create", "cluster", "--name", name, "--kubeconfig", str(fakes.kubeconfig), "--wait", "1m"
            )
        )
        lines = created.stderr.splitlines()
        assert lines[:3] == [
            f'Creating cluster "{name}" ...',
            " • Ensuring node image (kindest/node:v1.32.2) 🖼  ...",
            " ✓ Ensuring node image (kindest/node:v1.32.2) 🖼",
        ]
        for done in (
            "Preparing nodes 📦 ",
            "Writing configuration 📜",
            "Starting control-plane 🕹️",
            "Installing CNI 🔌",
        ):
            assert f" ✓ {done}" in lines
        assert " ✓ Waiting ≤ 1m0s for control-plane = Ready ⏳" in lines
        assert f'Set kubectl context to "kind-{name}"' in lines

        inspect = json.loads(
            subprocess.run(
                ["docker", "inspect", f"{name}-control-plane"], capture_output=True, text=True
            ).stdout
        )[0]
        assert inspect["Config"]["Labels"] == {
            "io.x-k8s.kind.cluster": name,
            "io.x-k8s.kind.role": "control-plane",
        }
        assert inspect["Config"]["Cmd"] == ["sleep", "86400"]
        assert inspect["Config"]["Image"] == busybox_image
        mounts = {m["Destination"]: m["RW"] for m in inspect["Mounts"]}
        assert mounts == {"/fake-kind": False, "/usr/local/bin/crictl": False}

        config = yaml.safe_load(fakes.kubeconfig.read_text())
        entry = f"kind-{name}"
        assert (config["apiVersion"], config["kind"], config["current-context"]) == ("v1", "Config", entry)
        assert config["contexts"] == [{"context": {"cluster": entry, "user": entry}, "name": entry}]
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+", config["clusters"][0]["cluster"]["server"])
        assert config["clusters"][0]["cluster"]["certificate-authority-data"]
        assert set(config["users"][0]["user"]) == {"client-certificate-data", "client-key-data"}
        assert yaml.safe_load(ok(fakes.kind("get", "kubeconfig", "--name", name)).stdout) == config

        assert ok(fakes.kind("get", "clusters")).stdout == f"{name}\n"
        assert ok(fakes.kind("get", "nodes", "-n", name)).stdout == f"{name}-control-plane\n"
        refused(
            fakes.kind("create", "cluster", "--name", name, "--kubeconfig", str(fakes.kubeconfig)),
            f'ERROR: failed to create cluster: node(s) already exist for a cluster with the name "{name}"',
        )

        deleted = ok(fakes.kind("delete", "cluster", "--name", name, "--kubeconfig", str(fakes.kubeconfig)))
        assert deleted.stderr.splitlines() == [
            f'Deleting cluster "{name}" ...',
            f'Deleted nodes: ["{name}-control-plane"]',
        ]
        assert node_containers(name) == []
        remaining = yaml.safe_load(fakes.kubeconfig.read_text())
        assert (remaining["clusters"], remaining["current-context"]) == ([], "")
        refused(
            fakes.kubectl("get", "pods", "-o", "json"),
            "The connection to the server localhost:8080 was refused",
        )
    finally:
        remove_nodes(name)


@pytest.mark.parametrize("retain", [False, True])
def test_create_cluster_error_from_the_scenario(fakes: Fakes, busybox_image: str, retain: bool) -> None:
    name = f"sgfake-{secrets.token_hex(3)}"
    fakes.scenario(create_cluster_error="failed to init node with kubeadm: exit status 1")
    try:
        result = fakes.kind(
            "create",
            "cluster",
            "--name",
            name,
            "--kubeconfig",
            str(fakes.kubeconfig),
            *(["--retain"] * retain),
        )
        refused(result, "ERROR: failed to create cluster: failed to init node with kubeadm: exit status 1")
        assert " ✗ Starting control-plane 🕹️" in result.stderr.splitlines()
        assert bool(node_containers(name)) is retain  # --retain keeps the failed node, as kind does
        assert ok(fakes.kind("get", "clusters")).stdout == (f"{name}\n" if retain else "")
        assert not fakes.kubeconfig.exists()
    finally:
        fakes.kind("delete", "cluster", "--name", name)
        assert node_containers(name) == []
        remove_nodes(name)


def test_export_kubeconfig_merges_into_an_existing_file(cluster: Cluster, tmp_path: Path) -> None:
    path = tmp_path / "merged"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "other", "cluster": {"server": "https://10.0.0.1"}}],
                "contexts": [{"name": "other", "context": {"cluster": "other", "user": "other"}}],
                "users": [{"name": "other", "user": {}}],
                "current-context": "other",
            }
        )
    )
    result = ok(cluster.fakes.kind("export", "kubeconfig", "--name", cluster.name, "--kubeconfig", str(path)))
    assert result.stderr == f'Set kubectl context to "kind-{cluster.name}"\n'
    merged = yaml.safe_load(path.read_text())
    assert [c["name"] for c in merged["clusters"]] == ["other", f"kind-{cluster.name}"]
    assert merged["current-context"] == f"kind-{cluster.name}"


def test_apply_prints_created_unchanged_configured(cluster: Cluster, tmp_path: Path) -> None:
    cluster.fakes.scenario()
    ns = f"t-{secrets.token_hex(3)}"
    path = tmp_path / "stack.yaml"
    path.write_text(stack(ns))
    created = ok(cluster.fakes.kubectl("apply", "-f", str(path)))
    assert created.stdout.splitlines() == [
        f"namespace/{ns} created",
        "deployment.apps/api-server created",
        "service/api-server created",
        "deployment.apps/worker created",
    ]
    assert (
        ok(cluster.fakes.kubectl("apply", "-f", str(path))).stdout.splitlines()[0]
        == f"namespace/{ns} unchanged"
    )
    path.write_text(stack(ns, replicas=2))
    again = ok(cluster.fakes.kubectl("apply", "-f", "-", stdin=path.read_text())).stdout.splitlines()
    assert again[1] == "deployment.apps/api-server configured"
    deployment = cluster.fakes.json("get", "deployment", "api-server", "-n", ns)
    assert deployment["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in deployment["metadata"]["annotations"]
    assert len(cluster.pods(ns, "-l", "app=api-server")) == 2

    listed = ok(cluster.fakes.kubectl("apply", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "List",
        "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}],
    })))  # fmt: skip
    assert listed.stdout == "configmap/settings created\n"  # into "default"
    refused(
        cluster.fakes.kubectl(
            "apply",
            "-f",
            "-",
            stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: nowhere}\n",
        ),
        'Error from server (NotFound): error when creating "STDIN": namespaces "nowhere" not found',
    )
    refused(
        cluster.fakes.kubectl(
            "apply", "-f", "-", stdin="apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
        ),
        'no matches for kind "Widget" in version "example.com/v1"',
    )
    refused(
        cluster.fakes.kubectl("apply", "-n", "elsewhere", "-f", str(path)),
        f'the namespace from the provided object "{ns}" does not match the namespace "elsewhere"',
    )


def test_apply_error_from_the_scenario_stores_nothing(cluster: Cluster, tmp_path: Path) -> None:
    cluster.fakes.scenario(apply_error='Internal error occurred: failed calling webhook "x"')
    path = tmp_path / "stack.yaml"
    path.write_text(stack("never"))
    refused(
        cluster.fakes.kubectl("apply", "-f", str(path)),
        'error: Internal error occurred: failed calling webhook "x"',
    )
    cluster.fakes.scenario()
    assert cluster.pods("never") == []


def test_get_pods_lists_running_pods_in_the_api_shape(cluster: Cluster) -> None:
    cluster.fakes.scenario(pullable=STACK_PULLABLE)
    ns = cluster.deploy()
    listed = cluster.fakes.json("get", "pods", "-n", ns)
    assert (listed["apiVersion"], listed["kind"], listed["metadata"]) == (
        "v1",
        "List",
        {"resourceVersion": ""},
    )
    pods = {p["metadata"]["labels"]["app"]: p for p in listed["items"]}
    pod = pods["api-server"]
    meta, spec, status = pod["metadata"], pod["spec"], pod["status"]
    template_hash = meta["labels"]["pod-template-hash"]
    assert re.fullmatch(f"api-server-{SAFE}{{10}}-{SAFE}{{5}}", meta["name"])
    assert meta["name"].startswith(f"api-server-{template_hash}-")
    assert meta["namespace"] == ns
    assert re.fullmatch(r"[0-9a-f-]{36}", meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    owner = meta["ownerReferences"][0]
    assert (owner["apiVersion"], owner["kind"], owner["name"], owner["controller"]) == (
        "apps/v1", "ReplicaSet", f"api-server-{template_hash}", True,
    )  # fmt: skip
    assert spec["containers"][0]["image"] == "example/api-server:sg-0123"
    assert spec["nodeName"] == cluster.node
    assert status["phase"] == "Running"
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [
        ("PodReadyToStartContainers", "True"), ("Initialized", "True"), ("Ready", "True"),
        ("ContainersReady", "True"), ("PodScheduled", "True"),
    ]  # fmt: skip
    container = status["containerStatuses"][0]
    assert set(container) == {
        "containerID", "image", "imageID", "lastState", "name", "ready", "restartCount", "started", "state", "volumeMounts",
    }  # fmt: skip
    assert container["containerID"].startswith("containerd://")
    assert re.fullmatch(r"docker\.io/example/api-server@sha256:[0-9a-f]{64}", container["imageID"])
    assert (container["ready"], container["started"], container["restartCount"], container["lastState"]) == (
        True,
        True,
        0,
        {},
    )
    assert set(container["state"]) == {"running"}
    assert re.fullmatch(r"10\.244\.0\.\d+", status["podIP"]) and status["hostIP"]
    assert status["startTime"] and status["qosClass"] == "BestEffort"

    assert cluster.pods(ns) == listed["items"]  # stable across calls
    assert [p["metadata"]["name"] for p in cluster.pods(ns, "-l", "app!=api-server")] == [
        pods["worker"]["metadata"]["name"]
    ]
    everywhere = cluster.fakes.json("get", "pods", "-A")["items"]
    assert {p["metadata"]["name"] for p in listed["items"]} <= {p["metadata"]["name"] for p in everywhere}
    single = cluster.fakes.json("get", "pod", meta["name"], "-n", ns)
    assert single == pod
    refused(
        cluster.fakes.kubectl("get", "pod", "ghost", "-n", ns, "-o", "json"),
        'Error from server (NotFound): pods "ghost" not found',
    )


def test_a_timeline_moves_the_pods_along(cluster: Cluster) -> None:
    cluster.fakes.scenario(
        workloads={
            "Deployment/api-server": [
                {"at": 0, "phase": "Pending", "waiting": "ContainerCreating"},
                {"at": LATER, "phase": "Running", "ready": True},
            ]
        },
        pullable=STACK_PULLABLE,
    )
    ns = cluster.deploy()
    applied = time.time()  # no earlier than the fake's apply time
    first = cluster.pods(ns, "-l", "app=api-server")[0]
    assert first["status"]["phase"] == "Pending"
    assert first["status"]["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert first["status"]["containerStatuses"][0]["imageID"] == ""
    assert "podIP" not in first["status"]
    ready = {c["type"]: c for c in first["status"]["conditions"]}["Ready"]
    assert (ready["reason"], ready["message"]) == (
        "ContainersNotReady",
        "containers with unready status: [api-server]",
    )
    assert cluster.pods(ns, "-l", "app=worker")[0]["status"]["phase"] == "Running"  # "*" absent: the default
    deployment = cluster.fakes.json("get", "deployments", "-n", ns)["items"][0]
    assert deployment["status"]["unavailableReplicas"] == 1
    assert [(c["type"], c["status"], c["reason"]) for c in deployment["status"]["conditions"]] == [
        ("Available", "False", "MinimumReplicasUnavailable"),
        ("Progressing", "True", "ReplicaSetUpdated"),
    ]
    wait_until(applied + LATER)
    later = cluster.pods(ns, "-l", "app=api-server")[0]
    assert later["metadata"]["name"] == first["metadata"]["name"]
    assert later["status"]["phase"] == "Running" and later["status"]["containerStatuses"][0]["ready"]
    deployment = cluster.fakes.json("get", "deployments,statefulsets", "-n", ns)["items"][0]
    assert {k: deployment["status"][k] for k in ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas")} == {
        "replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1,
    }  # fmt: skip
    assert [(c["type"], c["reason"]) for c in deployment["status"]["conditions"]] == [
        ("Available", "MinimumReplicasAvailable"),
        ("Progressing", "NewReplicaSetAvailable"),
    ]


def test_a_crash_looping_container(cluster: Cluster) -> None:
    """Mirrors a real CrashLoopBackOff containerStatus (traPtitech/NeoShowcase#725)."""
    cluster.fakes.scenario(
        workloads={
            "Deployment/api-server": [
                {
                    "at": 0,
                    "phase": "Running",
                    "waiting": "CrashLoopBackOff",
                    "restarts": 3,
                    "last_exit_code": 137,
                    "last_reason": "OOMKilled",
                }
            ]
        }
    )
    ns = cluster.deploy()
    pod = cluster.pods(ns, "-l", "app=api-server")[0]
    status = pod["status"]["containerStatuses"][0]
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    assert pod["status"]["phase"] == "Running"
    assert status["state"] == {
        "waiting": {
            "reason": "CrashLoopBackOff",
            "message": f"back-off 40s restarting failed container=api-server pod={name}_{ns}({uid})",
        }
    }
    terminated = status["lastState"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "OOMKilled")
    assert status["containerID"] == terminated["containerID"]
    assert (status["restartCount"], status["ready"], status["started"]) == (3, False, False)
    assert status["imageID"]

    events = [
        e
        for e in cluster.fakes.json("get", "events", "-n", ns)["items"]
        if e["involvedObject"]["name"] == name
    ]
    backoff = next(e for e in events if e["reason"] == "BackOff")
    assert (backoff["type"], backoff["count"], backoff["source"]) == (
        "Warning",
        3,
        {"component": "kubelet", "host": cluster.node},
    )
    assert backoff["message"] == f"Back-off restarting failed container api-server in pod {name}_{ns}({uid})"
    assert backoff["involvedObject"]["fieldPath"] == "spec.containers{api-server}"
    assert {e["reason"]: e["count"] for e in events if e["reason"] in ("Created", "Started")} == {
        "Created": 3,
        "Started": 3,
    }


def test_image_pull_back_off_and_its_events(cluster: Cluster) -> None:
    """Mirrors a real ImagePullBackOff containerStatus (podman-desktop/podman-desktop#7521)."""
    cluster.fakes.scenario(
        workloads={"Deployment/worker": [{"at": 0, "phase": "Pending", "waiting": "ImagePullBackOff"}]}
    )
    ns = cluster.deploy()
    pod = cluster.pods(ns, "-l", "app=worker")[0]
    status = pod["status"]["containerStatuses"][0]
    assert pod["status"]["phase"] == "Pending"
    assert status == {
        "image": "example/worker:sg-0123",
        "imageID": "",
        "lastState": {},
        "name": "worker",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {
            "waiting": {
                "message": 'Back-off pulling image "example/worker:sg-0123"',
                "reason": "ImagePullBackOff",
            }
        },
        "volumeMounts": status["volumeMounts"],
    }
    events = [
        e
        for e in cluster.fakes.json("get", "events", "-n", ns)["items"]
        if e["involvedObject"]["name"] == pod["metadata"]["name"]
    ]
    assert sorted((e["type"], e["reason"]) for e in events) == [
        ("Normal", "BackOff"), ("Normal", "Pulling"), ("Normal", "Scheduled"),
        ("Warning", "Failed"), ("Warning", "Failed"), ("Warning", "Failed"),
    ]  # fmt: skip
    messages = {e["message"] for e in events}
    assert "Error: ImagePullBackOff" in messages and "Error: ErrImagePull" in messages
    assert any(
        m.startswith(
            'Failed to pull image "example/worker:sg-0123": rpc error: code = Unknown desc = '
            'failed to pull and unpack image "docker.io/example/worker:sg-0123"'
        )
        for m in messages
    )
    scheduled = next(
        e for e in events if e["reason"] == "Scheduled"
    )  # events.k8s.io: no count, null timestamps
    assert (scheduled["firstTimestamp"], scheduled["lastTimestamp"], scheduled["reportingComponent"]) == (
        None,
        None,
        "default-scheduler",
    )
    assert scheduled["message"] == f"Successfully assigned {ns}/{pod['metadata']['name']} to {cluster.node}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", scheduled["eventTime"])
    for e in events:
        assert (
            e["apiVersion"],
            e["kind"],
            e["involvedObject"]["kind"],
            e["involvedObject"]["namespace"],
        ) == ("v1", "Event", "Pod", ns)
    controllers = {
        (e["involvedObject"]["kind"], e["reason"])
        for e in cluster.fakes.json("get", "events", "-n", ns)["items"]
    }
    assert {("Deployment", "ScalingReplicaSet"), ("ReplicaSet", "SuccessfulCreate")} <= controllers


PULL_REASONS = ("ErrImagePull", "ImagePullBackOff")


def waiting_reason(status: dict) -> str | None:
    return status["state"].get("waiting", {}).get("reason")


def test_a_never_loaded_image_fails_to_pull_then_backs_off(cluster: Cluster) -> None:
    """The default timeline on a real kind node: an image neither `kind load`ed nor pullable."""
    cluster.fakes.scenario(pullable=["example/worker"])  # api-server's image: neither
    for _ in range(3):  # a busy machine may take a second to apply and ask: then a new namespace
        started = time.time()
        ns = cluster.deploy()
        applied = time.time()  # no earlier than the fake's apply time
        first = cluster.fakes.json("get", "pods,events", "-n", ns)["items"]  # one call: one moment
        if time.time() - started < 1:
            break
    else:
        pytest.fail("three times too slow to see the first second after the apply")
    pod = next(o for o in first if o["kind"] == "Pod" and o["metadata"]["labels"]["app"] == "api-server")
    name = pod["metadata"]["name"]
    status = pod["status"]["containerStatuses"][0]
    pull_error = (
        'rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/example/api-server:sg-0123": '
        'failed to resolve reference "docker.io/example/api-server:sg-0123": pull access denied, repository '
        "does not exist or may require authorization: server message: insufficient_scope: authorization failed"
    )
    assert pod["status"]["phase"] == "Pending"
    assert status == {
        "image": "example/api-server:sg-0123",
        "imageID": "",
        "lastState": {},
        "name": "api-server",
        "ready": False,
        "restartCount": 0,
        "started": False,
        "state": {"waiting": {"message": pull_error, "reason": "ErrImagePull"}},
        "volumeMounts": status["volumeMounts"],
    }
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert (conditions["PodReadyToStartContainers"], conditions["Ready"]) == ("True", "False")
    assert pod["status"]["podIP"]  # the sandbox runs; only the image is missing
    events = [o for o in first if o["kind"] == "Event" and o["involvedObject"]["name"] == name]
    assert sorted((e["type"], e["reason"], e["message"]) for e in events if e["reason"] != "Scheduled") == [
        ("Normal", "Pulling", 'Pulling image "example/api-server:sg-0123"'),
        ("Warning", "Failed", "Error: ErrImagePull"),
        ("Warning", "Failed", f'Failed to pull image "example/api-server:sg-0123": {pull_error}'),
    ]
    assert cluster.pods(ns, "-l", "app=worker")[0]["status"]["phase"] == "Running"  # pullable
    deployment = cluster.fakes.json("get", "deployment", "api-server", "-n", ns)
    assert deployment["status"]["unavailableReplicas"] == 1

    wait_until(applied + 1)
    later = cluster.pods(ns, "-l", "app=api-server")[0]
    assert later["metadata"]["name"] == name and later["status"]["phase"] == "Pending"
    assert later["status"]["containerStatuses"][0]["state"] == {
        "waiting": {
            "message": 'Back-off pulling image "example/api-server:sg-0123"',
            "reason": "ImagePullBackOff",
        }
    }
    events = [
        e
        for e in cluster.fakes.json("get", "events", "-n", ns)["items"]
        if e["involvedObject"]["name"] == name
    ]
    assert {(e["reason"], e["message"]) for e in events} >= {
        ("BackOff", 'Back-off pulling image "example/api-server:sg-0123"'),
        ("Failed", "Error: ImagePullBackOff"),
        ("Failed", f'Failed to pull image "example/api-server:sg-0123": {pull_error}'),
    }
    refused(
        cluster.fakes.kubectl("logs", name, "-n", ns),
        f'container "api-server" in pod "{name}" is waiting to start: trying and failing to pull image',
    )
    describe = ok(cluster.fakes.kubectl("describe", "pods", name, "-n", ns)).stdout.splitlines()
    assert "      Reason:       ImagePullBackOff" in describe


LOADED = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: NS}}
- apiVersion: v1
  kind: Pod
  metadata: {name: loaded, namespace: NS}
  spec:
    initContainers: [{name: init, image: IMAGE}]
    containers: [{name: app, image: docker.io/IMAGE}]
- apiVersion: v1
  kind: Pod
  metadata: {name: half, namespace: NS}
  spec:
    initContainers: [{name: init, image: IMAGE}]
    containers: [{name: app, image: IMAGE}, {name: extra, image: sgfake-ghost/extra:1}]
- apiVersion: v1
  kind: Pod
  metadata: {name: blocked, namespace: NS}
  spec:
    initContainers:
      - {name: first, image: IMAGE}
      - {name: second, image: sgfake-ghost/init:1}
      - {name: third, image: IMAGE}
    containers: [{name: app, image: IMAGE}]
"""


def test_a_loaded_image_runs(cluster: Cluster, loadable_image: str) -> None:
    cluster.fakes.scenario()
    ns = cluster.deploy(LOADED.replace("IMAGE", loadable_image))
    before = {p["metadata"]["name"]: p["status"] for p in cluster.pods(ns)}
    assert before["loaded"]["phase"] == "Pending"
    assert waiting_reason(before["loaded"]["initContainerStatuses"][0]) in PULL_REASONS
    assert waiting_reason(before["loaded"]["containerStatuses"][0]) == "PodInitializing"

    ok(cluster.fakes.kind("load", "docker-image", loadable_image, "--name", cluster.name))
    pods = {p["metadata"]["name"]: p["status"] for p in cluster.pods(ns)}
    loaded = pods["loaded"]
    assert loaded["phase"] == "Running"
    assert loaded["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert [(s["name"], s["ready"], set(s["state"])) for s in loaded["containerStatuses"]] == [
        ("app", True, {"running"})
    ]
    assert all(c["status"] == "True" for c in loaded["conditions"])

    half = pods["half"]  # init done; the container with a missing image waits, the other runs
    assert half["phase"] == "Pending"
    assert half["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    app, extra = half["containerStatuses"]
    assert (app["name"], app["ready"], set(app["state"])) == ("app", True, {"running"})
    assert (extra["name"], extra["ready"], waiting_reason(extra) in PULL_REASONS) == ("extra", False, True)
    ready = {c["type"]: c for c in half["conditions"]}["Ready"]
    assert ready["message"] == "containers with unready status: [extra]"

    blocked = pods["blocked"]  # init containers run in order: the second cannot be pulled
    first, second, third = blocked["initContainerStatuses"]
    assert first["state"]["terminated"]["reason"] == "Completed"
    assert waiting_reason(second) in PULL_REASONS
    assert waiting_reason(third) == waiting_reason(blocked["containerStatuses"][0]) == "PodInitializing"
    initialized = {c["type"]: c for c in blocked["conditions"]}["Initialized"]
    assert initialized["message"] == "containers with incomplete status: [second third]"


PULLABLE = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: NS}}
- {apiVersion: v1, kind: Pod, metadata: {name: tagged, namespace: NS}, spec: {containers: [{name: c, image: "busybox:1.36"}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: qualified, namespace: NS}, spec: {containers: [{name: c, image: "docker.io/library/busybox:1.36"}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: other-tag, namespace: NS}, spec: {containers: [{name: c, image: "busybox:1.35"}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: untagged, namespace: NS}, spec: {containers: [{name: c, image: busybox}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: digest, namespace: NS}, spec: {containers: [{name: c, image: "busybox@sha256:DIGEST"}]}}
""".replace("DIGEST", "ab" * 32)


def test_a_pullable_image_runs(cluster: Cluster) -> None:
    cluster.fakes.scenario(
        pullable=["busybox:1.36"]
    )  # one tag: busybox:1.36 is docker.io/library/busybox:1.36
    ns = cluster.deploy(PULLABLE)
    phases = {p["metadata"]["name"]: p["status"]["phase"] for p in cluster.pods(ns)}
    assert phases == {
        "tagged": "Running",
        "qualified": "Running",
        "other-tag": "Pending",
        "untagged": "Pending",  # busybox:latest
        "digest": "Pending",
    }
    running = cluster.fakes.json("get", "pod", "tagged", "-n", ns)["status"]["containerStatuses"][0]
    assert (running["ready"], running["imageID"].startswith("docker.io/library/busybox@sha256:")) == (
        True,
        True,
    )
    cluster.fakes.scenario(pullable=["busybox"])  # the repository: any tag or digest
    assert {p["status"]["phase"] for p in cluster.pods(ns)} == {"Running"}
    cluster.fakes.scenario(pullable=["docker.io/library/busybox@sha256:" + "ab" * 32, "busybox:1.35"])
    phases = {p["metadata"]["name"]: p["status"]["phase"] for p in cluster.pods(ns)}
    assert (phases["digest"], phases["other-tag"], phases["tagged"]) == ("Running", "Running", "Pending")


def test_a_scripted_timeline_wins_over_the_image_check(cluster: Cluster) -> None:
    cluster.fakes.scenario(workloads={"Deployment/worker": [{"at": 0, "phase": "Running", "ready": True}]})
    ns = cluster.deploy()  # neither image loaded nor pullable
    worker = cluster.pods(ns, "-l", "app=worker")[0]["status"]
    assert (worker["phase"], worker["containerStatuses"][0]["ready"]) == ("Running", True)
    api = cluster.pods(ns, "-l", "app=api-server")[0]["status"]  # no entry: the default applies
    assert waiting_reason(api["containerStatuses"][0]) in PULL_REASONS
    cluster.fakes.scenario(workloads={"*": [{"at": 0, "phase": "Running", "ready": True}]})
    assert {p["status"]["phase"] for p in cluster.pods(ns)} == {"Running"}
    cluster.fakes.scenario(
        workloads={"*": [{"at": 0, "phase": "Pending", "waiting": "ContainerCreating"}]},
        pullable=STACK_PULLABLE,
    )
    assert {waiting_reason(p["status"]["containerStatuses"][0]) for p in cluster.pods(ns)} == {
        "ContainerCreating"
    }


MORE = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: NS}}
- apiVersion: apps/v1
  kind: StatefulSet
  metadata: {name: db, namespace: NS}
  spec:
    replicas: 2
    selector: {matchLabels: {app: db}}
    template:
      metadata: {labels: {app: db}}
      spec:
        initContainers: [{name: init-db, image: busybox:1.36}]
        containers: [{name: db, image: busybox:1.36}, {name: sidecar, image: busybox:1.36}]
- apiVersion: batch/v1
  kind: Job
  metadata: {name: migrate, namespace: NS}
  spec:
    template:
      spec:
        restartPolicy: Never
        containers: [{name: migrate, image: busybox:1.36}]
- apiVersion: apps/v1
  kind: DaemonSet
  metadata: {name: agent, namespace: NS}
  spec:
    selector: {matchLabels: {app: agent}}
    template:
      metadata: {labels: {app: agent}}
      spec:
        containers: [{name: agent, image: busybox}]
- apiVersion: v1
  kind: Pod
  metadata: {name: lonely, namespace: NS, labels: {app: lonely}}
  spec:
    containers: [{name: lonely, image: busybox:1.36}]
"""


def test_other_workloads_init_containers_and_unschedulable_pods(cluster: Cluster) -> None:
    cluster.fakes.scenario(
        workloads={
            "StatefulSet/db": [
                {"at": 0, "phase": "Pending", "init": {"waiting": "CrashLoopBackOff", "restarts": 2}},
                {"at": LATER, "phase": "Running", "container": "sidecar", "ready": False},
            ],
            "Job/migrate": [{"at": 0, "phase": "Succeeded"}],
            "Pod/lonely": [
                {"at": 0, "scheduled": False, "message": "0/1 nodes are available: 1 Insufficient memory."}
            ],
        },
        pullable=["busybox"],  # the DaemonSet's, on the default timeline
    )
    ns = cluster.deploy(MORE)
    applied = time.time()  # no earlier than the fake's apply time
    pods = {p["metadata"]["name"]: p for p in cluster.pods(ns)}
    assert {"db-0", "db-1", "lonely"} <= set(pods)
    assert re.fullmatch(f"agent-{SAFE}{{5}}", next(n for n in pods if n.startswith("agent-")))
    db = pods["db-0"]["status"]
    assert db["phase"] == "Pending"
    assert db["initContainerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert [s["state"]["waiting"]["reason"] for s in db["containerStatuses"]] == [
        "PodInitializing",
        "PodInitializing",
    ]
    initialized = {c["type"]: c for c in db["conditions"]}["Initialized"]
    assert (initialized["status"], initialized["reason"], initialized["message"]) == (
        "False", "ContainersNotInitialized", "containers with incomplete status: [init-db]",
    )  # fmt: skip
    assert pods["db-0"]["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-0"

    lonely = pods["lonely"]
    assert [p["metadata"]["name"] for p in cluster.pods(ns, "-l", "app=lonely")] == ["lonely"]
    assert lonely["status"] == {
        "conditions": [
            {
                "lastProbeTime": None,
                "lastTransitionTime": lonely["metadata"]["creationTimestamp"],
                "message": "0/1 nodes are available: 1 Insufficient memory.",
                "reason": "Unschedulable",
                "status": "False",
                "type": "PodScheduled",
            }
        ],
        "phase": "Pending",
        "qosClass": "BestEffort",
    }
    migrate = next(p for n, p in pods.items() if n.startswith("migrate-"))
    assert migrate["metadata"]["labels"]["job-name"] == "migrate"
    assert migrate["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"

    job = cluster.fakes.json("get", "jobs", "-n", ns)["items"][0]
    assert job["status"]["succeeded"] == 1
    assert [c["type"] for c in job["status"]["conditions"]] == ["SuccessCriteriaMet", "Complete"]
    daemonset = cluster.fakes.json("get", "daemonsets", "-n", ns)["items"][0]
    assert (daemonset["status"]["desiredNumberScheduled"], daemonset["status"]["numberReady"]) == (1, 1)
    events = cluster.fakes.json("get", "events", "-n", ns)["items"]
    failed_scheduling = next(e for e in events if e["reason"] == "FailedScheduling")
    assert (failed_scheduling["type"], failed_scheduling["message"]) == (
        "Warning",
        "0/1 nodes are available: 1 Insufficient memory.",
    )

    wait_until(applied + LATER)
    db = {p["metadata"]["name"]: p for p in cluster.pods(ns)}["db-1"]["status"]
    assert db["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert [(s["name"], s["ready"]) for s in db["containerStatuses"]] == [("db", True), ("sidecar", False)]
    statefulset = cluster.fakes.json("get", "sts", "-n", ns)["items"][0]["status"]
    assert (statefulset["replicas"], statefulset["availableReplicas"], "readyReplicas" in statefulset) == (
        2,
        0,
        False,
    )


def test_describe_pods(cluster: Cluster) -> None:
    cluster.fakes.scenario(
        workloads={
            "Deployment/api-server": [
                {"at": 0, "phase": "Running", "waiting": "CrashLoopBackOff", "restarts": 2}
            ]
        }
    )
    ns = cluster.deploy()
    text = ok(
        cluster.fakes.kubectl("describe", "pods", "api-server", "-n", ns)
    ).stdout  # a name prefix, like kubectl
    name = cluster.pods(ns, "-l", "app=api-server")[0]["metadata"]["name"]
    lines = text.splitlines()
    assert lines[0] == f"Name:             {name}"
    assert f"Namespace:        {ns}" in lines
    assert "Status:           Running" in lines
    assert f"Controlled By:  ReplicaSet/{name.rsplit('-', 1)[0]}" in lines
    assert "    State:          Waiting" in lines and "      Reason:       CrashLoopBackOff" in lines
    assert "    Last State:     Terminated" in lines and "      Exit Code:    1" in lines
    assert "    Restart Count:  2" in lines
    assert (
        "    Readiness:      http-get http://:http/healthz delay=0s timeout=1s period=2s #success=1 #failure=3"
        in lines
    )
    assert any(
        re.fullmatch(
            r"  Warning  BackOff +\d+s \(x2 over \d+s\) +kubelet +Back-off restarting failed container api-server .*",
            line,
        )
        for line in lines
    )
    both = ok(cluster.fakes.kubectl("describe", "pods", "-n", ns)).stdout
    assert both.count("\nName:") == 1 and both.startswith("Name:")
    refused(
        cluster.fakes.kubectl("describe", "pods", "ghost", "-n", ns),
        'Error from server (NotFound): pods "ghost" not found',
    )
    empty = ok(cluster.fakes.kubectl("describe", "pods", "-n", "nothing-here"))
    assert empty.stderr == "No resources found in nothing-here namespace.\n"


def test_logs(cluster: Cluster) -> None:
    cluster.fakes.scenario(
        logs={"api-server": "one\ntwo\nthree", "api-server:previous": "Traceback ...\nValueError: boom"},
        workloads={
            "Deployment/api-server": [{"at": 0, "phase": "Running", "restarts": 1, "ready": True}],
            "Deployment/worker": [{"at": 0, "phase": "Pending", "waiting": "ErrImagePull"}],
        },
    )
    ns = cluster.deploy()
    api = cluster.pods(ns, "-l", "app=api-server")[0]["metadata"]["name"]
    worker = cluster.pods(ns, "-l", "app=worker")[0]["metadata"]["name"]
    assert ok(cluster.fakes.kubectl("logs", api, "-n", ns)).stdout == "one\ntwo\nthree\n"
    assert ok(cluster.fakes.kubectl("logs", f"pod/{api}", "-n", ns, "--tail=2")).stdout == "two\nthree\n"
    assert (
        ok(cluster.fakes.kubectl("logs", api, "-n", ns, "-c", "api-server", "-p")).stdout
        == "Traceback ...\nValueError: boom\n"
    )
    refused(
        cluster.fakes.kubectl("logs", worker, "-n", ns),
        f'Error from server (BadRequest): container "worker" in pod "{worker}" is waiting to start: image can\'t be pulled',
    )
    refused(
        cluster.fakes.kubectl("logs", worker, "-n", ns, "--previous"),
        f'Error from server (BadRequest): previous terminated container "worker" in pod "{worker}" not found',
    )
    refused(
        cluster.fakes.kubectl("logs", api, "-n", ns, "-c", "nope"),
        f"error: container nope is not valid for pod {api}",
    )
    refused(
        cluster.fakes.kubectl("logs", "ghost", "-n", ns),
        'Error from server (NotFound): pods "ghost" not found',
    )


@dataclass
class EchoServer:
    port: int
    sock: socket.socket

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"echo:" + conn.recv(1024))


@pytest.fixture
def echo_server() -> Iterator[EchoServer]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    server = EchoServer(sock.getsockname()[1], sock)
    threading.Thread(target=server.serve, daemon=True).start()
    yield server
    sock.close()


def port_forward(cluster: Cluster, *args: str) -> subprocess.Popen:
    return signallable(
        ["kubectl", "--kubeconfig", str(cluster.fakes.kubeconfig), "port-forward", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cluster.fakes.env(),
    )


def exchange(port: int, data: bytes) -> bytes:
    """What comes back for ``data``; b"" when the other side closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(data)
        try:
            return conn.recv(1024)
        except ConnectionResetError:
            return b""


def test_port_forward_proxies_to_the_scenario_address(cluster: Cluster, echo_server: EchoServer) -> None:
    cluster.fakes.scenario(
        port_forward={"service/api-server": f"127.0.0.1:{echo_server.port}"}, pullable=STACK_PULLABLE
    )
    ns = cluster.deploy()
    process = port_forward(cluster, "-n", ns, "svc/api-server", ":80", "--address", "127.0.0.1")
    try:
        first = process.stdout.readline()
        match = re.fullmatch(
            r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080\n", first
        )  # service port 80 -> targetPort http
        assert match, first + process.stderr.read()
        local = int(match[1])
        assert exchange(local, b"ping") == b"echo:ping"
        assert process.stdout.readline() == f"Handling connection for {local}\n"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0  # kubectl stops cleanly on SIGTERM and SIGINT
    finally:
        process.kill()
        process.wait()
    call = cluster.fakes.calls()[-1]
    assert (call["argv"][2:5], call["exit_code"]) == (["port-forward", "-n", ns], 0)


def test_port_forward_without_a_scenario_address_closes_connections(cluster: Cluster) -> None:
    cluster.fakes.scenario(pullable=STACK_PULLABLE)
    ns = cluster.deploy()
    pod = cluster.pods(ns, "-l", "app=worker")[0]["metadata"]["name"]
    process = port_forward(cluster, "-n", ns, f"pod/{pod}", ":9000")
    try:
        lines = [process.stdout.readline()]
        assert re.fullmatch(r"Forwarding from 127\.0\.0\.1:\d+ -> 9000\n", lines[0])
        local = int(lines[0].split(":")[1].split()[0])
        assert exchange(local, b"ping") == b""
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        stdout, stderr = process.communicate()
        assert f"Handling connection for {local}" in stdout
        assert f'"Unhandled Error" err="an error occurred forwarding {local} -> 9000' in stderr
    finally:
        process.kill()
        process.wait()


def test_port_forward_refusals(cluster: Cluster) -> None:
    cluster.fakes.scenario(
        workloads={"Deployment/api-server": [{"at": 0, "phase": "Pending", "waiting": "ContainerCreating"}]}
    )
    ns = cluster.deploy()
    kubectl = cluster.fakes.kubectl
    refused(
        kubectl("port-forward", "-n", ns, "svc/ghost", ":80"),
        'Error from server (NotFound): services "ghost" not found',
    )
    refused(
        kubectl("port-forward", "-n", ns, "pod/ghost", ":80"),
        'Error from server (NotFound): pods "ghost" not found',
    )
    refused(
        kubectl("port-forward", "-n", ns, "service/api-server", ":80"),
        "error: unable to forward port because pod is not running. Current status=Pending",
    )
    cluster.fakes.scenario(pullable=STACK_PULLABLE)
    refused(
        kubectl("port-forward", "-n", ns, "svc/api-server", ":9999"),
        "error: service api-server does not have a service port 9999",
    )


@pytest.mark.parametrize(
    ("resource", "remote"), [("deployment/api-server", ":http"), ("deploy/api-server", ":8080")]
)
def test_port_forward_to_a_deployment_reaches_its_pod_by_port_number_and_name(
    cluster: Cluster, echo_server: EchoServer, resource: str, remote: str
) -> None:
    cluster.fakes.scenario(
        port_forward={"deployment/api-server": f"127.0.0.1:{echo_server.port}"}, pullable=STACK_PULLABLE
    )
    ns = cluster.deploy()
    process = port_forward(cluster, "-n", ns, resource, remote, "--address", "127.0.0.1")
    try:
        first = process.stdout.readline()
        match = re.fullmatch(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080\n", first)  # the name resolved
        assert match, first + process.stderr.read()
        assert exchange(int(match[1]), b"ping") == b"echo:ping"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()


def test_port_forward_to_workloads_refuses_as_kubectl_does(cluster: Cluster) -> None:
    cluster.fakes.scenario(pullable=STACK_PULLABLE)
    ns = cluster.deploy()
    kubectl = cluster.fakes.kubectl
    refused(
        kubectl("port-forward", "-n", ns, "deployment/ghost", ":80"),
        'Error from server (NotFound): deployments.apps "ghost" not found',
    )
    refused(
        kubectl("port-forward", "-n", ns, "sts/ghost", ":80"),
        'Error from server (NotFound): statefulsets.apps "ghost" not found',
    )
    api_pod = cluster.pods(ns, "-l", "app=api-server")[0]["metadata"]["name"]
    refused(
        kubectl("port-forward", "-n", ns, "deployment/api-server", ":grpc"),
        f"error: Pod '{api_pod}' does not have a named port 'grpc'",
    )
    worker_pod = cluster.pods(ns, "-l", "app=worker")[0]["metadata"]["name"]
    refused(
        kubectl("port-forward", "-n", ns, f"pod/{worker_pod}", ":http"),
        f"error: Pod '{worker_pod}' does not have a named port 'http'",
    )
    cluster.fakes.scenario(
        workloads={"Deployment/worker": [{"at": 0, "phase": "Pending", "waiting": "ContainerCreating"}]}
    )
    refused(
        kubectl("port-forward", "-n", ns, "deployment/worker", ":9000"),
        "error: unable to forward port because pod is not running. Current status=Pending",
    )


def test_delete(cluster: Cluster, tmp_path: Path) -> None:
    cluster.fakes.scenario(pullable=STACK_PULLABLE)
    ns = f"t-{secrets.token_hex(3)}"
    path = tmp_path / "stack.yaml"
    path.write_text(stack(ns))
    ok(cluster.fakes.kubectl("apply", "-f", str(path)))
    deployment = tmp_path / "deployment.yaml"
    deployment.write_text(path.read_text().split("---")[1])
    pod = cluster.pods(ns, "-l", "app=api-server")[0]["metadata"]["name"]
    assert (
        ok(cluster.fakes.kubectl("delete", "-f", str(deployment), "--wait=false")).stdout
        == 'deployment.apps "api-server" deleted\n'
    )
    assert [p["metadata"]["labels"]["app"] for p in cluster.pods(ns)] == ["worker"]
    killing = [e for e in cluster.fakes.json("get", "events", "-n", ns)["items"] if e["reason"] == "Killing"]
    assert [(e["involvedObject"]["name"], e["message"]) for e in killing] == [
        (pod, "Stopping container api-server")
    ]
    refused(
        cluster.fakes.kubectl("delete", "-f", str(deployment)),
        f'Error from server (NotFound): error when deleting "{deployment}": deployments.apps "api-server" not found',
    )
    assert ok(cluster.fakes.kubectl("delete", "-f", str(deployment), "--ignore-not-found")).stdout == ""
    everything = ok(cluster.fakes.kubectl("delete", "-f", str(path), "--ignore-not-found", "--wait=false"))
    assert everything.stdout.splitlines() == [
        f'namespace "{ns}" deleted',
        'service "api-server" deleted',
        'deployment.apps "worker" deleted',
    ]
    assert cluster.pods(ns) == [] and cluster.fakes.json("get", "events", "-n", ns)["items"] == []
    refused(
        cluster.fakes.kubectl("delete", "namespace", ns),
        f'Error from server (NotFound): namespaces "{ns}" not found',
    )
    refused(
        cluster.fakes.kubectl("delete", "namespace", "default"),
        'namespaces "default" is forbidden: this namespace may not be deleted',
    )


def test_load_fails_as_scripted_then_succeeds_and_crictl_sees_it(
    cluster: Cluster, loadable_image: str, docker
) -> None:
    image_id = docker.image.inspect(loadable_image).id
    cluster.fakes.scenario(load_failures={loadable_image: 1})
    load = ("load", "docker-image", loadable_image, "--name", cluster.name)
    loading = (
        f'Image: "{loadable_image}" with ID "{image_id}" not yet present on node "{cluster.node}", loading...'
    )
    failed = cluster.fakes.kind(*load)
    refused(
        failed,
        f'ERROR: failed to load image: command "docker exec --privileged -i {cluster.node} ctr --namespace=k8s.io '
        'images import --all-platforms --digests --snapshotter=overlayfs -" failed with error: exit status 1',
    )
    assert failed.stderr.startswith(loading + "\n")
    assert ok(cluster.fakes.kind(*load)).stderr == loading + "\n"
    present = ok(cluster.fakes.kind(*load, "--nodes", cluster.node))
    assert (
        present.stderr
        == f'Image: "{loadable_image}" with ID "{image_id}" found to be already present on all nodes.\n'
    )

    def crictl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", "exec", cluster.node, "crictl", *args], capture_output=True, text=True
        )

    for ref in (loadable_image, f"docker.io/{loadable_image}", image_id):
        inspected = json.loads(ok(crictl("inspecti", "-o", "json", ref)).stdout)
        assert inspected == {
            "status": {
                "id": image_id,
                "repoTags": [f"docker.io/{loadable_image}"],
                "repoDigests": [],
                "size": inspected["status"]["size"],
                "uid": None,
                "username": "",
                "spec": None,
                "pinned": False,
            },
            "info": {},
        }
    missing = crictl("inspecti", "-o", "json", "ghost:1")
    assert missing.returncode == 1
    assert re.fullmatch(
        r'time="[^"]+" level=fatal msg="no such image \\"ghost:1\\" present"\n', missing.stderr
    )
    assert crictl("images").returncode == 1
    refused(
        cluster.fakes.kind("load", "docker-image", "sgfake-ghost/x:1", "--name", cluster.name),
        'ERROR: image: "sgfake-ghost/x:1" not present locally',
    )
    refused(cluster.fakes.kind(*load[:3], "--name", "ghost"), 'ERROR: no nodes found for cluster "ghost"')
    refused(cluster.fakes.kind(*load, "--nodes", "ghost-node"), 'ERROR: unknown node: "ghost-node"')


def test_export_logs(cluster: Cluster, tmp_path: Path) -> None:
    cluster.fakes.scenario(logs={"worker": "worker is up"})
    ns = cluster.deploy()
    target = tmp_path / "logs"
    result = ok(cluster.fakes.kind("export", "logs", str(target), "--name", cluster.name))
    assert (result.stdout, result.stderr) == (
        f"{target}\n",
        f'Exporting logs for cluster "{cluster.name}" to:\n',
    )
    assert (target / "kind-version.txt").read_text().startswith("kind v0.27.0")
    assert (target / cluster.node / "kubelet.log").exists() and (target / "docker-info.txt").exists()
    assert json.loads((target / cluster.node / "inspect.json").read_text())[0]["Name"] == f"/{cluster.node}"
    worker = cluster.pods(ns, "-l", "app=worker")[0]["metadata"]
    log = target / cluster.node / "pods" / f"{ns}_{worker['name']}_{worker['uid']}" / "worker" / "0.log"
    assert log.read_text() == "worker is up\n"


def test_a_bad_scenario_is_refused(cluster: Cluster) -> None:
    cluster.fakes.scenario(workload={})
    refused(cluster.fakes.kubectl("get", "pods", "-o", "json"), "unknown keys ['workload']")
    cluster.fakes.scenario(workloads={"*": [{"at": 0, "phase": "Runing"}]})
    refused(cluster.fakes.kubectl("get", "pods", "-o", "json"), "phase 'Runing' is not one of")
    cluster.fakes.scenario(workloads={"*": [{"at": 0, "waiting": "Sleeping"}]})
    refused(cluster.fakes.kubectl("get", "pods", "-o", "json"), "waiting 'Sleeping' is not one of")
    for pullable in ("busybox", [1], [""], ["busy box"]):
        cluster.fakes.scenario(pullable=pullable)
        refused(
            cluster.fakes.kubectl("get", "pods", "-o", "json"),
            "pullable must be a list of image references or repositories",
        )
    cluster.fakes.scenario()


def test_delete_pod_replaces_a_workloads_pod_with_a_new_one_following_replacements(cluster: Cluster) -> None:
    cluster.fakes.scenario(
        workloads={"Deployment/api-server": [{"at": 0, "phase": "Running", "waiting": "CrashLoopBackOff"}]},
        replacements={"Deployment/api-server": [{"at": 0, "phase": "Running", "ready": True}]},
        pullable=STACK_PULLABLE,
    )
    ns = cluster.deploy()
    old = cluster.pods(ns, "-l", "app=api-server")[0]
    assert old["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    name = old["metadata"]["name"]
    deleted = ok(cluster.fakes.kubectl("delete", "pod", name, "-n", ns, "--wait=false"))
    assert deleted.stdout == f'pod "{name}" deleted\n'
    new = cluster.pods(ns, "-l", "app=api-server")
    assert len(new) == 1 and new[0]["metadata"]["name"] != name
    assert new[0]["metadata"]["uid"] != old["metadata"]["uid"]
    assert new[0]["metadata"]["name"].startswith(name.rsplit("-", 1)[0] + "-")  # same ReplicaSet
    assert new[0]["status"]["containerStatuses"][0]["ready"] is True
    refused(
        cluster.fakes.kubectl("delete", "pod", name, "-n", ns),
        f'Error from server (NotFound): pods "{name}" not found',
    )
