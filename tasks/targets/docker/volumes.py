"""ConfigMaps, Secrets and their volumes on the docker target: data decoded as the API server
stores it, keys and ``items`` paths checked as it checks them, a volume's files written under
the target's workdir (a Secret's behind a folder of mode 0700) and nowhere else."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from ...errors import Code, StagegateError
from ...manifests import ManifestObject


def plan_volumes(
    volumes: list[dict[str, Any]],
    namespace: str,
    config_maps: dict,
    secrets_: dict,
    where: str,
    workdir: Path,
) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """A pod's volumes by name: ``("emptyDir", "")``, or ``("files", folder)`` with the
    ConfigMap's or Secret's files written into the folder; what of them the docker target
    cannot honour."""
    found: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    for volume in volumes:
        name = str(volume.get("name"))
        if "emptyDir" in volume:
            found[name] = ("emptyDir", "")
        elif "configMap" in volume or "secret" in volume:
            is_secret = "secret" in volume
            source = (volume["secret"] if is_secret else volume["configMap"]) or {}
            kind = "Secret" if is_secret else "ConfigMap"
            ref = source.get("secretName") if is_secret else source.get("name")
            data = (secrets_ if is_secret else config_maps).get((namespace, ref))
            if data is None:
                problems.append(
                    f"{where}: volume {name!r} refers to {kind} {ref!r}, which the manifests do not define"
                )
                continue
            files, file_problems = volume_files(data, source, f"{where}: volume {name!r} ({kind} {ref})")
            if file_problems or not _is_name(str(ref)) or not _is_name(namespace):
                problems += file_problems or [f"{where}: volume {name!r}: {kind} {ref!r} is not a valid name"]
                continue
            folder = _volume_folder(workdir, is_secret, namespace, str(ref), source)
            _write_files(folder, files)
            found[name] = ("files", str(folder))
        else:
            kinds = sorted(set(volume) - {"name"})
            problems.append(
                f"{where}: volume {name!r} of type {kinds} is not supported by the docker target "
                "(emptyDir, configMap and secret are)"
            )
    return found, problems


# What the API server accepts as a ConfigMap or Secret key, and as an object name (DNS-1123).
_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
SECRETS_DIR = "secrets"  # under the target's workdir, mode 0700: no other user of this machine gets in


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid ConfigMap/Secret key (as the API server validates it), or None."""
    if not _KEY.fullmatch(key) or key in (".", "..") or len(key) > 253:
        return (
            f"key {key!r} is not a valid ConfigMap/Secret key "
            "(it must match [-._a-zA-Z0-9]+ and not be '.' or '..')"
        )
    return None


def path_problem(path: str) -> str | None:
    """Why ``items[].path`` is not acceptable (relative, no '..' segment, as the API server checks)."""
    if not path or path.startswith("/") or ".." in path.split("/"):
        return f"items path {path!r} must be a relative path without '..'"
    return None


def volume_files(
    data: dict[str, str], source: dict[str, Any], where: str
) -> tuple[dict[str, tuple[str, int]], list[str]]:
    """The files of a ConfigMap/Secret volume: relative path -> (content, mode); with the
    problems of ``items`` paths that would leave the volume's folder. Invalid keys are never
    files (translate reports them once, for their object)."""
    problems: list[str] = []
    data = {key: value for key, value in data.items() if key_problem(key) is None}
    default_mode = int(source.get("defaultMode", 0o644)) & 0o777
    files: dict[str, tuple[str, int]] = {}
    items = source.get("items")
    if items is None:
        files = {key: (value, default_mode) for key, value in data.items()}
    else:
        for item in items:
            key, path = str(item.get("key", "")), str(item.get("path", ""))
            if problem := path_problem(path):
                problems.append(f"{where}: {problem}")
            elif key in data:
                files[path] = (data[key], int(item.get("mode", default_mode)) & 0o777)
            elif not source.get("optional"):
                problems.append(f"{where}: items key {key!r} is not in it")
    return files, problems


def _volume_folder(workdir: Path, is_secret: bool, namespace: str, ref: str, source: dict[str, Any]) -> Path:
    """Where a volume's files go: ``configmaps/<ns>/<name>`` or, under the 0700 ``secrets``
    folder, ``secrets/<ns>/<name>`` (plus a hash of ``items`` and modes when they are set)."""
    suffix = ""
    if source.get("items") is not None or "defaultMode" in source:
        spec = repr((source.get("items"), source.get("defaultMode")))
        suffix = "-" + hashlib.sha256(spec.encode()).hexdigest()[:8]
    if is_secret:
        guard = workdir / SECRETS_DIR
        guard.mkdir(parents=True, exist_ok=True)
        guard.chmod(0o700)
        return guard / namespace / f"{ref}{suffix}"
    return workdir / "configmaps" / namespace / f"{ref}{suffix}"


def _write_files(folder: Path, files: dict[str, tuple[str, int]]) -> None:
    """Write ``files`` into ``folder``; a path that resolves outside it is never written."""
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    for relative, (content, mode) in files.items():
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or path == root:
            raise StagegateError(  # validated before: only a symlink planted in the folder gets here
                Code.MANIFEST_UNSUPPORTED,
                f"volume file {relative!r} would be written outside {root}",
                "remove the artifacts dir's docker-target folder and deploy again",
                {"path": relative},
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(content)
        os.chmod(path, mode)


def _is_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name)) and len(name) <= 253


def string_data(doc: dict[str, Any], secret: bool) -> dict[str, str]:
    data = {str(k): str(v) for k, v in (doc.get("stringData") or {}).items()}
    for key, value in (doc.get("data") or {}).items():
        if not secret:
            data[str(key)] = str(value)
            continue
        try:
            data[str(key)] = base64.b64decode(str(value), validate=True).decode()
        except ValueError:  # not base64, or not UTF-8: reported by data_problems
            continue
    return data


def data_problems(obj: ManifestObject) -> list[str]:
    """What the API server would refuse in a ConfigMap or Secret: invalid keys, Secret data
    that is not base64 (its value is never quoted: it may be a secret)."""
    where = f"{obj.kind}/{obj.name} ({obj.source})"
    keys = {**(obj.doc.get("data") or {}), **(obj.doc.get("stringData") or {})}
    problems = [f"{where}: {problem}" for key in keys if (problem := key_problem(str(key)))]
    if obj.kind == "Secret":
        for key, value in (obj.doc.get("data") or {}).items():
            try:
                base64.b64decode(str(value), validate=True).decode()
            except ValueError:
                problems.append(f"{where}: data key {key!r} is not base64-encoded UTF-8 text")
    return problems
