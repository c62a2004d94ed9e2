"""Skaffold's ``skaffold.yaml`` read for ``stagegate init``.

:func:`read_skaffold` reads the repository root's ``skaffold.yaml`` (or ``skaffold.yml``): every
document that is a Skaffold ``Config`` (``apiVersion: skaffold/v1…`` to ``v4beta…``), the
configs it ``requires:`` by path first (paths relative to the file that names them, optionally
only the configs named in ``configs:``), and maps:

- ``build.artifacts``: image, context, ``docker.dockerfile`` (relative to the context),
  ``docker.target``, ``docker.buildArgs``, and ``requires: [{image, alias}]`` as the build arg
  ``ALIAS = "<image>"`` (stagegate passes a configured image's name as this run's tag);
- ``manifests.rawYaml`` and ``manifests.kustomize.paths`` (relative to the file's folder), and
  the v1/v2 ``deploy.kubectl.manifests`` / ``deploy.kustomize.path(s)``;
- ``portForward`` as ``e2e.port_forward`` entries;
- ``profiles`` that change the manifests or the port forwards, as stagegate profiles.

Everything else is a :data:`NOT_MAPPED` finding with its key path: nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .model import NOT_MAPPED, PORT_FORWARD_TYPES, READ, Finding, PortForward, ProposedImage, templated

SKAFFOLD_FILES = ("skaffold.yaml", "skaffold.yml")

# Why a Skaffold key has no stagegate equivalent (the last key of its path); others: "no equivalent".
_REASONS = {
    "googleCloudBuild": "stagegate builds on the local Docker engine",
    "cluster": "stagegate builds on the local Docker engine",
    "tagPolicy": "stagegate tags each image by the hash of its inputs",
    "local": "stagegate builds on the local Docker engine, in dependency order",
    "jib": "stagegate builds Dockerfiles only",
    "ko": "stagegate builds Dockerfiles only",
    "bazel": "stagegate builds Dockerfiles only",
    "kaniko": "stagegate builds Dockerfiles only",
    "buildpacks": "stagegate builds Dockerfiles only",
    "custom": "stagegate builds Dockerfiles only",
    "sync": "stagegate has no file sync; a change is a new build",
    "hooks": "stagegate runs no hooks",
    "helm": "stagegate applies YAML and kustomize dirs, not Helm charts",
    "kpt": "stagegate applies YAML and kustomize dirs",
    "test": "use images[].smoke for an image's own check and e2e.command for tests",
    "verify": "use e2e.command",
    "activation": "a stagegate profile applies with --profile NAME or a target of that name",
    "patches": "stagegate profiles override deploy.* and e2e.* keys, not JSON patches",
    "statusCheckDeadlineSeconds": "see deploy.timeout",
    "buildArgs": "a kustomize build flag; see deploy.kustomize_args",
}
_BUILDERS = ("jib", "ko", "bazel", "kaniko", "buildpacks", "custom")


@dataclass(frozen=True)
class _Document:
    """One Skaffold config document and where it is."""

    file: str  # relative to the repository
    folder: str  # the file's folder, relative to the repository ("" for the root)
    label: str  # "skaffold.yaml" or "skaffold.yaml (document 2)"
    doc: dict[str, Any]


@dataclass(frozen=True)
class SkaffoldProfile:
    manifests: tuple[str, ...] | None = None  # None: the base's
    port_forward: tuple[PortForward, ...] | None = None


@dataclass(frozen=True)
class SkaffoldRead:
    """What the Skaffold configs say, in stagegate's terms."""

    files: tuple[str, ...]
    images: tuple[ProposedImage, ...]
    manifests: tuple[str, ...]
    port_forward: tuple[PortForward, ...]
    profiles: dict[str, SkaffoldProfile] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()


def read_skaffold(root: Path) -> SkaffoldRead | None:
    """The root's Skaffold configuration, or None when the repository has none."""
    path = next((root / name for name in SKAFFOLD_FILES if (root / name).is_file()), None)
    if path is None:
        return None
    findings: list[Finding] = []
    documents = list(_documents(root, path, None, set(), findings))
    images: list[ProposedImage] = []
    manifests: list[str] = []
    forwards: list[PortForward] = []
    per_document: list[tuple[_Document, list[str], dict[str, dict[str, Any]]]] = []
    for document in documents:
        doc = document.doc
        for key in doc:
            if key not in (
                "apiVersion",
                "kind",
                "metadata",
                "requires",
                "build",
                "manifests",
                "deploy",
                "portForward",
                "profiles",
            ):
                findings.append(_not_mapped(document, key))
        build = doc.get("build")
        if isinstance(build, dict):
            images.extend(_artifacts(document, build, findings))
        own = _manifests(document, doc, "", findings)
        manifests.extend(own)
        forwards.extend(_port_forwards(document, doc.get("portForward"), "portForward", findings))
        profiles = {}
        for index, profile in enumerate(doc.get("profiles") or []):
            if isinstance(profile, dict) and isinstance(profile.get("name"), str):
                profiles[profile["name"]] = {"index": index, **profile}
        per_document.append((document, own, profiles))
    return SkaffoldRead(
        files=tuple(dict.fromkeys(d.file for d in documents)),
        images=tuple(images),
        manifests=tuple(dict.fromkeys(manifests)),
        port_forward=tuple(forwards),
        profiles=_profiles(per_document, tuple(dict.fromkeys(manifests)), findings),
        findings=tuple(findings),
    )


# -- the documents ------------------------------------------------------------------------------


def _documents(
    root: Path,
    path: Path,
    names: list[str] | None,
    seen: set[tuple[Path, str | None]],
    findings: list[Finding],
) -> Iterator[_Document]:
    """The Skaffold configs of ``path`` (those named ``names``, or all), each after the configs
    it requires; a file read twice yields its configs once."""
    file = path.relative_to(root).as_posix()
    try:
        raw = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        findings.append(Finding(file, NOT_MAPPED, f"cannot be read as YAML: {_first_line(exc)}"))
        return
    folder = path.parent.relative_to(root).as_posix()
    folder = "" if folder == "." else folder
    many = len([d for d in raw if d is not None]) > 1
    for index, doc in enumerate(raw):
        if doc is None:
            continue
        label = f"{file} (document {index + 1})" if many else file
        if not (
            isinstance(doc, dict)
            and str(doc.get("apiVersion", "")).startswith("skaffold/")
            and doc.get("kind") == "Config"
        ):
            findings.append(
                Finding(label, NOT_MAPPED, "not a Skaffold Config (apiVersion skaffold/…, kind Config)")
            )
            continue
        name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
        if names is not None and name not in names:
            continue
        key = (path.resolve(), name if name else f"#{index}")
        if key in seen:
            continue
        seen.add(key)
        document = _Document(file, folder, label, doc)
        for position, required in enumerate(doc.get("requires") or []):
            yield from _required(root, document, position, required, seen, findings)
        yield document


def _required(
    root: Path,
    document: _Document,
    position: int,
    required: Any,
    seen: set[tuple[Path, str | None]],
    findings: list[Finding],
) -> Iterator[_Document]:
    where = f"requires[{position}]"
    if not isinstance(required, dict) or not isinstance(required.get("path"), str):
        findings.append(_not_mapped(document, where, "only configs required by path are read"))
        return
    for key in required:
        if key not in ("path", "configs"):
            findings.append(_not_mapped(document, f"{where}.{key}"))
    target = (root / document.folder / required["path"]).resolve()
    if target.is_dir():
        target = next(
            (target / n for n in SKAFFOLD_FILES if (target / n).is_file()), target / SKAFFOLD_FILES[0]
        )
    if not target.is_relative_to(root) or not target.is_file():
        findings.append(
            _not_mapped(document, where, f"{required['path']} is not a Skaffold file inside the repository")
        )
        return
    names = required.get("configs")
    yield from _documents(root, target, list(names) if isinstance(names, list) else None, seen, findings)


# -- build --------------------------------------------------------------------------------------


def _artifacts(
    document: _Document, build: dict[str, Any], findings: list[Finding]
) -> Iterator[ProposedImage]:
    for key in build:
        if key != "artifacts":
            findings.append(_not_mapped(document, f"build.{key}"))
    for index, artifact in enumerate(build.get("artifacts") or []):
        where = f"build.artifacts[{index}]"
        if (
            not isinstance(artifact, dict)
            or not isinstance(artifact.get("image"), str)
            or templated(artifact.get("image"))
        ):
            findings.append(_not_mapped(document, where, "no image name init can read"))
            continue
        name = artifact["image"]
        builder = next((b for b in _BUILDERS if b in artifact), None)
        if builder is not None:
            findings.append(
                _not_mapped(
                    document, f"{where}.{builder}", f"image {name} is not configured: " + _REASONS[builder]
                )
            )
            continue
        for key in artifact:
            if key not in ("image", "context", "docker", "requires"):
                findings.append(_not_mapped(document, f"{where}.{key}"))
        image = _artifact(document, where, name, artifact, findings)
        if image is not None:
            yield image


def _artifact(
    document: _Document, where: str, name: str, artifact: dict[str, Any], findings: list[Finding]
) -> ProposedImage | None:
    context_value = str(artifact.get("context", "."))
    if templated(context_value):
        findings.append(
            _not_mapped(document, f"{where}.context", f"image {name} is not configured: a template")
        )
        return None
    context = _join(document.folder, context_value)
    docker = artifact.get("docker") if isinstance(artifact.get("docker"), dict) else {}
    for key in docker:
        if key not in ("dockerfile", "target", "buildArgs"):
            findings.append(_not_mapped(document, f"{where}.docker.{key}"))
    said = [f"context {context}"]
    dockerfile = None
    if docker.get("dockerfile") not in (None, "Dockerfile"):
        dockerfile = _join(context, str(docker["dockerfile"]))
        said.append(f"dockerfile {dockerfile}")
    target = docker.get("target") if isinstance(docker.get("target"), str) else None
    if target:
        said.append(f"target {target}")
    build_args: dict[str, str] = {}
    for arg, value in (docker.get("buildArgs") or {}).items():
        if value is None or templated(value) or isinstance(value, (dict, list)):
            why = (
                "a template"
                if templated(value)
                else "taken from the environment"
                if value is None
                else "not a string"
            )
            findings.append(_not_mapped(document, f"{where}.docker.buildArgs.{arg}", why))
            continue
        build_args[str(arg)] = str(value).lower() if isinstance(value, bool) else str(value)
        said.append(f'build arg {arg} = "{build_args[str(arg)]}" ({document.file} {where}.docker.buildArgs)')
    depends_on: list[str] = []
    for position, required in enumerate(artifact.get("requires") or []):
        if not isinstance(required, dict) or not isinstance(required.get("image"), str):
            findings.append(_not_mapped(document, f"{where}.requires[{position}]", "no image name"))
            continue
        alias = required.get("alias")
        if isinstance(alias, str) and alias:
            build_args[alias] = required["image"]
            said.append(f'build arg {alias} = "{required["image"]}" ({document.file} {where}.requires)')
        else:
            depends_on.append(required["image"])
            said.append(f"depends on {required['image']} ({document.file} {where}.requires)")
    findings.append(Finding(document.label, READ, f"image {name}: " + ", ".join(said)))
    return ProposedImage(
        name=name,
        context=context,
        dockerfile=dockerfile,
        build_args=build_args,
        target=target,
        depends_on=tuple(depends_on),
        named_by="skaffold",
    )


# -- manifests, port forwards, profiles ---------------------------------------------------------


def _manifests(
    document: _Document, section: dict[str, Any], prefix: str, findings: list[Finding]
) -> list[str]:
    """The manifest sources of a config (or a profile: ``prefix`` ``profiles[0].``)."""
    found: list[str] = []
    manifests = section.get("manifests")
    if isinstance(manifests, dict):
        for key in manifests:
            if key not in ("rawYaml", "kustomize"):
                findings.append(_not_mapped(document, f"{prefix}manifests.{key}"))
        found += _paths(document, manifests.get("rawYaml"), f"{prefix}manifests.rawYaml", findings)
        kustomize = manifests.get("kustomize")
        if isinstance(kustomize, dict):
            for key in kustomize:
                if key != "paths":
                    findings.append(_not_mapped(document, f"{prefix}manifests.kustomize.{key}"))
            found += _paths(
                document, kustomize.get("paths", ["."]), f"{prefix}manifests.kustomize.paths", findings
            )
    deploy = section.get("deploy")
    if isinstance(deploy, dict):
        for key, value in deploy.items():
            if key == "kubectl" and isinstance(value, dict):
                for sub in value:
                    if sub != "manifests":
                        findings.append(_not_mapped(document, f"{prefix}deploy.kubectl.{sub}"))
                found += _paths(
                    document, value.get("manifests"), f"{prefix}deploy.kubectl.manifests", findings
                )
            elif key == "kustomize" and isinstance(value, dict):  # skaffold/v1: path; v2: paths
                for sub in value:
                    if sub not in ("path", "paths"):
                        findings.append(_not_mapped(document, f"{prefix}deploy.kustomize.{sub}"))
                paths = value.get("paths", [value["path"]] if "path" in value else ["."])
                found += _paths(document, paths, f"{prefix}deploy.kustomize.paths", findings)
            else:
                findings.append(_not_mapped(document, f"{prefix}deploy.{key}"))
    if found:
        findings.append(Finding(document.label, READ, f"{prefix or ''}manifests " + ", ".join(found)))
    return found


def _paths(document: _Document, values: Any, where: str, findings: list[Finding]) -> list[str]:
    paths = []
    for index, value in enumerate(values if isinstance(values, list) else []):
        if not isinstance(value, str) or templated(value):
            findings.append(_not_mapped(document, f"{where}[{index}]", "not a path init can read"))
        elif value.startswith(("http://", "https://", "gs://")):
            findings.append(
                _not_mapped(
                    document, f"{where}[{index}]", "a remote file; stagegate applies the repository's own"
                )
            )
        else:
            paths.append(_join(document.folder, value))
    return paths


def _port_forwards(
    document: _Document, values: Any, where: str, findings: list[Finding]
) -> list[PortForward]:
    forwards = []
    for index, value in enumerate(values if isinstance(values, list) else []):
        at = f"{where}[{index}]"
        kind = str(value.get("resourceType", "")).lower() if isinstance(value, dict) else ""
        name = value.get("resourceName") if isinstance(value, dict) else None
        port = value.get("port") if isinstance(value, dict) else None
        if (
            kind not in PORT_FORWARD_TYPES
            or not isinstance(name, str)
            or templated(name)
            or isinstance(port, bool)
            or not isinstance(port, (int, str))
        ):
            findings.append(
                _not_mapped(
                    document,
                    at,
                    "stagegate forwards to a service, deployment, statefulset or pod by name and port",
                )
            )
            continue
        for key in value:
            if key not in ("resourceType", "resourceName", "namespace", "port", "localPort"):
                findings.append(_not_mapped(document, f"{at}.{key}"))
        local = value.get("localPort")
        forwards.append(
            PortForward(
                kind,
                name,
                int(port) if isinstance(port, str) and port.isdigit() else port,
                namespace=value["namespace"] if isinstance(value.get("namespace"), str) else None,
                local_port=local if isinstance(local, int) and not isinstance(local, bool) else None,
            )
        )
    return forwards


def _profiles(
    per_document: list[tuple[_Document, list[str], dict[str, dict[str, Any]]]],
    base: tuple[str, ...],
    findings: list[Finding],
) -> dict[str, SkaffoldProfile]:
    """Stagegate profiles for the Skaffold profiles that change the manifests or port forwards.

    A Skaffold profile replaces the manifest lists it sets and keeps the others; across several
    configs, each config contributes its own manifests with the profile applied where it has it.
    """
    names = list(dict.fromkeys(name for _, _, profiles in per_document for name in profiles))
    result: dict[str, SkaffoldProfile] = {}
    for name in names:
        manifests: list[str] = []
        forwards: list[PortForward] = []
        changed_manifests = changed_forwards = False
        for document, own, profiles in per_document:
            profile = profiles.get(name)
            if profile is None:
                manifests += own
                forwards += _port_forwards(document, document.doc.get("portForward"), "portForward", [])
                continue
            prefix = f"profiles[{profile['index']}] ({name})."
            for key, value in profile.items():
                if key in ("index", "name", "manifests", "deploy", "portForward"):
                    continue
                if key in ("build", "test") and isinstance(value, dict) and value:
                    findings.extend(
                        _not_mapped(document, f"{prefix}{key}.{sub}", _profile_reason(sub)) for sub in value
                    )
                else:
                    findings.append(_not_mapped(document, f"{prefix}{key}"))
            own_keys: list[Finding] = []  # what the profile itself sets that has no equivalent
            _manifests(
                document, {k: v for k, v in profile.items() if k in ("manifests", "deploy")}, prefix, own_keys
            )
            findings.extend(f for f in own_keys if f.did == NOT_MAPPED)
            merged = _merged_manifests(document.doc, profile)
            said: list[Finding] = []
            mine = _manifests(document, merged, prefix, said) if merged is not None else own
            findings.extend(f for f in said if f.did == READ)
            changed_manifests |= merged is not None
            manifests += mine
            if "portForward" in profile:
                changed_forwards = True
                forwards += _port_forwards(document, profile["portForward"], f"{prefix}portForward", findings)
            else:
                forwards += _port_forwards(document, document.doc.get("portForward"), "portForward", [])
        manifests = list(dict.fromkeys(manifests))
        settings = SkaffoldProfile(
            manifests=tuple(manifests) if changed_manifests and tuple(manifests) != base else None,
            port_forward=tuple(forwards) if changed_forwards else None,
        )
        if settings.manifests is not None or settings.port_forward is not None:
            result[name] = settings
    return result


def _profile_reason(key: str) -> str:
    if key in ("artifacts", "tagPolicy"):
        return "stagegate profiles override deploy.* and e2e.* keys, not the images"
    return _REASONS.get(key, "no stagegate equivalent")


def _merged_manifests(doc: dict[str, Any], profile: dict[str, Any]) -> dict[str, Any] | None:
    """The config's ``manifests``/``deploy`` sections with the profile's lists over them (as
    Skaffold overlays a profile), or None when the profile sets neither."""
    if not isinstance(profile.get("manifests"), dict) and not isinstance(profile.get("deploy"), dict):
        return None
    merged: dict[str, Any] = {}
    for section in ("manifests", "deploy"):
        mine = doc.get(section) if isinstance(doc.get(section), dict) else {}
        theirs = profile.get(section) if isinstance(profile.get(section), dict) else {}
        combined = dict(mine)
        for key, value in theirs.items():
            if isinstance(value, dict) and isinstance(mine.get(key), dict):
                combined[key] = {**mine[key], **value}
            else:
                combined[key] = value
        if combined:
            merged[section] = combined
    return merged


# -- helpers ------------------------------------------------------------------------------------


def _not_mapped(document: _Document, key: str, reason: str | None = None) -> Finding:
    last = key.rsplit(".", 1)[-1].split("[", 1)[0]
    return Finding(
        document.label, NOT_MAPPED, f"{key}: {reason or _REASONS.get(last, 'no stagegate equivalent')}"
    )


def _join(folder: str, path: str) -> str:
    """``path`` (relative to ``folder``, both relative to the repository) as a repository path."""
    joined = Path(folder or ".") / path
    parts: list[str] = []
    for part in joined.parts:
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            else:
                parts.append(part)
        elif part != ".":
            parts.append(part)
    return "/".join(parts) or "."


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
