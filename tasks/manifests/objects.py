"""What a manifest is made of for stagegate: one Kubernetes object and where it came from,
its containers and their images, the YAML written of them (Secrets' values redacted), and the
small readers the other modules of the package share."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import kinds, redact

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
YAML_SUFFIXES = (".yaml", ".yml", ".json")
MANIFESTS_KEY = "tool.stagegate.deploy.manifests"  # the key errors about a manifest name

# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class ManifestObject:
    """One Kubernetes object and where it came from (a file, or the kustomize dir)."""

    source: str
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.doc.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        return (self.doc.get("metadata") or {}).get("namespace")


@dataclass(frozen=True)
class ContainerImage:
    """A container's image reference inside a workload."""

    source: str
    kind: str
    name: str
    container: str
    field: str  # containers | initContainers | ephemeralContainers
    image: str
    pull_policy: str | None
    namespace: str | None = None

    @property
    def resource(self) -> str:
        return f"{self.kind}/{self.name}"


def is_kustomization(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in KUSTOMIZATION_FILES)


def yaml_documents(text: str) -> list[Any] | None:
    """The documents of a YAML text, or None when it does not parse or nests too deeply (for
    registration only)."""
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except (yaml.YAMLError, RecursionError):
        return None


def container_images(objects: list[ManifestObject]) -> Iterator[ContainerImage]:
    """Every container image of every workload: containers, init and ephemeral containers."""
    for obj in objects:
        for container_field, container in containers_of(obj.doc):
            yield ContainerImage(
                source=obj.source,
                kind=obj.kind,
                name=obj.name,
                container=str(container.get("name", "")),
                field=container_field,
                image=str(container.get("image", "")),
                pull_policy=container.get("imagePullPolicy"),
                namespace=obj.namespace,
            )


# Applied (and waited for) before everything else: what the rest needs to exist at all.
def split_prerequisites(objects: list[ManifestObject]) -> tuple[list[ManifestObject], list[ManifestObject]]:
    """``(CRDs and Namespaces, the rest)``, each in the rendered order."""
    first = [o for o in objects if o.kind in kinds.PREREQUISITE]
    return first, [o for o in objects if o.kind not in kinds.PREREQUISITE]


def to_yaml(objects: list[ManifestObject], *, reveal_secrets: bool = False) -> str:
    """The objects as one YAML stream; Secret ``data``/``stringData`` values as ``<redacted>``
    (every file stagegate writes) unless ``reveal_secrets`` (what goes to kubectl's stdin)."""
    docs = [obj.doc if reveal_secrets else _without_secret_values(obj.doc) for obj in objects]
    return yaml.safe_dump_all(docs, sort_keys=False)


def _without_secret_values(doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("kind") != "Secret":
        return doc
    hidden = dict(doc)
    for field_name in ("data", "stringData"):
        if isinstance(doc.get(field_name), dict):
            hidden[field_name] = {key: redact.REDACTED for key in doc[field_name]}
    return hidden


def image_line(path: Path, image: str, keys: tuple[str, ...] = ("image",)) -> int | None:
    """The first line of ``path`` that sets one of ``keys`` to ``image``; None when there is
    none or the file cannot be read (only a regular file is opened: a FIFO would block)."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            return None
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    for number, line in enumerate(lines, start=1):
        stripped = line.strip().lstrip("- ").strip()
        key, colon, value = stripped.partition(":")
        if colon and key.strip().strip("'\"") in keys and value.strip().strip("'\"") == image:
            return number
    return None


def relative_path(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def containers_of(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    path = POD_SPEC_PATHS.get(str(doc.get("kind", "")))
    if path is None:
        return
    spec: Any = doc
    for key in path:
        spec = spec.get(key) if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return
    for container_field in CONTAINER_FIELDS:
        for container in spec.get(container_field) or []:
            if isinstance(container, dict):
                yield container_field, container
