"""The fake kubectl apply refuses what a v1.32 API server refuses, in kubectl's words, through
`kubectl apply` on a fake cluster (its node a container on the real engine): the exit code, the
per-object ContinueOnError, "nothing of a refused object is stored"; and ReplicaSets, apply's
flags and get's outputs there. The messages themselves: tests/unit/test_fakes_strict.py.
"""

from __future__ import annotations

import copy
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.integration.test_fakes import Cluster, fake_cluster
from tests.unit.test_fakes import ok
from tests.unit.test_fakes_strict import DEPLOYMENT, INVALID, ROOT, container, deployment, real_kubectl

pytestmark = pytest.mark.docker


# -- through kubectl apply ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(docker, busybox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with fake_cluster(tmp_path_factory.mktemp("fake-cluster")) as made:
        yield made


def as_yaml(*objects: dict) -> str:
    return yaml.safe_dump_all(list(objects), sort_keys=False)


@pytest.mark.parametrize(("what", "obj", "reason", "message"), INVALID, ids=[i[0] for i in INVALID])
def test_apply_refuses_with_kubectls_words_and_stores_nothing(
    cluster: Cluster, what: str, obj: dict, reason: str, message: str
) -> None:
    obj = copy.deepcopy(obj)
    obj["metadata"]["namespace"] = "default"
    result = cluster.fakes.kubectl("apply", "-f", "-", stdin=as_yaml(obj))
    assert result.returncode == 1, result
    assert result.stderr == message + "\n"
    assert result.stdout == ""
    listed = cluster.fakes.json("get", "deployments", "-n", "default")["items"]
    assert obj["metadata"]["name"] not in [d["metadata"]["name"] for d in listed]


def test_apply_goes_on_past_a_refused_object_and_reports_all_at_the_end(cluster: Cluster) -> None:
    ns = cluster.deploy("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: NS\n")
    good = copy.deepcopy(DEPLOYMENT)
    good["metadata"] = {"name": "before", "namespace": ns}
    bad_one = deployment(lambda o: o["spec"].update(replicas="two"))
    bad_one["metadata"] = {"name": "bad-one", "namespace": ns}
    bad_two = deployment(lambda o: container(o).pop("image"))
    bad_two["metadata"] = {"name": "bad-two", "namespace": ns}
    after = copy.deepcopy(DEPLOYMENT)
    after["metadata"] = {"name": "after", "namespace": ns}
    result = cluster.fakes.kubectl("apply", "-f", "-", stdin=as_yaml(good, bad_one, bad_two, after))
    assert result.returncode == 1
    assert result.stdout == "deployment.apps/before created\ndeployment.apps/after created\n"
    assert result.stderr == textwrap.dedent("""\
        Error from server (BadRequest): error when creating "STDIN": Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32
        Error from server (Invalid): error when creating "STDIN": Deployment.apps "bad-two" is invalid: spec.template.spec.containers[0].image: Required value
        """)
    names = [d["metadata"]["name"] for d in cluster.fakes.json("get", "deployments", "-n", ns)["items"]]
    assert names == ["after", "before"]
    # a refused update leaves the stored object as it was
    broken = copy.deepcopy(good)
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "sometimes"
    result = cluster.fakes.kubectl("apply", "-f", "-", stdin=as_yaml(broken))
    assert result.returncode == 1
    assert result.stderr.startswith('The Deployment "before" is invalid: ')
    stored = cluster.fakes.json("get", "deployments", "before", "-n", ns)
    assert stored["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_the_realistic_repositorys_manifests_apply(cluster: Cluster, tmp_path: Path) -> None:
    k8s = ROOT / "tests" / "fixtures" / "realistic-repo" / "k8s"
    first = [k8s / "namespace.yaml", k8s / "featureflags-crd.yaml"]
    for path in first:
        ok(cluster.fakes.kubectl("apply", "-f", str(path)))
    for path in sorted(k8s.glob("*.yaml")):
        if path not in first and path.name != "kustomization.yaml":
            ok(cluster.fakes.kubectl("apply", "-f", str(path)))


# -- kubectl get replicasets ------------------------------------------------------------------------


def test_replicasets_of_deployments_own_their_pods(cluster: Cluster) -> None:
    cluster.fakes.scenario(pullable=["example/web"])
    ns = cluster.deploy("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: NS\n")
    web = copy.deepcopy(DEPLOYMENT)
    web["metadata"]["namespace"] = ns
    bare = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": "bare", "namespace": ns},
        "spec": copy.deepcopy({k: v for k, v in DEPLOYMENT["spec"].items() if k != "replicas"}),
    }
    bare["spec"]["selector"] = {"matchLabels": {"app": "bare"}}
    bare["spec"]["template"]["metadata"]["labels"] = {"app": "bare"}
    ok(cluster.fakes.kubectl("apply", "-f", "-", stdin=as_yaml(web, bare)))
    listed = cluster.fakes.json("get", "rs", "-n", ns)
    assert listed["kind"] == "List"
    by_name = {rs["metadata"]["name"]: rs for rs in listed["items"]}
    assert "bare" in by_name
    (web_rs,) = [rs for name, rs in by_name.items() if name.startswith("web-")]
    deployment = cluster.fakes.json("get", "deployments", "web", "-n", ns)
    rs_hash = web_rs["metadata"]["labels"]["pod-template-hash"]
    assert web_rs["metadata"]["name"] == f"web-{rs_hash}"
    assert web_rs["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "blockOwnerDeletion": True,
            "controller": True,
            "kind": "Deployment",
            "name": "web",
            "uid": deployment["metadata"]["uid"],
        }
    ]
    assert web_rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": rs_hash}}
    assert web_rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "2"
    assert web_rs["status"] == {
        "availableReplicas": 2,
        "fullyLabeledReplicas": 2,
        "observedGeneration": 1,
        "readyReplicas": 2,
        "replicas": 2,
    }
    pods = cluster.pods(ns, "-l", "app=web")
    assert len(pods) == 2
    for pod in pods:
        (owner,) = pod["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"]) == (
            "ReplicaSet",
            web_rs["metadata"]["name"],
            web_rs["metadata"]["uid"],
        )
        assert pod["metadata"]["labels"]["pod-template-hash"] == rs_hash
    (bare_pod,) = cluster.pods(ns, "-l", "app=bare")
    assert bare_pod["metadata"]["ownerReferences"][0]["uid"] == by_name["bare"]["metadata"]["uid"]
    assert by_name["bare"]["status"]["replicas"] == 1
    assert cluster.fakes.json("get", "replicasets.apps", web_rs["metadata"]["name"], "-n", ns) == web_rs


# -- flags ----------------------------------------------------------------------------------------


def test_apply_flags_real_kubectl_has(cluster: Cluster, tmp_path: Path) -> None:
    ns = cluster.deploy("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: NS\n")
    web = copy.deepcopy(DEPLOYMENT)
    web["metadata"]["namespace"] = ns
    manifest = as_yaml(web)
    kubectl = cluster.fakes.kubectl
    assert ok(kubectl("apply", "--dry-run=client", "-f", "-", stdin=manifest)).stdout == (
        "deployment.apps/web created (dry run)\n"
    )
    assert ok(kubectl("apply", "--dry-run=server", "-f", "-", stdin=manifest)).stdout == (
        "deployment.apps/web created (server dry run)\n"
    )
    assert cluster.fakes.json("get", "deployments", "-n", ns)["items"] == []
    bad = as_yaml(
        deployment(lambda o: (o["metadata"].update(namespace=ns), o["spec"].update(replicas="two")))
    )
    assert kubectl("apply", "--dry-run=server", "-f", "-", stdin=bad).returncode == 1  # the server checks
    assert (
        ok(kubectl("apply", "--dry-run=client", "-f", "-", stdin=bad)).returncode == 0
    )  # the client does not
    assert ok(kubectl("apply", "-o", "name", "-f", "-", stdin=manifest)).stdout == "deployment.apps/web\n"
    server_side = as_yaml({**web, "metadata": {"name": "ssa", "namespace": ns}})
    result = ok(
        kubectl(
            "--request-timeout=30s",
            "-v",
            "2",
            "apply",
            "--server-side",
            "--field-manager",
            "stagegate",
            "--force-conflicts",
            "-f",
            "-",
            stdin=server_side,
        )
    )
    assert result.stdout == "deployment.apps/ssa serverside-applied\n"
    stored = cluster.fakes.json("get", "deploy", "ssa", "-n", ns)
    assert "kubectl.kubernetes.io/last-applied-configuration" not in stored["metadata"]["annotations"]
    assert ok(kubectl("apply", "-f", "-", stdin=manifest)).stdout == "deployment.apps/web unchanged\n"
    # apply -k: kustomize by the real kubectl, applied by the fake
    if real_kubectl():
        base = tmp_path / "base"
        base.mkdir()
        (base / "web.yaml").write_text(as_yaml({**web, "metadata": {"name": "kustomized"}}))
        (base / "kustomization.yaml").write_text(f"namespace: {ns}\nresources: [web.yaml]\n")
        assert ok(kubectl("apply", "-k", str(base))).stdout == "deployment.apps/kustomized created\n"
        refused = kubectl("apply", "-k", str(base), "-f", "-", stdin=manifest)
        assert refused.stderr == "error: only one of -f or -k can be specified\n"


def test_get_outputs_and_context(cluster: Cluster) -> None:
    ns = cluster.deploy("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: NS\n")
    web = copy.deepcopy(DEPLOYMENT)
    web["metadata"]["namespace"] = ns
    ok(cluster.fakes.kubectl("apply", "-f", "-", stdin=as_yaml(web)))
    kubectl = cluster.fakes.kubectl
    names = ok(kubectl("get", "deployments,pods", "-n", ns, "-o", "name")).stdout.splitlines()
    assert names[0] == "deployment.apps/web"
    assert [n.split("/")[0] for n in names[1:]] == ["pod", "pod"]
    path = "jsonpath={.items[*].metadata.name}"
    pods = ok(kubectl("get", "pods", "-n", ns, "-o", path)).stdout.split(" ")
    assert len(pods) == 2
    assert pods[0].startswith("web-")
    assert ok(kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}")).stdout == "2"
    assert ok(kubectl("get", "deploy", "web", "-n", ns, "-o", "jsonpath={.metadata.labels}")).stdout == ""
    context = f"kind-{cluster.name}"
    assert ok(kubectl("--context", context, "get", "ns", ns, "-o", "name")).stdout == f"namespace/{ns}\n"
    missing = kubectl("--context", "kind-nope", "get", "pods", "-o", "json")
    assert missing.returncode == 1
    assert missing.stderr == "error: context was not found for specified context: kind-nope\n"
