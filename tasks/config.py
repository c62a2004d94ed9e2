"""``[tool.stagegate]`` in pyproject.toml: loaded, validated, resolved.

:func:`load_config` returns a :class:`Config` whose images are :class:`ImageSpec` with absolute
paths, interpolated build args and complete dependencies (``depends_on`` plus ``FROM`` lines
naming a configured image). Every problem is a ``CONFIG_INVALID`` error with the key path and
a hint; nothing half-valid escapes.

Secret build args — listed in ``secret_build_args`` or named like a secret
(:func:`stagegate.redact.is_secret_name`) — are registered for redaction as soon as their value is
known, before anything can write it.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from . import graph, redact
from .builder import BuildSecret
from .dockerfile import Dockerfile, DockerfileSyntaxError
from .errors import StagegateError, config_error
from .filetypes import file_type
from .readiness import ReadinessPolicy

PYPROJECT = "pyproject.toml"
STAGEGATE_TOML = "stagegate.toml"  # for repositories without a pyproject.toml of their own
SECTION = "tool.stagegate"
ARTIFACTS_ENV = "STAGEGATE_ARTIFACTS"
DEFAULT_ARTIFACTS = ".stagegate"

# A repository name as Docker accepts it: lowercase path components, optional registry host.
_IMAGE_NAME = r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


_PLATFORM = r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$"


class FileValue(_Strict):
    """A build arg whose value is a file's content (``{ file = ".nvmrc" }``)."""

    file: str


class SecretSettings(_Strict):
    """A BuildKit secret: ``{ id = "npm", env = "NPM_TOKEN" }`` or ``{ id = "npm", src = "path" }``."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    src: str | None = None


class ImageSettings(_Strict):
    """One ``[[tool.stagegate.images]]`` table, as written."""

    name: Annotated[str, Field(pattern=_IMAGE_NAME)]
    context: str = "."
    dockerfile: str | None = None
    build_args: dict[str, str | FileValue] = {}
    target: str | None = None
    platforms: list[Annotated[str, Field(pattern=_PLATFORM)]] = []
    secrets: list[SecretSettings] = []
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_$][A-Za-z0-9_.${}:-]*$")]] = []
    labels: dict[str, str] = {}
    pull: bool = False
    no_cache: bool = False
    secret_build_args: list[str] = []  # besides those named like secrets (*TOKEN*, *KEY*, …)
    depends_on: list[str] = []
    smoke: list[str] | None = None
    smoke_timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 30.0
    # None: the smoke command runs with the image's ENTRYPOINT cleared; "image": the image's
    # ENTRYPOINT runs with the smoke list as its arguments; "/path": that program instead.
    smoke_entrypoint: Annotated[str, Field(pattern=r"^(image|/\S+)$")] | None = None


class ClusterSettings(_Strict):
    """``[tool.stagegate.cluster]``: the kind cluster the run deploys to."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")] = "stagegate"
    kind_config: str | None = None
    node_image: str | None = None
    # a registry container beside the kind cluster, pushed to instead of `kind load`
    local_registry: bool = False
    local_registry_image: Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$")] = "registry:2"


class DeploySettings(_Strict):
    """``[tool.stagegate.deploy]``: the manifests, the images they may use besides ours, and
    the readiness policy."""

    manifests: str | Annotated[list[str], Field(min_length=1)]  # sources applied in order; globs allowed
    kustomize_args: list[str] = []
    external_images: list[str] = []
    timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = ReadinessPolicy.timeout
    poll_interval: Annotated[float, Field(gt=0, allow_inf_nan=False)] = ReadinessPolicy.poll_interval
    crashloop_restarts: Annotated[int, Field(ge=0)] = ReadinessPolicy.crashloop_restarts
    unschedulable_grace: Annotated[float, Field(ge=0, allow_inf_nan=False)] = (
        ReadinessPolicy.unschedulable_grace
    )


_PORT = Annotated[int, Field(ge=1, le=65535)]
_DNS_NAME = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"
_PORT_NAME = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"  # a container port's name (IANA_SVC_NAME)


# What a port forward may name (Skaffold's resourceType, lowercased as Skaffold writes it).
PORT_FORWARD_TYPES = ("service", "deployment", "statefulset", "pod")


class PortForwardSettings(_Strict):
    """One entry of ``[tool.stagegate.e2e] port_forward``, in Skaffold's ``portForward`` shape:
    a workload (or Service) the e2e command reaches on 127.0.0.1."""

    resource_type: Literal[PORT_FORWARD_TYPES]
    resource_name: Annotated[str, Field(pattern=_DNS_NAME)]
    namespace: Annotated[str, Field(pattern=_DNS_NAME)] | None = None
    port: _PORT | Annotated[str, Field(pattern=_PORT_NAME)]
    local_port: _PORT | None = None  # a preference: another free port when it is taken


class E2ESettings(_Strict):
    """``[tool.stagegate.e2e]``: the end-to-end test command and what it needs installed."""

    command: Annotated[list[str], Field(min_length=1)]
    requirements: list[str] = []
    timeout: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1800.0
    allow_no_tests: bool = False  # a run that executed no test (none, or all skipped) passes
    port_forward: list[PortForwardSettings] = []
    cache: bool = False  # skip cluster, deploy and e2e when exactly these inputs passed before
    inputs: list[str] = []  # files and folders the e2e command runs; default: the command's paths


# -- profiles -------------------------------------------------------------------------------
# ``[tool.stagegate.profiles.<name>]``: overrides of the deploy, e2e and cluster tables, applied
# when the run's target has the profile's name or when ``--profile <name>`` asks for it. Each key
# a profile sets replaces the same key of the base table (a list such as ``deploy.manifests`` is
# replaced whole); keys it does not set keep their base value.
PROFILE_TABLES = ("deploy", "e2e", "cluster")


def _overrides(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every key optional (same types and bounds): one table of a profile."""
    fields: dict[str, Any] = {
        name: (
            (Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation) | None,
            None,
        )
        for name, info in model.model_fields.items()
    }
    return pydantic.create_model(f"{model.__name__}Overrides", __base__=_Strict, **fields)


DeployOverrides = _overrides(DeploySettings)
E2EOverrides = _overrides(E2ESettings)


class ClusterOverrides(_Strict):
    """``[tool.stagegate.profiles.<name>.cluster]``: which Kubernetes the kind cluster runs, so
    that one build can be tested against several versions. Only these two keys: the cluster's
    name and its local registry say which cluster and which registry container a run reuses and
    teardown removes, and teardown reads them from the base table, whatever profile a run used."""

    kind_config: str | None = None
    node_image: str | None = None


class ProfileSettings(_Strict):
    """One ``[tool.stagegate.profiles.<name>]`` table."""

    deploy: DeployOverrides | None = None  # type: ignore[valid-type]
    e2e: E2EOverrides | None = None  # type: ignore[valid-type]
    cluster: ClusterOverrides | None = None


def _with_profile(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """The raw ``[tool.stagegate]`` table with profile ``name`` applied."""
    profile = raw["profiles"][name]
    merged = dict(raw)
    for table in PROFILE_TABLES:
        if table in profile:
            merged[table] = {**(raw.get(table) or {}), **profile[table]}
    return merged


def _profile_key(raw: dict[str, Any], name: str | None, table: str, key: str) -> str:
    """The key path of ``table.key`` as the run uses it: the profile's, when it sets it."""
    if name is not None and key in (raw["profiles"][name].get(table) or {}):
        return f"{SECTION}.profiles.{name}.{table}.{key}"
    return f"{SECTION}.{table}.{key}"


def unknown_profile(name: str, known: typing.Iterable[str]) -> StagegateError:
    known = list(known)
    return config_error(
        "--profile",
        f"--profile {name!r} names no profile of [tool.stagegate.profiles]",
        _did_you_mean(name, known)
        or (
            "profiles: " + ", ".join(known)
            if known
            else "none is configured: add [tool.stagegate.profiles.NAME]"
        ),
        profile=name,
    )


# -- registry and the existing-cluster target -------------------------------------------------------
# A registry URL as written: host[:port]/path, no scheme, no tag.
_REGISTRY_URL = (
    r"^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*/?$"
)


class RegistrySettings(_Strict):
    """``[tool.stagegate.registry]``: where ``--push`` sends this run's images (credentials
    come from the user's Docker config, ``docker login``; stagegate never stores any)."""

    url: Annotated[str, Field(pattern=_REGISTRY_URL)]
    insecure: bool = False  # plain HTTP / unverified TLS for `docker manifest inspect`
    cache: bool = True  # an image the registry holds under its content-hash tag is not built again


class ExistingSettings(_Strict):
    """``[tool.stagegate.existing]``: a cluster stagegate did not create and never deletes."""

    contexts: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    context: str | None = None  # the default of --context
    namespace: Annotated[str, Field(pattern=r"^[a-z0-9{}-]+$")] = "sg-{run}"  # also {owner}
    kubeconfig: str | None = None  # None: kubectl's own ($KUBECONFIG, ~/.kube/config)


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


class Settings(_Strict):
    """The ``[tool.stagegate]`` table, as written."""

    artifacts: str = DEFAULT_ARTIFACTS
    platform: Annotated[str, Field(pattern=r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")] | None = None
    target: Literal["auto", "kind", "docker", "existing"] = "auto"
    images: list[ImageSettings] = []
    cluster: ClusterSettings = ClusterSettings()
    registry: RegistrySettings | None = None
    existing: ExistingSettings | None = None
    deploy: DeploySettings | None = None
    e2e: E2ESettings | None = None
    profiles: dict[str, ProfileSettings] = {}


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
                    _did_you_mean(name, self.images) or "configured: " + ", ".join(self.images),
                    image=name,
                )
        wanted = graph.requirements({n: s.depends_on for n, s in self.images.items()}, only)
        return [n for n in self.images if n in wanted]


def artifacts_dir(root: Path, env: Mapping[str, str] = os.environ) -> Path:
    """The artifacts dir, readable even when the rest of the configuration is broken.

    Errors about the configuration itself must land somewhere: ``STAGEGATE_ARTIFACTS``
    wins, then a string ``artifacts`` key, then the default.
    """
    if env.get(ARTIFACTS_ENV):
        return (root / env[ARTIFACTS_ENV]).resolve()
    try:
        name = config_file(root)
        if not (root / name).is_file():  # a FIFO must never be opened
            raise OSError(f"{name} is not a file")
        raw = tomllib.loads((root / name).read_text()).get("tool", {}).get("stagegate", {})
        value = raw.get("artifacts", DEFAULT_ARTIFACTS)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        value = DEFAULT_ARTIFACTS
    if not isinstance(value, str) or not _inside(root, root / value):
        value = DEFAULT_ARTIFACTS
    return (root / value).resolve()


def load_config(root: Path, env: Mapping[str, str] = os.environ, profile: str | None = None) -> Config:
    """Read, validate and resolve ``[tool.stagegate]`` of the repository at ``root``, with the
    profile named ``profile`` applied (``CONFIG_INVALID`` when there is none of that name)."""
    root = root.resolve()
    raw = _read_section(root)
    try:
        settings = Settings.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise _from_validation_error(exc, raw) from None
    for name, overrides in settings.profiles.items():  # every profile's paths, used or not
        if overrides.deploy is not None and overrides.deploy.manifests is not None:
            _manifest_sources(
                root, overrides.deploy.manifests, _profile_key(raw, name, "deploy", "manifests")
            )
        if overrides.cluster is not None and overrides.cluster.kind_config is not None:
            key = _profile_key(raw, name, "cluster", "kind_config")
            _path_in_repo(root, overrides.cluster.kind_config, key, must_exist=True, kind="file")
    if profile is not None:
        if profile not in settings.profiles:
            raise unknown_profile(profile, settings.profiles)
        merged = _with_profile(raw, profile)
        try:
            settings = Settings.model_validate(merged)
        except pydantic.ValidationError as exc:
            raise _from_validation_error(exc, merged, profile=(profile, raw)) from None

    if env.get(ARTIFACTS_ENV):
        artifacts = (root / env[ARTIFACTS_ENV]).resolve()
    else:
        artifacts = _path_in_repo(root, settings.artifacts, f"{SECTION}.artifacts", must_exist=False)

    names = [image.name for image in settings.images]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise config_error(
                f"{SECTION}.images[{index}].name",
                f"image {name!r} is configured twice (images[{names.index(name)}] and images[{index}])",
                "give every image its own name",
            )

    images = {
        image.name: _resolve_image(root, image, index, names, env)
        for index, image in enumerate(settings.images)
    }
    cycle = graph.find_cycle({n: s.depends_on for n, s in images.items()})
    if cycle:
        first = images[cycle[0]]
        raise config_error(
            f"{first.key}.depends_on",
            "images depend on each other in a cycle: " + " -> ".join(cycle),
            "remove one of these dependencies (depends_on or a FROM line naming a configured image)",
            cycle=cycle,
        )
    deploy = None
    if settings.deploy is not None:
        deploy = DeployConfig(
            manifests=_manifest_sources(
                root, settings.deploy.manifests, _profile_key(raw, profile, "deploy", "manifests")
            ),
            kustomize_args=_kustomize_args(
                settings.deploy.kustomize_args, _profile_key(raw, profile, "deploy", "kustomize_args")
            ),
            external_images=tuple(settings.deploy.external_images),
            policy=ReadinessPolicy(
                poll_interval=settings.deploy.poll_interval,
                timeout=settings.deploy.timeout,
                crashloop_restarts=settings.deploy.crashloop_restarts,
                unschedulable_grace=settings.deploy.unschedulable_grace,
            ),
        )
    kind_config = None
    if settings.cluster.kind_config is not None:
        key = _profile_key(raw, profile, "cluster", "kind_config")
        kind_config = _path_in_repo(root, settings.cluster.kind_config, key, must_exist=True, kind="file")
    e2e = None
    if settings.e2e is not None:
        e2e = E2EConfig(
            tuple(settings.e2e.command),
            tuple(settings.e2e.requirements),
            settings.e2e.timeout,
            settings.e2e.allow_no_tests,
            _port_forwards(settings.e2e.port_forward),
            settings.e2e.cache,
            _e2e_inputs(root, settings.e2e, _profile_key(raw, profile, "e2e", "inputs")),
        )
    return Config(
        root=root,
        artifacts=artifacts,
        images=images,
        platform=settings.platform,
        deploy=deploy,
        target=settings.target,
        cluster=ClusterConfig(
            name=settings.cluster.name,
            kind_config=kind_config,
            node_image=settings.cluster.node_image,
            local_registry=settings.cluster.local_registry,
            local_registry_image=settings.cluster.local_registry_image,
        ),
        e2e=e2e,
        profiles=tuple(settings.profiles),
        profile=profile,
        registry=_registry(settings.registry),
        existing=_existing(root, settings.existing),
    )


def _e2e_inputs(root: Path, e2e: E2ESettings, key: str) -> tuple[Path, ...]:
    """The files and folders of the e2e suite the result cache's key hashes: ``inputs`` as
    configured, else every word of the command that names a file or folder of the
    repository (``pytest e2e -q`` -> ``e2e``; ``./e2e/run.sh`` -> itself). With
    ``cache = true`` there must be one."""
    if e2e.inputs:
        paths = [_path_in_repo(root, value, key, must_exist=True) for value in e2e.inputs]
    else:
        paths = []
        for arg in e2e.command:
            if arg.startswith("-") or not arg.strip() or Path(arg).is_absolute():
                continue
            path = (root / arg).resolve()
            if _inside(root, path) and path != root and path.exists():
                paths.append(path)
    if e2e.cache and not paths:
        raise config_error(
            key,
            "[tool.stagegate.e2e] cache = true, but no file or folder of the e2e suite is known: "
            "the command names none of the repository's",
            'name what the e2e command runs: [tool.stagegate.e2e] inputs = ["e2e"] (files or folders)',
        )
    return tuple(dict.fromkeys(paths))


def _port_forwards(entries: list[PortForwardSettings]) -> tuple[PortForward, ...]:
    """The ``port_forward`` entries; two that would take the same local port, or forward the
    same port of the same resource twice, are refused."""
    forwards: list[PortForward] = []
    for index, entry in enumerate(entries):
        forward = PortForward(**entry.model_dump())
        key = f"{SECTION}.e2e.port_forward[{index}]"
        for earlier, other in enumerate(forwards):
            if (other.key, other.namespace, other.port) == (forward.key, forward.namespace, forward.port):
                raise config_error(
                    key,
                    f"{key} forwards {forward.key} port {forward.port} again",
                    f"remove one of port_forward[{earlier}] and port_forward[{index}]",
                )
            if forward.local_port is not None and forward.local_port == other.local_port:
                raise config_error(
                    f"{key}.local_port",
                    f"{key}.local_port = {forward.local_port} is port_forward[{earlier}]'s too",
                    "give each entry its own local_port, or leave it out (a free port is used)",
                )
        forwards.append(forward)
    return tuple(forwards)


def _registry(settings: RegistrySettings | None) -> RegistryConfig | None:
    return (
        None
        if settings is None
        else RegistryConfig(settings.url.rstrip("/"), settings.insecure, settings.cache)
    )


def _existing(root: Path, settings: ExistingSettings | None) -> ExistingConfig | None:
    if settings is None:
        return None
    key = f"{SECTION}.existing"
    if settings.context is not None and settings.context not in settings.contexts:
        raise config_error(
            f"{key}.context",
            f"{key}.context = {settings.context!r} is not in {key}.contexts",
            "add it to contexts (the allow-list) or name one of " + ", ".join(map(repr, settings.contexts)),
        )
    if "{run}" not in settings.namespace:
        raise config_error(
            f"{key}.namespace",
            f"{key}.namespace = {settings.namespace!r} does not contain {{run}}",
            "two runs at once must never share a namespace: keep {run} in it (default sg-{run})",
        )
    kubeconfig = None
    if settings.kubeconfig is not None:
        kubeconfig = Path(settings.kubeconfig).expanduser()
        if not kubeconfig.is_absolute():
            kubeconfig = root / kubeconfig
    return ExistingConfig(tuple(settings.contexts), settings.context, settings.namespace, kubeconfig)


def interpolate(value: str, env: Mapping[str, str], key: str) -> str:
    """Expand ``${VAR}``, ``${VAR:-default}`` and ``${VAR-default}``; ``${VAR:?message}`` and
    ``${VAR?message}`` fail with the message as the shell does; ``$$`` is a literal ``$``."""

    def expand(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        name, op, default = match.group("name", "op", "default")
        current = env.get(name)
        if op in (":?", "?") and (current is None or (op == ":?" and not current)):
            said = default or ("parameter null or not set" if op == ":?" else "parameter not set")
            raise config_error(
                key,
                f"{key}: {name}: {said}",
                f"set {name} in the environment"
                + (" (to a non-empty value)" if op == ":?" and current == "" else ""),
                variable=name,
            )
        if op in (":?", "?"):
            return current
        if op == ":-" and not current:
            return default
        if op == "-" and current is None:
            return default
        if current is None:
            raise config_error(
                key,
                f"{key} uses ${{{name}}}, which is not set",
                f"set {name} in the environment, or give a default: ${{{name}:-value}}",
                variable=name,
            )
        return current

    return _VARIABLE.sub(expand, value)


_VARIABLE = re.compile(
    r"(?P<escaped>\$\$)|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}"
)


def config_file(root: Path) -> str:
    """The file that holds ``[tool.stagegate]``: ``pyproject.toml``, or ``stagegate.toml`` at the
    repository root when there is none with that table. Both holding one is an error: never
    one of them silently."""
    own = root / STAGEGATE_TOML
    if not own.is_file():
        return PYPROJECT
    if _has_section(root / PYPROJECT):
        if _has_section(own):
            raise config_error(
                SECTION,
                f"both {PYPROJECT} and {STAGEGATE_TOML} hold a [{SECTION}] table",
                f"keep one of them (stagegate reads {PYPROJECT} when it has the table)",
                file=STAGEGATE_TOML,
            )
        return PYPROJECT
    return STAGEGATE_TOML


def _has_section(path: Path) -> bool:
    try:
        if not path.is_file():
            return False
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return path.name == PYPROJECT and path.is_file()  # a broken pyproject.toml is reported as such
    return isinstance(document.get("tool"), dict) and "stagegate" in document["tool"]


def _read_section(root: Path) -> dict[str, Any]:
    name = config_file(root)  # the file every message below quotes
    path = root / name
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise config_error(
            SECTION,
            f"{name} is {file_type(mode)}, not a file",
            f"replace {name} with the project's TOML file",
            file=name,
        )
    try:
        text = path.read_bytes().decode("utf-8")
        if text.startswith("\ufeff"):
            raise config_error(
                SECTION,
                f"{name} starts with a UTF-8 byte order mark, which TOML does not allow",
                f"save {name} as UTF-8 without BOM",
                file=name,
            )
        document = tomllib.loads(text)
    except FileNotFoundError:
        raise config_error(
            SECTION, f"no {name} in {root.name}/", f"run stagegate from a repository with a {name}"
        ) from None
    except OSError as exc:
        raise config_error(
            SECTION, f"cannot read {name}: {exc.strerror}", f"make {name} readable", file=name
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise config_error(
            SECTION, f"{name} is not valid TOML: {exc}", "fix the TOML syntax (UTF-8)", file=name
        ) from None
    tool = document.get("tool")
    section = tool.get("stagegate") if isinstance(tool, dict) else None
    if section is None:
        raise config_error(
            SECTION,
            f"{name} has no [{SECTION}] table",
            f"add [{SECTION}] with at least one [[{SECTION}.images]] entry (see README)",
            file=name,
        )
    if not isinstance(section, dict):
        raise config_error(SECTION, f"[{SECTION}] must be a table", "see README for the format", file=name)
    return section


def _resolve_image(
    root: Path, image: ImageSettings, index: int, names: list[str], env: Mapping[str, str]
) -> ImageSpec:
    key = f"{SECTION}.images[{index}]"
    context = _path_in_repo(root, image.context, f"{key}.context", must_exist=True, kind="directory")
    dockerfile = _path_in_repo(
        root,
        image.dockerfile or str(Path(image.context) / "Dockerfile"),
        f"{key}.dockerfile",
        must_exist=True,
        kind="file",
    )
    secret_args = _secret_build_args(image, key)
    build_args = {
        name: _file_value(root, value, f"{key}.build_args.{name}")
        if isinstance(value, FileValue)
        else interpolate(value, env, f"{key}.build_args.{name}")
        for name, value in image.build_args.items()
    }
    for name in secret_args:
        redact.register(build_args[name])
    for position, dependency in enumerate(image.depends_on):
        if dependency not in names:
            raise config_error(
                f"{key}.depends_on[{position}]",
                f"{image.name} depends on {dependency!r}, which is not a configured image",
                _did_you_mean(dependency, names)
                or "configure it under [[tool.stagegate.images]] or remove it",
            )
        if dependency == image.name:
            raise config_error(
                f"{key}.depends_on[{position}]", f"{image.name} depends on itself", "remove it"
            )
    relative = dockerfile.relative_to(root).as_posix()
    try:
        parsed = Dockerfile.parse(dockerfile.read_text(encoding="utf-8"), path=dockerfile)
        refs = parsed.image_refs(build_args)
    except (OSError, UnicodeDecodeError, DockerfileSyntaxError) as exc:
        raise config_error(
            f"{key}.dockerfile",
            f"cannot read {relative}: {exc}",
            f"fix {relative}, or point dockerfile at another file",
            file=relative,
        ) from None
    if image.target is not None and image.target not in parsed.stage_names:
        raise config_error(
            f"{key}.target",
            f"{key}.target = {image.target!r} is not a stage of {relative}",
            _did_you_mean(image.target, parsed.stage_names)
            or "stages: " + (", ".join(parsed.stage_names) or "none (no FROM … AS name)"),
            file=relative,
        )
    secrets, secret_env = _secrets(root, image, key, env)
    labels = {k: interpolate(v, env, f"{key}.labels.{k}") for k, v in image.labels.items()}
    for label in labels:
        if label.startswith("dev.stagegate."):
            raise config_error(
                f"{key}.labels.{label}", f"{label} is stagegate's own label", "use another key"
            )
    tags = tuple(interpolate(tag, env, f"{key}.tags") for tag in image.tags)
    for position, tag in enumerate(tags):
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag) or tag.startswith("sg-"):
            raise config_error(
                f"{key}.tags[{position}]",
                f"{key}.tags[{position}] = {tag!r} is not a tag stagegate may set",
                "use letters, digits, '_', '.', '-' (at most 128, not starting with '.', '-' or 'sg-')",
            )
    inferred = [
        ref.configured_name(names) for ref in refs if ref.configured_name(names) not in (None, image.name)
    ]
    depends_on = tuple(dict.fromkeys([*image.depends_on, *inferred]))
    return ImageSpec(
        name=image.name,
        context=context,
        dockerfile=dockerfile,
        build_args=build_args,
        depends_on=depends_on,  # type: ignore[arg-type]
        smoke=tuple(image.smoke) if image.smoke is not None else None,
        smoke_timeout=image.smoke_timeout,
        smoke_entrypoint=image.smoke_entrypoint,
        parsed=parsed,
        index=index,
        secret_build_args=secret_args,
        target=image.target,
        platforms=tuple(image.platforms),
        secrets=secrets,
        tags=tags,
        labels=labels,
        pull=image.pull,
        no_cache=image.no_cache,
        secret_env=secret_env,
    )


def _file_value(root: Path, value: FileValue, key: str) -> str:
    """A build arg read from a file inside the repository, without its trailing newline."""
    path = _path_in_repo(root, value.file, f"{key}.file", must_exist=True, kind="file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise config_error(
            f"{key}.file", f"cannot read {value.file}: {exc}", "make it a readable UTF-8 file"
        ) from None
    return text.removesuffix("\n").removesuffix("\r")


def _secrets(
    root: Path, image: ImageSettings, key: str, env: Mapping[str, str]
) -> tuple[tuple[BuildSecret, ...], dict[str, str]]:
    """The image's BuildKit secrets; the values of ``env`` ones registered for redaction."""
    secrets: list[BuildSecret] = []
    values: dict[str, str] = {}
    for position, secret in enumerate(image.secrets):
        where = f"{key}.secrets[{position}]"
        if (secret.env is None) == (secret.src is None):
            raise config_error(
                where, f"{where} needs exactly one of env or src", 'e.g. { id = "npm", env = "NPM_TOKEN" }'
            )
        if secret.id in [s.id for s in secrets]:
            raise config_error(
                f"{where}.id", f"secret id {secret.id!r} is configured twice", "give every secret its own id"
            )
        if secret.env is not None:
            if secret.env not in env:
                raise config_error(
                    f"{where}.env",
                    f"{where}.env: {secret.env} is not set",
                    f"set {secret.env} in the environment",
                )
            values[secret.env] = env[secret.env]
            redact.register(env[secret.env])
            secrets.append(BuildSecret(secret.id, env=secret.env))
        else:
            path = _path_in_repo(root, secret.src or "", f"{where}.src", must_exist=True, kind="file")
            secrets.append(BuildSecret(secret.id, src=path))
    return tuple(secrets), values


def _secret_build_args(image: ImageSettings, key: str) -> frozenset[str]:
    """The build args of ``image`` whose values are secret; their names registered for
    redaction (``NAME=…`` is hidden wherever it is written)."""
    for position, name in enumerate(image.secret_build_args):
        if name not in image.build_args:
            raise config_error(
                f"{key}.secret_build_args[{position}]",
                f"secret_build_args names {name!r}, which is not one of {image.name}'s build_args",
                _did_you_mean(name, image.build_args) or "list names of keys of build_args",
            )
    secret = frozenset(image.secret_build_args) | {n for n in image.build_args if redact.is_secret_name(n)}
    for name in secret:
        redact.register_name(name)
    return secret


def _manifest_sources(
    root: Path, value: str | list[str], key: str = f"{SECTION}.deploy.manifests"
) -> tuple[Path, ...]:
    """``deploy.manifests``: one source or a list, each a kustomize dir, a YAML file, a directory
    of them or a glob (sorted matches, at least one); every one inside the repository."""
    values = [value] if isinstance(value, str) else value
    sources: list[Path] = []
    for index, entry in enumerate(values):
        entry_key = key if isinstance(value, str) else f"{key}[{index}]"
        if not any(c in entry for c in "*?["):
            sources.append(_path_in_repo(root, entry, entry_key, must_exist=True))
            continue
        if Path(entry).is_absolute() or ".." in Path(entry).parts:
            raise config_error(
                entry_key,
                f"{entry_key} = {entry!r} leaves the repository",
                "use a glob relative to pyproject.toml, inside the repository",
                path=entry,
            )
        matches = sorted(root.glob(entry))
        if not matches:
            raise config_error(
                entry_key,
                f"{entry_key}: the glob {entry!r} matches nothing",
                f"fix the pattern in {PYPROJECT}, or remove it",
                path=entry,
            )
        for match in matches:
            sources.append(
                _path_in_repo(root, match.relative_to(root).as_posix(), entry_key, must_exist=True)
            )
    return tuple(sources)


# The flags of `kubectl kustomize` (kubectl v1.32, kustomize v5.5.0: `kubectl kustomize --help`)
# that change what is rendered; `-o/--output` is stagegate's to decide, so it is not allowed.
KUSTOMIZE_VALUE_FLAGS = frozenset(
    {
        "--load-restrictor",
        "--helm-api-versions",
        "--helm-command",
        "--helm-kube-version",
        "--env",
        "-e",
        "--mount",
    }
)
KUSTOMIZE_BOOL_FLAGS = frozenset(
    {"--enable-helm", "--enable-alpha-plugins", "--helm-debug", "--as-current-user", "--network"}
)
KUSTOMIZE_NETWORK_NAME = "--network-name"
LOAD_RESTRICTORS = ("LoadRestrictionsRootOnly", "LoadRestrictionsNone")


def _kustomize_args(args: list[str], key: str = f"{SECTION}.deploy.kustomize_args") -> tuple[str, ...]:
    """``deploy.kustomize_args``: only flags `kubectl kustomize` accepts, each with its value."""
    known = sorted(KUSTOMIZE_VALUE_FLAGS | KUSTOMIZE_BOOL_FLAGS | {KUSTOMIZE_NETWORK_NAME})
    index = 0
    while index < len(args):
        arg = args[index]
        flag, has_value, value = arg.partition("=")
        if flag in KUSTOMIZE_VALUE_FLAGS or flag == KUSTOMIZE_NETWORK_NAME:
            if not has_value:
                if index + 1 >= len(args) or args[index + 1].startswith("-"):
                    raise config_error(
                        f"{key}[{index}]",
                        f"{key}: {flag} needs a value",
                        f'write it as "{flag}=VALUE" or follow it with the value',
                    )
                index += 1
                value = args[index]
            if flag == "--load-restrictor" and value not in LOAD_RESTRICTORS:
                raise config_error(
                    f"{key}[{index}]",
                    f"{key}: --load-restrictor {value!r} is not one of {', '.join(LOAD_RESTRICTORS)}",
                    "use --load-restrictor=LoadRestrictionsNone to let an overlay load files outside its root",
                )
        elif flag in KUSTOMIZE_BOOL_FLAGS:
            if has_value and value not in ("true", "false"):
                raise config_error(
                    f"{key}[{index}]", f"{key}: {flag} takes true or false, not {value!r}", f'write "{flag}"'
                )
        else:
            close = difflib.get_close_matches(flag, known, n=1)
            raise config_error(
                f"{key}[{index}]",
                f"{key}: {arg!r} is not a flag of `kubectl kustomize`"
                + (f" (did you mean {close[0]}?)" if close else ""),
                f"use one of {', '.join(known)}"
                + ("; -o/--output is stagegate's" if flag in ("-o", "--output") else ""),
            )
        index += 1
    return tuple(args)


def _path_in_repo(root: Path, value: str, key: str, *, must_exist: bool, kind: str = "path") -> Path:
    path = (root / value).resolve()
    if not _inside(root, path):
        raise config_error(
            key,
            f"{key} = {value!r} leaves the repository",
            "use a path inside the repository, relative to pyproject.toml",
            path=value,
        )
    if must_exist:
        try:
            mode = path.stat().st_mode
        except OSError:
            raise config_error(
                key,
                f"{key}: {kind} {value!r} does not exist",
                f"create it or fix the path in {PYPROJECT}",
                path=value,
            ) from None
        wanted = {"directory": stat.S_ISDIR, "file": stat.S_ISREG}.get(kind)
        if wanted is not None and not wanted(mode):
            raise config_error(
                key,
                f"{key}: {value!r} is {file_type(mode)}, not a {'regular file' if kind == 'file' else kind}",
                f"point {key.rsplit('.', 1)[-1]} at a {'file' if kind == 'file' else kind} in {PYPROJECT}",
                path=value,
            )
    return path


def _inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def _did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _from_validation_error(
    exc: pydantic.ValidationError, raw: Any, profile: tuple[str, Any] | None = None
) -> StagegateError:
    """The first validation problem as ``CONFIG_INVALID``, with key path and hint.

    ``profile`` (its name, the table before it was applied): a problem of the merged table that
    the profile brought in (a table it supplies without a required key) is named under it."""
    errors = exc.errors()
    first = errors[0]
    if first["type"] == "missing":  # a misspelt key explains the missing one: name it first
        first = next(
            (e for e in errors if e["type"] == "extra_forbidden" and e["loc"][:-1] == first["loc"][:-1]),
            first,
        )
    # deploy.manifests is a string or a list of them, a port a number or a name: pydantic judges
    # the value as each, the member's name after the key. A value is judged as the member of
    # its own type; the member's name is no key.
    at = _union_member(first["loc"])
    if at is not None:
        members = _UNION_MEMBERS.get(type(first["input"]), ())
        first = next(
            (
                e
                for e in errors
                if _union_member(e["loc"]) == at
                and e["loc"][:at] == first["loc"][:at]
                and e["loc"][at] in members
            ),
            first,
        )
    loc = first["loc"]
    at = _union_member(loc)
    if at is not None:
        loc = (*loc[:at], *loc[at + 1 :])
    if profile is not None and loc and loc[0] in PROFILE_TABLES and not profile[1].get(loc[0]):
        loc = ("profiles", profile[0], *loc)
    if "build_args" in loc and len(loc) > loc.index("build_args") + 2:  # the union's member names
        loc = loc[: loc.index("build_args") + 2]
    key = SECTION + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    if first["type"] == "extra_forbidden":
        known = _fields_at(Settings, loc[:-1])
        if loc[:1] == ("profiles",) and loc[2:3] == ("cluster",) and loc[-1] in ClusterSettings.model_fields:
            return config_error(
                key,
                f"a profile may not set {key}: a profile's cluster table takes only "
                + " and ".join(sorted(known)),
                f"set {loc[-1]} in [{SECTION}.cluster]: the cluster's name and its local registry are "
                "one per repository (teardown finds them there, whatever profile a run used)",
            )
        hint = _did_you_mean(str(loc[-1]), known) or "known keys: " + ", ".join(sorted(known))
        return config_error(key, f"unknown key {key}", hint)
    if first["type"] == "missing":
        return config_error(key, f"{key} is required", f"add {loc[-1]} = ... to the table")
    if first["type"] == "string_pattern_mismatch":
        if loc[-1] != "name" or loc[0] != "images":
            pattern = (first.get("ctx") or {}).get("pattern", "")
            what = {
                "platform": "an os/arch platform like 'linux/amd64'",
                "name": "a lowercase DNS name",
                "smoke_entrypoint": '"image" or an absolute path of a program in the image',
                "port": "a port number or the name of a declared port",
                "resource_name": "a lowercase DNS name",
            }
            return config_error(
                key,
                f"{key} = {first['input']!r} is not {what.get(str(loc[-1]), 'valid')}",
                f"use a value matching {pattern}",
            )
        return config_error(
            key,
            f"{key} = {first['input']!r} is not a valid image name",
            "use a lowercase repository name without a tag, like 'example/api-server'",
        )
    if first["type"] == "literal_error":
        expected = (first.get("ctx") or {}).get("expected", "")
        close = _did_you_mean(str(first["input"]), re.findall(r"'([^']*)'", expected))
        return config_error(
            key,
            f"{key} = {first['input']!r} is not one of {expected}",
            f"{close} use one of {expected}" if close else f"use one of {expected}",
        )
    bounds = {
        "greater_than": (">", "gt"),
        "greater_than_equal": (">=", "ge"),
        "less_than": ("<", "lt"),
        "less_than_equal": ("<=", "le"),
    }
    if first["type"] in bounds:
        operator, name = bounds[first["type"]]
        bound = f"{operator} {(first.get('ctx') or {}).get(name, 0):g}"
        return config_error(
            key, f"{key} must be {bound}, got {first['input']!r}", f"set {loc[-1]} to a number {bound}"
        )
    if first["type"] == "finite_number":
        return config_error(
            key, f"{key} must be a finite number, got {first['input']!r}", f"set {loc[-1]} to a finite number"
        )
    if first["type"] == "too_short":
        return config_error(key, f"{key} must not be empty", f"give {loc[-1]} at least one item")
    if first["type"] == "string_too_short":
        return config_error(key, f"{key} must not be an empty string", "write a name, or remove the entry")
    expected = first["msg"].replace("Input should be", "it should be", 1)
    return config_error(
        key, f"{key} has the wrong type: {type(first['input']).__name__} {first['input']!r}", expected
    )


_UNION_MEMBERS = {str: ("str", "constrained-str"), list: ("list[str]",), int: ("constrained-int",)}
_UNIONS = {"manifests": ("str", "list[str]"), "port": ("constrained-int", "constrained-str")}


def _union_member(loc: tuple[Any, ...]) -> int | None:
    """Where in ``loc`` the member of a union (``deploy.manifests``, a ``port_forward`` port)
    is named, if it is."""
    for key, members in _UNIONS.items():
        if key in loc:
            at = loc.index(key) + 1
            if at < len(loc) and loc[at] in members:
                return at
    return None


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by walking ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or part not in current.model_fields:  # a list index, a dict key
            continue
        annotation = current.model_fields[part].annotation
        current = next(
            (arg for arg in _flatten(annotation) if isinstance(arg, type) and issubclass(arg, BaseModel)),
            None,
        )
        if current is None:
            return []
    return list(current.model_fields)


def _flatten(annotation: Any) -> list[Any]:
    args = typing.get_args(annotation)
    if not args:
        return [annotation]
    return [leaf for arg in args for leaf in _flatten(arg)]
