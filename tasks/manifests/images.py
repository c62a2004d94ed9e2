"""The manifests' container images: rewritten to this run's tags, the other references to
them found in values, and checked (known images, pull policies), each problem located in
its file."""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import Code, StagegateError
from ..references import repository, tag_of
from .kustomize import ObjectKey, Origin, kustomize_origins, locate_origin
from .objects import (
    ContainerImage,
    ManifestObject,
    container_images,
    containers_of,
    image_line,
    is_kustomization,
    relative_path,
)


def rewrite_images(objects: list[ManifestObject], built: Mapping[str, str]) -> list[ManifestObject]:
    """Copies of ``objects`` with every reference to a configured image set to its built ref.

    ``built`` maps a configured name (``example/api-server``) to the exact reference of this
    run (``example/api-server:sg-…``); any tag or digest in the manifest is replaced. Touched:
    containers' ``image``, and (see :func:`value_references`) env ``value``s, ``command`` and
    ``args`` items, and ConfigMap ``data`` values.
    """
    rewritten: list[ManifestObject] = []
    for obj in objects:
        doc = copy.deepcopy(obj.doc)
        for _, container in containers_of(doc):
            name = repository(str(container.get("image", "")))
            if name in built:
                container["image"] = built[name]
        for holder, key, value in _value_fields(doc):
            found = value_reference(value, built)
            if found is not None and found[0] == "rewrite":
                holder[key] = found[1] + built[found[2]]
        rewritten.append(ManifestObject(obj.source, doc))
    return rewritten


# An image reference as Docker parses it (distribution/reference): [host[:port]/]path[:tag][@digest].
_IMAGE_REF = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)
_FLAG_PREFIX = re.compile(r"^(-{0,2}[A-Za-z_][A-Za-z0-9_.-]*=)(.*)$")


@dataclass(frozen=True)
class ValueReference:
    """A configured image named in a field other than ``image:`` that is left as written."""

    source: str
    resource: str
    field: str
    value: str
    image: str
    why: str


def value_reference(value: str, configured: Iterable[str]) -> tuple[str, str, str] | None:
    """Whether a string value names a configured image: ``("rewrite", prefix, name)`` when it
    is exactly a reference (``example/api:ci``) or ``KEY=REF`` / ``--flag=REF``; ``("leave",
    why, name)`` when a configured repository appears in it some other way; else None.

    A reference must carry a tag or digest, or a ``/`` in its name, to count: a bare word
    (``api``) is not taken for an image, and a host and port (``api:8080``) is left and
    reported, not rewritten."""
    configured = set(configured)
    prefix, candidate = "", value
    match = _FLAG_PREFIX.match(value)
    if match and _IMAGE_REF.fullmatch(match.group(2)):
        prefix, candidate = match.group(1), match.group(2)
    if _IMAGE_REF.fullmatch(candidate):
        name = repository(candidate)
        if name in configured:
            tag = tag_of(candidate)
            if tag is None and "@" not in candidate and "/" not in name:
                return None  # a bare word (`api`): a service name as often as an image
            if tag is not None and tag.isdigit() and "@" not in candidate and "/" not in name:
                return ("leave", f"{candidate} may be a host and port, not an image", name)
            return ("rewrite", prefix, name)
        return None
    for name in configured:
        if re.search(rf"(?<![\w./-]){re.escape(name)}(?:[:@][\w.:-]+)?(?![\w/-])", value):
            return ("leave", "named inside a longer value that stagegate does not split", name)
    return None


def _value_fields(doc: dict[str, Any]) -> Iterator[tuple[Any, Any, str]]:
    """``(holder, key, value)`` of every string value that may name an image: env ``value``s,
    ``command``/``args`` items of every container, and ConfigMap ``data`` values."""
    for _, container in containers_of(doc):
        for variable in container.get("env") or []:
            if isinstance(variable, dict) and isinstance(variable.get("value"), str):
                yield variable, "value", variable["value"]
        for key in ("command", "args"):
            items = container.get(key)
            if isinstance(items, list):
                for index, item in enumerate(items):
                    if isinstance(item, str):
                        yield items, index, item
    if doc.get("kind") == "ConfigMap" and isinstance(doc.get("data"), dict):
        for key, value in doc["data"].items():
            if isinstance(value, str):
                yield doc["data"], key, value


def _value_field_names(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(field, value)`` in the order of :func:`_value_fields`, named for a human."""
    for _, container in containers_of(doc):
        name = container.get("name", "")
        for variable in container.get("env") or []:
            if isinstance(variable, dict) and isinstance(variable.get("value"), str):
                yield f"container {name!r} env {variable.get('name')}", variable["value"]
        for key in ("command", "args"):
            items = container.get(key)
            if isinstance(items, list):
                for index, item in enumerate(items):
                    if isinstance(item, str):
                        yield f"container {name!r} {key}[{index}]", item
    if doc.get("kind") == "ConfigMap" and isinstance(doc.get("data"), dict):
        for key, value in doc["data"].items():
            if isinstance(value, str):
                yield f"data.{key}", value


def value_references(
    objects: list[ManifestObject], configured: Iterable[str]
) -> tuple[list[dict[str, Any]], list[ValueReference]]:
    """The configured images named outside ``image:`` fields: those rewritten, and those left
    as written (verify reports them)."""
    configured = list(configured)
    rewritten: list[dict[str, Any]] = []
    left: list[ValueReference] = []
    for obj in objects:
        for field_name, value in _value_field_names(obj.doc):
            found = value_reference(value, configured)
            if found is None:
                continue
            resource = f"{obj.kind}/{obj.name}"
            if found[0] == "rewrite":
                rewritten.append({"resource": resource, "field": field_name, "image": value, "known": True})
            else:
                left.append(ValueReference(obj.source, resource, field_name, value, found[2], found[1]))
    return rewritten, left


def check_references(
    objects: list[ManifestObject],
    *,
    root: Path,
    configured: list[str],
    external: Iterable[str],
    from_registry: bool = False,
    kustomize_args: Sequence[str] = (),
    rewritten: Mapping[str, str] | None = None,
) -> tuple[list[StagegateError], list[dict[str, Any]]]:
    """Every container image is a configured image or in ``external``; configured ones are
    not sent to a registry by their pull policy — or, ``from_registry`` (the existing target,
    kind with a local registry), not kept from it by ``Never``. Returns the problems and the
    references.

    The policy is judged on the reference as it is applied: :func:`rewrite_images` sets every
    configured image to ``rewritten[name]`` (``None``: every configured image, to a tag of this
    run, as before the build), and the API server defaults a missing policy from that
    reference (:func:`default_pull_policy`), not from the one written in the manifest.

    A problem is located in the file a person edits: for a kustomize directory, where kustomize
    says the object came from (see :func:`kustomize_origins`, rendered only when there is a
    problem to locate, with the same ``kustomize_args``)."""
    external = list(external)
    origins: dict[str, dict[ObjectKey, Origin]] = {}
    errors: list[StagegateError] = []
    references: list[dict[str, Any]] = []
    for ref in container_images(objects):
        name = repository(ref.image)
        known = name in configured or _is_external(ref.image, external)
        references.append(
            {"resource": ref.resource, "container": ref.container, "image": ref.image, "known": known}
        )
        problem = None
        if known and name in configured:
            applied = _applied_reference(ref.image, name, rewritten)
            problem = (
                _registry_pull_policy_problem(ref.image, ref.pull_policy)
                if from_registry
                else _pull_policy_problem(ref.image, ref.pull_policy, applied)
            )
        if known and not problem:
            continue
        file, line = _source_of(root, ref, kustomize_args, origins)
        subject: dict[str, Any] = {
            "file": file,
            "resource": ref.resource,
            "container": ref.container,
            "image": ref.image,
        }
        if line is not None:
            subject["line"] = line
        if not known:
            close = difflib.get_close_matches(
                name, configured + [repository(e) for e in external], n=1, cutoff=0.5
            )
            if close:
                subject["suggestion"] = close[0]
            errors.append(
                StagegateError(
                    Code.MANIFEST_IMAGE_UNKNOWN,
                    f"{ref.resource} container {ref.container!r} uses image {ref.image!r}, which this run does not build"
                    + (f" (did you mean {close[0]}?)" if close else ""),
                    f"fix the image in {file}, or list it in [tool.stagegate.deploy] external_images",
                    subject,
                )
            )
        else:
            errors.append(
                StagegateError(
                    Code.PULL_POLICY_INVALID,
                    f"{ref.resource} container {ref.container!r}: {problem}",
                    f"set `imagePullPolicy: IfNotPresent` on that container in {file}",
                    {**subject, "pull_policy": ref.pull_policy or "(default)"},
                )
            )
    return errors, references


def default_pull_policy(image: str) -> str:
    """The ``imagePullPolicy`` the API server sets on a container that gives none: ``Always``
    for ``:latest`` (even with a digest) and for a reference with neither tag nor digest,
    else ``IfNotPresent``."""
    tag = tag_of(image)
    if tag == "latest" or (tag is None and "@" not in image):
        return "Always"
    return "IfNotPresent"


def _applied_reference(image: str, name: str, rewritten: Mapping[str, str] | None) -> str | None:
    """The reference the container is applied with: this run's ref of ``name`` when
    :func:`rewrite_images` replaces it (``None`` when that ref is not known yet: a tag of this
    run), else ``image`` as written."""
    if rewritten is None:
        return None
    return rewritten.get(name, image)


def _pull_policy_problem(image: str, policy: str | None, applied: str | None) -> str | None:
    """On a node that holds this run's image (and no registry does), a pull is wrong:
    ``Always``, or no policy where Kubernetes defaults the ``applied`` reference to Always
    (one stagegate does not rewrite, ``:latest`` or untagged). A rewritten reference carries
    this run's tag (``name:sg-…``) or digest, which Kubernetes defaults to IfNotPresent."""
    if policy == "Always":
        return (
            f"imagePullPolicy: Always makes Kubernetes pull {image} from a registry, "
            "but this run's image exists only on the node"
        )
    if policy is None and applied is not None and default_pull_policy(applied) == "Always":
        tag = tag_of(applied)
        return (
            f"{applied} has {'the :latest tag' if tag else 'no tag'} and no imagePullPolicy, and this run "
            "does not rewrite it (not built by this run), so Kubernetes defaults to Always and pulls it "
            "from a registry"
        )
    return None


def _registry_pull_policy_problem(image: str, policy: str | None) -> str | None:
    """On a cluster that pulls this run's images from the registry, only ``Never`` is wrong."""
    if policy == "Never":
        return (
            f"imagePullPolicy: Never keeps the cluster from pulling {image} from the registry, "
            "where this run's target takes its images from"
        )
    return None


def _is_external(image: str, external: Iterable[str]) -> bool:
    """Listed in external_images: exactly, or by repository when the entry has no tag/digest."""
    for entry in external:
        if "@" in entry or tag_of(entry) is not None:
            if _normalised(entry) == _normalised(image):
                return True
        elif repository(entry) == repository(image):
            return True
    return False


def _normalised(ref: str) -> str:
    tag = tag_of(ref)
    digest = ref.split("@", 1)[1] if "@" in ref else None
    return repository(ref) + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _source_of(
    root: Path,
    ref: ContainerImage,
    kustomize_args: Sequence[str],
    origins: dict[str, dict[ObjectKey, Origin]],
) -> tuple[str, int | None]:
    """The file and line that write ``ref``'s image: through kustomize's origin of its object
    for a kustomize directory (rendered once per source), else by searching the source."""
    path = root / ref.source
    if is_kustomization(path):
        if ref.source not in origins:
            origins[ref.source] = kustomize_origins(path, root, kustomize_args)
        origin = origins[ref.source].get((ref.kind, ref.namespace, ref.name))
        if origin is not None:
            found = locate_origin(origin, ref.image)
            if found is not None:
                return relative_path(root, found[0]), found[1]
    return _locate(root, ref.source, ref.image)


def _locate(root: Path, source: str, image: str) -> tuple[str, int | None]:
    """The YAML file and line that write ``image`` (searching a kustomize dir's files)."""
    path = root / source
    candidates = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
    for candidate in candidates:
        line = image_line(candidate, image)
        if line is not None:
            return relative_path(root, candidate), line
    return source, None
