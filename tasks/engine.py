"""Read-only questions to the Docker engine, asked through the ``docker`` CLI and answered from
its JSON: which engine answers, whether the buildx plugin is there, which of these images exist.

Every run asks them before it does anything, and a run with nothing to do asks nothing else; so
they go through :mod:`stagegate.runner` (with a timeout of its own) rather than python-on-whales,
whose import alone (about 0.3 s on a 2-core machine) costs more than a no-op build of three
images. What builds, runs, tags, pushes or removes goes through python-on-whales
(:mod:`stagegate.dockerclient`), imported when it is first needed.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import runner
from .retry import retry_transient

#: What the CLI says of an image that is not there (clients before and after 23.0 alike).
_NOT_FOUND = "no such image"


@dataclass(frozen=True)
class Version:
    """``docker version``: the client's version and, when an engine answered, the engine's."""

    client: str | None
    server: str | None
    os: str | None
    arch: str | None


@dataclass(frozen=True)
class LocalImage:
    """What ``docker image inspect`` says of one local image, as stagegate reads it."""

    id: str
    tags: frozenset[str] = frozenset()
    labels: Mapping[str, str] = field(default_factory=dict)
    on_build: tuple[str, ...] = ()

    @classmethod
    def from_inspect(cls, data: Mapping[str, Any]) -> LocalImage:
        config = data.get("Config") or {}
        return cls(
            id=str(data["Id"]),
            tags=frozenset(data.get("RepoTags") or ()),
            labels=dict(config.get("Labels") or {}),
            on_build=tuple(config.get("OnBuild") or ()),
        )


def version(docker: Sequence[str], *, timeout: float) -> Version:
    """The client's and the engine's versions; :class:`runner.CommandFailed` when no engine
    answers within ``timeout`` seconds (or the CLI is missing: ``exit_code`` None)."""
    result = runner.run([*docker, "version", "--format", "{{json .}}"], timeout=timeout)
    data = json.loads(result.stdout)
    client, server = data.get("Client") or {}, data.get("Server") or {}
    return Version(client.get("Version"), server.get("Version"), server.get("Os"), server.get("Arch"))


def buildx_installed(docker: Sequence[str]) -> bool:
    """Whether the buildx plugin answers (``docker buildx version``)."""
    try:
        runner.run([*docker, "buildx", "version"], timeout=30)
    except runner.CommandFailed:
        return False
    return True


def inspect_images(
    docker: Sequence[str], refs: Sequence[str], *, sleep: Callable[[float], None] = time.sleep
) -> dict[str, LocalImage]:
    """The local images among ``refs`` (names, ``name:tag``, IDs), by the reference asked.

    One ``docker image inspect`` when every one is there (a no-op run); when some are not, each
    is asked on its own, in parallel, so that no answer is matched to the wrong reference. An
    engine that fails otherwise than "no such image" raises :class:`runner.CommandFailed`
    (retried while the failure looks transient).
    """
    refs = list(dict.fromkeys(refs))
    if not refs:
        return {}
    found = retry_transient(lambda: _inspect(docker, refs), sleep=sleep)
    if found is not None and len(found) == len(refs):  # printed in the order they were asked
        return {ref: LocalImage.from_inspect(data) for ref, data in zip(refs, found, strict=True)}
    if len(refs) == 1:
        return {}

    def one(ref: str) -> list[dict[str, Any]] | None:
        return retry_transient(lambda: _inspect(docker, [ref]), sleep=sleep)

    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, len(refs))) as pool:
        answers = dict(zip(refs, pool.map(one, refs), strict=True))
    return {ref: LocalImage.from_inspect(found[0]) for ref, found in answers.items() if found}


def _inspect(docker: Sequence[str], refs: Sequence[str]) -> list[dict[str, Any]] | None:
    """``docker image inspect refs``: every image's JSON, or None when some are not there."""
    result = runner.run([*docker, "image", "inspect", *refs], check=False)
    if result.exit_code == 0:
        return list(json.loads(result.stdout))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if lines and all(_NOT_FOUND in line.lower() for line in lines):
        return None
    raise runner.CommandFailed(result.argv, result.exit_code, result.stdout, result.stderr)


def image_ids(
    docker: Sequence[str], references: Sequence[str], *, sleep: Callable[[float], None] = time.sleep
) -> list[str]:
    """The IDs of the local images matching any of the ``reference`` filters (``name:sg-*``)."""
    filters = [arg for reference in references for arg in ("--filter", f"reference={reference}")]
    result = retry_transient(
        lambda: runner.run([*docker, "image", "ls", "--no-trunc", "--format", "{{.ID}}", *filters]),
        sleep=sleep,
    )
    return list(dict.fromkeys(result.stdout.split()))


def image_tags(docker: Sequence[str], *, sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """Every ``repository:tag`` on the engine, in one ``docker image ls``: no inspect of what
    it lists, which fails when another job removes an image in between on a shared engine."""
    result = retry_transient(
        lambda: runner.run([*docker, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]),
        sleep=sleep,
    )
    return result.stdout.split()
