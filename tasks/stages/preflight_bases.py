"""preflight's base images: every external image a Dockerfile names (``FROM``, ``COPY --from``,
``RUN --mount=from``) present locally or pullable, the registries probed side by side within one
bound; a reference left empty by a build arg without a value named as that, with a value to give it.
"""

from __future__ import annotations

import concurrent.futures
import difflib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import engine, runner
from ..config import Config
from ..dockerclient import DeferredDockerClient, docker_argv
from ..errors import Code, FailureClass, StagegateError, config_error
from ..retry import docker_exceptions
from ..runner import CommandFailed, last_line
from .preflight_check import Check

if TYPE_CHECKING:
    from python_on_whales import DockerClient

REGISTRY_TIMEOUT_S = 20.0  # one registry probe
REGISTRY_TOTAL_S = 30.0  # all registry probes of a run together
REGISTRY_WORKERS = 4


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
