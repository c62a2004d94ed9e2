"""cluster: create or reuse the target and put this run's images on it."""

from __future__ import annotations

from typing import Any

from .. import bundle, resultcache
from ..errors import Code, StagegateError
from ..ownership import owner_id
from ..profiles import check_target
from ..targets import ImageToLoad, Target, select_target
from ..targets.docker import DockerTarget
from ..targets.existing import ExistingTarget, check_context, namespace_for
from ..targets.kind import KindTarget
from . import StageContext
from .build import OK


def run(ctx: StageContext) -> None:
    requested = ctx.options.target or ctx.config.target
    name, reason = select_target(requested)
    check_target(ctx.run.get("profile"), name, ctx.config.profiles)
    ctx.outputs.update(target=name, target_reason=reason)
    if (reused := resultcache.lookup(ctx, name)) is not None:
        ctx.outputs["cached"] = reused
        ctx.reporter.stage_started("cluster", f"target {name}: passed from the e2e result cache")
        ctx.reporter.info(
            f"✓ these inputs passed in {resultcache.describe_reused(reused)}: cluster, deploy and e2e are not "
            "run (--no-cache runs them)"
        )
        return
    target = make_target(ctx, name)
    where = (
        f"context {target.context!r}, namespace {target.namespace!r}"
        if isinstance(target, ExistingTarget)
        else f"name {ctx.config.cluster.name!r}"
    )
    ctx.reporter.stage_started("cluster", f"target {name} ({reason}), {where}")
    cache = ctx.outputs.get("result_cache") or {}
    if cache.get("lookup") == "miss":
        ctx.reporter.info(f"e2e result cache: no pass with these inputs ({cache['why']})")
    elif cache.get("lookup"):
        ctx.reporter.info("e2e result cache: not looked up (--no-cache); a pass is recorded again")
    up = target.up(recreate=ctx.options.recreate)
    ctx.outputs["cluster"] = up
    ctx.reporter.info(
        f"{target.place} {up['cluster']}: {up['action']}"
        + (" by stagegate" if up["created_by_stagegate"] else "")
    )
    if "registry" in up:
        ctx.reporter.info(f"local registry {up['registry']['container']} at {up['registry']['host']}")
    images = images_of_run(ctx, pinned=name == "existing")
    archive = bundle.archive_of_run(ctx.run)
    if archive is not None and isinstance(target, KindTarget):  # one kind load of the bundle's archive
        loaded = target.load_archive(images, archive)
    else:
        loaded = target.load_images(images)
    ctx.outputs["load"] = loaded
    for image, entry in loaded["images"].items():
        ctx.reporter.info(f"✓ {image}: {entry['summary']}")


def make_target(ctx: StageContext, name: str, cluster: dict[str, Any] | None = None) -> Target:
    """The target of this run (``name`` as chosen by the cluster stage)."""
    settings = ctx.config.cluster
    if name == "existing":
        existing = ctx.config.existing
        context = (cluster or {}).get("context") or check_context(existing, ctx.options.context)
        assert existing is not None
        return ExistingTarget(
            context=context,
            namespace=(cluster or {}).get("namespace")
            or namespace_for(existing.namespace, str(ctx.run["run_id"]), owner_id(ctx.artifacts)),
            artifacts=ctx.artifacts,
            docker=ctx.docker,
            registry=ctx.config.registry,
            kubeconfig=existing.kubeconfig,
            clock=ctx.clock,
            established_timeout=min(60.0, ctx.config.deploy.policy.timeout) if ctx.config.deploy else 60.0,
        )
    if name == "docker":
        return DockerTarget(
            project=settings.name, artifacts=ctx.artifacts, docker=ctx.docker, clock=ctx.clock
        )
    return KindTarget(
        cluster=(cluster or {}).get("cluster") or settings.name,
        artifacts=ctx.artifacts,
        docker=ctx.docker,
        clock=ctx.clock,
        kind_config=settings.kind_config,
        node_image=settings.node_image,
        local_registry=settings.local_registry,
        registry_image=settings.local_registry_image,
        # the CRDs applied first share the deploy's deadline (at most a minute)
        established_timeout=min(60.0, ctx.config.deploy.policy.timeout) if ctx.config.deploy else 60.0,
    )


def images_of_run(ctx: StageContext, *, pinned: bool = False) -> list[ImageToLoad]:
    """This run's built images; ``pinned``: by their registry digest (``registry/name@sha256:…``)."""
    images = ctx.run["stages"]["build"]["outputs"].get("images") or {}
    found = [
        (name, entry) for name, entry in images.items() if entry.get("status") in OK and entry.get("ref")
    ]
    if not pinned:
        return [ImageToLoad(name, entry["ref"], entry["image_id"]) for name, entry in found]
    unpushed = [name for name, entry in found if not (entry.get("registry") or {}).get("pinned")]
    if unpushed:
        raise StagegateError(
            Code.IMAGE_NOT_IN_REGISTRY,
            f"{', '.join(unpushed)}: not pushed by this run's build, and the existing target pulls "
            "every image from the registry",
            "run the build with the existing target or --push (`nox -s build -- --push`)",
            {"images": unpushed},
        )
    return [ImageToLoad(name, entry["registry"]["pinned"], entry["image_id"]) for name, entry in found]


def target_of_run(ctx: StageContext) -> Target:
    """The target the cluster stage of this run set up (for deploy and e2e)."""
    outputs = ctx.run["stages"]["cluster"]["outputs"]
    return make_target(ctx, outputs["target"], outputs.get("cluster"))
