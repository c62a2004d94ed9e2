"""kind with a local registry (``[tool.stagegate.cluster] local_registry``), through the real
stages: a real registry container (Debian's distribution registry in the ``registry_image``
test image, as ``registry:2`` would run) beside the fake kind's node container, real pushes
from the engine, and the fake node's containerd pulling through the hosts.toml stagegate
writes (tests/fakes/README.md: a pull of ``localhost:PORT/…`` succeeds only when the node's
config_path, its hosts.toml and the registry container on the node's network all serve it)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess

import pytest
import yaml
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from stagegate import engine
from stagegate.ownership import OWNER_LABEL, owner_id

from tests.integration.test_kind_target import chain, stack

pytestmark = pytest.mark.docker


@pytest.fixture
def registry_container(docker: DockerClient, cluster_name: str, ns: str):
    """The name of the test cluster's registry container; it and the tags pushed from this
    engine are removed after the test, whatever it left."""
    name = f"{cluster_name}-registry"
    yield name
    with contextlib.suppress(DockerException):
        docker.container.remove(name, force=True, volumes=True)
    # the tags alone, in one `docker image ls` (no inspect of every image on an engine that other
    # jobs build on and prune at the same time: one of them may vanish in between)
    listing = engine.image_tags(["docker"])
    pushed = [tag for tag in listing if f"/{ns}/" in tag and tag.startswith("localhost:")]
    if pushed:
        docker.image.remove(pushed, force=True)


def with_registry(image: str) -> str:
    return f'local_registry = true\nlocal_registry_image = "{image}"\n'


def node_file(docker: DockerClient, node: str, path: str) -> str:
    return str(docker.execute(node, ["cat", path]))


def test_images_are_pushed_to_the_clusters_registry_and_pulled_from_it_by_digest(
    repo, docker, busybox_image, registry_image, reporter, ns, fake, cluster_name, registry_container
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name, cluster_extra=with_registry(registry_image))
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0, reporter.console.file.getvalue()
    record = repo.run_record()
    outputs = record["stages"]["cluster"]["outputs"]
    host = outputs["cluster"]["registry"]["host"]
    assert host.startswith("localhost:") and outputs["load"]["registry"] == host
    entry = outputs["load"]["images"][f"{ns}/app"]
    assert entry["action"] == "pushed"
    assert entry["ref"] == entry["pinned"] and entry["ref"].startswith(f"{host}/{ns}/app@sha256:")
    assert not fake.calls("kind", "load")  # pushed instead

    # the manifests run the pushed digest, never the local tag
    applied = (repo.artifacts / "applied.yaml").read_text()
    built = record["stages"]["build"]["outputs"]["images"][f"{ns}/app"]["ref"]
    assert entry["ref"] in applied and f"image: {built}" not in applied
    assert record["stages"]["deploy"]["status"] == "passed"

    # the registry container: this checkout's, on the node's network; the node points at it
    node = f"{cluster_name}-control-plane"
    container = docker.container.inspect(registry_container)
    assert container.config.labels[OWNER_LABEL] == owner_id(repo.artifacts)
    assert set(docker.container.inspect(node).network_settings.networks) - {"bridge"} <= set(
        container.network_settings.networks
    )
    hosts = node_file(docker, node, f"/etc/containerd/certs.d/{host}/hosts.toml")
    assert hosts.strip() == f'[host."http://{registry_container}:5000"]'
    kind_config = yaml.safe_load((repo.artifacts / "kind-config.yaml").read_text())
    assert fake.calls("kind", "create", "--config", str(repo.artifacts / "kind-config.yaml"))
    assert 'config_path = "/etc/containerd/certs.d"' in kind_config["containerdConfigPatches"][0]

    # KEP-1755: where the registry is, for the tools that ask the cluster
    configmap = subprocess.run(
        ["kubectl", "--kubeconfig", str(repo.artifacts / "kubeconfig"), "get", "configmap",
         "local-registry-hosting", "-n", "kube-public", "-o", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    hosting = yaml.safe_load(json.loads(configmap.stdout)["data"]["localRegistryHosting.v1"])
    assert hosting["host"] == host

    shown = reporter.console.file.getvalue()
    assert f"local registry {registry_container} at {host}" in shown
    assert f"✓ {ns}/app: pushed to the cluster's registry {host} ({entry['digest'][:19]})" in shown


def test_a_second_run_pushes_nothing_and_teardown_removes_the_registry_with_the_cluster(
    repo, docker, busybox_image, registry_image, reporter, ns, fake, cluster_name, registry_container
) -> None:
    from stagegate.cli import teardown

    stack(repo, ns, busybox_image, cluster=cluster_name, cluster_extra=with_registry(registry_image))
    assert chain(repo, docker, reporter, "cluster") == 0, reporter.console.file.getvalue()
    first = repo.run_record()["stages"]["cluster"]["outputs"]
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0, reporter.console.file.getvalue()
    second = repo.run_record()["stages"]["cluster"]["outputs"]
    assert second["cluster"]["action"] == "reused"
    assert second["cluster"]["registry"]["host"] == first["cluster"]["registry"]["host"]
    entry = second["load"]["images"][f"{ns}/app"]
    assert entry["action"] == "present"
    assert entry["pinned"] == first["load"]["images"][f"{ns}/app"]["pinned"]
    host = second["cluster"]["registry"]["host"]
    assert f"✓ {ns}/app: already in the cluster's registry {host} ({entry['digest'][:19]})" in (
        reporter.console.file.getvalue()
    )
    assert len(fake.calls("kind", "create")) == 1

    pushed_tag = (
        f"{host}/{ns}/app:"
        + repo.run_record()["stages"]["build"]["outputs"]["images"][f"{ns}/app"]["ref"].rsplit(":", 1)[1]
    )
    assert docker.image.exists(pushed_tag)
    assert teardown(repo.root) is None
    with pytest.raises(DockerException):
        docker.container.inspect(registry_container)
    assert not docker.image.exists(pushed_tag)  # the tag naming the gone registry, untagged
    assert docker.image.exists(repo.run_record()["stages"]["build"]["outputs"]["images"][f"{ns}/app"]["ref"])
    with pytest.raises(DockerException):
        docker.container.inspect(f"{cluster_name}-control-plane")


def test_a_container_of_that_name_stagegate_did_not_start_is_left_alone(
    repo, docker, busybox_image, registry_image, reporter, ns, fake, cluster_name, registry_container
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name, cluster_extra=with_registry(registry_image))
    docker.container.run(busybox_image, ["sleep", "300"], name=registry_container, detach=True)
    assert chain(repo, docker, reporter, "cluster") == 1
    error = repo.error()
    assert (error["code"], error["subject"]["container"]) == ("RESOURCE_CONFLICT", registry_container)
    assert docker.container.inspect(registry_container).state.running  # untouched
    assert not fake.calls("kind", "create")  # nothing made before the conflict was seen


def test_a_registry_image_that_cannot_start_fails_before_any_cluster_is_made(
    repo, docker, busybox_image, reporter, ns, fake, cluster_name, registry_container
) -> None:
    missing = f"{ns}/no-such-registry:2"
    stack(repo, ns, busybox_image, cluster=cluster_name, cluster_extra=with_registry(missing))
    assert chain(repo, docker, reporter, "cluster") == 1
    error = repo.error()
    assert (error["code"], error["subject"]["image"]) == ("CLUSTER_CREATE_FAILED", missing)
    assert "local_registry_image" in error["hint"]
    assert not fake.calls("kind", "create")


def test_a_reused_cluster_made_without_containerds_config_path_is_refused_until_recreated(
    repo, docker, busybox_image, registry_image, reporter, ns, fake, cluster_name, registry_container
) -> None:
    stack(repo, ns, busybox_image, cluster=cluster_name)
    assert chain(repo, docker, reporter, "cluster") == 0  # kind load, no patch
    stack(repo, ns, busybox_image, cluster=cluster_name, cluster_extra=with_registry(registry_image))
    assert chain(repo, docker, reporter, "cluster") == 1
    error = repo.error()
    assert error["code"] == "CLUSTER_CREATE_FAILED"
    assert "config_path" in error["message"] and "--recreate" in error["hint"]
    assert chain(repo, docker, reporter, "cluster", "deploy", argv=("--recreate",)) == 0, (
        reporter.console.file.getvalue()
    )
    assert repo.run_record()["stages"]["cluster"]["outputs"]["load"]["registry"]


PULL_NEVER = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: default}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
        - {{name: api, image: {image}, imagePullPolicy: Never}}
"""


@pytest.mark.parametrize("local_registry", [True, False])
def test_pull_policy_never_is_refused_only_when_the_images_come_from_the_registry(
    repo, docker, busybox_image, registry_image, reporter, ns, fake, cluster_name, local_registry
) -> None:
    extra = with_registry(registry_image) if local_registry else ""
    stack(repo, ns, busybox_image, cluster=cluster_name, cluster_extra=extra)
    repo.write("k8s/app.yaml", PULL_NEVER.format(image=f"{ns}/app"))
    code = chain(repo, docker, reporter)  # preflight, build, verify
    if local_registry:
        assert code == 1
        error = repo.error()
        # refused before anything is built: preflight judges the policy as verify does
        assert (error["stage"], error["code"]) == ("preflight", "PULL_POLICY_INVALID")
    else:
        assert code == 0, reporter.console.file.getvalue()


def test_teardown_holds_when_another_job_removes_an_image_while_it_looks_for_the_registrys_tags(
    repo, docker, busybox_image, registry_image, reporter, ns, fake, cluster_name, registry_container,
    tmp_path, monkeypatch,
) -> None:  # fmt: skip
    """An engine that other jobs share: an image goes away between a listing of the images and
    an inspect of what was listed. The wrapper below is the real `docker`, which removes such an
    image first whenever images are inspected; teardown must still remove the registry and its tags."""
    from stagegate.cli import teardown

    stack(repo, ns, busybox_image, cluster=cluster_name, cluster_extra=with_registry(registry_image))
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0, reporter.console.file.getvalue()
    host = repo.run_record()["stages"]["cluster"]["outputs"]["cluster"]["registry"]["host"]
    context = tmp_path / "vanishing"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {busybox_image}\nLABEL dev.stagegate.test.vanishing={ns}\n")
    vanishing = f"{ns}-vanishing:1"
    docker.legacy_build(context, tags=[vanishing])
    real = shutil.which("docker")
    wrapper = tmp_path / "docker"
    wrapper.write_text(
        "#!/bin/bash\n"
        f'if [ "$1 $2" = "image inspect" ]; then "{real}" image rm -f {vanishing} >/dev/null 2>&1; fi\n'
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("STAGEGATE_DOCKER", str(wrapper))
    try:
        assert teardown(repo.root) is None
    finally:
        subprocess.run([real, "image", "rm", "-f", vanishing], capture_output=True)
    with pytest.raises(DockerException):
        docker.container.inspect(registry_container)
    listing = engine.image_tags(["docker"])
    assert not [tag for tag in listing if tag.startswith(f"{host}/")]
