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
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import kinds
from ..manifests import ManifestObject
from ..readiness import ImageFacts, ReadinessPolicy

if TYPE_CHECKING:
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

    def up(self, *, recreate: bool) -> dict[str, Any]:
        """Create or reuse the target; outputs for the ledger (name, created, ...)."""
        ...

    def load_images(self, images: list[ImageToLoad]) -> dict[str, Any]:
        """Make ``images`` available to the target, only where they are missing; check them.
        Each image's entry has a ``summary`` the terminal shows (in the target's own words)."""
        ...

    def apply(self, objects: list[ManifestObject]) -> dict[str, Any]:
        """Create or update ``objects`` (manifests already rewritten to the built tags)."""
        ...

    def wait_ready(
        self, objects: list[ManifestObject], policy: ReadinessPolicy, images: ImageFacts, on_progress: Any
    ) -> dict[str, Any]:
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


def select_target(requested: str, *, which: Any = shutil.which) -> tuple[str, str]:
    """The target to use and why: ``(name, reason)``."""
    if requested in ("kind", "docker", "existing"):
        return requested, "requested"
    if which("kind"):
        return "kind", "auto: kind is on PATH"
    return "docker", "auto: kind is not on PATH"


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
