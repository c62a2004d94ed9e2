"""preflight: can this run succeed at all? Daemon, builder, base images — in seconds.

The same checks back ``doctor``, which prints them all and never fails. Some checks only
warn (a build context that would send stagegate's artifacts dir to Docker): the run goes on.

Here: the stage, the order its checks run in, and the checks of the engine (daemon, builder),
the target and the tools. Beside it: ``preflight_bases`` (base images local or pullable),
``preflight_dockerfiles`` (what the builds need of the builder, what their contexts send),
``manifest_checks`` (the manifests' image references) and ``preflight_check`` (the record each
check returns).
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import engine, manifests
from ..builder import BuildxBuilder, ClientBuildKitBuilder, LegacyBuilder, builder_name
from ..config import Config
from ..dockerclient import DeferredDockerClient, docker_argv
from ..errors import Code, CommandEvidence, StagegateError, config_error
from ..options import Options
from ..runner import CommandFailed
from ..targets import traits_of
from . import StageContext
from .manifest_checks import check_manifest_references
from .preflight_bases import check_base_images
from .preflight_check import Check
from .preflight_dockerfiles import check_build_contexts, check_buildkit_needs

if TYPE_CHECKING:
    from python_on_whales import DockerClient

DAEMON_TIMEOUT_S = 10.0


def run(ctx: StageContext) -> None:
    ctx.reporter.stage_started("preflight", "Docker engine, builder, base images")
    target = ctx.options.target or ctx.config.target
    checks = check_target(ctx.config, ctx.options, ctx.outputs) + environment_checks(
        ctx.config,
        ctx.docker,
        ctx.config.select(list(ctx.options.only)),
        ctx.env,
        ctx.outputs,
        monotonic=ctx.clock.monotonic,
        target=target,
    )
    for check in checks:
        if check.warning:
            ctx.reporter.warning(f"{check.name}: {check.detail}")
        else:
            ctx.reporter.info(("✓ " if check.ok else "✗ ") + f"{check.name}: {check.detail}")
    warnings = [f"{check.name}: {check.detail}" for check in checks if check.warning]
    if warnings:
        ctx.outputs["warnings"] = warnings
    errors = [check.error for check in checks if check.error is not None]
    if errors:
        first = errors[0]
        first.others = errors[1:]
        raise first


def check_target(config: Config, options: Options, outputs: dict[str, Any]) -> list[Check]:
    """Where this run deploys and pushes, checked before anything is built or pushed: the
    registry a push needs, and the kubeconfig context of a target that runs in one (the
    existing target's, against the allow-list and the kubeconfig)."""
    traits = traits_of(options.target or config.target, config)
    checks: list[Check] = []
    if options.push or traits.pulls_pinned_images:
        if config.registry is None:
            error = StagegateError(
                Code.CONFIG_INVALID,
                ("--push" if options.push else f"--target {traits.name}")
                + " needs a registry, and [tool.stagegate.registry] is not configured",
                'add [tool.stagegate.registry] url = "registry.example.com/myproject" to pyproject.toml '
                "(and `docker login` to it)",
                {"key": "tool.stagegate.registry"},
            )
            checks.append(Check("registry", False, error.message, error))
        else:
            checks.append(
                Check("registry", True, f"{config.registry.url} (pushed to with your Docker login)")
            )
    if not traits.takes_context:
        if options.context is not None:
            error = config_error(
                "--context",
                "--context is for --target existing only",
                "add --target existing, or drop --context",
            )
            checks.append(Check("context", False, error.message, error))
        return checks
    try:
        context = traits.context(config, options.context)
    except StagegateError as error:
        return [Check("context", False, error.message, error), *checks]
    outputs["context"] = context
    return [Check("context", True, f"{context} (in [tool.stagegate.existing] contexts)"), *checks]


def environment_checks(
    config: Config,
    docker: DockerClient | DeferredDockerClient,
    images: list[str],
    env: Mapping[str, str],
    outputs: dict[str, Any],
    *,
    monotonic: Callable[[], float] = time.monotonic,
    target: str | None = None,
) -> list[Check]:
    """Run every check that can run; later checks are skipped when the daemon is down.

    After the daemon's, the checks run side by side (each mostly waits on a program: ``docker``,
    ``kubectl kustomize``); they are reported in the same order whatever finishes first."""
    daemon = check_daemon(docker, outputs)
    if not daemon.ok:
        return [daemon]

    def builder_checks() -> list[Check]:
        builder = check_builder(docker, env, outputs)
        if not builder.ok:
            return [builder]
        return [builder, *check_buildkit_needs(config, images, outputs.get("builder"), outputs["docker"])]

    groups: list[Callable[[], list[Check]]] = [
        builder_checks,
        lambda: check_tools(config),
        lambda: check_base_images(config, docker, images, outputs, monotonic=monotonic),
        lambda: check_manifest_references(
            config, from_registry=traits_of(target or config.target, config).pulls_from_registry
        ),
        lambda: check_build_contexts(config, images),
    ]
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=len(groups), thread_name_prefix="preflight"
    ) as pool:
        results = [pool.submit(group) for group in groups]
        return [daemon, *(check for result in results for check in result.result())]


def check_tools(config: Config) -> list[Check]:
    """CLIs that later stages of the run will need: missing ones fail now, not later."""
    if config.deploy is None or not manifests.needs_kubectl(config.deploy.manifests):
        return []
    path = shutil.which("kubectl")
    if path is None:
        return [
            Check(
                "kubectl",
                False,
                "not on PATH",
                manifests.kubectl_missing(
                    next(config.relpath(p) for p in config.deploy.manifests if manifests.is_kustomization(p))
                ),
            )
        ]
    return [Check("kubectl", True, f"{path} (renders the kustomize manifests)")]


def check_daemon(docker: DockerClient | DeferredDockerClient, outputs: dict[str, Any]) -> Check:
    try:
        version = engine.version(docker_argv(docker), timeout=DAEMON_TIMEOUT_S)
    except CommandFailed as exc:
        if exc.exit_code is None and exc.reason.startswith("timed out"):
            return _daemon_down(f"the Docker daemon did not answer within {DAEMON_TIMEOUT_S:g} s", "")
        if exc.exit_code is None:
            return Check(
                "docker",
                False,
                "the docker CLI is not installed",
                StagegateError(
                    Code.TOOL_MISSING,
                    "the docker CLI is not on PATH",
                    "install Docker (engine and CLI): https://docs.docker.com/engine/install/",
                    {"tool": "docker"},
                ),
            )
        return _daemon_down("cannot reach the Docker daemon", exc.stderr.strip(), exc.argv, exc.exit_code)
    outputs["docker"] = {
        "client_version": version.client,
        "server_version": version.server,
        "os": version.os,
        "arch": version.arch,
    }
    return Check(
        "docker",
        True,
        f"engine {outputs['docker']['server_version']} ({outputs['docker']['os']}/{outputs['docker']['arch']})",
    )


def check_builder(
    docker: DockerClient | DeferredDockerClient, env: Mapping[str, str], outputs: dict[str, Any]
) -> Check:
    """The builder of this run, recorded for build: buildx; else the client's own BuildKit
    (clients before 23.0); else the legacy builder."""
    client = (outputs.get("docker") or {}).get("client_version") or ""
    name = builder_name(docker, client)
    if name == BuildxBuilder.name:
        outputs["builder"] = name
        return Check("builder", True, "buildx (BuildKit)")
    if name == ClientBuildKitBuilder.name:
        outputs["builder"] = name
        return Check("builder", True, f"BuildKit of the Docker client {client} (DOCKER_BUILDKIT=1)")
    if env.get("DOCKER_BUILDKIT") == "1":
        return Check(
            "builder",
            False,
            "DOCKER_BUILDKIT=1 but the buildx plugin is missing",
            StagegateError(
                Code.TOOL_MISSING,
                "DOCKER_BUILDKIT=1 asks for BuildKit, but the docker buildx plugin is not installed",
                "install the buildx plugin (docker-buildx-plugin), or unset DOCKER_BUILDKIT to use the legacy builder",
                {"tool": "docker-buildx"},
            ),
        )
    outputs["builder"] = LegacyBuilder.name
    return Check("builder", True, "legacy builder (buildx plugin not installed)")


def _daemon_down(
    message: str, stderr: str, argv: list[str] | None = None, exit_code: int | None = None
) -> Check:
    host = os.environ.get("DOCKER_HOST", "the default socket (unix:///var/run/docker.sock)")
    return Check(
        "docker",
        False,
        message,
        StagegateError(
            Code.DOCKER_UNAVAILABLE,
            f"{message} at {host}",
            "start the Docker engine (e.g. `sudo systemctl start docker` or `dockerd &`), or point DOCKER_HOST at a running one",
            {"host": host},
            command=CommandEvidence([str(a) for a in argv], exit_code) if argv else None,
            log_excerpt=stderr[-2000:],
        ),
    )
