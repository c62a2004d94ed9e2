"""build: every configured image, in dependency order, in parallel, skipping unchanged ones.

Images whose dependencies are built start at once (at most ``--jobs`` at a time). Each
build's result is checked on its own as it completes: after the first failure no new build
starts and the builds still running are stopped ("cancelled": their ``docker build`` clients
are terminated, the engine drops the build, the layers it finished stay in its cache) unless
``--keep-going``, which builds everything that does not need a failed image. Tags are content
hashes of the build inputs; an image whose tag already exists with the same input hash is
"up to date" and not rebuilt.

Here: the stage, the schedule of its builds, the push after them. Beside it: ``build_image``
(one image: up to date, from the registry cache, or built) and ``build_stop`` (stopping the
builds still running).
"""

from __future__ import annotations

import concurrent.futures
import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .. import graph
from ..builder import BUILDERS, Builder, detect_builder
from ..config import Config, ImageSpec, RegistryConfig
from ..dockerclient import docker_argv
from ..errors import Code, StagegateError
from ..imageinputs import context_hasher
from ..imagerecord import (
    BUILT,
    CANCELLED,
    FAILED,
    IN_REGISTRY,
    NOT_STARTED,
    PULLED,
    SKIPPED,
    USABLE,
)
from ..signals import SIGNAL_POLL_S
from ..ui import BuildProgress
from . import StageContext
from .build_image import ImageBuilder, ImageResult
from .build_stop import BuildStop, Cancelled, NotStarted, stop_interrupted_builds

if TYPE_CHECKING:
    from ..registry import RegistryCache

log = logging.getLogger(__name__)

STOPPED_DETAIL = "stopped after the first failure (--keep-going builds the rest)"


def run(ctx: StageContext) -> None:
    names = ctx.config.select(list(ctx.options.only))
    builder = _builder_for(ctx)
    ctx.reporter.stage_started(
        "build", f"{len(names)} image(s), {builder.name} builder, up to {ctx.options.max_parallel} at a time"
    )
    progress = ctx.reporter.build_progress(names)
    hasher = context_hasher(ctx.config)
    cache = registry_cache(ctx)
    stop = BuildStop(ctx.clock.monotonic)
    image = ImageBuilder(
        config=ctx.config,
        docker=ctx.docker,
        builder=builder,
        progress=progress,
        git_sha=(ctx.run.get("git") or {}).get("sha"),
        log_dir=ctx.artifacts / "logs" / "build",
        inputs_dir=ctx.artifacts / "inputs",
        stop=stop,
        sleep=ctx.clock.sleep,
        hasher=hasher,
        cache=cache,
        pull_from_cache=not ctx.target_traits.pulls_pinned_images,
    )
    images = ImageBuilds(image, progress, ctx.clock.monotonic, stop)
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
            "lookup_failed": dict(image.lookup_failures),
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
    """Builds images of one configuration: ``build_all`` schedules, ``build_one`` builds one
    (:class:`ImageBuilder`) and times it, its failure a result."""

    images: ImageBuilder
    progress: BuildProgress
    clock: Callable[[], float]
    stop: BuildStop
    _epoch: float = field(default=0.0, init=False)

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
        specs = self.images.config.images
        selected = set(names)
        deps = {n: tuple(d for d in specs[n].depends_on if d in selected) for n in names}
        self.images.look_up_at_once([n for n in names if not deps[n]])
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
                        future = pool.submit(self.build_one, specs[name], {d: results[d] for d in deps[name]})
                        running[future] = name
                if not running:
                    break
                done: set[concurrent.futures.Future[ImageResult]] = set()
                try:
                    while not done:  # in slices: a Ctrl-C given to another thread is seen at once
                        if stopping:
                            self.stop.signal_cut_builds()
                        done, _ = concurrent.futures.wait(
                            running, timeout=SIGNAL_POLL_S, return_when=concurrent.futures.FIRST_COMPLETED
                        )
                except KeyboardInterrupt:
                    stop_interrupted_builds(running)
                    raise
                for future in done:
                    running.pop(future)
                    result = future.result()  # build_one returns failures, it does not raise them
                    record(result)
                    if result.status == FAILED and not keep_going and not stopping:
                        stopping = True
                        self.stop.stop_after(result.name)
        for name in pending:
            record(ImageResult(name, NOT_STARTED, detail=STOPPED_DETAIL))
        return {name: results[name] for name in names}

    def build_one(self, spec: ImageSpec, dependencies: dict[str, ImageResult]) -> ImageResult:
        """Build one image whose dependencies are built; failures come back as a result."""
        started = self.clock()
        try:
            result = self.images.build(spec, dependencies)
        except NotStarted:
            return ImageResult(spec.name, NOT_STARTED, detail=STOPPED_DETAIL)
        except Cancelled as cancelled:
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


def _past(status: str) -> str:
    return {
        FAILED: "failed",
        SKIPPED: "was skipped",
        NOT_STARTED: "was not started",
        CANCELLED: "was cancelled",
    }.get(status, status)
