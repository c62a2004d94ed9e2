"""preflight: can this run succeed at all? Daemon, builder, base images — in seconds.

The same checks back ``doctor``, which prints them all and never fails. Some checks only
warn (a build context that would send stagegate's artifacts dir to Docker): the run goes on.
"""

from __future__ import annotations

import concurrent.futures
import difflib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .. import engine, manifests, runner
from ..buildcontext import DockerIgnore, never_inputs
from ..builder import BuildxBuilder, ClientBuildKitBuilder, LegacyBuilder, builder_name, client_runs_buildkit
from ..config import Config
from ..dockerclient import DeferredDockerClient, docker_argv
from ..errors import Code, CommandEvidence, FailureClass, StagegateError, config_error
from ..imageinputs import never_input_paths
from ..options import Options
from ..retry import docker_exceptions
from ..runner import CommandFailed, last_line
from ..targets import traits_of
from . import StageContext

if TYPE_CHECKING:
    from python_on_whales import DockerClient

DAEMON_TIMEOUT_S = 10.0
REGISTRY_TIMEOUT_S = 20.0  # one registry probe
REGISTRY_TOTAL_S = 30.0  # all registry probes of a run together
REGISTRY_WORKERS = 4

T = TypeVar("T")


@dataclass(frozen=True)
class Check:
    """One line of the preflight/doctor report."""

    name: str
    ok: bool
    detail: str
    error: StagegateError | None = None
    warning: bool = False  # ok, but worth fixing: printed as a warning, never fails the run


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


def check_build_contexts(config: Config, images: list[str]) -> list[Check]:
    """Warn, once per build context, when Docker would send stagegate's artifacts dir or
    nox's environments with it (a repository-root context whose ``.dockerignore`` does not
    exclude them). They are never part of the input hash; Docker still uploads them on every
    build and ``COPY . .`` copies them, which breaks its layer cache."""
    contexts: dict[Path, list[str]] = {}
    for name in images:
        contexts.setdefault(config.images[name].context, []).append(name)
    checks = []
    for context, names in contexts.items():
        try:
            ignore = DockerIgnore.for_context(context)
        except StagegateError as error:
            error.subject["file"] = config.relpath(context / ".dockerignore")
            error.subject["image"] = names[0]
            checks.append(Check(f"build context {config.relpath(context)}/", False, error.message, error))
            continue
        sent = [
            relpath
            for relpath in never_inputs(context, never_input_paths(config))
            if _docker_sends(context, relpath, ignore)
        ]
        if not sent:
            continue
        dockerignore = config.relpath(context / ".dockerignore")
        which = ", ".join(names) if len(names) <= 3 else f"{', '.join(names[:3])} and {len(names) - 3} more"
        dirs = " and ".join(f"{relpath}/" for relpath in sent)
        lines = "".join(f"\n      {relpath}" for relpath in sent)
        checks.append(
            Check(
                f"build context {config.relpath(context)}/ of {which}",
                True,
                f"Docker would send {dirs} with it (stagegate leaves {'them' if len(sent) > 1 else 'it'} "
                f"out of the image hash); add these lines at the end of {dockerignore}:{lines}",
                warning=True,
            )
        )
    return checks


def _docker_sends(context: Path, relpath: str, ignore: DockerIgnore) -> bool:
    """Whether anything at or below ``relpath`` would go into the build context."""
    top = context / relpath
    if not os.path.lexists(top):
        return False
    if ignore.excluded(relpath) and not ignore.has_exclusions:
        return False  # pruned whole, as Docker does
    if top.is_symlink() or not top.is_dir():
        return not ignore.excluded(relpath)
    return any(not ignore.excluded(path) for path in _files_below(top, relpath))


def _files_below(top: Path, relpath: str) -> Iterable[str]:
    for directory, _, filenames in os.walk(top):
        base = Path(directory).relative_to(top).as_posix()
        prefix = relpath if base == "." else f"{relpath}/{base}"
        for name in filenames:
            yield f"{prefix}/{name}"


def check_manifest_references(config: Config, *, from_registry: bool = False) -> list[Check]:
    """The manifests' image references, checked before anything is built: a typo in an
    image name must not cost a whole build first. (verify checks them again.)"""
    if config.deploy is None:
        return []
    source = ", ".join(config.relpath(path) for path in config.deploy.manifests)
    if manifests.needs_kubectl(config.deploy.manifests) and shutil.which("kubectl") is None:
        return []  # check_tools reports it
    try:
        objects = manifests.render_sources(
            config.deploy.manifests, config.root, kustomize_args=config.deploy.kustomize_args
        )
    except StagegateError as error:
        return [Check("manifests", False, error.message, error)]
    invalid = manifests.validation_errors(objects)
    if invalid:
        return [Check("manifests", False, error.message, error) for error in invalid]
    errors, references = manifests.check_references(
        objects,
        root=config.root,
        configured=list(config.images),
        external=config.deploy.external_images,
        from_registry=from_registry,
        kustomize_args=config.deploy.kustomize_args,
    )
    unread = unread_manifests(config)
    if not errors:
        return [
            Check("manifests", True, f"{len(references)} image reference(s) in {source}, all known"),
            *unread,
        ]
    return [Check("manifests", False, error.message, error) for error in errors] + unread


def unread_manifests(config: Config) -> list[Check]:
    """A warning for each plain-YAML manifests dir with YAML files in sub-folders: stagegate
    reads only the files directly in it, and a file silently left out is a missing object."""
    assert config.deploy is not None
    checks = []
    for folder, files in manifests.unread_files(config.deploy.manifests).items():
        shown = ", ".join(config.relpath(file) for file in files[:5])
        more = f" and {len(files) - 5} more" if len(files) > 5 else ""
        where = config.relpath(folder)
        checks.append(
            Check(
                "manifests",
                True,
                f"{shown}{more} not read: stagegate reads the files directly in {where}, not those "
                f'in its sub-folders (to read them all: manifests = "{where}/**/*.yaml", or make '
                f"{where} a kustomization)",
                warning=True,
            )
        )
    return checks


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


def check_buildkit_needs(
    config: Config, images: list[str], builder: str | None, engine: Mapping[str, Any]
) -> list[Check]:
    """Before any build: every image whose Dockerfile (or configuration) needs what the
    chosen builder cannot do, with the line that needs it — ``BUILDKIT_REQUIRED``."""
    checks: list[Check] = []
    engine_version = str(engine.get("server_version") or "")
    old_frontend = client_runs_buildkit(engine_version) or engine_version.startswith(("17.", "18."))
    own = f"{engine.get('os') or 'linux'}/{engine.get('arch') or 'amd64'}"
    ignored: dict[str, int] = {}  # Dockerfile -> line of a `# syntax=` the legacy builder ignores
    for name in images:
        spec = config.images[name]
        file = config.relpath(spec.dockerfile)
        needs = spec.parsed.buildkit_needs(spec.build_args)
        if builder == LegacyBuilder.name and spec.parsed.syntax_directive is not None:
            ignored.setdefault(file, spec.parsed.syntax_directive[0])
        problem: tuple[str, str, dict[str, Any]] | None = None
        if builder == LegacyBuilder.name:
            if needs:
                first = needs[0]
                problem = (
                    f"{name}: {file}:{first.line} uses {first.description} ({first.what}), "
                    "which only BuildKit builds; only the legacy builder is available",
                    _BUILDKIT_HINT,
                    {"file": file, "line": first.line, "feature": first.what},
                )
            elif spec.secrets:
                problem = (
                    f"{name}: {spec.key}.secrets needs BuildKit (--secret); only the legacy builder is available",
                    _BUILDKIT_HINT,
                    {"key": f"{spec.key}.secrets"},
                )
            elif [p for p in spec.platforms if p != own]:
                problem = (
                    f"{name}: {spec.key}.platforms asks for {', '.join(spec.platforms)}; the legacy builder "
                    f"builds only the engine's own platform ({own})",
                    _BUILDKIT_HINT + f", or set platforms = [{own!r}]",
                    {"key": f"{spec.key}.platforms"},
                )
        elif builder == ClientBuildKitBuilder.name and len(spec.platforms) > 1:
            problem = (
                f"{name}: {spec.key}.platforms lists {len(spec.platforms)} platforms; a multi-platform "
                "image cannot be loaded into the engine without buildx",
                "install the buildx plugin, or build one platform per run",
                {"key": f"{spec.key}.platforms"},
            )
        if problem is None and old_frontend and "syntax" not in spec.parsed.directives:
            frontend = [need for need in needs if need.frontend]
            if frontend:
                problem = (
                    f"{name}: {file}:{frontend[0].line} uses {frontend[0].description} ({frontend[0].what}), "
                    f"which the Dockerfile frontend built into engine {engine_version} does not parse",
                    "add `# syntax=docker/dockerfile:1` as the first line (the frontend image is then pulled), "
                    "or use a Docker engine 23.0 or newer",
                    {"file": file, "line": frontend[0].line, "feature": frontend[0].what},
                )
        if problem is None:
            continue
        message, hint, subject = problem
        error = StagegateError(Code.BUILDKIT_REQUIRED, message, hint, {"image": name, **subject})
        checks.append(Check(f"builder for {name}", False, message, error))
    if ignored:
        checks.append(_syntax_ignored(ignored))
    return checks


def _syntax_ignored(files: Mapping[str, int]) -> Check:
    """One warning for the whole run: the legacy builder ignores ``# syntax=`` lines (as
    Docker documents for parser directives it does not know) and builds with its own parser."""
    shown = [f"{file}:{line}" for file, line in files.items()]
    listed = ", ".join(shown[:3]) + (f" and {len(shown) - 3} more" if len(shown) > 3 else "")
    return Check(
        "builder",
        True,
        f"the legacy builder ignores the `# syntax=` line of {listed} and builds with its own "
        "Dockerfile parser (BuildKit would pull that frontend image)",
        warning=True,
    )


_BUILDKIT_HINT = (
    "install the docker buildx plugin, or point STAGEGATE_DOCKER at a Docker client that runs "
    "BuildKit itself (before 23.0)"
)


@dataclass(frozen=True)
class _Use:
    """One place that names an external image."""

    for_image: str
    key: str  # the image's config key, e.g. "tool.stagegate.images[0]"
    file: str
    line: int
    instruction: str  # "FROM", "COPY --from", "RUN --mount=from"
    raw: str


# A probe asks the registry whether ``image`` exists, taking at most ``timeout`` seconds;
# it raises (runner.CommandFailed, DockerException, TimeoutError…) when it does not.
RegistryProbe = Callable[[str, float], object]


def check_base_images(
    config: Config,
    docker: DockerClient | DeferredDockerClient,
    images: list[str],
    outputs: dict[str, Any],
    *,
    probe: RegistryProbe | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    each_s: float = REGISTRY_TIMEOUT_S,
    total_s: float = REGISTRY_TOTAL_S,
) -> list[Check]:
    """Every external image (``FROM``, ``COPY --from``, ``RUN --mount=from``) present locally
    or pullable, each distinct image checked once, with every place that names it. Images not
    present locally are probed in parallel, all within ``total_s``; a reference left with an
    unset build arg is reported as that, not probed."""
    checks: list[Check] = []
    uses: dict[str, list[_Use]] = {}
    unset: dict[tuple[str, int, tuple[str, ...]], list[_Use]] = {}
    undeclared: dict[tuple[str, int, tuple[str, ...]], list[str]] = {}
    for name in images:
        spec = config.images[name]
        file = config.relpath(spec.dockerfile)
        for ref in spec.parsed.image_refs(spec.build_args):
            if ref.internal or ref.configured_name(list(config.images)) is not None:
                continue
            use = _Use(name, spec.key, file, ref.line, ref.instruction, ref.raw)
            if ref.unset_args:
                place = (file, ref.line, ref.unset_args)
                unset.setdefault(place, []).append(use)
                declared = spec.parsed.global_args(spec.build_args)
                undeclared[place] = [arg for arg in ref.unset_args if arg not in declared]
            elif not ref.ref or "$" in ref.ref:
                checks.append(_unresolved(use, ref.ref))
            else:
                uses.setdefault(ref.ref, []).append(use)
    checks.extend(
        _unset_build_args(place[2], places, undeclared[place], _could_be_meant(config, places))
        for place, places in unset.items()
    )
    local = engine.inspect_images(docker_argv(docker), list(uses))  # present, and their IDs
    found = {image: local[image].id for image in uses if image in local}
    remote = [image for image in uses if image not in local]
    checks.extend(Check(f"base {image}", True, "present locally") for image in found)
    answers = probe_registries(
        remote, probe or _manifest_probe(docker), monotonic=monotonic, each_s=each_s, total_s=total_s
    )
    for image in remote:
        reason = answers[image]
        if reason is None:
            checks.append(Check(f"base {image}", True, "not local, pullable from its registry"))
        else:
            checks.append(_missing(image, uses[image], reason))
    outputs["base_images"] = found
    return checks


def probe_registries(
    images: list[str],
    probe: RegistryProbe,
    *,
    monotonic: Callable[[], float] = time.monotonic,
    each_s: float = REGISTRY_TIMEOUT_S,
    total_s: float = REGISTRY_TOTAL_S,
    workers: int = REGISTRY_WORKERS,
) -> dict[str, str | None]:
    """``probe`` each image, ``workers`` at a time, each within ``each_s`` and all within
    ``total_s``: image -> None when the registry has it, else why not. A probe still running
    at the bound is reported as not answering (its thread ends by its own timeout, which never
    reaches past the bound)."""
    if not images:
        return {}
    deadline = monotonic() + total_s

    def one(image: str) -> str | None:
        left = deadline - monotonic()
        if left <= 0:
            return f"registry did not answer within {total_s:g} s"
        try:
            probe(image, min(each_s, left))
        except TimeoutError:
            return f"registry did not answer within {each_s if each_s < left else total_s:g} s"
        except (CommandFailed, *docker_exceptions()) as exc:
            return last_line(getattr(exc, "stderr", None) or "") or str(exc) or "registry did not answer"
        return None

    answers: dict[str, str | None] = {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="registry-probe")
    try:
        futures = {pool.submit(one, image): image for image in images}
        done, _ = concurrent.futures.wait(futures, timeout=max(0.0, deadline - monotonic()))
        for future, image in futures.items():
            if future in done:
                answers[image] = future.result()
            else:
                answers[image] = f"registry did not answer within {total_s:g} s"
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return answers


def _manifest_probe(docker: DockerClient | DeferredDockerClient) -> RegistryProbe:
    """``docker manifest inspect IMAGE`` through the runner, killed at its timeout
    (python-on-whales has no timeouts of its own)."""
    argv = docker_argv(docker)

    def probe(image: str, timeout: float) -> object:
        try:
            return runner.run([*argv, "manifest", "inspect", image], timeout=timeout)
        except CommandFailed as exc:
            if exc.exit_code is None and exc.reason.startswith("timed out"):
                raise TimeoutError from None
            raise

    return probe


def _missing(image: str, uses: list[_Use], reason: str) -> Check:
    """One error for an image that is neither local nor pullable, naming every place."""
    first = uses[0]
    named = "; ".join(f"{use.file}:{use.line} ({use.instruction}, for {use.for_image})" for use in uses)
    places = [{"file": use.file, "line": use.line, "for_image": use.for_image} for use in uses]
    return Check(
        f"base {image}",
        False,
        f"missing ({first.file}:{first.line}{f' and {len(uses) - 1} more' if len(uses) > 1 else ''}): {reason}",
        StagegateError(
            Code.BASE_IMAGE_MISSING,
            f"base image {image} is neither local nor pullable ({reason}); named at {named}",
            f"pull or load it (`docker pull {image}`), or point the build arg at a local image "
            f"in {first.key}.build_args",
            {
                "image": image,
                "file": first.file,
                "line": first.line,
                "for_image": first.for_image,
                "reason": reason,
                "named_at": places,
            },
            # the registry did not answer: not the Dockerfile's fault, and it may answer next time
            class_override=FailureClass.ENVIRONMENT if reason.startswith("registry did not answer") else None,
        ),
    )


_WHOLE_ARG = re.compile(r"\$(?:\{\w+\}|\w+)")


def _could_be_meant(config: Config, uses: list[_Use]) -> list[str]:
    """The configured images a build arg of these uses could name: not the images that use
    it, nor those built on them (that would be a cycle)."""
    using = {use.for_image for use in uses}
    return [
        name for name, spec in config.images.items() if name not in using and not using & set(spec.depends_on)
    ]


def _suggested_value(arg: str, candidates: list[str]) -> str | None:
    """The configured image whose name is most like ``arg`` (``BASE`` -> ``base``,
    ``BASE_IMAGE`` -> ``example/base``), or the only one there is."""
    wanted = arg.lower().replace("-", "_")
    for suffix in ("_image", "_img", "_ref"):
        wanted = wanted.removesuffix(suffix)
    short = {name.rsplit("/", 1)[-1].lower().replace("-", "_"): name for name in candidates}
    if wanted in short:
        return short[wanted]
    close = difflib.get_close_matches(wanted, list(short), n=1, cutoff=0.6)
    if close:
        return short[close[0]]
    return candidates[0] if len(candidates) == 1 else None


def _image_arg_hint(arg: str, key: str, candidates: list[str]) -> str:
    """``set build_args = { BASE = "base" } in …``: the configured image most like the arg,
    else any image reference (naming the configured images there are)."""
    suggested = _suggested_value(arg, candidates)
    hint = f'set build_args = {{ {arg} = "{suggested or "<image>"}" }} in {key}'
    if suggested:
        return hint + " — a configured image's name is replaced by this run's tag"
    if candidates:
        shown = ", ".join(candidates[:3]) + (
            f" and {len(candidates) - 3} more" if len(candidates) > 3 else ""
        )
        return hint + (
            f" — an image reference, or the name of a configured image ({shown}), which is replaced by "
            "this run's tag"
        )
    return hint + " — an image reference (the name of a configured image would be replaced by this run's tag)"


def _unset_build_args(
    args: tuple[str, ...], uses: list[_Use], undeclared: list[str], candidates: list[str]
) -> Check:
    """A reference with an empty part because a build arg has no value: name the arg, and a
    value to give it — a configured image (its name is replaced by this run's tag) when one
    could be meant."""
    first = uses[0]
    names = ", ".join(args)
    images = sorted({use.for_image for use in uses})
    plural = len(args) > 1
    message = (
        f"{first.instruction} {first.raw} at {first.file}:{first.line} uses the build arg{'s' if plural else ''} "
        f"{names}, which {'have' if plural else 'has'} no value (no ARG default and no build arg), "
        f"for {', '.join(images)}"
    )
    if _WHOLE_ARG.fullmatch(first.raw) is None:  # part of a reference: FROM node:${VERSION}-slim
        hint = f"set build_args = {{ {', '.join(f'{arg} = …' for arg in args)} }} in {first.key}"
    else:  # the whole reference (FROM $BASE): an image, perhaps a configured one
        hint = _image_arg_hint(args[0], first.key, candidates)
    if undeclared:
        hint += f" and declare {', '.join(f'`ARG {arg}`' for arg in undeclared)} before the first FROM of {first.file}"
    else:
        hint += f", or give the ARG a default in {first.file}"
    return Check(
        f"base image at {first.file}:{first.line}",
        False,
        f"build arg {names} has no value",
        config_error(
            f"{first.key}.build_args",
            message,
            hint,
            file=first.file,
            line=first.line,
            args=list(args),
            images=images,
        ),
    )


def _unresolved(use: _Use, ref: str) -> Check:
    return Check(
        f"base image of {use.for_image}",
        False,
        f"{use.file}:{use.line} {use.instruction} {use.raw} does not resolve",
        StagegateError(
            Code.BASE_IMAGE_MISSING,
            f"{use.for_image}: {use.instruction} {use.raw} at {use.file}:{use.line} resolves to {ref!r}",
            f"give the build arg a value in {use.key}.build_args or an ARG default",
            {"image": ref or use.raw, "file": use.file, "line": use.line, "for_image": use.for_image},
        ),
    )


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
