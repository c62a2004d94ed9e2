"""deploy: apply the manifests, rewritten to this run's tags, and wait for readiness —
failing within one poll of a fatal pod state, with diagnostics."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

from .. import manifests, resultcache
from ..errors import StagegateError, config_error
from ..imagerecord import usable_images
from ..ledger import stage_outputs
from ..manifests import ManifestObject
from ..readiness import HEARTBEAT_S, Assessment, ImageFacts, Watch
from ..targets import Target
from . import StageContext
from .cluster import target_of_run


def run(ctx: StageContext) -> None:
    if resultcache.passed_from_cache(ctx, "deploy"):
        return
    if ctx.config.deploy is None:
        raise config_error(
            "tool.stagegate.deploy",
            "nothing to deploy: [tool.stagegate.deploy] manifests is not configured",
            'add [tool.stagegate.deploy] manifests = "path/to/k8s" to pyproject.toml',
        )
    target = target_of_run(ctx)
    objects = rendered_objects(ctx)
    policy = ctx.config.deploy.policy
    ctx.reporter.stage_started(
        "deploy",
        f"{len(objects)} object(s) to {target.name}, ready within {policy.timeout:g} s (poll {policy.poll_interval:g} s)",
    )
    try:
        ctx.outputs["apply"] = target.apply(objects)
        for note in ctx.outputs["apply"].get("skipped") or []:
            ctx.reporter.info(f"- skipped on the {target.name} target: {note}")
        progress = _progress_printer(ctx, HEARTBEAT_S)

        ctx.outputs["readiness"] = target.wait_ready(objects, Watch(policy, image_facts(ctx), progress))
        ctx.reporter.info(f"✓ ready after {ctx.outputs['readiness']['ready_after_s']:.1f}s")
    except StagegateError as error:
        error.subject.setdefault("diagnostics", collect(ctx, target, objects))
        attach_container_log(ctx, error)
        raise


_PROBE_COUNT = re.compile(r" \(\d+×\)")


def _progress_printer(ctx: StageContext, heartbeat: float) -> Callable[[Assessment, float], None]:
    """What is not ready yet: printed when it changes, and at least every ``heartbeat``
    seconds while nothing changes (a CI log never sits silent for minutes)."""
    last: list[str] = []
    printed_at = [0.0]

    def progress(assessment: Assessment, elapsed: float) -> None:
        for note in assessment.notes:
            ctx.reporter.info(f"↻ {elapsed:5.1f}s {note}")
        # a probe's failure count grows every period: that alone is no news
        state = [_PROBE_COUNT.sub("", line) for line in assessment.not_ready]
        if state != last or (assessment.not_ready and elapsed - printed_at[0] >= heartbeat):
            last[:] = state
            printed_at[0] = elapsed
            for line in assessment.not_ready:
                ctx.reporter.info(f"… {elapsed:5.1f}s {line}")

    return progress


def rendered_objects(ctx: StageContext) -> list[ManifestObject]:
    """The manifests as this run deploys them: rendered, configured images at their built tags."""
    deploy = ctx.config.deploy
    assert deploy is not None
    objects = manifests.render_sources(
        deploy.manifests, ctx.config.root, kustomize_args=deploy.kustomize_args
    )
    manifests.validate(objects)  # nothing the API server would reject is applied, on any target
    return manifests.rewrite_images(objects, built_refs(ctx))


def built_refs(ctx: StageContext) -> dict[str, str]:
    """Each built image's reference as this run's target uses it: the ``ref`` the cluster stage
    loaded it by (the built tag; the registry digest, ``registry/name@sha256:…``, where the
    cluster pulls it: a moved tag can never change what runs), else its built tag."""
    cluster = stage_outputs(ctx.run, "cluster")
    loaded = (cluster.get("load") or {}).get("images") or {}
    return {
        name: (loaded.get(name) or {}).get("ref") or entry["ref"]
        for name, entry in usable_images(ctx.run).items()
    }


def image_facts(ctx: StageContext) -> ImageFacts:
    load = stage_outputs(ctx.run, "cluster").get("load") or {}
    loaded = frozenset(entry["ref"] for entry in (load.get("images") or {}).values())
    return ImageFacts(
        built=built_refs(ctx), loaded=loaded, target=stage_outputs(ctx.run, "cluster")["target"]
    )


def collect(ctx: StageContext, target: Target, objects: list[ManifestObject]) -> str:
    """Diagnostics into ``diagnostics/``; returns its path for error.json."""
    dest: Path = ctx.artifacts / "diagnostics"
    shutil.rmtree(dest, ignore_errors=True)  # only this failure's evidence
    ctx.reporter.info(f"collecting diagnostics into {ctx.config.relpath(dest)}/ …")
    written = target.collect_diagnostics(objects, dest)
    ctx.outputs["diagnostics"] = {"dir": ctx.config.relpath(dest), "files": len(written)}
    return ctx.config.relpath(dest)


def attach_container_log(ctx: StageContext, error: StagegateError) -> None:
    """Put the failing container's own last words (its previous run's log when it restarted)
    into error.json, so that the cause is readable without opening the diagnostics."""
    subject = error.subject
    if error.log_excerpt or not {"pod", "container", "namespace", "diagnostics"} <= subject.keys():
        return
    diagnostics = ctx.config.root / subject["diagnostics"]
    pod_logs = diagnostics / subject["namespace"] / "logs" / subject["pod"]  # kind
    candidates = [
        pod_logs / f"{subject['container']}.previous.log",
        pod_logs / f"{subject['container']}.log",
        diagnostics / "containers" / f"{subject['pod']}_{subject['container']}.log",  # docker
    ]
    for path in candidates:
        if path.is_file() and path.read_text().strip():
            error.log_excerpt = "\n".join(path.read_text().splitlines()[-30:])
            error.log_file = ctx.config.relpath(path)
            return
