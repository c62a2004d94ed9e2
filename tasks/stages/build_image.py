"""One image of the build stage: its inputs and content-hash tag; up to date (an image of that tag
built from the same inputs exists), from the registry cache, or built with ``docker build``
through the run's builder; a failed build as ``BUILD_FAILED`` naming the Dockerfile line.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import engine, hashing, runner
from ..builder import Builder, BuildFailure, BuildRequest, LegacyBuilder, parse_build_failure
from ..config import Config, ImageSpec
from ..dockerclient import DeferredDockerClient, docker_argv
from ..errors import Code, CommandEvidence, StagegateError
from ..imageinputs import (
    BuiltImage,
    image_inputs,
    local_image,
    never_input_paths,
    onbuild_triggers,
    safe_name,
    save_inputs,
)
from ..imagerecord import BUILT, IN_REGISTRY, PULLED, UP_TO_DATE
from ..retry import retry_transient
from ..runner import log_excerpt
from ..ui import BuildProgress
from .build_stop import BuildStop, Cancelled

if TYPE_CHECKING:
    from python_on_whales import DockerClient

    from ..registry import RegistryCache, RemoteImage

log = logging.getLogger(__name__)

LABEL_INPUT_HASH = "dev.stagegate.input-hash"
LABEL_IMAGE = "dev.stagegate.image"
LABEL_REVISION = "org.opencontainers.image.revision"

T = TypeVar("T")

TAG_PREFIX = "sg-"


@dataclass
class ImageResult:
    name: str
    status: str
    ref: str | None = None  # name:tag this run uses
    image_id: str | None = None
    input_hash: str | None = None
    duration_s: float = 0.0
    detail: str = ""
    started_s: float | None = None  # offsets from the start of the build stage
    finished_s: float | None = None
    error: StagegateError | None = field(default=None, repr=False)
    cached: RemoteImage | None = None  # found in the registry under its content-hash tag

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "status": self.status,
            "ref": self.ref,
            "image_id": self.image_id,
            "input_hash": self.input_hash,
            "duration_s": round(self.duration_s, 3),
            "started_s": None if self.started_s is None else round(self.started_s, 3),
            "finished_s": None if self.finished_s is None else round(self.finished_s, 3),
            "detail": self.detail,
        }
        if self.cached is not None:
            entry["cache"] = {
                "remote": self.cached.ref,
                "pinned": self.cached.pinned,
                "digest": self.cached.digest,
                "platform": self.cached.platform,
                "pulled": self.status == PULLED,
            }
        if self.status == IN_REGISTRY and self.cached is not None:  # what the push would record
            entry["registry"] = {
                "remote": self.cached.ref,
                "pinned": self.cached.pinned,
                "digest": self.cached.digest,
                "action": "present",
                "duration_s": 0.0,
            }
        return entry


@dataclass
class ImageBuilder:
    """Builds one image at a time of one configuration (:meth:`build`), from any thread; what
    the images of a stage share is looked up once (their external bases, the tags of the images
    that need no other, the registry's answers)."""

    config: Config
    docker: DockerClient | DeferredDockerClient
    builder: Builder
    progress: BuildProgress
    git_sha: str | None
    log_dir: Path
    inputs_dir: Path
    stop: BuildStop
    sleep: Callable[[float], None] = time.sleep
    hasher: hashing.ContextHasher = field(default_factory=lambda: hashing.ContextHasher(None))
    cache: RegistryCache | None = None  # the registry as a content-addressed cache
    pull_from_cache: bool = True  # False: a cached image is only recorded (the existing target)
    lookup_failures: dict[str, str] = field(default_factory=dict, init=False)
    _pull_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _made_local: set[str] = field(default_factory=set, init=False)
    _base_ids: dict[str, str] = field(default_factory=dict, init=False)
    _base_triggers: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False)
    _base_ids_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _known: dict[str, tuple[str, frozenset[str], str | None]] = field(default_factory=dict, init=False)
    _prepared: dict[str, tuple[dict[str, str], hashing.Inputs, str]] = field(default_factory=dict, init=False)

    def build(self, spec: ImageSpec, dependencies: dict[str, ImageResult]) -> ImageResult:
        """``spec`` on its built ``dependencies``: up to date, from the registry cache, or built.
        A failure raises (``StagegateError``; :class:`NotStarted` or :class:`Cancelled` after
        the fail-fast stop)."""
        built = {
            name: BuiltImage(result.ref or "", result.image_id or "", result.input_hash or "")
            for name, result in dependencies.items()
        }
        prepared = self._prepared.pop(spec.name, None) if not dependencies else None
        if prepared is None:
            prepared = self._inputs(spec, built)
        build_args, inputs, digest = prepared
        ref = f"{spec.name}:{TAG_PREFIX}{digest[:16]}"
        latest = f"{spec.name}:latest"
        save_inputs(self.inputs_dir, spec.name, inputs)

        existing = self._existing(ref, digest)
        if existing is not None:
            image_id, has_tags = existing
            for tag in [latest, *(f"{spec.name}:{tag}" for tag in spec.tags)]:
                if tag not in has_tags:  # moved or removed since: point it back at this image
                    self._docker(lambda tag=tag: self.docker.image.tag(image_id, tag))
            return ImageResult(spec.name, UP_TO_DATE, ref, image_id, digest)

        tags = [ref, latest, *(f"{spec.name}:{tag}" for tag in spec.tags)]
        if self.cache is not None:
            cached = self._from_cache(spec, ref, digest, tags)
            if cached is not None:
                return cached
            self._make_local(dependencies)
        self.progress.update(spec.name, "building")
        log_file = self.log_dir / f"{safe_name(spec.name)}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        request = self._request(spec, tags, build_args, digest)
        image_id = self._docker_build(spec, ref, request, log_file)
        return ImageResult(spec.name, BUILT, ref, image_id, digest)

    def _request(
        self, spec: ImageSpec, tags: list[str], build_args: dict[str, str], digest: str
    ) -> BuildRequest:
        """What the builder is asked to build: ``spec`` under ``tags``, labelled with its input
        digest, its name and the commit."""
        return BuildRequest(
            context=spec.context,
            dockerfile=spec.dockerfile,
            tags=tags,
            build_args=build_args,
            target=spec.target,
            platforms=spec.platforms,
            secrets=spec.secrets,
            secret_env=spec.secret_env,
            pull=spec.pull,
            no_cache=spec.no_cache,
            cache_from=self._layer_cache(spec),
            labels={
                **spec.labels,
                LABEL_INPUT_HASH: digest,
                LABEL_IMAGE: spec.name,
                LABEL_REVISION: self.git_sha or "unknown",
            },
        )

    def _docker_build(self, spec: ImageSpec, ref: str, request: BuildRequest, log_file: Path) -> str:
        """The image ID ``request`` built, its output in ``log_file``; a failure raises
        ``BUILD_FAILED``, or :class:`Cancelled` when the fail-fast stop cut its client."""
        self.stop.started(spec.name, ref)  # a build never starts after the stop, nor unseen by it
        try:
            with log_file.open("w") as log_stream:
                try:
                    return self.builder.build(request, log_stream)
                except BuildFailure as failure:
                    stopped_by = self.stop.cut_by(spec.name)
                    if stopped_by is not None:  # its client was stopped: not a failure of its own
                        detail = f"stopped when {stopped_by} failed (--keep-going builds the rest)"
                        log_stream.write(f"\n[cancelled: {detail}]\n")
                        raise Cancelled(detail) from None
                    raise build_error(spec, failure, self.config.relpath, log_file) from None
        finally:
            self.stop.finished(spec.name)
            if self.cache is not None and request.cache_from and self.builder.name == LegacyBuilder.name:
                # pulled only to take layers from: its tag goes (the layers the build took stay,
                # shared), or the next push of latest would leave it behind untagged
                self.cache.release(request.cache_from[0])

    def _from_cache(self, spec: ImageSpec, ref: str, digest: str, tags: list[str]) -> ImageResult | None:
        """``ref`` from the registry (one manifest lookup), pulled and tagged with ``tags``, or
        only recorded where the cluster pulls it itself (unless verify runs its smoke command
        here); None when it must be built: not there, the registry did not answer (logged,
        never a failure), or what was pulled was not built from these inputs (its label says)."""
        from ..registry import LookupFailed

        assert self.cache is not None
        tag = ref.rsplit(":", 1)[1]
        try:
            found = self.cache.find(spec.name, tag)
        except LookupFailed as exc:
            log.warning("%s: the registry cache could not be asked (%s); building it", spec.name, exc)
            self.lookup_failures[spec.name] = str(exc)
            return None
        if found is None:
            return None
        if not self.pull_from_cache and not spec.smoke:  # a smoke command runs here: pulled
            return ImageResult(
                spec.name,
                IN_REGISTRY,
                ref,
                found.image_id,
                digest,
                detail="from the registry cache (pinned by digest, not pulled)",
                cached=found,
            )
        self.progress.update(spec.name, "pulling")
        try:
            self.cache.pull(found)
            pulled = engine.inspect_images(docker_argv(self.docker), [found.ref], sleep=self.sleep).get(
                found.ref
            )
        except runner.CommandFailed as exc:
            log.warning("%s: pulling %s failed (%s); building it", spec.name, found.ref, exc.reason)
            self.lookup_failures[spec.name] = f"pull failed: {runner.last_line(exc.stderr) or exc.reason}"
            return None
        if pulled is None or pulled.labels.get(LABEL_INPUT_HASH) != digest:
            log.warning(
                "%s: %s was not built from these inputs (its label says); building it", spec.name, found.ref
            )
            return None
        try:
            self.cache.tag(found.ref, tags)
        except runner.CommandFailed as exc:
            log.warning("%s: tagging %s failed (%s); building it", spec.name, found.ref, exc.reason)
            return None
        return ImageResult(
            spec.name, PULLED, ref, pulled.id, digest, detail="from the registry cache", cached=found
        )

    def _make_local(self, dependencies: Mapping[str, ImageResult]) -> None:
        """Pull the dependencies this build needs that the registry cache only recorded (the
        existing target): a ``FROM`` of them must find them on this engine."""
        assert self.cache is not None
        for name, result in dependencies.items():
            if result.status != IN_REGISTRY or result.cached is None or result.ref is None:
                continue
            with self._pull_lock:
                if name in self._made_local:
                    continue
                try:
                    self.cache.pull(result.cached)
                    self.cache.tag(result.cached.ref, [result.ref, f"{name}:latest"])
                except runner.CommandFailed as exc:
                    raise StagegateError(
                        Code.IMAGE_MISSING,
                        f"{name}: could not pull {result.cached.ref} from the registry to build on it",
                        "is the registry up and reachable (`docker pull` it by hand)? "
                        "`cache = false` in [tool.stagegate.registry] builds everything here",
                        {"image": name, "ref": result.cached.ref},
                        command=CommandEvidence(exc.argv, exc.exit_code),
                        log_excerpt=log_excerpt(exc.stderr),
                    ) from None
                self._made_local.add(name)

    def _layer_cache(self, spec: ImageSpec) -> tuple[str, ...]:
        """What a build of ``spec`` may take layers from: the registry's ``latest`` of it (the
        image the last ``--push`` pushed). The legacy builder takes layers only from local
        images, so it is pulled first; BuildKit fetches what it uses itself. Nothing when no
        registry is configured, the image is built with ``no_cache``, or (legacy) the pull
        fails: a missing cache image never fails a build."""
        if self.cache is None or spec.no_cache:
            return ()
        if self.builder.name == LegacyBuilder.name:
            pulled = self.cache.pull_for_cache(spec.name)
            return () if pulled is None else (pulled,)
        return (self.cache.remote(spec.name, "latest"),)

    def _inputs(
        self, spec: ImageSpec, built: dict[str, BuiltImage]
    ) -> tuple[dict[str, str], hashing.Inputs, str]:
        """The build args, inputs and input digest of ``spec`` on its ``built`` dependencies."""
        build_args, inputs = image_inputs(
            spec,
            built,
            self._local_id,
            hasher=self.hasher,
            never=never_input_paths(self.config),
            onbuild=lambda ref: onbuild_triggers(self.config, ref, self._base_triggers),
        )
        return build_args, inputs, inputs.digest()

    def _docker(self, call: Callable[[], T]) -> T:
        """A Docker call other than the build itself: retried while it fails transiently."""
        return retry_transient(call, sleep=self.sleep)

    def _local_id(self, ref: str) -> str:
        """An external base's image ID, looked up once per stage (twelve images on one base
        cost one ``docker image inspect``)."""
        with self._base_ids_lock:
            if ref not in self._base_ids:
                self._base_ids[ref], self._base_triggers[ref] = local_image(
                    self.docker, ref, sleep=self.sleep
                )
            return self._base_ids[ref]

    def _existing(self, ref: str, digest: str) -> tuple[str, frozenset[str]] | None:
        """The ID of ``ref`` and the tags pointing at it, when it exists and was built from
        these very inputs: one ``docker image inspect`` for an up-to-date image (none when
        :meth:`look_up_at_once` found it), which needs no ``docker tag`` when its other tags
        still point at it."""
        known = self._known.pop(ref, None)
        if known is None:
            try:
                image = engine.inspect_images(docker_argv(self.docker), [ref], sleep=self.sleep).get(ref)
            except runner.CommandFailed:  # the engine did not answer: the build will say so
                return None
            if image is None:
                return None
            known = (image.id, image.tags, image.labels.get(LABEL_INPUT_HASH))
        image_id, tags, input_hash = known
        if input_hash != digest:
            return None
        return image_id, tags

    def look_up_at_once(self, names: list[str]) -> None:
        """One ``docker image inspect`` of the tags of every image in ``names`` (images that
        need no other selected image, so that their tag is known before anything is built):
        a no-op build of twelve images costs one Docker call, not twelve. What it finds,
        :meth:`_existing` uses; what it does not (not built yet, or inputs that cannot be
        read, which the image's own build then reports), is looked up image by image."""
        refs = []
        for name in names:
            spec = self.config.images[name]
            self.progress.update(name, "checking")
            try:
                self._prepared[name] = self._inputs(spec, {})  # its build uses them, not again
            except Exception:  # its own build computes them again and reports why
                continue
            refs.append(f"{spec.name}:{TAG_PREFIX}{self._prepared[name][2][:16]}")
        if len(refs) < 2:
            return
        argv = [*docker_argv(self.docker), "image", "inspect", *refs]
        try:
            # the images found are printed even when others are missing (exit code 1)
            found = json.loads(runner.run(argv, check=False).stdout or "[]")
        except (runner.CommandFailed, ValueError):
            return
        for image in found if isinstance(found, list) else ():
            tags = frozenset(image.get("RepoTags") or ())
            labels = (image.get("Config") or {}).get("Labels") or {}
            for ref in tags.intersection(refs):
                self._known[ref] = (image["Id"], tags, labels.get(LABEL_INPUT_HASH))


def build_error(
    spec: ImageSpec, failure: BuildFailure, relpath: Callable[[Path], str], log_file: Path
) -> StagegateError:
    """``BUILD_FAILED`` naming the image, Dockerfile line, instruction and RUN exit code, with the
    failing step's last lines of output (``subject["output"]``)."""
    command = CommandEvidence(failure.argv, failure.exit_code)
    if failure.daemon_down:
        return StagegateError(
            Code.DOCKER_UNAVAILABLE,
            f"{spec.name}: the Docker daemon went away during the build",
            "start the Docker engine again and re-run",
            {"image": spec.name},
            command=command,
            log_excerpt=log_excerpt(failure.output),
            log_file=relpath(log_file),
        )
    details = parse_build_failure(failure.output, spec.parsed)
    file = relpath(spec.dockerfile)
    where = f"{file}:{details.line}" if details.line else file
    what = f"`{details.instruction}`" if details.instruction else "the build"
    subject: dict[str, Any] = {"image": spec.name, "file": file}
    if details.line:
        subject["line"] = details.line
    if details.instruction:
        subject["instruction"] = details.instruction
    if details.exit_code is not None:
        subject["exit_code"] = details.exit_code
    if details.reason:
        subject["reason"] = details.reason
    if details.output:  # shown under the terminal's ✗ line, quoted by the reports
        subject["output"] = list(details.output)
    if details.exit_code is not None:
        message = f"{spec.name}: {what} failed with exit code {details.exit_code} at {where}"
    else:
        message = f"{spec.name}: {what} failed at {where}" + (f": {details.reason}" if details.reason else "")
    # a command that failed is fixed where its own output points (a source file, a test), which
    # may be no line of the Dockerfile; a step that ran nothing (COPY) is fixed at its line
    fix = f"what the step's output names, or {where}" if details.output else where
    return StagegateError(
        Code.BUILD_FAILED,
        message,
        f"fix {fix} (build context {relpath(spec.context)}/); the full build output is in {relpath(log_file)}",
        subject,
        command=command,
        log_excerpt=log_excerpt(failure.output),
        log_file=relpath(log_file),
    )
