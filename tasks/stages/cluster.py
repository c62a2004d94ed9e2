"""cluster: create or reuse the target and put this run's images on it."""

from __future__ import annotations

from typing import Any

from ..profiles import check_target
from ..targets import ImageToLoad, Target, select_target
from ..targets.docker import DockerTarget
from ..targets.kind import KindTarget
from . import StageContext
from .build import OK


def run(ctx: StageContext) -> None:
    requested = ctx.options.target or ctx.config.target
    name, reason = select_target(requested)
    check_target(ctx.run.get("profile"), name, ctx.config.profiles)
    ctx.outputs.update(target=name, target_reason=reason)
    target = make_target(ctx, name)
    ctx.reporter.stage_started("cluster", f"target {name} ({reason}), name {ctx.config.cluster.name!r}")
    up = target.up(recreate=ctx.options.recreate)
    ctx.outputs["cluster"] = up
    ctx.reporter.info(
        f"{target.place} {up['cluster']}: {up['action']}"
        + (" by stagegate" if up["created_by_stagegate"] else "")
    )
    loaded = target.load_images(images_of_run(ctx))
    ctx.outputs["load"] = loaded
    for image, entry in loaded["images"].items():
        ctx.reporter.info(f"✓ {image}: {entry['summary']}")


def make_target(ctx: StageContext, name: str, cluster: dict[str, Any] | None = None) -> Target:
    """The target of this run (``name`` as chosen by the cluster stage)."""
    settings = ctx.config.cluster
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
        # the CRDs applied first share the deploy's deadline (at most a minute)
        established_timeout=min(60.0, ctx.config.deploy.policy.timeout) if ctx.config.deploy else 60.0,
    )


def images_of_run(ctx: StageContext) -> list[ImageToLoad]:
    images = ctx.run["stages"]["build"]["outputs"].get("images") or {}
    return [
        ImageToLoad(name, entry["ref"], entry["image_id"])
        for name, entry in images.items()
        if entry.get("status") in OK and entry.get("ref")
    ]


def target_of_run(ctx: StageContext) -> Target:
    """The target the cluster stage of this run set up (for deploy and e2e)."""
    outputs = ctx.run["stages"]["cluster"]["outputs"]
    return make_target(ctx, outputs["target"], outputs.get("cluster"))
