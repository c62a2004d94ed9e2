"""verify: prove the built images are right before any cluster is touched.

Every check runs and every failure is reported (error.json names the first and lists the
rest): images present with the recorded ID, not stale, of the target platform, passing their
smoke command; manifests referencing only images this run builds or ``external_images``,
with pull policies that will not send Kubernetes to a registry for a local image.

Here: the stage and the checks of each image. Beside it: ``verify_smoke`` (the smoke commands'
containers) and ``manifest_checks`` (the manifests, shared with preflight).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from .. import hashing, resultcache
from ..clock import Clock
from ..config import Config, ImageSpec
from ..errors import Code, StagegateError
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
from ..ledger import stage_outputs
from ..ownership import owner_id
from ..retry import retry_transient
from ..runner import log_excerpt
from . import StageContext
from .manifest_checks import check_manifests
from .verify_smoke import run_smoke_tests, smoke_entrypoint


def run(ctx: StageContext) -> None:
    names = ctx.config.select(list(ctx.options.only))
    built = _built_images(ctx)
    platform = ctx.config.platform or _engine_platform(ctx.run)
    ctx.reporter.stage_started("verify", f"{len(names)} image(s), platform {platform}")
    ctx.outputs.update({"platform": platform, "images": {}})
    # Cheapest first: the manifests, then each image, then the smoke containers.
    failures = list(_verify_manifests(ctx, built))
    present, image_failures = _verify_images(ctx, names, built, platform)
    failures += image_failures + _verify_smoke(ctx, present, built)
    if failures:
        first, *others = failures
        first.others = others
        raise first


def _verify_manifests(ctx: StageContext, built: dict[str, BuiltImage]) -> list[StagegateError]:
    """The manifests checked and written rewritten to this run's tags (when configured)."""
    if ctx.config.deploy is None:
        ctx.reporter.info("- manifests: none configured ([tool.stagegate.deploy] manifests)")
        return []
    manifest_errors, summary = check_manifests(
        ctx.config,
        {n: b.ref for n, b in built.items()},
        ctx.artifacts,
        from_registry=ctx.target_traits.pulls_from_registry,
    )
    ctx.outputs["manifests"] = summary
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
    return manifest_errors


def _verify_images(
    ctx: StageContext, names: list[str], built: dict[str, BuiltImage], platform: str
) -> tuple[list[str], list[StagegateError]]:
    """Each image checked (:class:`ImageChecks`); the images present, and the failures."""
    present: list[str] = []
    failures: list[StagegateError] = []
    hasher = context_hasher(ctx.config)  # each context walked once, digests remembered
    checks = ImageChecks(ctx.config, ctx.docker, built, platform, ctx.artifacts, ctx.clock, hasher)
    try:
        for name in names:
            found = checks.check(ctx.config.images[name])
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
    return present, failures


def _verify_smoke(
    ctx: StageContext, present: list[str], built: dict[str, BuiltImage]
) -> list[StagegateError]:
    """The smoke commands of the images present (those passed before, with the e2e result cache
    on, not again); the failures."""
    failures: list[StagegateError] = []
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
    return failures


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


@dataclass
class ImageChecks:
    """The checks of the images ``built`` in this run, for one verify stage: each context is
    walked once (``hasher``), each external base looked up once (``base_ids``)."""

    config: Config
    docker: DockerClient
    built: dict[str, BuiltImage]
    platform: str
    artifacts: Path
    clock: Clock
    hasher: hashing.ContextHasher
    base_ids: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # ID, ONBUILD triggers

    def check(self, spec: ImageSpec) -> ImageCheck:
        """Present with the recorded ID, of the target platform, and built from today's sources."""
        entry = self.built.get(spec.name)
        if entry is None:
            error = StagegateError(
                Code.IMAGE_MISSING,
                f"{spec.name} was not built in this run",
                "run `nox -s build` (without --only, or with this image)",
                {"image": spec.name},
            )
            return ImageCheck(False, [], [error])
        if entry.pinned:  # only in the registry, by digest: nothing of it to inspect here
            return self._in_registry(spec)
        try:
            image = retry_transient(lambda: self.docker.image.inspect(entry.ref), sleep=self.clock.sleep)
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
        self._check_platform(spec, actual, image.variant, f"{spec.name} is built for", passed, errors)
        self._check_current(spec, passed, errors)
        return ImageCheck(True, passed, errors)

    def _in_registry(self, spec: ImageSpec) -> ImageCheck:
        """An image the build found in the registry under its content-hash tag and did not pull:
        present there (the cluster stage checks its digest once more), of the platform its
        manifest names, and current (its tag is its input hash, computed from today's sources)."""
        entry = self.built[spec.name]
        passed, errors = ["present"], []
        if entry.platform is not None:
            parts = entry.platform.split("/")
            actual, variant = "/".join(parts[:2]), (parts[2] if len(parts) > 2 else None)
            said = f"{spec.name} in the registry ({entry.pinned}) is for"
            self._check_platform(spec, actual, variant, said, passed, errors)
        self._check_current(spec, passed, errors)
        return ImageCheck(True, passed, errors)

    def _check_platform(
        self,
        spec: ImageSpec,
        actual: str,
        variant: str | None,
        said: str,
        passed: list[str],
        errors: list[StagegateError],
    ) -> None:
        """ "platform" passed, or ``PLATFORM_MISMATCH`` (``said`` names the image and where it is)."""
        if _platform_matches(actual, variant, self.platform):
            passed.append("platform")
            return
        errors.append(
            StagegateError(
                Code.PLATFORM_MISMATCH,
                f"{said} {actual}, the target runs {self.platform}",
                f"build for {self.platform} (FROM a {self.platform} base image), or set [tool.stagegate] platform",
                {"image": spec.name, "platform": actual, "expected": self.platform},
            )
        )

    def _check_current(self, spec: ImageSpec, passed: list[str], errors: list[StagegateError]) -> None:
        """ "current" passed (built from today's sources), or the staleness error."""
        stale = self._staleness(spec)
        if stale is not None:
            errors.append(stale)
        else:
            passed.append("current")

    def _staleness(self, spec: ImageSpec) -> StagegateError | None:
        config, base_ids = self.config, self.base_ids
        dependencies = {d: self.built[d] for d in spec.depends_on if d in self.built}

        def local_id(ref: str) -> str:
            if ref not in base_ids:
                base_ids[ref] = local_image(self.docker, ref, sleep=self.clock.sleep)
            return base_ids[ref][0]

        _, now = image_inputs(
            spec,
            dependencies,
            local_id,
            hasher=self.hasher,
            never=never_input_paths(config),
            onbuild=lambda ref: onbuild_triggers(config, ref, {r: t for r, (_, t) in base_ids.items()}),
        )
        recorded = self.built[spec.name]
        if now.digest() == recorded.input_hash:
            return None
        before = load_inputs(self.artifacts / "inputs", spec.name)
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
    docker = stage_outputs(run, "preflight").get("docker") or {}
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
