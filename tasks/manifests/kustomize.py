"""What kustomize says, made readable: why a render failed, a remote base that could not be
fetched, and where a rendered object came from (its origin annotations), so that a problem
is located in the file a person edits."""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import runner
from ..errors import Code, CommandEvidence, StagegateError
from ..references import repository
from .objects import KUSTOMIZATION_FILES, image_line, relative_path, yaml_documents

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


def locate_origin(origin: Origin, image: str) -> tuple[Path, int] | None:
    """The file and line that set ``image`` on an object with this origin: its own file; else
    a patch of a kustomization it went through; else that kustomization's ``images:`` entry."""
    if origin.file is not None:
        line = image_line(origin.file, image)
        if line is not None:
            return origin.file, line
    for kustomization in origin.patched_in:
        for patch in _patch_files(kustomization):
            line = image_line(patch, image, keys=("image", "value"))  # value: a JSON 6902 patch's
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
OUTSIDE_ROOT = re.compile(r"file '([^']+)' is not in or below '([^']+)'")


def kustomization_reading(stderr: str, root: Path, rendered: Path, marker: str) -> Path:
    """The directory whose kustomization kustomize was reading where ``marker`` occurs in its
    error: the last kustomization it recursed into before that point, else the rendered one."""
    reason = kustomize_reason(stderr, root)
    end = reason.find(marker)
    recursed = _RECURSED.findall(reason, 0, end if end >= 0 else len(reason))
    return root / recursed[-1] if recursed else rendered  # an absolute path stays as it is


def kustomization_line(directory: Path, written: str) -> tuple[Path, int | None]:
    """The kustomization file of ``directory`` and the first line that mentions ``written``."""
    kustomization = next(
        (directory / name for name in KUSTOMIZATION_FILES if (directory / name).is_file()), directory
    )
    text = _kustomization_text(kustomization) if kustomization != directory else None
    for number, line in enumerate((text or "").splitlines(), start=1):
        if written in line:
            return kustomization, number
    return kustomization, None


def load_restricted_error(
    outside: Path, below: Path, root: Path, relative: str, exc: runner.CommandFailed
) -> StagegateError:
    """kustomize's default load restrictor refused a file outside the kustomization's directory."""
    kustomization, line = kustomization_line(below, os.path.relpath(outside, below))
    file = relative_path(root, kustomization)
    return StagegateError(
        Code.CONFIG_INVALID,
        f"kubectl kustomize {relative} failed: {file} reads {relative_path(root, outside)}, which is not in or "
        f"below {relative_path(root, below)} (kustomize's load restrictor)",
        'add kustomize_args = ["--load-restrictor", "LoadRestrictionsNone"] to [tool.stagegate.deploy], '
        f"or move {relative_path(root, outside)} into {relative_path(root, below)}",
        {"key": "tool.stagegate.deploy.kustomize_args", "file": file, **({"line": line} if line else {})},
        command=CommandEvidence(exc.argv, exc.exit_code),
        log_excerpt=exc.stderr[-2000:],
    )
