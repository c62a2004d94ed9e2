"""Compose files read for ``stagegate init``.

:func:`read_compose` reads the repository root's ``compose.yaml`` (or ``compose.yml``,
``docker-compose.yml``, ``docker-compose.yaml``, the first found, as ``docker compose`` does) and
proposes an image for each service with a ``build``: its context, ``dockerfile`` (relative to
the context), ``args`` (a mapping or a ``KEY=VALUE`` list) and ``target``; the image's name is the
repository part of the service's ``image`` (``ghcr.io/acme/api:1.4`` -> ``ghcr.io/acme/api``), or
the service's name. What stagegate has no use for (ports, volumes, a service's runtime settings,
other build options) is listed as not mapped: stagegate deploys the Kubernetes manifests, not the
compose services.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..references import repository
from .model import NOT_MAPPED, READ, Finding, ProposedImage, image_name

COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
_BUILD_KEYS = ("context", "dockerfile", "args", "target")


@dataclass(frozen=True)
class ComposeRead:
    file: str
    images: tuple[ProposedImage, ...]
    findings: tuple[Finding, ...]


def read_compose(root: Path) -> ComposeRead | None:
    """The root's compose file's images, or None when there is no compose file."""
    path = next((root / name for name in COMPOSE_FILES if (root / name).is_file()), None)
    if path is None:
        return None
    file = path.name
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return ComposeRead(
            file, (), (Finding(file, NOT_MAPPED, f"cannot be read as YAML: {str(exc).splitlines()[0]}"),)
        )
    services = doc.get("services") if isinstance(doc, dict) else None
    if not isinstance(services, dict):
        return ComposeRead(file, (), (Finding(file, NOT_MAPPED, "no services mapping"),))
    images: list[ProposedImage] = []
    findings: list[Finding] = []
    for service, settings in services.items():
        if not isinstance(settings, dict):
            continue
        where = f"services.{service}"
        image = _service(file, where, str(service), settings, findings)
        if image is not None:
            images.append(image)
        runtime = [key for key in settings if key not in ("build", "image")]
        if runtime and "build" in settings:
            findings.append(
                Finding(
                    file,
                    NOT_MAPPED,
                    f"{where}: {', '.join(runtime)} (stagegate deploys the Kubernetes manifests)",
                )
            )
    return ComposeRead(file, tuple(images), tuple(findings))


def _service(
    file: str, where: str, service: str, settings: dict[str, Any], findings: list[Finding]
) -> ProposedImage | None:
    build = settings.get("build")
    image = settings.get("image") if isinstance(settings.get("image"), str) else None
    if build is None:
        if image:
            findings.append(
                Finding(file, READ, f"{where}: image {image} is not built here (nothing to configure)")
            )
        return None
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, dict):
        findings.append(Finding(file, NOT_MAPPED, f"{where}.build: neither a path nor a mapping"))
        return None
    for key in build:
        if key not in _BUILD_KEYS:
            findings.append(Finding(file, NOT_MAPPED, f"{where}.build.{key}: no stagegate equivalent"))
    context = str(build.get("context", "."))
    if "://" in context or context.startswith("git@"):
        findings.append(
            Finding(
                file,
                NOT_MAPPED,
                f"{where}.build.context: {context} is remote; stagegate builds from the repository",
            )
        )
        return None
    context = _normalised(context)
    if context.startswith(".."):
        findings.append(
            Finding(file, NOT_MAPPED, f"{where}.build.context: {context} is outside the repository")
        )
        return None
    name = repository(image) if image else image_name(service)
    said = [f"context {context}"]
    dockerfile = None
    if isinstance(build.get("dockerfile"), str) and build["dockerfile"] != "Dockerfile":
        dockerfile = _normalised(f"{context}/{build['dockerfile']}")
        said.append(f"dockerfile {dockerfile}")
    target = build.get("target") if isinstance(build.get("target"), str) else None
    if target:
        said.append(f"target {target}")
    build_args = _args(file, where, build.get("args"), findings)
    said += [f'build arg {k} = "{v}"' for k, v in build_args.items()]
    named = f"image {image}" if image else "the service's name"
    findings.append(Finding(file, READ, f"image {name} ({where}, named after {named}): " + ", ".join(said)))
    return ProposedImage(
        name=name,
        context=context,
        dockerfile=dockerfile,
        build_args=build_args,
        target=target,
        named_by="compose image" if image else "compose service",
    )


def _args(file: str, where: str, args: Any, findings: list[Finding]) -> dict[str, str]:
    """``args`` as a mapping; a name without a value (taken from the environment) is not mapped."""
    pairs: list[tuple[str, Any]] = []
    if isinstance(args, dict):
        pairs = [(str(k), v) for k, v in args.items()]
    elif isinstance(args, list):
        for item in args:
            name, has_value, value = str(item).partition("=")
            pairs.append((name, value if has_value else None))
    result: dict[str, str] = {}
    for name, value in pairs:
        if value is None:
            findings.append(
                Finding(
                    file,
                    NOT_MAPPED,
                    f'{where}.build.args.{name}: taken from the environment; set build_args.{name} = "${{{name}}}" if it must be',
                )
            )
        else:
            result[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return result


def _normalised(path: str) -> str:
    parts: list[str] = []
    for part in Path(path).parts:
        if part == ".." and parts and parts[-1] != "..":
            parts.pop()
        elif part not in (".", ""):
            parts.append(part)
    return "/".join(parts) or "."
