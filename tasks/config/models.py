"""The ``[tool.stagegate]`` tables as written: pydantic models of the TOML (bounds, types, no
unknown keys), the profile tables that override them, and the names of the files they live in."""

from __future__ import annotations

import difflib
import typing
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from ..errors import StagegateError, config_error
from ..readiness import ReadinessPolicy

PYPROJECT = "pyproject.toml"
STAGEGATE_TOML = "stagegate.toml"  # for repositories without a pyproject.toml of their own
SECTION = "tool.stagegate"
ARTIFACTS_ENV = "STAGEGATE_ARTIFACTS"
DEFAULT_ARTIFACTS = ".stagegate"


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


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


def with_profile(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """The raw ``[tool.stagegate]`` table with profile ``name`` applied."""
    profile = raw["profiles"][name]
    merged = dict(raw)
    for table in PROFILE_TABLES:
        if table in profile:
            merged[table] = {**(raw.get(table) or {}), **profile[table]}
    return merged


def profile_key(raw: dict[str, Any], name: str | None, table: str, key: str) -> str:
    """The key path of ``table.key`` as the run uses it: the profile's, when it sets it."""
    if name is not None and key in (raw["profiles"][name].get(table) or {}):
        return f"{SECTION}.profiles.{name}.{table}.{key}"
    return f"{SECTION}.{table}.{key}"


def unknown_profile(name: str, known: typing.Iterable[str]) -> StagegateError:
    known = list(known)
    return config_error(
        "--profile",
        f"--profile {name!r} names no profile of [tool.stagegate.profiles]",
        did_you_mean(name, known)
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
