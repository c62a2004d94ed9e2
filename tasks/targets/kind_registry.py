"""kind with a local registry: a registry container beside the cluster, and the node set up to
pull from it — kind's own recipe (https://kind.sigs.k8s.io/docs/user/local-registry/, KEP-1755).

- The registry runs as ``<cluster>-registry`` (``[tool.stagegate.cluster] local_registry_image``,
  ``registry:2`` by default), published on a free port of 127.0.0.1, labelled with this
  artifacts dir's owner id: only that container is ever started, reused or removed.
- The cluster is created with containerd's ``config_path`` set (a ``containerdConfigPatches``
  entry added to the user's kind config, written to ``<artifacts>/kind-config.yaml``), so
  that each node reads ``/etc/containerd/certs.d/localhost:<port>/hosts.toml``, which sends
  pulls of ``localhost:<port>/…`` to ``http://<cluster>-registry:5000`` on the node's network.
- The ConfigMap ``kube-public/local-registry-hosting`` tells tools where the registry is.

Images are pushed there (every layer once: images that share a base send it once, and an
unchanged image is not sent again) and the manifests pin them by digest, instead of
``kind load`` streaming each image whole to every node.
"""

from __future__ import annotations

import contextlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from .. import engine, runner
from ..errors import Code, CommandEvidence, StagegateError
from ..ledger import write_text_atomic
from ..ownership import OWNER_LABEL, owner_id
from ..runner import log_excerpt

CONTAINERD_CONFIG = "/etc/containerd/config.toml"
CERTS_DIR = "/etc/containerd/certs.d"
REGISTRY_PORT = 5000  # inside the container, as registry:2 listens
# kind's documented patch: containerd reads a hosts.toml per registry host from CERTS_DIR
CONTAINERD_PATCH = f'[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "{CERTS_DIR}"'
CLUSTER_LABEL = "dev.stagegate.kind-cluster"


def kind_config_with_registry(user_config: Path | None, dest: Path) -> Path:
    """The user's kind config (or kind's minimal one) with the containerd patch added, at ``dest``."""
    config: dict[str, Any] = {"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4"}
    if user_config is not None:
        try:
            loaded = yaml.safe_load(user_config.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise _unusable(user_config, f"cannot be read: {exc}") from None
        if not isinstance(loaded, dict):
            raise _unusable(user_config, "is not a mapping (kind: Cluster)")
        config = loaded
    patches = config.get("containerdConfigPatches") or []
    if not isinstance(patches, list):
        raise StagegateError(
            Code.CONFIG_INVALID,
            f"containerdConfigPatches in {user_config} is not a list",
            "write containerdConfigPatches as a list of TOML strings, as kind expects",
            {"file": str(user_config), "key": "containerdConfigPatches"},
        )
    if CONTAINERD_PATCH not in patches:
        patches = [*patches, CONTAINERD_PATCH]
    write_text_atomic(dest, yaml.safe_dump({**config, "containerdConfigPatches": patches}, sort_keys=False))
    return dest


def _unusable(user_config: Path, why: str) -> StagegateError:
    return StagegateError(
        Code.CONFIG_INVALID,
        f"the kind config {user_config} {why}",
        "fix the file named in [tool.stagegate.cluster] kind_config",
        {"file": str(user_config), "key": "tool.stagegate.cluster.kind_config"},
    )


def hosting_configmap(host: str) -> str:
    """KEP-1755's ConfigMap: where the cluster's local registry is, for tools that look."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "local-registry-hosting", "namespace": "kube-public"},
            "data": {
                "localRegistryHosting.v1": f'host: "{host}"\n'
                'help: "https://kind.sigs.k8s.io/docs/user/local-registry/"\n'
            },
        },
        sort_keys=False,
    )


@dataclass
class LocalRegistry:
    """The registry container of one kind cluster."""

    docker: DockerClient
    cluster: str
    artifacts: Path
    image: str = "registry:2"

    @property
    def _cli(self) -> list[str]:
        return [str(part) for part in self.docker.client_config.docker_cmd]

    @property
    def name(self) -> str:
        return f"{self.cluster}-registry"

    def _ours(self, container: Any) -> bool:
        return (container.config.labels or {}).get(OWNER_LABEL) == owner_id(self.artifacts)

    def _find(self) -> Any | None:
        try:
            return self.docker.container.inspect(self.name)
        except DockerException:
            return None

    def ensure(self) -> str:
        """Start (or reuse) the registry container; its host address, ``localhost:<port>``."""
        container = self._find()
        if container is not None and not self._ours(container):
            raise StagegateError(
                Code.RESOURCE_CONFLICT,
                f"a container named {self.name!r} exists and was not created by this checkout's "
                "stagegate: it is left alone",
                f"remove it yourself (`docker rm -f {self.name}`) if it is a leftover, or set another "
                "`[tool.stagegate.cluster] name`",
                {"container": self.name, "cluster": self.cluster},
            )
        if container is None:
            argv = [
                *self._cli, "run", "-d", "--name", self.name, "--restart", "always",
                "-p", f"127.0.0.1::{REGISTRY_PORT}",
                "--label", f"{OWNER_LABEL}={owner_id(self.artifacts)}",
                "--label", f"{CLUSTER_LABEL}={self.cluster}",
                self.image,
            ]  # fmt: skip
            log_file = self.artifacts / "logs" / "cluster" / "registry.log"
            try:
                runner.run(argv, timeout=600, log_file=log_file)
            except runner.CommandFailed as exc:
                raise StagegateError(
                    Code.CLUSTER_CREATE_FAILED,
                    f"could not start the local registry {self.name!r} from {self.image}: "
                    f"{runner.last_line(exc.stderr) or exc.reason}",
                    "is the image there or pullable (`docker pull "
                    f"{self.image}`)? `[tool.stagegate.cluster] local_registry_image` names another",
                    {"container": self.name, "image": self.image, "cluster": self.cluster},
                    command=CommandEvidence(exc.argv, exc.exit_code),
                    log_excerpt=log_excerpt(exc.stdout + exc.stderr),
                    log_file=str(log_file),
                ) from None
        elif not container.state.running:
            self.docker.container.start(container)
        return self.host()

    @staticmethod
    def _published(container: Any) -> list[dict[str, str]]:
        """The host ports the container's registry port is published on (none when stopped)."""
        return (container.network_settings.ports or {}).get(f"{REGISTRY_PORT}/tcp") or []

    def host(self) -> str:
        """``localhost:<port>``: the registry as the host pushes to it and the nodes' hosts.toml names it."""
        container = self._find()
        ports = self._published(container) if container is not None else []
        if not ports:
            raise StagegateError(
                Code.CLUSTER_CREATE_FAILED,
                f"the local registry {self.name!r} publishes no port",
                f"`docker logs {self.name}`; `nox -s teardown` then a new run starts it again",
                {"container": self.name, "cluster": self.cluster},
            )
        return f"localhost:{ports[0]['HostPort']}"

    def remove(self) -> bool:
        """Remove the registry container when it is this checkout's, and the engine's tags
        of images pushed to it (``localhost:<port>/…``: they name a registry that is gone;
        the images keep their own tags); whether it did."""
        container = self._find()
        if container is None or not self._ours(container):
            return False
        hosts = tuple(f"localhost:{entry['HostPort']}/" for entry in self._published(container))
        self.docker.container.remove(container, force=True, volumes=True)
        try:
            listing = engine.image_tags(self._cli)
        except runner.CommandFailed as exc:
            raise DockerException(exc.argv, exc.exit_code or 1, None, exc.stderr.encode()) from None
        pushed = {tag for tag in listing if tag.startswith(hosts)}
        for tag in sorted(pushed) if hosts else []:
            with contextlib.suppress(DockerException):  # untag only: never --force
                self.docker.image.remove(tag)
        return True

    # -- the nodes -----------------------------------------------------------------------------
    def attach(self, node: str) -> None:
        """Join every user-defined network of ``node`` (where Docker's DNS resolves the name)."""
        node_networks = set(self.docker.container.inspect(node).network_settings.networks or {})
        container = self._find()
        mine = set((container.network_settings.networks or {}) if container is not None else {})
        for network in sorted(node_networks - mine - {"bridge", "host", "none"}):
            self.docker.network.connect(network, self.name)

    def configured(self, node: str) -> bool:
        """Whether the node's containerd reads hosts.toml files from :data:`CERTS_DIR`."""
        try:
            text = str(self.docker.execute(node, ["cat", CONTAINERD_CONFIG]))
            config = tomllib.loads(text)
        except (DockerException, tomllib.TOMLDecodeError):
            return False
        cri = ((config.get("plugins") or {}).get("io.containerd.grpc.v1.cri") or {}).get("registry") or {}
        return cri.get("config_path") == CERTS_DIR

    def point(self, node: str, host: str) -> None:
        """Write the node's hosts.toml for ``host``: pulls go to the registry container."""
        folder = f"{CERTS_DIR}/{host}"
        text = f'[host."http://{self.name}:{REGISTRY_PORT}"]\n'
        self.docker.execute(
            node, ["sh", "-c", f"mkdir -p '{folder}' && printf '%s' '{text}' > '{folder}/hosts.toml'"]
        )
