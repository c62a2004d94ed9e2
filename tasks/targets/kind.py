"""The kind target: a local Kubernetes cluster in Docker, driven by the ``kind`` and
``kubectl`` CLIs (the user's own, with their auth plugins) through :mod:`stagegate.runner`.

The kubeconfig is written inside the artifacts dir; the user's ``~/.kube/config`` is never
touched. Images are loaded only onto nodes that lack that image ID, then checked on the node
with ``crictl``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from .. import runner
from ..clock import Clock
from ..config import RegistryConfig
from ..errors import Code, CommandEvidence, StagegateError
from ..ledger import write_json_atomic, write_text_atomic
from ..ownership import owner_id
from ..registry import Pusher
from ..runner import log_excerpt
from . import ImageToLoad
from .kind_registry import LocalRegistry, hosting_configmap, kind_config_with_registry
from .kubectl import ESTABLISHED_TIMEOUT, KubectlCluster, tool_missing

__all__ = ["KindTarget", "tool_missing"]


@dataclass
class KindTarget(KubectlCluster):
    """One kind cluster, by name; its state files live in ``artifacts``."""

    cluster: str
    artifacts: Path
    docker: DockerClient
    clock: Clock = field(default_factory=Clock)
    kind_config: Path | None = None
    node_image: str | None = None
    # a registry container beside the cluster, pushed to instead of `kind load` (kind_registry.py)
    local_registry: bool = False
    registry_image: str = "registry:2"
    # how long the CRDs and Namespaces applied first may take to be Established / Active
    established_timeout: float = ESTABLISHED_TIMEOUT
    name: str = field(default="kind", init=False)
    place: str = field(default="cluster", init=False)  # what the terminal calls it

    @property
    def kubeconfig(self) -> Path:
        return self.artifacts / "kubeconfig"

    @property
    def marker(self) -> Path:
        """Written when stagegate created the cluster: the cluster name, this artifacts dir's
        owner id and the ID of the control-plane node container. Only a cluster that matches
        all three is stagegate's to delete or restart pods on; any other of that name (the
        user's, another checkout's, or one made again by someone else since) is reused as the
        user's own and never deleted."""
        return self.artifacts / "cluster.json"

    @property
    def logs(self) -> Path:
        return self.artifacts / "logs" / "cluster"

    @property
    def registry(self) -> LocalRegistry:
        return LocalRegistry(self.docker, self.cluster, self.artifacts, self.registry_image)

    # -- up ------------------------------------------------------------------------------------
    def up(self, *, recreate: bool) -> dict[str, Any]:
        # the registry first: when it cannot start, no cluster was made for nothing
        host = self.registry.ensure() if self.local_registry else None
        existing = self._kind(["get", "clusters"], "clusters").stdout.split()
        if self.cluster in existing and recreate:
            if not self._created_by_us():
                raise StagegateError(
                    Code.RESOURCE_CONFLICT,
                    f"--recreate would delete kind cluster {self.cluster!r}, which this checkout's "
                    "stagegate did not create: it is left alone",
                    "delete it yourself (`kind delete cluster --name "
                    f"{self.cluster}`) if it is a leftover, or set another `[tool.stagegate.cluster] name`",
                    {"cluster": self.cluster},
                )
            self._kind(["delete", "cluster", "--name", self.cluster], "delete")
            self.marker.unlink(missing_ok=True)
            existing.remove(self.cluster)
        if self.cluster in existing:
            kubeconfig = self._kind(["get", "kubeconfig", "--name", self.cluster], "kubeconfig").stdout
            write_text_atomic(self.kubeconfig, kubeconfig)
            created = self._created_by_us()
            action = "reused"
        else:
            argv = [
                "create",
                "cluster",
                "--name",
                self.cluster,
                "--kubeconfig",
                str(self.kubeconfig),
                "--wait",
                "120s",
            ]
            kind_config = self.kind_config
            if self.local_registry:  # containerd must read hosts.toml files: set at creation only
                kind_config = kind_config_with_registry(kind_config, self.artifacts / "kind-config.yaml")
            if kind_config is not None:
                argv += ["--config", str(kind_config)]
            if self.node_image:
                argv += ["--image", self.node_image]
            try:
                runner.run(["kind", *argv], timeout=600, log_file=self.logs / "create.log")
            except runner.CommandFailed as exc:
                raise StagegateError(
                    Code.CLUSTER_CREATE_FAILED,
                    f"kind could not create cluster {self.cluster!r}: {runner.last_line(exc.stderr) or exc.reason}",
                    "read the kind output in the log; `kind delete cluster --name "
                    f"{self.cluster}` cleans up a half-created cluster",
                    {"cluster": self.cluster},
                    command=CommandEvidence(exc.argv, exc.exit_code),
                    log_excerpt=log_excerpt(exc.stdout + exc.stderr),
                    log_file=str(self.logs / "create.log"),
                ) from None
            write_json_atomic(
                self.marker,
                {
                    "cluster": self.cluster,
                    "created_by": "stagegate",
                    "owner": owner_id(self.artifacts),
                    "node": self._node_id(),
                },
            )
            created = True
            action = "created"
        up = {
            "cluster": self.cluster,
            "action": action,
            "created_by_stagegate": created,
            "kubeconfig": str(self.kubeconfig),
            "nodes": self._nodes(),
        }
        if host is not None:
            self._wire_registry(up["nodes"], host)
            up["registry"] = {"container": self.registry.name, "host": host}
        return up

    def _wire_registry(self, nodes: list[str], host: str) -> None:
        """Each node pulls ``host/…`` from the registry container; KEP-1755's ConfigMap says so."""
        registry = self.registry
        for node in nodes:
            if not registry.configured(node):
                raise StagegateError(
                    Code.CLUSTER_CREATE_FAILED,
                    f"kind cluster {self.cluster!r} was created without containerd's registry "
                    "config_path, so its nodes cannot pull from the local registry",
                    "recreate it (`nox -s cluster -- --recreate`, if stagegate created it), or turn "
                    "`[tool.stagegate.cluster] local_registry` off to load images with kind load",
                    {"cluster": self.cluster, "node": node},
                )
            try:
                registry.attach(node)
                registry.point(node, host)
            except DockerException as exc:
                raise StagegateError(
                    Code.CLUSTER_CREATE_FAILED,
                    f"could not point node {node} at the local registry {registry.name!r}: "
                    f"{runner.last_line(exc.stderr or '') or exc}",
                    "is the node running (`docker ps`)? `nox -s cluster -- --recreate` starts afresh",
                    {"cluster": self.cluster, "node": node, "container": registry.name},
                    command=CommandEvidence([str(a) for a in exc.docker_command], exc.return_code),
                ) from None
        try:
            self._kubectl(["apply", "-f", "-"], "registry", timeout=60, input=hosting_configmap(host))
        except runner.CommandFailed as exc:
            raise self._failed(
                exc,
                "could not apply kube-public/local-registry-hosting",
                "is the cluster's API server up? read the kubectl output in the log",
                self.logs / "kubectl-registry.log",
            ) from None

    def created_by_stagegate(self) -> bool:
        """Whether stagegate created this cluster (then, and only then, it may delete it)."""
        return self._created_by_us()

    def _created_by_us(self) -> bool:
        try:
            marker = json.loads(self.marker.read_text())
        except (OSError, ValueError):
            return False
        if not isinstance(marker, dict) or marker.get("cluster") != self.cluster:
            return False
        if marker.get("owner") != owner_id(self.artifacts):
            return False
        return bool(marker.get("node")) and marker.get("node") == self._node_id()

    def _node_id(self) -> str | None:
        """The ID of the cluster's control-plane node container (kind's node naming)."""
        try:
            return self.docker.container.inspect(f"{self.cluster}-control-plane").id
        except DockerException:
            return None

    def _nodes(self) -> list[str]:
        return self._kind(["get", "nodes", "--name", self.cluster], "nodes").stdout.split()

    # -- images --------------------------------------------------------------------------------
    @property
    def where(self) -> str:
        return f"name {self.cluster!r}"

    def load_images(self, images: list[ImageToLoad], archive: Path | None = None) -> dict[str, Any]:
        if archive is not None:  # one kind load of the bundle's archive
            return self.load_archive(images, archive)
        nodes = self._nodes()
        if self.local_registry:
            return self._push(images, nodes)
        report: dict[str, Any] = {}
        for image in images:
            missing = [node for node in nodes if not self._node_has(node, image)]
            if missing:
                self._load(image, missing)
            report[image.name] = self._loaded(image, nodes, missing, "kind load", "loaded onto")
        return {"nodes": nodes, "images": report}

    def load_archive(self, images: list[ImageToLoad], archive: Path) -> dict[str, Any]:
        """:meth:`load_images` from a ``docker save`` archive holding all of ``images`` (a
        bundle's): one ``kind load image-archive`` onto the nodes that lack any of them."""
        nodes = self._nodes()
        if self.local_registry:  # the images are in the engine (loaded from the archive)
            return self._push(images, nodes)
        missing = {
            image.name: [node for node in nodes if not self._node_has(node, image)] for image in images
        }
        targets = [node for node in nodes if any(node in lacking for lacking in missing.values())]
        if targets:
            argv = [
                "kind",
                "load",
                "image-archive",
                str(archive),
                "--name",
                self.cluster,
                "--nodes",
                ",".join(targets),
            ]
            self._load_with(argv, what=f"the archive {archive.name}", images=images)
        report = {
            image.name: self._loaded(
                image,
                nodes,
                missing[image.name],
                "kind load image-archive",
                "loaded from the bundle's archive onto",
            )
            for image in images
        }
        return {
            "nodes": nodes,
            "archive": str(archive),
            "loaded_with": "image-archive" if targets else None,
            "images": report,
        }

    def _loaded(
        self, image: ImageToLoad, nodes: list[str], lacking: list[str], how: str, onto: str
    ) -> dict[str, Any]:
        """The report of ``image`` once ``how`` loaded it onto the nodes that were ``lacking``
        it; IMAGE_LOAD_FAILED when one of them still lacks it."""
        still = [node for node in lacking if not self._node_has(node, image)]
        if still:
            raise StagegateError(
                Code.IMAGE_LOAD_FAILED,
                f"{image.ref} is not on node(s) {', '.join(still)} after {how}",
                "look at the kind load output in the log; is the node's disk full?",
                {"image": image.name, "ref": image.ref, "nodes": still},
                log_file=str(self.logs / "load.log"),
            )
        return {
            "ref": image.ref,
            "loaded_to": lacking,
            "already_on": [n for n in nodes if n not in lacking],
            "summary": f"{onto} {', '.join(lacking)}" if lacking else "already on every node",
        }

    def _push(self, images: list[ImageToLoad], nodes: list[str]) -> dict[str, Any]:
        """Push each image to the cluster's registry; the nodes pull it by digest from there."""
        host = self.registry.host()
        pusher = Pusher(
            self.docker, RegistryConfig(host, insecure=True), self.logs / "push", self.clock.monotonic
        )
        report: dict[str, Any] = {}
        for image in images:
            pushed = pusher.push(image.name, image.ref)
            report[image.name] = {
                "ref": pushed.pinned,
                **pushed.to_json(),
                "summary": ("pushed to" if pushed.action == "pushed" else "already in")
                + f" the cluster's registry {host} ({pushed.digest[:19]})",
            }
        return {"nodes": nodes, "registry": host, "images": report}

    def _node_has(self, node: str, image: ImageToLoad) -> bool:
        """Whether the node's container runtime holds ``image.ref`` with exactly its ID."""
        try:
            output = self.docker.execute(node, ["crictl", "inspecti", "-o", "json", image.ref])
        except DockerException:
            return False
        try:
            return json.loads(str(output))["status"]["id"] == image.image_id
        except (ValueError, KeyError, TypeError):
            return False

    def _load(self, image: ImageToLoad, nodes: list[str]) -> None:
        argv = ["kind", "load", "docker-image", image.ref, "--name", self.cluster, "--nodes", ",".join(nodes)]
        self._load_with(argv, what=image.ref, images=[image])

    def _load_with(self, argv: list[str], *, what: str, images: list[ImageToLoad]) -> None:
        nodes = argv[argv.index("--nodes") + 1].split(",")

        def transient(exc: BaseException) -> bool:
            # an image not in the engine, an archive that is not there: the same on every attempt
            permanent = ("not present locally", "no such file or directory")
            return isinstance(exc, runner.CommandFailed) and not any(p in exc.stderr for p in permanent)

        try:
            for attempt in Retrying(
                retry=retry_if_exception(transient),
                stop=stop_after_attempt(3),
                wait=wait_exponential(multiplier=1, max=8),
                sleep=self.clock.sleep,
                reraise=True,
            ):
                with attempt:
                    runner.run(argv, timeout=600, log_file=self.logs / "load.log")
        except runner.CommandFailed as exc:
            first = images[0]
            subject = {"image": first.name, "ref": first.ref, "nodes": nodes}
            if len(images) > 1:
                subject["images"] = [image.name for image in images]
            raise StagegateError(
                Code.IMAGE_LOAD_FAILED,
                f"kind could not load {what} onto {', '.join(nodes)}: {runner.last_line(exc.stderr) or exc.reason}",
                "read the kind output in the log; re-run with --recreate if the cluster is broken",
                subject,
                command=CommandEvidence(exc.argv, exc.exit_code),
                log_excerpt=log_excerpt(exc.stdout + exc.stderr),
                log_file=str(self.logs / "load.log"),
            ) from None

    def teardown(self, *, delete: bool) -> dict[str, Any]:
        if delete:
            self._kind(
                ["delete", "cluster", "--name", self.cluster, "--kubeconfig", str(self.kubeconfig)], "delete"
            )
            self.marker.unlink(missing_ok=True)
            self.kubeconfig.unlink(missing_ok=True)
            if self.registry.remove():  # only this checkout's registry container
                return {"cluster": self.cluster, "deleted": "cluster and its local registry"}
            return {"cluster": self.cluster, "deleted": "cluster"}
        registry = " and the local registry" if self.registry.remove() else ""
        applied = self.artifacts / "applied.yaml"
        if not applied.exists() or not self.kubeconfig.exists():
            return {
                "cluster": self.cluster,
                "deleted": "the local registry (nothing was applied)"
                if registry
                else "nothing (nothing was applied)",
            }
        self._kubectl(
            ["delete", "-f", str(applied), "--ignore-not-found", "--wait=false"], "teardown", timeout=120
        )
        applied.unlink()
        return {
            "cluster": self.cluster,
            "deleted": f"the applied objects{registry} (the cluster was not created by stagegate)",
        }

    # -- CLI calls -----------------------------------------------------------------------------
    def _kind(self, argv: list[str], log_name: str) -> runner.Result:
        try:
            return runner.run(["kind", *argv], timeout=300, log_file=self.logs / f"{log_name}.log")
        except runner.CommandFailed as exc:
            if exc.exit_code is None and "not found on PATH" in exc.reason:
                raise tool_missing("kind") from None
            raise self._failed(
                exc,
                f"kind {' '.join(argv)} failed",
                "read the kind output in the log",
                self.logs / f"{log_name}.log",
            ) from None

    def _failed(self, exc: runner.CommandFailed, what: str, hint: str, log_file: Path) -> StagegateError:
        """``CLUSTER_CREATE_FAILED`` for a kind or kubectl call that set the cluster up."""
        return StagegateError(
            Code.CLUSTER_CREATE_FAILED,
            f"{what}: {runner.last_line(exc.stderr) or exc.reason}",
            hint,
            {"cluster": self.cluster},
            command=CommandEvidence(exc.argv, exc.exit_code),
            log_excerpt=log_excerpt(exc.stdout + exc.stderr),
            log_file=str(log_file),
        )

    def kubectl_args(self) -> list[str]:
        return ["--kubeconfig", str(self.kubeconfig)]

    def client_env(self) -> dict[str, str]:
        return {"KUBECONFIG": str(self.kubeconfig)}

    def unreachable_hint(self) -> str:
        return "is the cluster's API server up? `kubectl --kubeconfig .stagegate/kubeconfig get nodes`"

    def collect_more(self, dest: Path, written: list[str], problems: list[str]) -> None:
        try:
            runner.run(
                ["kind", "export", "logs", str(dest / "kind"), "--name", self.cluster],
                timeout=300,
                log_file=self.logs / "export-logs.log",
            )
            written.append(str(dest / "kind"))
        except runner.CommandFailed as exc:
            problems.append(f"kind export logs: {runner.last_line(exc.stderr) or exc.reason}")
