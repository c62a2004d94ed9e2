"""preflight's checks of the builds ahead: what each image's Dockerfile (or configuration) needs
of the builder this run has (BuildKit-only features, platforms, secrets, a ``# syntax=`` line the
legacy builder ignores), and build contexts that would send stagegate's artifacts dir or nox's
environments to Docker.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..buildcontext import DockerIgnore, never_inputs
from ..builder import ClientBuildKitBuilder, LegacyBuilder, client_runs_buildkit
from ..config import Config
from ..errors import Code, StagegateError
from ..imageinputs import never_input_paths
from .preflight_check import Check


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
