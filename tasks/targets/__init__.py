"""Targets: where the images run. One small interface; the rule is that stages never need to
know which target they have.

- :mod:`stagegate.targets.kind` — a kind cluster, driven through the ``kind`` and ``kubectl`` CLIs;
  :mod:`stagegate.targets.kind_registry` its local registry, pushed to instead of ``kind load``.
- :mod:`stagegate.targets.existing` — a cluster stagegate did not create: one namespace per run,
  the images from the registry.
- :mod:`stagegate.targets.kubectl` — what the kubectl-driven targets (kind, existing) share.
- :mod:`stagegate.targets.docker` — the same manifests as containers on the Docker engine, run by a
  small kubelet (a package: translator, kubelet, controllers).
- :mod:`stagegate.targets.forwards` — ``[tool.stagegate.e2e] port_forward`` matched to the manifests.

``select_target`` picks one from the option, the configuration and what is installed, and
says why.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import kinds
from ..manifests import ManifestObject
from ..readiness import Watch

if TYPE_CHECKING:
    from python_on_whales import DockerClient

    from ..clock import Clock
    from ..config import Config
    from ..dockerclient import DeferredDockerClient
    from .forwards import ResolvedForward


@dataclass(frozen=True)
class ImageToLoad:
    name: str
    ref: str
    image_id: str


class Target(Protocol):
    """What the cluster, deploy, e2e and teardown stages need from a place to run images."""

    name: str
    place: str  # what the terminal calls the target's instance: "cluster", "docker network"
    # whether a port_forward's local_port is kept when it is free (a port-forward of its own),
    # or the target hands over a port it did not choose (the engine's published port)
    keeps_local_port: bool
    # its cluster pulls each image from the registry by its digest (what the build pushed), so it
    # is given those references to load, and the manifests are rewritten to them
    pulls_pinned_images: bool

    @property
    def where(self) -> str:
        """Which one, for the cluster stage's first line: ``name 'ci'``, ``context 'x', namespace 'y'``."""
        ...

    def up(self, *, recreate: bool) -> dict[str, Any]:
        """Create or reuse the target; outputs for the ledger (name, created, ...)."""
        ...

    def load_images(self, images: list[ImageToLoad], archive: Path | None = None) -> dict[str, Any]:
        """Make ``images`` available to the target, only where they are missing; check them.
        Each image's entry has a ``summary`` the terminal shows (in the target's own words) and
        the ``ref`` the cluster runs it by. ``archive``: the images as one ``docker save``
        archive too (a bundle's), for a target that loads from it faster than from the engine."""
        ...

    def apply(self, objects: list[ManifestObject]) -> dict[str, Any]:
        """Create or update ``objects`` (manifests already rewritten to the built tags)."""
        ...

    def wait_ready(self, objects: list[ManifestObject], watch: Watch) -> dict[str, Any]:
        """Wait until the workloads of ``objects`` are ready; raise the fatal error early."""
        ...

    def endpoints(
        self, objects: list[ManifestObject], forwards: Sequence[ResolvedForward] = ()
    ) -> AbstractContextManager[dict[str, str]]:
        """Environment variables that let tests on this machine reach the Services and the
        ``port_forward`` entries (resolved by :func:`stagegate.targets.forwards.resolve_forwards`);
        an entry's variables win over a Service of the same name."""
        ...

    def collect_diagnostics(self, objects: list[ManifestObject], dest: Path) -> list[str]:
        """Everything a person needs to see why (pods, describe, events, logs); never raises."""
        ...

    def teardown(self, *, delete: bool) -> dict[str, Any]:
        """Remove what stagegate created: the whole target when ``delete``, else the objects."""
        ...

    def remove_ours(self) -> dict[str, Any]:
        """``nox -s teardown``: everything stagegate created on this target, and nothing else."""
        ...


def select_target(requested: str, *, which: Any = shutil.which) -> tuple[str, str]:
    """The target to use and why: ``(name, reason)``."""
    if requested in ("kind", "docker", "existing"):
        return requested, "requested"
    if which("kind"):
        return "kind", "auto: kind is on PATH"
    return "docker", "auto: kind is not on PATH"


@dataclass(frozen=True)
class TargetTraits:
    """What the stages before the cluster (preflight, build, verify) need to know of the run's
    target, without opening it."""

    name: str
    # its cluster pulls every image from [tool.stagegate.registry], pinned by digest: the build
    # pushes each one, and takes one found in the registry cache without pulling it here
    pulls_pinned_images: bool
    # its cluster pulls the images from a registry at all (also kind's local registry): a
    # manifest's imagePullPolicy Never would keep them off the nodes
    pulls_from_registry: bool
    # it runs in a kubeconfig context of [tool.stagegate.existing] contexts, chosen by --context
    takes_context: bool

    def context(self, config: Config, requested: str | None) -> str:
        """The kubeconfig context a run of this target (one that ``takes_context``) uses:
        ``requested``, else the configured one; allowed, and found in the kubeconfig."""
        from .existing import checked_context

        return checked_context(config.existing, requested)


def traits_of(requested: str, config: Config) -> TargetTraits:
    """The traits of the target a run of ``config`` with ``--target requested`` deploys to."""
    name = select_target(requested)[0]
    existing = name == "existing"
    return TargetTraits(
        name=name,
        pulls_pinned_images=existing,
        pulls_from_registry=existing or (name == "kind" and config.cluster.local_registry),
        takes_context=existing,
    )


def open_target(
    name: str,
    config: Config,
    docker: DockerClient | DeferredDockerClient,
    *,
    clock: Clock | None = None,
    recorded: Mapping[str, Any] | None = None,
    context: str | None = None,
    run_id: str = "",
) -> Target:
    """Target ``name`` of ``config``, the one factory of every target.

    ``recorded``: the cluster stage's record of the target it set up (its ``cluster`` output),
    for the stages after it and teardown; None for the cluster stage itself, which opens a new
    one (the existing target then takes ``context`` (``--context``) and makes the run's
    namespace from ``run_id``)."""
    from ..clock import Clock
    from ..errors import Code, StagegateError

    clock = clock or Clock()
    # the CRDs and Namespaces applied first share the deploy's deadline (at most a minute)
    established = min(60.0, config.deploy.policy.timeout) if config.deploy else 60.0
    if name == "existing":
        from ..ownership import owner_id
        from .existing import ExistingTarget, check_context, namespace_for

        if recorded is None:
            chosen = check_context(config.existing, context)  # CONFIG_INVALID without the table
            assert config.existing is not None
            namespace = namespace_for(config.existing.namespace, run_id, owner_id(config.artifacts))
            kubeconfig = config.existing.kubeconfig
        elif recorded.get("namespace") and recorded.get("context"):
            chosen, namespace = recorded["context"], recorded["namespace"]
            kubeconfig = Path(recorded["kubeconfig"]) if recorded.get("kubeconfig") else None
        else:
            raise StagegateError(
                Code.CONFIG_INVALID,
                "run.json names no namespace of the existing target: this run applied nothing there",
                "nothing to tear down; the cluster itself is never touched",
                {"key": "run.json"},
            )
        return ExistingTarget(
            context=chosen,
            namespace=namespace,
            artifacts=config.artifacts,
            docker=docker,
            registry=config.registry,
            kubeconfig=kubeconfig,
            clock=clock,
            established_timeout=established,
        )
    if name == "docker":
        from .docker import DockerTarget

        return DockerTarget(
            project=config.cluster.name, artifacts=config.artifacts, docker=docker, clock=clock
        )
    from .kind import KindTarget

    settings = config.cluster
    return KindTarget(
        cluster=(recorded or {}).get("cluster") or settings.name,
        artifacts=config.artifacts,
        docker=docker,
        clock=clock,
        kind_config=settings.kind_config,
        node_image=settings.node_image,
        local_registry=settings.local_registry,
        registry_image=settings.local_registry_image,
        established_timeout=established,
    )


def env_name(text: str) -> str:
    """``api-server`` -> ``API_SERVER``: a Service name as part of an environment variable."""
    return "".join(c if c.isalnum() else "_" for c in text).upper()


def endpoint_env(service: str, port: int, host_port: str, first: bool) -> dict[str, str]:
    """The documented variables for one forwarded Service port."""
    env = {f"STAGEGATE_HOSTPORT_{env_name(service)}_{port}": host_port}
    if first:
        env[f"STAGEGATE_URL_{env_name(service)}"] = f"http://{host_port}"
    return env


def services(objects: list[ManifestObject]) -> Iterator[tuple[str, str, list[int]]]:
    """``(namespace, name, ports)`` of every Service in ``objects``."""
    for obj in objects:
        if obj.kind == "Service":
            ports = [int(p["port"]) for p in (obj.doc.get("spec") or {}).get("ports") or [] if "port" in p]
            yield obj.namespace or "default", obj.name, ports


def provided_config(objects: list[ManifestObject]) -> dict[tuple[str, str, str], frozenset[str]]:
    """The ConfigMaps and Secrets the manifests provide, with their keys: what lets the
    readiness policy tell a config error that cannot resolve from one that may."""
    provided = {}
    for obj in objects:
        if obj.kind in ("ConfigMap", "Secret"):
            keys = {*(obj.doc.get("data") or {}), *(obj.doc.get("stringData") or {})}
            keys |= set(obj.doc.get("binaryData") or {})
            provided[(obj.kind, obj.namespace or "default", obj.name)] = frozenset(map(str, keys))
    return provided


def namespaces(objects: list[ManifestObject]) -> list[str]:
    """The namespaces the namespaced objects of ``objects`` live in ("default" for those that
    name none); cluster-scoped objects — built-in kinds, and custom resources whose CRD in
    ``objects`` says ``scope: Cluster`` — live in none."""
    cluster_kinds = kinds.CLUSTER_SCOPED | {
        str(((obj.doc.get("spec") or {}).get("names") or {}).get("kind"))
        for obj in objects
        if obj.kind == "CustomResourceDefinition" and (obj.doc.get("spec") or {}).get("scope") == "Cluster"
    }
    found = {obj.namespace or "default" for obj in objects if obj.kind not in cluster_kinds}
    return sorted(found)
