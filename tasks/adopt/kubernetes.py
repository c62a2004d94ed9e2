"""The repository's Kubernetes manifests, read for ``stagegate init``.

- :func:`is_api_object`: a YAML document shaped like a Kubernetes object (``apiVersion``,
  ``kind`` and ``metadata.name``, or a ``…List`` with ``items``) that is not a tool's own
  configuration (Skaffold's ``Config``, kustomize's ``Kustomization``/``Component``).
- :func:`find_manifests`: where the manifests are when nothing names them — the topmost kustomize
  dirs (those no other kustomization includes), else every folder whose YAML holds such objects
  (``k8s/``, ``deploy/``, ``*/kubernetes/``), never a Helm chart's folders or test fixtures.
- :func:`manifest_images`: the container images the manifests name, and the file of each.
- :func:`pair_images`: each image named after its folder takes the name of the manifest image
  it builds (``services/api/Dockerfile`` <-> ``ghcr.io/acme/api:1.4.0`` gives
  ``ghcr.io/acme/api``); an ambiguous pairing is reported with its candidates, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ..manifests import KUSTOMIZATION_FILES, ManifestObject, container_images, not_kubernetes
from ..references import repository
from .model import NOT_PAIRED, Finding, ProposedImage

# Folders whose YAML is test data or a chart's, not the repository's deployment.
_NOT_MANIFEST_DIRS = re.compile(
    r"^(tests?|testdata|fixtures?|__snapshots__|charts?|templates)$", re.IGNORECASE
)
_YAML = (".yaml", ".yml")


def is_api_object(doc: Any) -> bool:
    """Whether a YAML document is a Kubernetes API object (not a tool's configuration)."""
    if not isinstance(doc, dict):
        return False
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        return False
    if not_kubernetes(doc) is not None:  # a tool's own configuration (Skaffold, kind, kustomize)
        return False
    if kind.endswith("List") and isinstance(doc.get("items"), list):
        return True
    metadata = doc.get("metadata")
    return isinstance(metadata, dict) and bool(metadata.get("name") or metadata.get("generateName"))


def api_objects(path: Path) -> list[dict[str, Any]]:
    """The Kubernetes objects of a YAML file (none when it does not parse or is a tool's file)."""
    if path.name in KUSTOMIZATION_FILES:
        return []
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    objects: list[dict[str, Any]] = []
    for doc in documents:
        if is_api_object(doc):
            items = doc.get("items") if str(doc["kind"]).endswith("List") else None
            objects.extend(i for i in items or [doc] if is_api_object(i))
    return objects


def find_manifests(root: Path, dirs: list[Path]) -> tuple[list[str], list[Finding]]:
    """The manifest sources of a repository that names none, shallowest first, and what init
    says about the choice."""
    dirs = [d for d in dirs if not _excluded(root, d)]
    kustomize = [d for d in dirs if _kustomization(d) is not None and not _is_component(d)]
    if kustomize:
        included = {p for d in kustomize for p in _included(d)}
        tops = [d for d in kustomize if d.resolve() not in included] or kustomize
        chosen = next((d for d in tops if d.name in ("dev", "local", "development")), tops[0])
        findings = []
        others = [_relative(root, d) for d in tops if d != chosen]
        if others:
            findings.append(
                Finding(
                    _relative(root, chosen),
                    "chosen",
                    "kustomize dir for deploy.manifests; also found: "
                    + ", ".join(others)
                    + " (a profile per overlay: [tool.stagegate.profiles.NAME.deploy] manifests)",
                )
            )
        return [_relative(root, chosen)], findings
    found = [d for d in dirs if any(api_objects(p) for p in _yaml_files(d))]
    return [_relative(root, d) for d in found], []


def manifest_images(root: Path, sources: Iterable[str]) -> list[tuple[str, str]]:
    """``(image reference, file)`` for every container of the manifests, in order, without repeats."""
    seen: dict[str, str] = {}
    for source in sources:
        for path in _source_files(root, source):
            objects = [ManifestObject(_relative(root, path), doc) for doc in api_objects(path)]
            for container in container_images(objects):
                seen.setdefault(container.image, container.source)
    return list(seen.items())


def pair_images(
    images: list[ProposedImage], references: list[tuple[str, str]]
) -> tuple[list[ProposedImage], list[Finding]]:
    """Images named after their folder (or a compose service) renamed to the manifest image they
    build; the findings say each pairing, and each ambiguity with its candidates."""
    repositories = list(dict.fromkeys(repository(ref) for ref, _ in references))
    where = {repository(ref): (ref, file) for ref, file in reversed(references)}
    taken = {image.name for image in images if image.named_by not in ("folder", "compose service")}
    scores: dict[int, list[str]] = {}
    for index, image in enumerate(images):
        if image.named_by not in ("folder", "compose service") or image.name in repositories:
            continue
        best = 0
        for candidate in repositories:
            if candidate in taken:
                continue
            score = _similarity(image, candidate)
            if score > best:
                best, scores[index] = score, [candidate]
            elif score == best and score:
                scores[index].append(candidate)
    claims: dict[str, list[int]] = {}
    for index, candidates in scores.items():
        if len(candidates) == 1:
            claims.setdefault(candidates[0], []).append(index)
    result = list(images)
    findings: list[Finding] = []
    for index, candidates in scores.items():
        image = images[index]
        dockerfile = image.dockerfile_path
        if len(candidates) > 1:
            findings.append(
                Finding(
                    dockerfile,
                    NOT_PAIRED,
                    f"image {image.name} may build any of "
                    + ", ".join(f"{where[c][0]} ({where[c][1]})" for c in candidates)
                    + f": it keeps the name {image.name}; set the one it builds as its name",
                )
            )
            continue
        (candidate,) = candidates
        rivals = claims[candidate]
        if len(rivals) > 1:
            findings.append(
                Finding(
                    dockerfile,
                    NOT_PAIRED,
                    f"{where[candidate][0]} ({where[candidate][1]}) may be built by any of "
                    + ", ".join(images[i].dockerfile_path for i in rivals)
                    + f": image {image.name} keeps its name; set the one that builds it by hand",
                )
            )
            continue
        ref, file = where[candidate]
        result[index] = replace(image, name=candidate, named_by="manifests")
        findings.append(
            Finding(
                dockerfile,
                "paired",
                f"with {ref} in {file}: image name {candidate} (the repository part, without tag or digest)",
            )
        )
    return result, findings


def _similarity(image: ProposedImage, candidate: str) -> int:
    """How well a manifest image's repository fits an image's folder: 3 for the last path part
    equal to the folder's name, 2 for one that contains it as a word (``acme-api`` for ``api``),
    1 for one equal to a folder above; 0 for none."""
    folder = Path(image.dockerfile_path).parent
    names = [image.name.rsplit("/", 1)[-1], *(p.lower() for p in reversed(folder.parts))]
    last = candidate.rsplit("/", 1)[-1]
    if last == names[0]:
        return 3
    if re.search(rf"(^|[-_.]){re.escape(names[0])}($|[-_.])", last):
        return 2
    return 1 if last in names[1:] else 0


def _source_files(root: Path, source: str) -> Iterator[Path]:
    if any(c in source for c in "*?["):
        for match in sorted(root.glob(source)):
            yield from _source_files(root, _relative(root, match))
        return
    path = root / source
    if path.is_file():
        yield path
    elif _kustomization(path) is not None:
        yield from _kustomize_files(path, set())
    elif path.is_dir():
        yield from _yaml_files(path)


def _kustomize_files(folder: Path, seen: set[Path]) -> Iterator[Path]:
    """The YAML files a kustomization includes, through its bases (remote ones not read)."""
    if folder.resolve() in seen:
        return
    seen.add(folder.resolve())
    for path in _references(folder):
        if path.is_dir():
            yield from _kustomize_files(path, seen)
        elif path.suffix in _YAML and path.is_file():
            yield path


def _included(folder: Path) -> set[Path]:
    return {path.resolve() for path in _references(folder) if path.is_dir()}


def _references(folder: Path) -> list[Path]:
    doc = _kustomization(folder) or {}
    paths: list[Path] = []
    for key in ("resources", "bases", "components", "patchesStrategicMerge"):
        for entry in doc.get(key) or []:
            if isinstance(entry, str) and "://" not in entry and not entry.startswith("github.com/"):
                paths.append(folder / entry)
    for patch in doc.get("patches") or []:
        if isinstance(patch, dict) and isinstance(patch.get("path"), str):
            paths.append(folder / patch["path"])
    return paths


def _kustomization(folder: Path) -> dict[str, Any] | None:
    for name in KUSTOMIZATION_FILES:
        path = folder / name
        if path.is_file():
            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                return {}
            return doc if isinstance(doc, dict) else {}
    return None


def _is_component(folder: Path) -> bool:
    return (_kustomization(folder) or {}).get("kind") == "Component"


def _excluded(root: Path, folder: Path) -> bool:
    """Test data, Helm charts (a ``Chart.yaml`` in the folder or above) and their templates."""
    parts = folder.relative_to(root).parts
    if any(_NOT_MANIFEST_DIRS.match(part) for part in parts):
        return True
    return any((root.joinpath(*parts[:i]) / "Chart.yaml").is_file() for i in range(len(parts) + 1))


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix in _YAML and p.is_file())


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() or "."
