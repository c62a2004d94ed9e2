"""cluster: create or reuse the target and put this run's images on it."""

from __future__ import annotations

from .. import bundle, resultcache
from ..errors import Code, StagegateError
from ..imagerecord import usable_images
from ..ledger import stage_outputs
from ..profiles import check_profile_fits
from ..targets import ImageToLoad, Target, open_target, select_target
from . import StageContext


def run(ctx: StageContext) -> None:
    requested = ctx.options.target or ctx.config.target
    name, reason = select_target(requested)
    check_profile_fits(ctx.run.get("profile"), name, ctx.config.profiles)
    ctx.outputs.update(target=name, target_reason=reason)
    if (reused := resultcache.lookup(ctx, name)) is not None:
        ctx.outputs["cached"] = reused
        ctx.reporter.stage_started("cluster", f"target {name}: passed from the e2e result cache")
        ctx.reporter.info(
            f"✓ these inputs passed in {resultcache.describe_reused(reused)}: cluster, deploy and e2e are not "
            "run (--no-cache runs them)"
        )
        return
    target = open_target(
        name,
        ctx.config,
        ctx.docker,
        clock=ctx.clock,
        context=ctx.options.context,
        run_id=str(ctx.run["run_id"]),
    )
    ctx.reporter.stage_started("cluster", f"target {name} ({reason}), {target.where}")
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
    images = images_of_run(ctx, pinned=target.pulls_pinned_images)
    loaded = target.load_images(images, archive=bundle.archive_of_run(ctx.run))
    ctx.outputs["load"] = loaded
    for image, entry in loaded["images"].items():
        ctx.reporter.info(f"✓ {image}: {entry['summary']}")


def images_of_run(ctx: StageContext, *, pinned: bool = False) -> list[ImageToLoad]:
    """This run's built images; ``pinned``: by their registry digest (``registry/name@sha256:…``)."""
    found = list(usable_images(ctx.run).items())
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
    outputs = stage_outputs(ctx.run, "cluster")
    return open_target(
        outputs["target"], ctx.config, ctx.docker, clock=ctx.clock, recorded=outputs.get("cluster")
    )
