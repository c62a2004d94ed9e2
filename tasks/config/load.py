"""Loading ``[tool.stagegate]``: the file found, the section read, validated against the models,
the profile applied, variables interpolated, paths checked to stay in the repository, secret
build args registered for redaction as soon as their value is known."""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic

from .. import graph, redact
from ..builder import BuildSecret
from ..dockerfile import Dockerfile, DockerfileSyntaxError
from ..errors import config_error
from ..filetypes import file_type
from ..readiness import ReadinessPolicy
from .errors import from_validation_error
from .kustomize import checked_kustomize_args
from .models import (
    ARTIFACTS_ENV,
    DEFAULT_ARTIFACTS,
    PYPROJECT,
    SECTION,
    STAGEGATE_TOML,
    E2ESettings,
    ExistingSettings,
    FileValue,
    ImageSettings,
    PortForwardSettings,
    RegistrySettings,
    Settings,
    did_you_mean,
    profile_key,
    unknown_profile,
    with_profile,
)
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
from .variables import interpolate


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
        raise from_validation_error(exc, raw) from None
    for name, overrides in settings.profiles.items():  # every profile's paths, used or not
        if overrides.deploy is not None and overrides.deploy.manifests is not None:
            _manifest_sources(root, overrides.deploy.manifests, profile_key(raw, name, "deploy", "manifests"))
        if overrides.cluster is not None and overrides.cluster.kind_config is not None:
            key = profile_key(raw, name, "cluster", "kind_config")
            _path_in_repo(root, overrides.cluster.kind_config, key, must_exist=True, kind="file")
    if profile is not None:
        if profile not in settings.profiles:
            raise unknown_profile(profile, settings.profiles)
        merged = with_profile(raw, profile)
        try:
            settings = Settings.model_validate(merged)
        except pydantic.ValidationError as exc:
            raise from_validation_error(exc, merged, profile=(profile, raw)) from None

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
                root, settings.deploy.manifests, profile_key(raw, profile, "deploy", "manifests")
            ),
            kustomize_args=checked_kustomize_args(
                settings.deploy.kustomize_args, profile_key(raw, profile, "deploy", "kustomize_args")
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
        key = profile_key(raw, profile, "cluster", "kind_config")
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
            _e2e_inputs(root, settings.e2e, profile_key(raw, profile, "e2e", "inputs")),
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
                did_you_mean(dependency, names)
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
            did_you_mean(image.target, parsed.stage_names)
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
                did_you_mean(name, image.build_args) or "list names of keys of build_args",
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
