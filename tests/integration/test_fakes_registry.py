"""The fake kind with a local registry, as kind documents it (https://kind.sigs.k8s.io/docs/user/
local-registry/, KEP-1755), on the real engine: the node on the Docker network
``$KIND_EXPERIMENTAL_DOCKER_NETWORK`` (else ``kind``), its containerd config with the kind
config's ``containerdConfigPatches``, and pulls of ``localhost:PORT/…`` that the node's hosts.toml
sends to a real registry container (``registry_image``) on the node's network. Each rule is
checked both ways. (What needs no engine, the network's name and the config's patches as kind
merges them: tests/unit/test_fakes_registry.py.)

Everything a test creates on the engine is named after the run (``TEST_PREFIX``, cluster names
``CLUSTER_PREFIX``) and removed by the test, so that the leak check of tests/conftest.py sees what
was left.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import textwrap
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import CLUSTER_PREFIX, TEST_PREFIX
from tests.fakes.fake_k8s.pulls import manifest_served
from tests.integration.test_fakes import PULL_REASONS, Cluster, node_containers, remove_nodes
from tests.k8s_schema import assert_api_shaped
from tests.unit.test_fakes import Fakes, ok, refused
from tests.unit.test_fakes_registry import CERTS_DIR, PATCH, kind_config, network_of_the_run

pytestmark = pytest.mark.docker


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    return Fakes(tmp_path / "state", tmp_path / "kubeconfig")


def sh(*argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert result.returncode == 0, f"{argv}: exit {result.returncode}\n{result.stderr}"
    return result


@dataclass
class EnvFakes(Fakes):
    """Fakes run with some variables of their own."""

    extra: dict[str, str] = field(default_factory=dict)

    def env(self, path: str | None = None) -> dict[str, str]:
        return {**super().env(path), **self.extra}


def create_argv(fakes: Fakes, name: str, config: Path | None) -> list[str]:
    return [
        "create", "cluster", "--name", name, "--kubeconfig", str(fakes.kubeconfig),
        *(["--config", str(config)] if config else []),
    ]  # fmt: skip


@contextmanager
def made_cluster(root: Path, config: Path | None = None, **env: str) -> Iterator[Cluster]:
    root.mkdir(parents=True, exist_ok=True)
    fakes = EnvFakes(root / "state", root / "kubeconfig", extra=env)
    name = f"{CLUSTER_PREFIX}-{secrets.token_hex(3)}"
    try:
        ok(fakes.kind(*create_argv(fakes, name, config)))
        yield Cluster(fakes, name)
    finally:
        fakes.kind("delete", "cluster", "--name", name)
        remove_nodes(name)


def node_networks(container: str) -> dict[str, dict]:
    return json.loads(sh("docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", container).stdout)


def network_id(name: str) -> str | None:
    found = sh("docker", "network", "inspect", "-f", "{{.Id}}", name, check=False)
    return found.stdout.strip() if found.returncode == 0 else None


def remove_network(name: str) -> None:
    sh("docker", "network", "rm", name, check=False)


def write_hosts_toml(node: str, host: str, text: str) -> None:
    folder = f"{CERTS_DIR}/{host}"
    sh(
        "docker",
        "exec",
        "-i",
        node,
        "sh",
        "-c",
        f"mkdir -p '{folder}' && cat > '{folder}/hosts.toml'",
        stdin=text,
    )


def remove_hosts_toml(node: str, host: str) -> None:
    sh("docker", "exec", node, "rm", "-f", f"{CERTS_DIR}/{host}/hosts.toml")


# -- a registry container, as kind's recipe runs registry:2 ----------------------------------------


@dataclass
class RegistryContainer:
    name: str
    port: int

    @property
    def host(self) -> str:  # as the host pushes to it and the node's hosts.toml is named
        return f"localhost:{self.port}"

    def serves(self, name: str, reference: str) -> bool:
        """Asked from the host, on its published port."""
        return manifest_served(f"http://127.0.0.1:{self.port}/v2", name, reference)


def start_registry(image: str, *run_args: str) -> RegistryContainer:
    name = f"{TEST_PREFIX}-registry-{secrets.token_hex(3)}"
    sh("docker", "run", "-d", "--name", name, *run_args, "-p", "127.0.0.1::5000", image)
    port = int(sh("docker", "port", name, "5000/tcp").stdout.split()[0].rsplit(":", 1)[1])
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as answer:
                if answer.status == 200:
                    return RegistryContainer(name, port)
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            logs = sh("docker", "logs", name, check=False)
            sh("docker", "rm", "-f", "-v", name, check=False)
            pytest.fail(f"the registry container {name} does not answer: {logs.stdout}{logs.stderr}")
        time.sleep(0.2)


def push(source: str, registry: RegistryContainer, repository: str) -> str:
    """Push ``source`` as ``<registry>/<repository>:1``; its digest (``sha256:…``)."""
    ref = f"{registry.host}/{repository}:1"
    sh("docker", "tag", source, ref)
    try:
        sh("docker", "push", ref)
        digests = json.loads(sh("docker", "image", "inspect", "-f", "{{json .RepoDigests}}", ref).stdout)
    finally:
        sh("docker", "image", "rm", ref, check=False)  # the tag only: the image stays
    return next(d for d in digests if d.startswith(f"{registry.host}/{repository}@")).partition("@")[2]


@dataclass
class Wired:
    """A cluster set up as kind's local-registry recipe: config_path patched in, a registry
    container on the node's network, the node's hosts.toml for the registry's host."""

    cluster: Cluster
    registry: RegistryContainer
    repository: str
    digest: str

    @property
    def node(self) -> str:
        return self.cluster.node

    @property
    def by_digest(self) -> str:
        return f"{self.registry.host}/{self.repository}@{self.digest}"

    @property
    def hosts_toml(self) -> str:
        return f'[host."http://{self.registry.name}:5000"]\n'


@pytest.fixture(scope="module")
def wired(
    docker, busybox_image: str, registry_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Wired]:
    root = tmp_path_factory.mktemp("wired")
    with made_cluster(root / "cluster", kind_config(root, [PATCH])) as cluster:
        registry = start_registry(registry_image, "--net", network_of_the_run())
        try:
            repository = f"{TEST_PREFIX}/app"
            digest = push(busybox_image, registry, repository)
            made = Wired(cluster, registry, repository, digest)
            write_hosts_toml(cluster.node, registry.host, made.hosts_toml)
            yield made
        finally:
            sh("docker", "rm", "-f", "-v", registry.name, check=False)


PODS = """\
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: NS}}
"""


def pods_of(**images: str) -> str:
    return PODS + "".join(
        f"- {{apiVersion: v1, kind: Pod, metadata: {{name: {name}, namespace: NS}}, "
        f'spec: {{containers: [{{name: c, image: "{image}"}}]}}}}\n'
        for name, image in images.items()
    )


def states(cluster: Cluster, **images: str) -> dict[str, tuple[str, str | None, bool]]:
    """Each pod's phase, its container's waiting reason and readiness, right after the apply."""
    ns = cluster.deploy(pods_of(**images))
    found = {}
    for pod in cluster.pods(ns):
        status = pod["status"]["containerStatuses"][0]
        waiting = status["state"].get("waiting", {}).get("reason")
        found[pod["metadata"]["name"]] = (pod["status"]["phase"], waiting, status["ready"])
    return found


RUNS = ("Running", None, True)


def cannot_pull(state: tuple[str, str | None, bool]) -> bool:
    return state[0] == "Pending" and state[1] in PULL_REASONS and not state[2]


# -- the node's network --------------------------------------------------------------------------


def test_the_node_joins_the_network_named_by_the_environment_which_outlives_the_cluster(
    docker, busybox_image: str, tmp_path: Path
) -> None:
    network = f"{TEST_PREFIX}-net-{secrets.token_hex(3)}"
    fakes = EnvFakes(
        tmp_path / "state", tmp_path / "kubeconfig", extra={"KIND_EXPERIMENTAL_DOCKER_NETWORK": network}
    )
    name = f"{CLUSTER_PREFIX}-{secrets.token_hex(3)}"
    assert network_id(network) is None
    try:
        created = ok(fakes.kind(*create_argv(fakes, name, None)))
        lines = created.stderr.splitlines()
        assert lines[3:6] == [
            "WARNING: Overriding docker network due to KIND_EXPERIMENTAL_DOCKER_NETWORK",
            "WARNING: Here be dragons! This is not supported currently.",
            " • Preparing nodes 📦   ...",
        ]  # kind: after the node image, before the nodes
        first = network_id(network)
        assert first is not None  # created, as kind creates a missing network
        networks = node_networks(f"{name}-control-plane")
        assert list(networks) == [network]  # on it only: not on the default bridge
        cluster = json.loads((fakes.state / "clusters" / name / "cluster.json").read_text())
        assert (cluster["host_ip"], cluster["network"]) == (networks[network]["IPAddress"], network)

        ok(fakes.kind("delete", "cluster", "--name", name))
        assert node_containers(name) == []
        assert network_id(network) == first  # kind never removes its network
        ok(fakes.kind(*create_argv(fakes, name, None)))  # and reuses it
        assert network_id(network) == first
        assert list(node_networks(f"{name}-control-plane")) == [network]
    finally:
        fakes.kind("delete", "cluster", "--name", name)
        remove_nodes(name)
        remove_network(network)


def test_the_suites_nodes_are_on_the_runs_network(wired: Wired) -> None:
    assert list(node_networks(wired.node)) == [network_of_the_run()]
    assert wired.registry.name in {
        c["Name"]
        for c in json.loads(sh("docker", "network", "inspect", network_of_the_run()).stdout)[0][
            "Containers"
        ].values()
    }


# -- containerdConfigPatches -----------------------------------------------------------------------


def containerd_config(node: str) -> dict:
    return tomllib.loads(sh("docker", "exec", node, "cat", "/etc/containerd/config.toml").stdout)


def test_the_node_config_toml_carries_the_patches(wired: Wired, tmp_path: Path) -> None:
    config = containerd_config(wired.node)
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert (config["version"], cri["registry"]["config_path"]) == (2, CERTS_DIR)
    assert cri["containerd"]["snapshotter"] == "overlayfs"
    with made_cluster(tmp_path / "plain") as plain:  # no config: kind's own config.toml, unpatched
        config = containerd_config(plain.node)
        assert config["version"] == 2
        assert "registry" not in config["plugins"]["io.containerd.grpc.v1.cri"]


def test_a_patch_that_is_not_toml_fails_the_create_and_removes_the_node(
    docker, busybox_image: str, fakes: Fakes, tmp_path: Path
) -> None:
    name = f"{CLUSTER_PREFIX}-{secrets.token_hex(3)}"
    config = kind_config(tmp_path, [PATCH, '[plugins."io.containerd.grpc.v1.cri".registry\nconfig_path = 1'])
    try:
        result = fakes.kind(*create_argv(fakes, name, config))
        refused(result, "ERROR: failed to create cluster: failed to patch contianerd config: ")
        lines = result.stderr.splitlines()
        assert " ✓ Preparing nodes 📦 " in lines
        assert lines[-3:-1] == [" ✗ Writing configuration 📜", f'Deleted nodes: ["{name}-control-plane"]']
        assert node_containers(name) == []
        assert ok(fakes.kind("get", "clusters")).stdout == ""
        assert not fakes.kubeconfig.exists()
    finally:
        remove_nodes(name)


# -- pulls through hosts.toml ----------------------------------------------------------------------


def test_an_image_the_registry_container_serves_runs_through_hosts_toml(wired: Wired) -> None:
    host, repository = wired.registry.host, wired.repository
    assert wired.registry.serves(repository, wired.digest)
    found = states(
        wired.cluster,
        digest=wired.by_digest,
        tag=f"{host}/{repository}:1",
        both=f"{host}/{repository}:1@{wired.digest}",
        other=f"{host}/{repository}@sha256:{'0' * 64}",
        untagged=f"{host}/{repository}",  # :latest was never pushed
        elsewhere=f"{host}/{TEST_PREFIX}/nothing:1",
    )
    assert (found["digest"], found["tag"], found["both"]) == (RUNS, RUNS, RUNS)
    for name in ("other", "untagged", "elsewhere"):
        assert cannot_pull(found[name]), (name, found[name])


def test_without_hosts_toml_the_image_does_not_pull(wired: Wired) -> None:
    remove_hosts_toml(wired.node, wired.registry.host)
    try:
        assert cannot_pull(states(wired.cluster, app=wired.by_digest)["app"])
        write_hosts_toml(wired.node, wired.registry.host, "[host.\n")  # not TOML
        assert cannot_pull(states(wired.cluster, app=wired.by_digest)["app"])
        # a host that may pull but not resolve a tag (containerd's capabilities)
        write_hosts_toml(
            wired.node,
            wired.registry.host,
            f'[host."http://{wired.registry.name}:5000"]\ncapabilities = ["pull"]\n',
        )
        found = states(
            wired.cluster, digest=wired.by_digest, tag=f"{wired.registry.host}/{wired.repository}:1"
        )
        assert found["digest"] == RUNS and cannot_pull(found["tag"])
        # the `server` of a hosts.toml counts as the last host
        write_hosts_toml(wired.node, wired.registry.host, f'server = "http://{wired.registry.name}:5000"\n')
        assert states(wired.cluster, app=wired.by_digest)["app"] == RUNS
    finally:
        write_hosts_toml(wired.node, wired.registry.host, wired.hosts_toml)
    assert states(wired.cluster, app=wired.by_digest)["app"] == RUNS


def test_without_config_path_the_hosts_toml_is_not_read(wired: Wired, tmp_path: Path) -> None:
    with made_cluster(tmp_path / "plain") as plain:  # same network, same hosts.toml, no patch
        write_hosts_toml(plain.node, wired.registry.host, wired.hosts_toml)
        assert cannot_pull(states(plain, app=wired.by_digest)["app"])
    with made_cluster(tmp_path / "patched", kind_config(tmp_path, [PATCH])) as patched:
        write_hosts_toml(patched.node, wired.registry.host, wired.hosts_toml)
        assert states(patched, app=wired.by_digest)["app"] == RUNS


def test_a_registry_reaches_the_node_only_on_its_user_defined_network(
    wired: Wired, registry_image: str, busybox_image: str
) -> None:
    """A second registry, started on the default bridge, serving the image from the host all along."""
    other = f"{TEST_PREFIX}-other-{secrets.token_hex(3)}"
    registry = start_registry(registry_image)  # on the default bridge
    try:
        repository = f"{TEST_PREFIX}/second"
        digest = push(busybox_image, registry, repository)
        image = f"{registry.host}/{repository}@{digest}"
        assert registry.serves(repository, digest)
        write_hosts_toml(wired.node, registry.host, f'[host."http://{registry.name}:5000"]\n')
        assert cannot_pull(states(wired.cluster, app=image)["app"])

        sh("docker", "network", "connect", "bridge", wired.node)  # no DNS on the default bridge
        try:
            assert cannot_pull(states(wired.cluster, app=image)["app"])
            bridge_ip = node_networks(registry.name)["bridge"]["IPAddress"]  # an IP is no name
            write_hosts_toml(wired.node, registry.host, f'[host."http://{bridge_ip}:5000"]\n')
            assert states(wired.cluster, app=image)["app"] == RUNS
        finally:
            sh("docker", "network", "disconnect", "bridge", wired.node)
        assert cannot_pull(states(wired.cluster, app=image)["app"])  # that IP is not the node's now

        sh("docker", "network", "create", other)
        sh("docker", "network", "connect", other, registry.name)  # a network the node is not on
        write_hosts_toml(wired.node, registry.host, f'[host."http://{registry.name}:5000"]\n')
        assert cannot_pull(states(wired.cluster, app=image)["app"])

        # on the node's network, under an alias: the first host cannot be reached, the next can
        sh("docker", "network", "connect", "--alias", "mirror", network_of_the_run(), registry.name)
        write_hosts_toml(
            wired.node, registry.host, '[host."http://nowhere:5000"]\n[host."http://mirror:5000"]\n'
        )
        assert states(wired.cluster, app=image)["app"] == RUNS
        sh("docker", "stop", registry.name)  # a registry that is down
        assert cannot_pull(states(wired.cluster, app=image)["app"])
    finally:
        sh("docker", "rm", "-f", "-v", registry.name, check=False)
        remove_network(other)


def test_the_registries_scenario_still_asks_the_host(wired: Wired) -> None:
    image = f"127.0.0.1:{wired.registry.port}/{wired.repository}@{wired.digest}"
    try:
        wired.cluster.fakes.scenario(registries=[f"127.0.0.1:{wired.registry.port}"])
        assert states(wired.cluster, app=image)["app"] == RUNS
        wired.cluster.fakes.scenario()
        assert cannot_pull(states(wired.cluster, app=image)["app"])  # no hosts.toml for that host
    finally:
        wired.cluster.fakes.scenario()


# -- kube-public ---------------------------------------------------------------------------------


HOSTING = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "HOST"
    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
"""


def test_the_local_registry_hosting_configmap_goes_into_kube_public(wired: Wired) -> None:
    fakes = wired.cluster.fakes
    names = ok(fakes.kubectl("get", "namespaces", "-o", "name")).stdout.split()
    assert {f"namespace/{n}" for n in ("default", "kube-system", "kube-public", "kube-node-lease")} <= set(
        names
    )
    text = HOSTING.replace("HOST", wired.registry.host)
    assert (
        ok(fakes.kubectl("apply", "-f", "-", stdin=text)).stdout
        == "configmap/local-registry-hosting created\n"
    )
    assert (
        ok(fakes.kubectl("apply", "-f", "-", stdin=text)).stdout
        == "configmap/local-registry-hosting unchanged\n"
    )
    got = fakes.json("get", "configmap", "local-registry-hosting", "-n", "kube-public")
    assert_api_shaped(got)
    assert (got["metadata"]["namespace"], got["data"]) == (
        "kube-public",
        {"localRegistryHosting.v1": textwrap.dedent(f"""\
            host: "{wired.registry.host}"
            help: "https://kind.sigs.k8s.io/docs/user/local-registry/"
        """)},
    )  # fmt: skip
    listed = fakes.json("get", "cm", "-n", "kube-public")
    assert_api_shaped(listed)
    assert [o["metadata"]["name"] for o in listed["items"]] == ["local-registry-hosting"]
    assert fakes.json("get", "configmaps", "-n", "default")["items"] == []
    refused(
        fakes.kubectl("get", "configmap", "nope", "-n", "kube-public", "-o", "json"),
        'Error from server (NotFound): configmaps "nope" not found',
    )
