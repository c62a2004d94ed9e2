"""verify: prove the built images are right before any cluster is touched.

Every check runs and every failure is reported (error.json names the first and lists the
rest): images present with the recorded ID, not stale, of the target platform, passing their
smoke command; manifests referencing only images this run builds or ``external_images``,
with pull policies that will not send Kubernetes to a registry for a local image.
"""

from __future__ import annotations

import concurrent.futures
import logging
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from python_on_whales import Container, DockerClient
from python_on_whales.exceptions import DockerException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_incrementing

from .. import hashing, resultcache, runner
from ..clock import Clock
from ..config import Config, ImageSpec
from ..errors import Code, CommandEvidence, StagegateError
from ..imageinputs import (
    BuiltImage,
    context_hasher,
    image_inputs,
    load_inputs,
    local_image,
    never_input_paths,
    onbuild_triggers,
)
from ..imagerecord import IN_REGISTRY, usable_images
from ..ownership import OWNER_LABEL, owner_id
from ..retry import retry_transient
from ..runner import log_excerpt
from ..signals import SIGNAL_POLL_S
from . import StageContext
from .manifest_checks import check_manifests

log = logging.getLogger(__name__)

LABEL_PURPOSE = "dev.stagegate.purpose"
LABEL_RUN = "dev.stagegate.run"


def run(ctx: StageContext) -> None:
    names = ctx.config.select(list(ctx.options.only))
    built = _built_images(ctx)
    platform = ctx.config.platform or _engine_platform(ctx.run)
    ctx.reporter.stage_started("verify", f"{len(names)} image(s), platform {platform}")
    ctx.outputs.update({"platform": platform, "images": {}})
    failures: list[StagegateError] = []

    # Cheapest first: the manifests, then each image, then the smoke containers.
    if ctx.config.deploy is None:
        ctx.reporter.info("- manifests: none configured ([tool.stagegate.deploy] manifests)")
    else:
        manifest_errors, summary = check_manifests(
            ctx.config,
            {n: b.ref for n, b in built.items()},
            ctx.artifacts,
            from_registry=ctx.target_traits.pulls_from_registry,
        )
        ctx.outputs["manifests"] = summary
        failures += manifest_errors
        for error in manifest_errors:
            ctx.reporter.info(f"✗ {error.message}")
        for ref in summary["not_rewritten"]:
            ctx.reporter.warning(
                f"{ref['file']}: {ref['resource']} {ref['field']} = {ref['value']!r} names a configured "
                f"image but is not rewritten ({ref['why']}): write the reference alone in that field"
            )
        if not manifest_errors:
            ctx.reporter.info(
                f"✓ manifests: {summary['objects']} object(s) in {summary['source']}, "
                f"{len(summary['images'])} image reference(s), all known"
            )

    present: list[str] = []
    hasher = context_hasher(ctx.config)  # each context walked once, digests remembered
    base_ids: dict[str, tuple[str, tuple[str, ...]]] = {}  # external base -> ID, ONBUILD triggers
    try:
        for name in names:
            found = check_image(
                ctx.config,
                ctx.docker,
                ctx.config.images[name],
                built,
                platform,
                ctx.artifacts,
                ctx.clock,
                hasher=hasher,
                base_ids=base_ids,
            )
            ctx.outputs["images"][name] = {
                "checks": found.passed,
                "failed": [str(e.code) for e in found.errors],
            }
            failures += found.errors
            if found.present:
                present.append(name)
            _report(ctx, name, found.passed, found.errors)
    finally:
        hasher.save()
    ctx.outputs["hashing"] = dict(hasher.stats)

    smoke_targets = [ctx.config.images[n] for n in present if ctx.config.images[n].smoke]
    smoke_targets = _reuse_smoke_passes(ctx, smoke_targets, built)
    for spec, error, output in run_smoke_tests(
        ctx.docker,
        smoke_targets,
        built,
        ctx.run["run_id"],
        ctx.clock,
        ctx.options.max_parallel,
        owner=owner_id(ctx.artifacts),
    ):
        entry = ctx.outputs["images"][spec.name]
        if error is None:
            entry["checks"].append("smoke")
            if "smoke" in entry:  # the e2e result cache is on: kept if this run's e2e passes
                entry["smoke"]["passed"] = True
            ctx.reporter.info(
                f"✓ {spec.name}: smoke `{' '.join(spec.smoke or ())}` passed ({output.strip()[:60]})"
            )
        else:
            entry["failed"].append(str(error.code))
            failures.append(error)
            ctx.reporter.info(f"✗ {error.message}")
            if error.code != Code.INTERRUPTED:
                _show_output(ctx, spec.name, output)

    if failures:
        first, *others = failures
        first.others = others
        raise first


def _reuse_smoke_passes(
    ctx: StageContext, specs: list[ImageSpec], built: dict[str, BuiltImage]
) -> list[ImageSpec]:
    """With the e2e result cache on: the smoke commands that passed before in an image of the
    same ID (the same command, entrypoint and timeout) are not run again — said, and recorded
    in the image's ``smoke`` output; the others are returned, to run, their keys noted for the
    record a passing e2e writes."""
    records = resultcache.smoke_passes(ctx)
    if records is None:
        return specs
    to_run = []
    for spec in specs:
        key = resultcache.smoke_key(
            built[spec.name].image_id, spec.smoke or (), smoke_entrypoint(spec), spec.smoke_timeout
        )
        entry = ctx.outputs["images"][spec.name]
        passed = records.find(key.digest)
        if passed is None:
            entry["smoke"] = {"key": key.digest, "parts": dict(key.parts)}
            to_run.append(spec)
            continue
        entry["checks"].append("smoke")
        entry["smoke"] = {"key": key.digest, "reused": passed.reused("local")}
        ctx.reporter.info(
            f"✓ {spec.name}: smoke `{' '.join(spec.smoke or ())}` passed in this image before, in "
            f"{resultcache.describe_reused(passed.reused('local'))} (the e2e result cache; --no-cache runs it)"
        )
    return to_run


def _show_output(ctx: StageContext, name: str, output: str, lines: int = 15) -> None:
    """The tail of a failed smoke command's output on the terminal (the reporter redacts it)."""
    tail = log_excerpt(output, lines)
    if not tail:
        ctx.reporter.info(f"  {name}: the smoke command printed nothing")
        return
    ctx.reporter.info(f"  {name}: last lines of its output:")
    for line in tail.splitlines():
        ctx.reporter.info(f"    | {line}")


@dataclass
class ImageCheck:
    present: bool
    passed: list[str]
    errors: list[StagegateError]


def check_image(
    config: Config,
    docker: DockerClient,
    spec: ImageSpec,
    built: dict[str, BuiltImage],
    platform: str,
    artifacts: Path,
    clock: Clock,
    *,
    hasher: hashing.ContextHasher | None = None,
    base_ids: dict[str, tuple[str, tuple[str, ...]]] | None = None,
) -> ImageCheck:
    """Present with the recorded ID, of the target platform, and built from today's sources.

    ``hasher`` and ``base_ids`` are shared by the images of one stage: each context is walked
    once, each external base looked up once.
    """
    entry = built.get(spec.name)
    if entry is None:
        error = StagegateError(
            Code.IMAGE_MISSING,
            f"{spec.name} was not built in this run",
            "run `nox -s build` (without --only, or with this image)",
            {"image": spec.name},
        )
        return ImageCheck(False, [], [error])
    if entry.pinned:  # only in the registry, by digest: nothing of it to inspect here
        return _check_in_registry(config, docker, spec, built, platform, artifacts, clock, hasher, base_ids)
    try:
        image = retry_transient(lambda: docker.image.inspect(entry.ref), sleep=clock.sleep)
    except DockerException:
        error = StagegateError(
            Code.IMAGE_MISSING,
            f"{spec.name}: {entry.ref} is not in the Docker engine any more (removed after the build?)",
            "run `nox -s build` again",
            {"image": spec.name, "ref": entry.ref, "expected_id": entry.image_id},
        )
        return ImageCheck(False, [], [error])
    if image.id != entry.image_id:
        error = StagegateError(
            Code.IMAGE_MISSING,
            f"{spec.name}: {entry.ref} now points at {image.id[:19]}, not the image this run built ({entry.image_id[:19]})",
            "something re-tagged the image; run `nox -s build` again",
            {"image": spec.name, "ref": entry.ref, "expected_id": entry.image_id, "found_id": image.id},
        )
        return ImageCheck(False, [], [error])

    passed, errors = ["present"], []
    actual = f"{image.os}/{image.architecture}"
    _check_platform(spec, actual, image.variant, platform, f"{spec.name} is built for", passed, errors)
    _check_current(config, docker, spec, built, artifacts, clock, hasher, base_ids, passed, errors)
    return ImageCheck(True, passed, errors)


def _check_in_registry(
    config: Config,
    docker: DockerClient,
    spec: ImageSpec,
    built: dict[str, BuiltImage],
    platform: str,
    artifacts: Path,
    clock: Clock,
    hasher: hashing.ContextHasher | None,
    base_ids: dict[str, tuple[str, tuple[str, ...]]] | None,
) -> ImageCheck:
    """An image the build found in the registry under its content-hash tag and did not pull:
    present there (the cluster stage checks its digest once more), of the platform its
    manifest names, and current (its tag is its input hash, computed from today's sources)."""
    entry = built[spec.name]
    passed, errors = ["present"], []
    if entry.platform is not None:
        parts = entry.platform.split("/")
        actual, variant = "/".join(parts[:2]), (parts[2] if len(parts) > 2 else None)
        said = f"{spec.name} in the registry ({entry.pinned}) is for"
        _check_platform(spec, actual, variant, platform, said, passed, errors)
    _check_current(config, docker, spec, built, artifacts, clock, hasher, base_ids, passed, errors)
    return ImageCheck(True, passed, errors)


def _check_platform(
    spec: ImageSpec,
    actual: str,
    variant: str | None,
    platform: str,
    said: str,
    passed: list[str],
    errors: list[StagegateError],
) -> None:
    """ "platform" passed, or ``PLATFORM_MISMATCH`` (``said`` names the image and where it is)."""
    if _platform_matches(actual, variant, platform):
        passed.append("platform")
        return
    errors.append(
        StagegateError(
            Code.PLATFORM_MISMATCH,
            f"{said} {actual}, the target runs {platform}",
            f"build for {platform} (FROM a {platform} base image), or set [tool.stagegate] platform",
            {"image": spec.name, "platform": actual, "expected": platform},
        )
    )


def _check_current(
    config: Config,
    docker: DockerClient,
    spec: ImageSpec,
    built: dict[str, BuiltImage],
    artifacts: Path,
    clock: Clock,
    hasher: hashing.ContextHasher | None,
    base_ids: dict[str, tuple[str, tuple[str, ...]]] | None,
    passed: list[str],
    errors: list[StagegateError],
) -> None:
    """ "current" passed (built from today's sources), or the staleness error."""
    stale = _staleness(
        config,
        docker,
        spec,
        built,
        artifacts,
        clock,
        hasher or context_hasher(config),
        {} if base_ids is None else base_ids,
    )
    if stale is not None:
        errors.append(stale)
    else:
        passed.append("current")


def _staleness(
    config: Config,
    docker: DockerClient,
    spec: ImageSpec,
    built: dict[str, BuiltImage],
    artifacts: Path,
    clock: Clock,
    hasher: hashing.ContextHasher,
    base_ids: dict[str, tuple[str, tuple[str, ...]]],
) -> StagegateError | None:
    dependencies = {d: built[d] for d in spec.depends_on if d in built}

    def local_id(ref: str) -> str:
        if ref not in base_ids:
            base_ids[ref] = local_image(docker, ref, sleep=clock.sleep)
        return base_ids[ref][0]

    _, now = image_inputs(
        spec,
        dependencies,
        local_id,
        hasher=hasher,
        never=never_input_paths(config),
        onbuild=lambda ref: onbuild_triggers(config, ref, {r: t for r, (_, t) in base_ids.items()}),
    )
    recorded = built[spec.name]
    if now.digest() == recorded.input_hash:
        return None
    before = load_inputs(artifacts / "inputs", spec.name)
    changes = now.changes_since(before) if before is not None else []
    subject: dict[str, Any] = {"image": spec.name, "changes": changes[:20]}
    first_file = next(
        (c.rsplit(" ", 2)[0] for c in changes if c.endswith((" changed", " added", " removed"))), None
    )
    if first_file and not first_file.startswith(("the Dockerfile", "build arg", "base image")):
        subject["file"] = config.relpath(spec.context / first_file)
    what = changes[0] if changes else "its inputs changed"
    more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
    return StagegateError(
        Code.IMAGE_STALE,
        f"{spec.name} is stale: {what}{more} since it was built",
        "run `nox -s build` again so that the image matches the sources",
        subject,
    )


def run_smoke_tests(
    docker: DockerClient,
    specs: list[ImageSpec],
    built: dict[str, BuiltImage],
    run_id: str,
    clock: Clock,
    parallel: int,
    *,
    owner: str | None = None,
) -> Iterable[tuple[ImageSpec, StagegateError | None, str]]:
    """Each image's smoke command in a container of its own; results in ``specs`` order.

    On Ctrl-C (or another stop signal) the running smoke commands are killed at their next
    poll (a tenth of a second) and their containers removed before the interrupt goes on; none
    still queued starts. Each container carries ``owner`` (the artifacts dir's owner id): one
    left behind by a run ended at once (a second signal) is removed by teardown.
    """
    if not specs:
        return []
    cancel = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, parallel), thread_name_prefix="smoke"
    ) as pool:
        futures = [
            pool.submit(smoke_test, docker, spec, built[spec.name].ref, run_id, clock, cancel, owner)
            for spec in specs
        ]
        try:
            pending = set(futures)
            while pending:  # with a timeout: a Ctrl-C the kernel gave another thread is seen
                _, pending = concurrent.futures.wait(pending, timeout=SIGNAL_POLL_S)
            return [(spec, *future.result()) for spec, future in zip(specs, futures, strict=True)]
        except BaseException:
            cancel.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise  # leaving the with block waits for the cancelled ones to clean up


def smoke_test(
    docker: DockerClient,
    spec: ImageSpec,
    ref: str,
    run_id: str,
    clock: Clock,
    cancel: threading.Event | None = None,
    owner: str | None = None,
) -> tuple[StagegateError | None, str]:
    """Run ``spec.smoke`` in ``ref`` (no network), kill it at ``spec.smoke_timeout`` or when
    ``cancel`` is set. Its container is removed on every path."""
    cancel = cancel or threading.Event()
    command = list(spec.smoke or ())
    entrypoint = smoke_entrypoint(spec)
    argv = ["docker", "run", "--network", "none"]
    if entrypoint is not None:
        argv += ["--entrypoint", entrypoint]
    argv += [ref, *command]
    subject = {"image": spec.name, "command": command}
    name = f"stagegate-smoke-{secrets.token_hex(4)}"
    if cancel.is_set():
        return _cancelled(spec, argv, subject), ""
    try:
        container = docker.run(
            ref,
            command,
            detach=True,
            name=name,
            entrypoint=entrypoint,
            networks=["none"],
            labels={LABEL_PURPOSE: "smoke", LABEL_RUN: run_id, **({OWNER_LABEL: owner} if owner else {})},
        )
    except DockerException as exc:
        # `docker run -d` creates the container before it fails to start it: remove it.
        _remove_container(docker, name, clock.sleep)
        output = (exc.stderr or "") + (exc.stdout or "")
        return (
            StagegateError(
                Code.SMOKE_FAILED,
                f"{spec.name}: smoke command `{' '.join(command)}` could not start: {runner.last_line(output)}",
                f"check the smoke command of {spec.key} (is it installed in the image?)",
                {**subject, "exit_code": exc.return_code},
                command=CommandEvidence(argv, exc.return_code),
                log_excerpt=log_excerpt(output),
            ),
            output,
        )
    try:
        deadline = clock.monotonic() + spec.smoke_timeout
        timed_out = False
        while retry_transient(lambda: container.state.running, sleep=clock.sleep):
            if cancel.is_set():
                return _cancelled(spec, argv, subject), ""
            if clock.monotonic() >= deadline:
                _kill(docker, container)
                timed_out = True
                break
            clock.sleep(0.1)
        output = docker.container.logs(container)
        exit_code = docker.container.inspect(container.id).state.exit_code
    finally:
        _remove_container(docker, container.id, clock.sleep)
    if timed_out:
        return (
            StagegateError(
                Code.SMOKE_FAILED,
                f"{spec.name}: smoke command `{' '.join(command)}` did not finish within {spec.smoke_timeout:g} s and was killed",
                f"make the smoke command finish quickly, or raise smoke_timeout in {spec.key}",
                {**subject, "timeout_s": spec.smoke_timeout, "reason": "timeout"},
                command=CommandEvidence(argv, None),
                log_excerpt=log_excerpt(output),
            ),
            output,
        )
    if exit_code != 0:
        return (
            StagegateError(
                Code.SMOKE_FAILED,
                f"{spec.name}: smoke command `{' '.join(command)}` exited with {exit_code}",
                "run it yourself to see why: " + shlex.join(argv),
                {**subject, "exit_code": exit_code},
                command=CommandEvidence(argv, exit_code),
                log_excerpt=log_excerpt(output),
            ),
            output,
        )
    return None, output


def smoke_entrypoint(spec: ImageSpec) -> str | None:
    """``--entrypoint`` of the smoke container: "" (cleared, so that the smoke command runs
    itself and not as arguments of a server the ENTRYPOINT starts), None (the image's own:
    ``smoke_entrypoint = "image"``), or the configured program."""
    if spec.smoke_entrypoint is None:
        return ""
    if spec.smoke_entrypoint == "image":
        return None
    return spec.smoke_entrypoint


def _cancelled(spec: ImageSpec, argv: list[str], subject: dict[str, Any]) -> StagegateError:
    return StagegateError(
        Code.INTERRUPTED,
        f"{spec.name}: smoke command interrupted",
        "re-run when ready",
        {**subject, "reason": "interrupted"},
        command=CommandEvidence(argv, None),
    )


#: How long teardown waits for a smoke container whose removal the ended run had already asked for.
REMOVAL_WAIT_S = 30.0


def remove_leftover_smoke_containers(
    docker: DockerClient, artifacts: Path, *, sleep: Callable[[float], None] = time.sleep
) -> int:
    """Remove the smoke containers of this artifacts dir's owner that a run ended at once (a
    second stop signal during its clean-up) left behind; how many there were.

    The ended run may have asked the engine to remove one just before it was killed: the engine
    then answers "removal … is already in progress", and this waits until that removal is done."""
    filters = [("label", f"{LABEL_PURPOSE}=smoke"), ("label", f"{OWNER_LABEL}={owner_id(artifacts)}")]
    left = docker.container.list(all=True, filters=filters)
    for container in left:
        try:
            docker.container.remove(container, force=True)
        except DockerException as exc:
            said = exc.stderr or ""
            if "already in progress" not in said and "No such container" not in said:
                raise
    deadline = time.monotonic() + REMOVAL_WAIT_S
    while (still := docker.container.list(all=True, filters=filters)) and time.monotonic() < deadline:
        sleep(0.2)
    if still:  # a removal the engine never finished: ask once more, and say why if it fails
        docker.container.remove(still, force=True)
    return len(left)


def _kill(docker: DockerClient, container: Container) -> None:
    try:
        docker.container.kill(container)
    except DockerException as exc:  # it ended between the poll and the kill
        log.debug("smoke container %s: kill: %s", container.id[:12], runner.last_line(exc.stderr or ""))


def _remove_container(
    docker: DockerClient, name_or_id: str, sleep: Callable[[float], None], *, attempts: int = 3
) -> None:
    """Remove a smoke container, whatever state it is in (or nothing, when it was never made).

    Removing is idempotent, so any refusal is tried again: a loaded engine may answer a forced
    removal with "could not kill … did not receive an exit event" and remove it a moment later.
    """
    try:
        for attempt in Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, DockerException) and not _gone(exc)),
            stop=stop_after_attempt(attempts),
            wait=wait_incrementing(start=0.5, increment=0.5),
            sleep=sleep,
            reraise=True,
        ):
            with attempt:
                docker.container.remove(name_or_id, force=True, volumes=True)
    except DockerException as exc:
        if not _gone(exc):
            log.warning(
                "could not remove smoke container %s: %s", name_or_id, runner.last_line(exc.stderr or "")
            )


def _gone(exc: BaseException) -> bool:
    return isinstance(exc, DockerException) and "No such container" in (exc.stderr or "")


def _built_images(ctx: StageContext) -> dict[str, BuiltImage]:
    return {
        name: BuiltImage(
            entry["ref"],
            entry["image_id"],
            entry.get("input_hash") or "",
            *_only_in_registry(entry),
        )
        for name, entry in usable_images(ctx.run).items()
        if entry.get("image_id")
    }


def _only_in_registry(entry: dict[str, Any]) -> tuple[str, str | None]:
    """The pinned reference and platform of an image the build found in the registry and did
    not pull (the existing target's cluster pulls it); empty for an image on this engine."""
    cache = entry.get("cache") or {}
    if entry.get("status") != IN_REGISTRY or not cache.get("pinned"):
        return "", None
    return cache["pinned"], cache.get("platform")


def _engine_platform(run: dict[str, Any]) -> str:
    docker = ((run.get("stages") or {}).get("preflight") or {}).get("outputs", {}).get("docker") or {}
    return f"{docker.get('os') or 'linux'}/{docker.get('arch') or 'amd64'}"


def _platform_matches(actual: str, variant: str | None, expected: str) -> bool:
    parts = expected.split("/")
    if actual != "/".join(parts[:2]):
        return False
    return len(parts) < 3 or (variant or "") == parts[2]


def _report(ctx: StageContext, name: str, passed: list[str], errors: list[StagegateError]) -> None:
    if errors:
        for error in errors:
            ctx.reporter.info(f"✗ {error.message}")
    else:
        ctx.reporter.info(f"✓ {name}: {', '.join(passed)}")
