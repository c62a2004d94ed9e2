"""build: every configured image, in dependency order, in parallel, skipping unchanged ones.

Images whose dependencies are built start at once (at most ``--jobs`` at a time). Each
build's result is checked on its own as it completes: after the first failure no new build
starts and the builds still running are stopped ("cancelled": their ``docker build`` clients
are terminated, the engine drops the build, the layers it finished stay in its cache) unless
``--keep-going``, which builds everything that does not need a failed image. Tags are content
hashes of the build inputs; an image whose tag already exists with the same input hash is
"up to date" and not rebuilt.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import engine, graph, hashing, runner, signals
from ..builder import (
    BUILDERS,
    Builder,
    BuildFailure,
    BuildRequest,
    LegacyBuilder,
    detect_builder,
    parse_build_failure,
)
from ..config import Config, ImageSpec, RegistryConfig
from ..dockerclient import DeferredDockerClient, docker_argv
from ..errors import Code, CommandEvidence, StagegateError
from ..imageinputs import (
    BuiltImage,
    context_hasher,
    image_inputs,
    local_image,
    never_input_paths,
    onbuild_triggers,
    safe_name,
    save_inputs,
)
from ..imagerecord import (
    BUILT,
    CANCELLED,
    FAILED,
    IN_REGISTRY,
    NOT_STARTED,
    PULLED,
    SKIPPED,
    UP_TO_DATE,
    USABLE,
)
from ..retry import retry_transient
from ..runner import log_excerpt
from ..ui import BuildProgress
from . import StageContext

if TYPE_CHECKING:
    from python_on_whales import DockerClient

    from ..registry import RegistryCache, RemoteImage

# Stages wait on their worker threads in slices of this: the kernel may deliver a SIGINT to any
# thread, and a main thread blocked on a lock without a timeout would see it only once the lock
# is released (a whole build, or a whole smoke command, later).
SIGNAL_POLL_S = 0.2
log = logging.getLogger(__name__)

LABEL_INPUT_HASH = "dev.stagegate.input-hash"
LABEL_IMAGE = "dev.stagegate.image"
LABEL_REVISION = "org.opencontainers.image.revision"

T = TypeVar("T")

TAG_PREFIX = "sg-"

STOPPED_DETAIL = "stopped after the first failure (--keep-going builds the rest)"
# After the first failure the running builds' clients get SIGTERM, and SIGKILL when they still
# run this long after it.
CANCEL_GRACE_S = 3.0


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


def run(ctx: StageContext) -> None:
    names = ctx.config.select(list(ctx.options.only))
    builder = _builder_for(ctx)
    ctx.reporter.stage_started(
        "build", f"{len(names)} image(s), {builder.name} builder, up to {ctx.options.max_parallel} at a time"
    )
    progress = ctx.reporter.build_progress(names)
    hasher = context_hasher(ctx.config)
    cache = registry_cache(ctx)
    images = ImageBuilds(
        config=ctx.config,
        docker=ctx.docker,
        builder=builder,
        progress=progress,
        git_sha=(ctx.run.get("git") or {}).get("sha"),
        log_dir=ctx.artifacts / "logs" / "build",
        inputs_dir=ctx.artifacts / "inputs",
        clock=ctx.clock.monotonic,
        sleep=ctx.clock.sleep,
        hasher=hasher,
        cache=cache,
        pull_from_cache=not ctx.target_traits.pulls_pinned_images,
    )
    ctx.outputs["images"] = {}
    try:
        with progress.shown():
            results = images.build_all(
                names,
                keep_going=ctx.options.keep_going,
                max_parallel=ctx.options.max_parallel,
                on_result=lambda result: ctx.outputs["images"].__setitem__(result.name, result.to_json()),
            )
    finally:
        hasher.save()  # what was hashed stays valid whatever the builds did
    ctx.outputs["hashing"] = dict(hasher.stats)
    ctx.outputs["images"] = {name: results[name].to_json() for name in names}  # config order
    if cache is not None:
        ctx.outputs["registry_cache"] = {
            "registry": cache.registry.url,
            "pulled": sum(r.status == PULLED for r in results.values()),
            "in_registry": sum(r.status == IN_REGISTRY for r in results.values()),
            "lookup_failed": dict(images.lookup_failures),
        }
    failures = [r.error for r in results.values() if r.error is not None]
    if failures:
        first, *others = failures
        first.others = others
        raise first
    built = [name for name in names if results[name].status == BUILT]
    if built:  # only a build adds an sg- image: a no-op run does not pay for the count
        _suggest_prune(ctx, built)
    if wants_push(ctx):
        push_images(ctx, names)


def _suggest_prune(ctx: StageContext, names: list[str]) -> None:
    """A hint when old ``sg-`` images pile up (every edit leaves one); never fails the build."""
    from python_on_whales.exceptions import DockerException

    from ..prune import piled_up

    try:
        piled = piled_up(ctx.docker, names)
    except DockerException as exc:
        log.debug("counting old sg- images: %s", exc)
        return
    if piled:
        ctx.outputs["old_sg_images"] = piled
        listed = ", ".join(f"{name} ({count})" for name, count in piled.items())
        ctx.reporter.info(
            f"hint: old sg- images pile up: {listed}; `nox -s prune` removes them "
            "(keeping this run's and the 3 newest)"
        )


def registry_cache(ctx: StageContext) -> RegistryCache | None:
    """The registry as this build's cache: when ``[tool.stagegate.registry]`` is configured
    and its ``cache`` is not turned off."""
    registry = ctx.config.registry
    if registry is None or not registry.cache:
        return None
    from ..registry import RegistryCache

    return RegistryCache(docker_argv(ctx.docker), registry, ctx.artifacts / "logs" / "pull")


def wants_push(ctx: StageContext) -> bool:
    """``--push``, and always for a target whose cluster pulls the images by digest (existing)."""
    return ctx.options.push or ctx.target_traits.pulls_pinned_images


def push_images(ctx: StageContext, names: list[str]) -> None:
    """Every image of this run to the registry, recorded with its repository digest."""
    from ..registry import Pusher

    registry = require_registry(
        ctx.config, "--push" if ctx.options.push else f"--target {ctx.target_traits.name}"
    )
    pusher = Pusher(
        ctx.docker, registry, ctx.artifacts / "logs" / "push", ctx.clock.monotonic, push_latest=True
    )
    started = ctx.clock.monotonic()
    counts = {"pushed": 0, "present": 0}
    for name in names:
        entry = ctx.outputs["images"][name]
        if entry["status"] == IN_REGISTRY:  # found there by the build a moment ago: not local
            counts["present"] += 1
            ctx.reporter.info(f"✓ {name}: already in the registry as {entry['registry']['pinned']}")
            continue
        result = pusher.push(name, entry["ref"])
        entry["registry"] = result.to_json()
        counts[result.action] += 1
        verb = "pushed" if result.action == "pushed" else "already in the registry"
        ctx.reporter.info(f"✓ {name}: {verb} as {result.pinned} ({result.duration_s:.2f}s)")
    ctx.outputs["push"] = {
        "registry": registry.url,
        **counts,
        "duration_s": round(ctx.clock.monotonic() - started, 3),
    }


def require_registry(config: Config, why: str) -> RegistryConfig:
    if config.registry is None:
        raise StagegateError(
            Code.CONFIG_INVALID,
            f"{why} needs a registry, and [tool.stagegate.registry] is not configured",
            'add [tool.stagegate.registry] url = "registry.example.com/myproject" to pyproject.toml '
            "(and `docker login` to it)",
            {"key": "tool.stagegate.registry"},
        )
    return config.registry


def _builder_for(ctx: StageContext) -> Builder:
    """The builder preflight chose for this run (detected again if preflight did not record one)."""
    chosen = BUILDERS.get(str(ctx.run.get("builder")))
    return chosen(ctx.docker) if chosen else detect_builder(ctx.docker)


@dataclass
class ImageBuilds:
    """Builds images of one configuration; ``build_all`` schedules, ``build_one`` builds."""

    config: Config
    docker: DockerClient | DeferredDockerClient
    builder: Builder
    progress: BuildProgress
    git_sha: str | None
    log_dir: Path
    inputs_dir: Path
    clock: Callable[[], float]
    sleep: Callable[[float], None] = time.sleep
    hasher: hashing.ContextHasher = field(default_factory=lambda: hashing.ContextHasher(None))
    cache: RegistryCache | None = None  # the registry as a content-addressed cache
    pull_from_cache: bool = True  # False: a cached image is only recorded (the existing target)
    lookup_failures: dict[str, str] = field(default_factory=dict, init=False)
    _pull_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _made_local: set[str] = field(default_factory=set, init=False)
    _epoch: float = field(default=0.0, init=False)
    _base_ids: dict[str, str] = field(default_factory=dict, init=False)
    _base_triggers: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False)
    _base_ids_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _known: dict[str, tuple[str, frozenset[str], str | None]] = field(default_factory=dict, init=False)
    _prepared: dict[str, tuple[dict[str, str], hashing.Inputs, str]] = field(default_factory=dict, init=False)
    # The fail-fast stop (see _signal_cut_builds): the image whose failure stopped the stage,
    # the builds running (image -> the tag its `docker build` carries), the images whose
    # client the stop signalled, and when SIGTERM turns into SIGKILL.
    _gate: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stopped_by: str | None = field(default=None, init=False)
    _building: dict[str, str] = field(default_factory=dict, init=False)
    _cut: set[str] = field(default_factory=set, init=False)
    _terminated: set[int] = field(default_factory=set, init=False)  # pids sent SIGTERM
    _kill_at: float = field(default=0.0, init=False)

    def build_all(
        self,
        names: list[str],
        *,
        keep_going: bool,
        max_parallel: int,
        on_result: Callable[[ImageResult], None] = lambda result: None,
    ) -> dict[str, ImageResult]:
        """Build ``names`` (dependency-closed); every image's result, in ``names`` order.

        A build starts as soon as its dependencies are built; each finished build is
        examined on its own. After a failure nothing new starts and the running builds are
        cancelled, unless ``keep_going``: then nothing is cancelled, and only images that do
        not need a failed one start.
        """
        self._epoch = self.clock()
        selected = set(names)
        deps = {n: tuple(d for d in self.config.images[n].depends_on if d in selected) for n in names}
        self._look_up_at_once([n for n in names if not deps[n]])
        pending = graph.topological_order(deps)
        results: dict[str, ImageResult] = {}
        running: dict[concurrent.futures.Future[ImageResult], str] = {}
        stopping = False

        def record(result: ImageResult) -> None:
            results[result.name] = result
            on_result(result)
            self.progress.update(result.name, result.status, result.detail)

        with concurrent.futures.ThreadPoolExecutor(
            max_workers=max_parallel, thread_name_prefix="build"
        ) as pool:
            while True:
                for name in [] if stopping else list(pending):
                    blocked = [d for d in deps[name] if d in results and results[d].status not in USABLE]
                    if blocked:
                        pending.remove(name)
                        record(
                            ImageResult(
                                name,
                                SKIPPED,
                                detail=f"needs {blocked[0]}, which {_past(results[blocked[0]].status)}",
                            )
                        )
                    elif all(d in results for d in deps[name]) and len(running) < max_parallel:
                        pending.remove(name)
                        self.progress.update(name, "checking")
                        future = pool.submit(
                            self.build_one, self.config.images[name], {d: results[d] for d in deps[name]}
                        )
                        running[future] = name
                if not running:
                    break
                done: set[concurrent.futures.Future[ImageResult]] = set()
                try:
                    while not done:  # in slices: a Ctrl-C given to another thread is seen at once
                        if stopping:
                            self._signal_cut_builds()
                        done, _ = concurrent.futures.wait(
                            running, timeout=SIGNAL_POLL_S, return_when=concurrent.futures.FIRST_COMPLETED
                        )
                except KeyboardInterrupt:
                    _stop_builds(running)
                    raise
                for future in done:
                    running.pop(future)
                    result = future.result()  # build_one returns failures, it does not raise them
                    record(result)
                    if result.status == FAILED and not keep_going and not stopping:
                        stopping = True
                        self._stop_after(result.name)
        for name in pending:
            record(ImageResult(name, NOT_STARTED, detail=STOPPED_DETAIL))
        return {name: results[name] for name in names}

    def build_one(self, spec: ImageSpec, dependencies: dict[str, ImageResult]) -> ImageResult:
        """Build one image whose dependencies are built; failures come back as a result."""
        started = self.clock()
        try:
            result = self._build(spec, dependencies)
        except _NotStarted:
            return ImageResult(spec.name, NOT_STARTED, detail=STOPPED_DETAIL)
        except _Cancelled as cancelled:
            result = ImageResult(spec.name, CANCELLED, detail=cancelled.detail)
        except StagegateError as error:
            result = ImageResult(spec.name, FAILED, detail=error.message, error=error)
        except Exception as exc:  # a bug of ours: keep the traceback, let the other builds finish
            trace = traceback.format_exc()
            log.error("building %s raised %r", spec.name, exc)
            error = StagegateError(
                Code.INTERNAL_ERROR,
                f"{spec.name}: unexpected {type(exc).__name__}: {exc}",
                "this is a bug in stagegate; the traceback is in log_excerpt",
                {"image": spec.name},
                log_excerpt=trace,
            )
            result = ImageResult(spec.name, FAILED, detail=str(exc), error=error)
        finished = self.clock()
        result.duration_s = finished - started
        result.started_s, result.finished_s = started - self._epoch, finished - self._epoch
        return result

    def _build(self, spec: ImageSpec, dependencies: dict[str, ImageResult]) -> ImageResult:
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
        request = BuildRequest(
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
        with self._gate:  # a build never starts after the stop, nor unseen by it
            if self._stopped_by is not None:
                raise _NotStarted
            self._building[spec.name] = ref
        try:
            with log_file.open("w") as log_stream:
                try:
                    image_id = self.builder.build(request, log_stream)
                except BuildFailure as failure:
                    with self._gate:
                        cut, stopped_by = spec.name in self._cut, self._stopped_by
                    if cut:  # its client was stopped: not a failure of its own
                        detail = f"stopped when {stopped_by} failed (--keep-going builds the rest)"
                        log_stream.write(f"\n[cancelled: {detail}]\n")
                        raise _Cancelled(detail) from None
                    raise build_error(spec, failure, self.config.relpath, log_file) from None
        finally:
            with self._gate:
                self._building.pop(spec.name, None)
            if self.cache is not None and request.cache_from and self.builder.name == LegacyBuilder.name:
                # pulled only to take layers from: its tag goes (the layers the build took stay,
                # shared), or the next push of latest would leave it behind untagged
                self.cache.release(request.cache_from[0])
        return ImageResult(spec.name, BUILT, ref, image_id, digest)

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

    def _stop_after(self, failed: str) -> None:
        """The first failure (without ``--keep-going``): no build starts any more, and the
        running ones are cancelled (:meth:`_signal_cut_builds`, called until they returned)."""
        with self._gate:
            self._stopped_by = failed
        self._kill_at = self.clock() + CANCEL_GRACE_S

    def _signal_cut_builds(self) -> None:
        """Stop the ``docker build`` clients of the builds still running: SIGTERM once, SIGKILL
        to those still there :data:`CANCEL_GRACE_S` after the failure. The engine cancels a
        build whose client went away (legacy builder and BuildKit alike; the legacy builder's
        ``--force-rm`` removes the step's container). Only these clients are signalled — found
        among this process's descendants by a build argv naming a running build's tag (and
        what they started) — never another child of the process (a test's registry, a
        port-forward of the user's own nox session)."""
        with self._gate:
            tags = {ref: name for name, ref in self._building.items()}
        if not tags:
            return
        kill = self.clock() >= self._kill_at
        clients: dict[int, str] = {}
        for process in signals.processes_below():  # parents before their children
            name = clients.get(process.parent) or _build_of(process.argv, tags)
            if name is not None:
                clients[process.pid] = name
        for pid, name in clients.items():
            with self._gate:
                self._cut.add(name)
            first = pid not in self._terminated
            self._terminated.add(pid)
            if first or kill:
                log.debug("stopping the build of %s (pid %d) after %s failed", name, pid, self._stopped_by)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)

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
        :meth:`_look_up_at_once` found it), which needs no ``docker tag`` when its other tags
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

    def _look_up_at_once(self, names: list[str]) -> None:
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


class _NotStarted(Exception):
    """The stage stopped before this image's build started."""


class _Cancelled(Exception):
    """The stage stopped this image's running build."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _build_of(argv: Sequence[str], tags: Mapping[str, str]) -> str | None:
    """The image whose running build ``argv`` is (a ``build`` naming its tag), if any."""
    if "build" not in argv:
        return None
    return next((tags[arg] for arg in argv if arg in tags), None)


def _stop_builds(running: Mapping[concurrent.futures.Future[ImageResult], str], grace: float = 3.0) -> None:
    """Stop the running builds of an interrupted stage: their ``docker`` clients are told to stop
    (SIGTERM, then SIGKILL after ``grace`` seconds) until every build thread has returned — a
    thread between two commands may start one more after the first round. The engine cancels a
    build whose client went away."""
    deadline = time.monotonic() + grace
    while not all(future.done() for future in running):
        signals.terminate_descendants(signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL)
        concurrent.futures.wait(running, timeout=SIGNAL_POLL_S)


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


def _past(status: str) -> str:
    return {
        FAILED: "failed",
        SKIPPED: "was skipped",
        NOT_STARTED: "was not started",
        CANCELLED: "was cancelled",
    }.get(status, status)
