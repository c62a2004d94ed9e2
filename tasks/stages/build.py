"""build: every configured image, in dependency order, in parallel, skipping unchanged ones.

Images whose dependencies are built start at once (at most ``--jobs`` at a time). Each
build's result is checked on its own as it completes: after the first failure no new build
starts (running ones finish) unless ``--keep-going``, which builds everything that does not
need a failed image. Tags are content hashes of the build inputs; an image whose tag
already exists with the same input hash is "up to date" and not rebuilt.
"""

from __future__ import annotations

import concurrent.futures
import logging
import traceback
from dataclasses import dataclass, field
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from tasks import graph, hashing
from tasks.builder import Builder, BuildFailure, BuildRequest, LegacyBuilder, detect_builder, log_excerpt, parse_build_failure
from tasks.config import Config, ImageSpec
from tasks.dockerfile import _repository
from tasks.errors import Code, CommandEvidence, StagegateError
from tasks.stages import StageContext
from tasks.ui import BuildProgress

log = logging.getLogger(__name__)

LABEL_INPUT_HASH = "dev.stagegate.input-hash"
LABEL_IMAGE = "dev.stagegate.image"
LABEL_REVISION = "org.opencontainers.image.revision"

BUILT, UP_TO_DATE, FAILED, NOT_STARTED, SKIPPED = "built", "up to date", "failed", "not started", "skipped"


@dataclass
class ImageResult:
    name: str
    status: str
    ref: str | None = None  # name:tag this run uses
    image_id: str | None = None
    input_hash: str | None = None
    duration_s: float = 0.0
    detail: str = ""
    error: StagegateError | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "ref": self.ref,
            "image_id": self.image_id,
            "input_hash": self.input_hash,
            "duration_s": round(self.duration_s, 3),
            "detail": self.detail,
        }


def run(ctx: StageContext) -> None:
    names = ctx.config.select(list(ctx.options.only))
    builder = _builder_for(ctx)
    ctx.reporter.stage_started("build", f"{len(names)} image(s), {builder.name} builder, up to {ctx.options.max_parallel} at a time")
    progress = ctx.reporter.build_progress(names)
    with progress.shown():
        results = build_images(
            ctx.config,
            names,
            ctx.docker,
            builder,
            keep_going=ctx.options.keep_going,
            max_parallel=ctx.options.max_parallel,
            progress=progress,
            git_sha=(ctx.run.get("git") or {}).get("sha"),
            log_path=lambda name: ctx.log_path("build", name),
            clock=ctx.clock.monotonic,
            relpath=ctx.config.relpath,
            outputs=ctx.outputs,
        )
    failures = [r.error for r in results.values() if r.error is not None]
    if failures:
        first, *others = failures
        first.others = others
        raise first


def _builder_for(ctx: StageContext) -> Builder:
    chosen = ctx.run.get("builder")
    if chosen == LegacyBuilder.name:
        return LegacyBuilder(ctx.docker)
    if chosen is None:
        return detect_builder(ctx.docker)
    from tasks.builder import BuildxBuilder

    return BuildxBuilder(ctx.docker)


def build_images(
    config: Config,
    names: list[str],
    docker: DockerClient,
    builder: Builder,
    *,
    keep_going: bool,
    max_parallel: int,
    progress: BuildProgress,
    git_sha: str | None,
    log_path: Any,
    clock: Any,
    relpath: Any,
    outputs: dict[str, Any],
) -> dict[str, ImageResult]:
    """Build ``names`` (dependency-closed) and return every image's result, in ``names`` order."""
    selected = set(names)
    deps = {n: tuple(d for d in config.images[n].depends_on if d in selected) for n in names}
    pending = graph.topological_order(deps)
    results: dict[str, ImageResult] = {}
    running: dict[concurrent.futures.Future[ImageResult], str] = {}
    stopping = False
    outputs["images"] = {}

    def record(result: ImageResult) -> None:
        results[result.name] = result
        outputs["images"][result.name] = result.to_json()
        progress.update(result.name, result.status, result.detail)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="build") as pool:
        while True:
            if not stopping:
                for name in list(pending):
                    blocked = [d for d in deps[name] if d in results and results[d].status not in (BUILT, UP_TO_DATE)]
                    if blocked:
                        pending.remove(name)
                        record(ImageResult(name, SKIPPED, detail=f"needs {blocked[0]}, which {results[blocked[0]].status.replace('skipped', 'was skipped')}"))
                    elif all(d in results for d in deps[name]) and len(running) < max_parallel:
                        pending.remove(name)
                        inputs = {d: results[d] for d in deps[name]}
                        progress.update(name, "building")
                        future = pool.submit(
                            _build_one, config.images[name], inputs, docker, builder, git_sha, log_path(name), clock, relpath
                        )
                        running[future] = name
            if not running:
                break
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                result = future.result()
                record(result)
                if result.status == FAILED and not keep_going:
                    stopping = True
    for name in pending:
        record(ImageResult(name, NOT_STARTED, detail="stopped after the first failure (use --keep-going to build the rest)"))
    return {name: results[name] for name in names}


def _build_one(
    spec: ImageSpec,
    dependencies: dict[str, ImageResult],
    docker: DockerClient,
    builder: Builder,
    git_sha: str | None,
    log_file: Any,
    clock: Any,
    relpath: Any,
) -> ImageResult:
    started = clock()
    try:
        return _build_one_unchecked(spec, dependencies, docker, builder, git_sha, log_file, clock, relpath, started)
    except StagegateError as error:
        return ImageResult(spec.name, FAILED, duration_s=clock() - started, detail=error.message, error=error)
    except Exception as exc:  # a bug of ours: keep the traceback, do not take the other builds down
        trace = traceback.format_exc()
        log.error("building %s raised %r", spec.name, exc)
        error = StagegateError(
            Code.INTERNAL_ERROR,
            f"{spec.name}: unexpected {type(exc).__name__}: {exc}",
            "this is a bug in stagegate; the traceback is in log_excerpt",
            {"image": spec.name},
            log_excerpt=trace,
        )
        return ImageResult(spec.name, FAILED, duration_s=clock() - started, detail=str(exc), error=error)


def _build_one_unchecked(
    spec: ImageSpec,
    dependencies: dict[str, ImageResult],
    docker: DockerClient,
    builder: Builder,
    git_sha: str | None,
    log_file: Any,
    clock: Any,
    relpath: Any,
    started: float,
) -> ImageResult:
    build_args = _with_dependency_args(spec, dependencies)
    base_ids: dict[str, str] = {}
    for ref in spec.parsed.base_refs(build_args):
        if ref.internal:
            continue
        configured = next((d for d in dependencies.values() if d.name == _repository(ref.ref)), None)
        if configured is not None:
            base_ids[ref.ref] = configured.image_id or ""
        else:
            base_ids[ref.ref] = _local_id(docker, ref.ref)
    # Explicit depends_on without a FROM line still feed their IDs into the hash.
    for dep in dependencies.values():
        base_ids.setdefault(f"depends_on:{dep.name}", dep.image_id or "")
    digest = hashing.input_hash(spec.context, spec.dockerfile, build_args, base_ids)
    ref = f"{spec.name}:sg-{digest[:16]}"
    latest = f"{spec.name}:latest"

    existing = _existing(docker, ref, digest)
    if existing is not None:
        docker.image.tag(existing, latest)
        return ImageResult(spec.name, UP_TO_DATE, ref, existing, digest, clock() - started)

    log_file.parent.mkdir(parents=True, exist_ok=True)
    request = BuildRequest(
        context=spec.context,
        dockerfile=spec.dockerfile,
        tags=[ref, latest],
        build_args=build_args,
        labels={LABEL_INPUT_HASH: digest, LABEL_IMAGE: spec.name, LABEL_REVISION: git_sha or "unknown"},
    )
    with log_file.open("w") as log_stream:
        try:
            image_id = builder.build(request, log_stream)
        except BuildFailure as failure:
            raise _build_error(spec, failure, relpath, log_file) from None
    return ImageResult(spec.name, BUILT, ref, image_id, digest, clock() - started)


def _with_dependency_args(spec: ImageSpec, dependencies: dict[str, ImageResult]) -> dict[str, str]:
    """Build args whose value names a configured dependency get its exact built reference.

    ``ARG BASE=example/base`` + ``FROM ${BASE}`` then builds on the very image of this run.
    """
    args = dict(spec.build_args)
    for name, default in spec.parsed.global_args().items():
        value = args.get(name, default)
        if value and _repository(value) in dependencies and dependencies[_repository(value)].ref:
            args[name] = dependencies[_repository(value)].ref  # type: ignore[assignment]
    return args


def _local_id(docker: DockerClient, ref: str) -> str:
    try:
        return docker.image.inspect(ref).id
    except DockerException:
        return "absent"


def _existing(docker: DockerClient, ref: str, digest: str) -> str | None:
    """The ID of ``ref`` when it exists and was built from these very inputs."""
    try:
        image = docker.image.inspect(ref)
    except DockerException:
        return None
    labels = image.config.labels or {}
    return image.id if labels.get(LABEL_INPUT_HASH) == digest else None


def _build_error(spec: ImageSpec, failure: BuildFailure, relpath: Any, log_file: Any) -> StagegateError:
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
    exit_note = f" with exit code {details.exit_code}" if details.exit_code is not None else ""
    subject: dict[str, Any] = {"image": spec.name, "file": file}
    if details.line:
        subject["line"] = details.line
    if details.instruction:
        subject["instruction"] = details.instruction
    if details.exit_code is not None:
        subject["exit_code"] = details.exit_code
    if details.reason:
        subject["reason"] = details.reason
    return StagegateError(
        Code.BUILD_FAILED,
        f"{spec.name}: {what} failed{exit_note} at {where}" + (f": {details.reason}" if details.reason and details.exit_code is None else ""),
        f"fix {where} (context {relpath(spec.context)}/) and re-run; the full build output is in {relpath(log_file)}",
        subject,
        command=command,
        log_excerpt=log_excerpt(failure.output),
        log_file=relpath(log_file),
    )
