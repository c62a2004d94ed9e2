"""prune: remove stagegate's old ``sg-`` tags of the configured images.

Every build tags ``<name>:sg-<hash>``; a day of edits leaves dozens. Prune keeps, per
configured image, the tags of the current run (run.json) and the ``keep`` newest others, and
removes the rest — only tags whose image carries stagegate's ``dev.stagegate.image`` label for
that name, and never an image something else uses: a container (running or stopped, of the
image or of an image built on it) or a tag that is not one of stagegate's ``sg-`` tags (such
as ``<name>:latest`` or a tag someone pushed). Nothing is forced: when Docker itself refuses
(a container created meanwhile), the tag is kept and the refusal is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from .ledger import stage_record
from .runner import last_line

log = logging.getLogger(__name__)

LABEL_IMAGE = "dev.stagegate.image"
TAG_PREFIX = "sg-"


@dataclass(frozen=True)
class _Tagged:
    ref: str
    image_id: str
    created: datetime
    size: int


@dataclass
class PruneResult:
    """What prune removed, what it kept and why."""

    removed: list[str] = field(default_factory=list)  # tags removed (or, dry run, to remove)
    deleted_images: list[str] = field(default_factory=list)  # image IDs gone afterwards
    freed_bytes: int = 0  # the deleted images' sizes (layers shared with kept images stay)
    kept: dict[str, str] = field(default_factory=dict)  # tag -> reason
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "removed": self.removed,
            "deleted_images": self.deleted_images,
            "freed_bytes": self.freed_bytes,
            "kept": self.kept,
            "dry_run": self.dry_run,
        }


def current_tags(run: Mapping[str, Any] | None) -> set[str]:
    """The image tags the current run (run.json) built or found up to date."""
    build = stage_record(run, "build")
    images = (build.get("outputs") or {}).get("images") or {}
    return {entry["ref"] for entry in images.values() if isinstance(entry, dict) and entry.get("ref")}


def prune_images(
    docker: DockerClient,
    names: list[str],
    run: Mapping[str, Any] | None,
    *,
    keep: int,
    dry_run: bool = False,
) -> PruneResult:
    """Remove the old ``sg-`` tags of ``names``, keeping the current run's and ``keep`` per image."""
    result = PruneResult(dry_run=dry_run)
    current = current_tags(run)
    for name in names:
        tagged, foreign = _sg_tags(docker, name)
        newest = sorted(tagged, key=lambda t: (t.created, t.ref), reverse=True)
        others = [t for t in newest if t.ref not in current]
        for t in newest:
            if t.ref in current:
                result.kept[t.ref] = "tag of the current run"
        for t in others[:keep]:
            result.kept[t.ref] = f"one of the {keep} newest"
        by_image: dict[str, list[_Tagged]] = {}
        for t in others[keep:]:
            by_image.setdefault(t.image_id, []).append(t)
        for image_id, candidates in by_image.items():
            _remove(docker, image_id, candidates, foreign.get(image_id, []), result)
    return result


PILE_UP = 10  # old sg- images of one image above which the build stage suggests nox -s prune


def piled_up(docker: DockerClient, names: list[str], *, above: int = PILE_UP) -> dict[str, int]:
    """The images of ``names`` with more than ``above`` ``sg-`` images besides the newest, and
    how many: one ``docker image ls`` for all of them when few are there (the usual case)."""
    filters = [("reference", f"{name}:{TAG_PREFIX}*") for name in names]
    if not names or len(docker.image.list(filters=filters)) <= above:
        return {}
    counts = {
        name: len(docker.image.list(filters=[filter])) - 1
        for name, filter in zip(names, filters, strict=True)
    }
    return {name: count for name, count in counts.items() if count > above}


def _sg_tags(docker: DockerClient, name: str) -> tuple[list[_Tagged], dict[str, list[str]]]:
    """stagegate's ``sg-`` tags of ``name``, and per image ID its tags that are not those."""
    ids = [image.id for image in docker.image.list(filters=[("reference", f"{name}:{TAG_PREFIX}*")])]
    if not ids:
        return [], {}
    tagged: list[_Tagged] = []
    foreign: dict[str, list[str]] = {}
    for image in docker.image.inspect(sorted(ids)):
        labels = (image.config.labels if image.config else None) or {}
        ours = labels.get(LABEL_IMAGE) == name
        for ref in image.repo_tags or []:
            if ours and ref.startswith(f"{name}:{TAG_PREFIX}"):
                tagged.append(_Tagged(ref, image.id, image.created, image.size or 0))
            else:
                foreign.setdefault(image.id, []).append(ref)
    return tagged, foreign


def _remove(
    docker: DockerClient, image_id: str, candidates: list[_Tagged], foreign: list[str], result: PruneResult
) -> None:
    refs = [t.ref for t in candidates]
    if foreign:
        for ref in refs:
            result.kept[ref] = f"the image is also tagged {', '.join(sorted(foreign))}"
        return
    users = docker.container.list(all=True, filters=[("ancestor", image_id)])
    if users:
        names = ", ".join(sorted(c.name for c in users)[:3])
        for ref in refs:
            result.kept[ref] = f"the image is used by container {names}"
        return
    if result.dry_run:
        result.removed += refs
        return
    try:
        docker.image.remove(refs, force=False)  # never forced: Docker refuses what is in use
    except DockerException as exc:
        reason = last_line((exc.stderr or "") + (exc.stdout or "")) or f"exit code {exc.return_code}"
        log.warning("kept %s: %s", ", ".join(refs), reason)
        for ref in refs:
            result.kept[ref] = f"Docker refused: {reason}"
        return
    result.removed += refs
    if not docker.image.exists(image_id):  # only untagged when something still holds it
        result.deleted_images.append(image_id)
        result.freed_bytes += max(t.size for t in candidates)
