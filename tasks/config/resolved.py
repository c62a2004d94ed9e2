"""The configuration as a run uses it: :class:`Config` with its :class:`ImageSpec` s (absolute
paths, interpolated build args, complete dependencies) and the resolved tables of the
registry, the existing target, the cluster, deploy and e2e."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import graph
from ..builder import BuildSecret
from ..dockerfile import Dockerfile
from ..errors import config_error
from ..readiness import ReadinessPolicy
from .models import SECTION, did_you_mean


@dataclass(frozen=True)
class RegistryConfig:
    url: str
    insecure: bool = False
    cache: bool = True

    def repository(self, image: str) -> str:
        """Where ``image`` (a configured name) lives in this registry: the whole configured
        name below the URL (``URL/example/api-server``), so two images never share one."""
        return f"{self.url}/{image}"


@dataclass(frozen=True)
class ExistingConfig:
    contexts: tuple[str, ...]
    context: str | None = None
    namespace: str = "sg-{run}"
    kubeconfig: Path | None = None


@dataclass(frozen=True)
class ImageSpec:
    """A configured image, resolved: what the build stage needs to build it."""

    name: str
    context: Path
    dockerfile: Path
    build_args: Mapping[str, str]
    depends_on: tuple[str, ...]
    smoke: tuple[str, ...] | None
    smoke_timeout: float
    parsed: Dockerfile
    index: int  # position in the config, for key paths in errors
    secret_build_args: frozenset[str] = frozenset()  # configured or named like secrets
    target: str | None = None
    platforms: tuple[str, ...] = ()
    secrets: tuple[BuildSecret, ...] = ()
    tags: tuple[str, ...] = ()  # extra tags besides the content-hash tag
    labels: Mapping[str, str] = field(default_factory=dict)
    pull: bool = False
    no_cache: bool = False
    secret_env: Mapping[str, str] = field(default_factory=dict, repr=False)  # env var -> value
    smoke_entrypoint: str | None = None  # None: cleared; "image": the image's own; or a path

    def hashed_options(self) -> dict[str, str]:
        """What of the configuration changes the image besides build args: the target stage,
        the platforms, the secrets' ids (never their values), the labels."""
        options = {f"label:{k}": v for k, v in self.labels.items()}
        if self.target:
            options["target"] = self.target
        if self.platforms:
            options["platforms"] = ",".join(self.platforms)
        if self.secrets:
            options["secrets"] = ",".join(sorted(secret.id for secret in self.secrets))
        return options

    @property
    def key(self) -> str:
        return f"{SECTION}.images[{self.index}]"


@dataclass(frozen=True)
class ClusterConfig:
    name: str = "stagegate"
    kind_config: Path | None = None
    node_image: str | None = None
    local_registry: bool = False
    local_registry_image: str = "registry:2"


@dataclass(frozen=True)
class DeployConfig:
    manifests: tuple[Path, ...]  # in the order they are rendered and applied, globs expanded
    external_images: tuple[str, ...]
    policy: ReadinessPolicy = field(default_factory=ReadinessPolicy)
    kustomize_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class PortForward:
    """A workload or Service the e2e command gets an endpoint for (``port_forward``)."""

    resource_type: str  # service | deployment | statefulset | pod
    resource_name: str
    port: int | str  # a number, or a container port's name (a Service port's for a service)
    namespace: str | None = None  # None: the object's own in the manifests
    local_port: int | None = None

    def entry(self) -> dict[str, Any]:
        """The entry as written in ``[tool.stagegate.e2e] port_forward`` (what ``init`` writes)."""
        entry: dict[str, Any] = {"resource_type": self.resource_type, "resource_name": self.resource_name}
        if self.namespace:
            entry["namespace"] = self.namespace
        entry["port"] = self.port
        if self.local_port is not None:
            entry["local_port"] = self.local_port
        return entry

    def describe(self) -> str:
        local = f" on local port {self.local_port}" if self.local_port is not None else ""
        return f"{self.resource_type}/{self.resource_name} port {self.port}{local}"

    @property
    def key(self) -> str:
        """What the terminal and errors call it: ``deployment/web``."""
        return f"{self.resource_type}/{self.resource_name}"


@dataclass(frozen=True)
class E2EConfig:
    command: tuple[str, ...]
    requirements: tuple[str, ...] = ()
    timeout: float = 1800.0
    allow_no_tests: bool = False
    port_forward: tuple[PortForward, ...] = ()
    cache: bool = False  # the e2e result cache (stagegate.resultcache)
    inputs: tuple[Path, ...] = ()  # what the cache key hashes of the e2e suite's own files


@dataclass(frozen=True)
class Config:
    """The validated configuration of one repository."""

    root: Path
    artifacts: Path
    images: Mapping[str, ImageSpec]
    platform: str | None = None  # None: the Docker engine's own os/arch
    deploy: DeployConfig | None = None
    target: str = "auto"
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    e2e: E2EConfig | None = None
    profiles: tuple[str, ...] = ()  # the names under [tool.stagegate.profiles]
    profile: str | None = None  # the one applied
    registry: RegistryConfig | None = None
    existing: ExistingConfig | None = None

    def relpath(self, path: Path) -> str:
        """``path`` relative to the repository root, for messages and error.json."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def select(self, only: list[str]) -> list[str]:
        """Names of the images to work on: ``only`` and what they need, in config order."""
        if not only:
            return list(self.images)
        for name in only:
            if name not in self.images:
                raise config_error(
                    "--only",
                    f"--only names {name!r}, which is not a configured image",
                    did_you_mean(name, self.images) or "configured: " + ", ".join(self.images),
                    image=name,
                )
        wanted = graph.requirements({n: s.depends_on for n, s in self.images.items()}, only)
        return [n for n in self.images if n in wanted]
