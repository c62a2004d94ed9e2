"""Loading ``[tool.stagegate]``: the file found, the section read, validated against the models,
the profile applied, variables interpolated, paths checked to stay in the repository, secret
build args registered for redaction as soon as their value is known."""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic

from .. import graph
from ..errors import config_error
from ..filetypes import file_type
from ..readiness import ReadinessPolicy
from .errors import from_validation_error
from .images import resolve_image
from .kustomize import checked_kustomize_args
from .models import (
    ARTIFACTS_ENV,
    DEFAULT_ARTIFACTS,
    PYPROJECT,
    SECTION,
    STAGEGATE_TOML,
    DeploySettings,
    E2ESettings,
    ExistingSettings,
    PortForwardSettings,
    RegistrySettings,
    Settings,
    profile_key,
    unknown_profile,
    with_profile,
)
from .paths import inside, path_in_repo
from .resolved import (
    ClusterConfig,
    Config,
    DeployConfig,
    E2EConfig,
    ExistingConfig,
    ImageSpec,
    PortForward,
    RegistryConfig,
)


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
    if not isinstance(value, str) or not inside(root, root / value):
        value = DEFAULT_ARTIFACTS
    return (root / value).resolve()


def load_config(root: Path, env: Mapping[str, str] = os.environ, profile: str | None = None) -> Config:
    """Read, validate and resolve ``[tool.stagegate]`` of the repository at ``root``, with the
    profile named ``profile`` applied (``CONFIG_INVALID`` when there is none of that name)."""
    root = root.resolve()
    raw = _read_section(root)
    settings = _validated(root, raw, profile)
    if env.get(ARTIFACTS_ENV):
        artifacts = (root / env[ARTIFACTS_ENV]).resolve()
    else:
        artifacts = path_in_repo(root, settings.artifacts, f"{SECTION}.artifacts", must_exist=False)
    images = _images(root, settings, env)  # checked in this order: the first problem is reported
    deploy = _deploy(root, settings.deploy, raw, profile)
    kind_config = None
    if settings.cluster.kind_config is not None:
        key = profile_key(raw, profile, "cluster", "kind_config")
        kind_config = path_in_repo(root, settings.cluster.kind_config, key, must_exist=True, kind="file")
    e2e = _e2e(root, settings.e2e, raw, profile)
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


def _validated(root: Path, raw: dict[str, Any], profile: str | None) -> Settings:
    """The table as pydantic reads it, with ``profile`` applied; every profile's paths are
    checked, whichever is used."""
    try:
        settings = Settings.model_validate(raw)
    except pydantic.ValidationError as exc:
        raise from_validation_error(exc, raw) from None
    for name, overrides in settings.profiles.items():  # every profile's paths, used or not
        if overrides.deploy is not None and overrides.deploy.manifests is not None:
            _manifest_sources(root, overrides.deploy.manifests, profile_key(raw, name, "deploy", "manifests"))
        if overrides.cluster is not None and overrides.cluster.kind_config is not None:
            key = profile_key(raw, name, "cluster", "kind_config")
            path_in_repo(root, overrides.cluster.kind_config, key, must_exist=True, kind="file")
    if profile is None:
        return settings
    if profile not in settings.profiles:
        raise unknown_profile(profile, settings.profiles)
    merged = with_profile(raw, profile)
    try:
        return Settings.model_validate(merged)
    except pydantic.ValidationError as exc:
        raise from_validation_error(exc, merged, profile=(profile, raw)) from None


def _images(root: Path, settings: Settings, env: Mapping[str, str]) -> dict[str, ImageSpec]:
    """The images by name, each resolved; a name configured twice, or a cycle of
    dependencies, is refused."""
    names = [image.name for image in settings.images]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise config_error(
                f"{SECTION}.images[{index}].name",
                f"image {name!r} is configured twice (images[{names.index(name)}] and images[{index}])",
                "give every image its own name",
            )
    images = {
        image.name: resolve_image(root, image, index, names, env)
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
    return images


def _deploy(
    root: Path, settings: DeploySettings | None, raw: dict[str, Any], profile: str | None
) -> DeployConfig | None:
    if settings is None:
        return None
    return DeployConfig(
        manifests=_manifest_sources(
            root, settings.manifests, profile_key(raw, profile, "deploy", "manifests")
        ),
        kustomize_args=checked_kustomize_args(
            settings.kustomize_args, profile_key(raw, profile, "deploy", "kustomize_args")
        ),
        external_images=tuple(settings.external_images),
        policy=ReadinessPolicy(
            poll_interval=settings.poll_interval,
            timeout=settings.timeout,
            crashloop_restarts=settings.crashloop_restarts,
            unschedulable_grace=settings.unschedulable_grace,
        ),
    )


def _e2e(
    root: Path, settings: E2ESettings | None, raw: dict[str, Any], profile: str | None
) -> E2EConfig | None:
    if settings is None:
        return None
    return E2EConfig(
        tuple(settings.command),
        tuple(settings.requirements),
        settings.timeout,
        settings.allow_no_tests,
        _port_forwards(settings.port_forward),
        settings.cache,
        _e2e_inputs(root, settings, profile_key(raw, profile, "e2e", "inputs")),
    )


def _e2e_inputs(root: Path, e2e: E2ESettings, key: str) -> tuple[Path, ...]:
    """The files and folders of the e2e suite the result cache's key hashes: ``inputs`` as
    configured, else every word of the command that names a file or folder of the
    repository (``pytest e2e -q`` -> ``e2e``; ``./e2e/run.sh`` -> itself). With
    ``cache = true`` there must be one."""
    if e2e.inputs:
        paths = [path_in_repo(root, value, key, must_exist=True) for value in e2e.inputs]
    else:
        paths = []
        for arg in e2e.command:
            if arg.startswith("-") or not arg.strip() or Path(arg).is_absolute():
                continue
            path = (root / arg).resolve()
            if inside(root, path) and path != root and path.exists():
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
            sources.append(path_in_repo(root, entry, entry_key, must_exist=True))
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
            sources.append(path_in_repo(root, match.relative_to(root).as_posix(), entry_key, must_exist=True))
    return tuple(sources)
