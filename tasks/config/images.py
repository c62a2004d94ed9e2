"""One ``[[tool.stagegate.images]]`` entry resolved to an :class:`ImageSpec`: its paths, build
args (from the environment or a file; secret ones registered for redaction), dependencies
(``depends_on`` and the ``FROM`` lines naming a configured image), BuildKit secrets, labels and
tags — each checked, the first problem a ``CONFIG_INVALID`` with its key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from .. import redact
from ..builder import BuildSecret
from ..dockerfile import BaseRef, Dockerfile, DockerfileSyntaxError
from ..errors import config_error
from .models import SECTION, FileValue, ImageSettings, did_you_mean
from .paths import path_in_repo
from .resolved import ImageSpec
from .variables import interpolate


def resolve_image(
    root: Path, image: ImageSettings, index: int, names: list[str], env: Mapping[str, str]
) -> ImageSpec:
    key = f"{SECTION}.images[{index}]"
    context = path_in_repo(root, image.context, f"{key}.context", must_exist=True, kind="directory")
    dockerfile = path_in_repo(
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
    _check_depends_on(image, key, names)
    parsed, refs = _dockerfile(root, dockerfile, image.target, build_args, key)
    secrets, secret_env = _secrets(root, image, key, env)
    labels = _labels(image, key, env)
    tags = _tags(image, key, env)
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


def _check_depends_on(image: ImageSettings, key: str, names: list[str]) -> None:
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


def _dockerfile(
    root: Path, dockerfile: Path, target: str | None, build_args: Mapping[str, str], key: str
) -> tuple[Dockerfile, list[BaseRef]]:
    """The image's Dockerfile parsed, and the images its FROM lines name; ``target`` must be
    one of its stages."""
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
    if target is not None and target not in parsed.stage_names:
        raise config_error(
            f"{key}.target",
            f"{key}.target = {target!r} is not a stage of {relative}",
            did_you_mean(target, parsed.stage_names)
            or "stages: " + (", ".join(parsed.stage_names) or "none (no FROM … AS name)"),
            file=relative,
        )
    return parsed, refs


def _labels(image: ImageSettings, key: str, env: Mapping[str, str]) -> dict[str, str]:
    labels = {k: interpolate(v, env, f"{key}.labels.{k}") for k, v in image.labels.items()}
    for label in labels:
        if label.startswith("dev.stagegate."):
            raise config_error(
                f"{key}.labels.{label}", f"{label} is stagegate's own label", "use another key"
            )
    return labels


def _tags(image: ImageSettings, key: str, env: Mapping[str, str]) -> tuple[str, ...]:
    tags = tuple(interpolate(tag, env, f"{key}.tags") for tag in image.tags)
    for position, tag in enumerate(tags):
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag) or tag.startswith("sg-"):
            raise config_error(
                f"{key}.tags[{position}]",
                f"{key}.tags[{position}] = {tag!r} is not a tag stagegate may set",
                "use letters, digits, '_', '.', '-' (at most 128, not starting with '.', '-' or 'sg-')",
            )
    return tags


def _file_value(root: Path, value: FileValue, key: str) -> str:
    """A build arg read from a file inside the repository, without its trailing newline."""
    path = path_in_repo(root, value.file, f"{key}.file", must_exist=True, kind="file")
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
            path = path_in_repo(root, secret.src or "", f"{where}.src", must_exist=True, kind="file")
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
