"""Entry points for ``noxfile.py``: one call per session; a failure comes back as the one line
nox shows (``session.error``), success as None."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from . import pipeline, runlock, runner
from .config import artifacts_dir, load_config
from .errors import Code, StagegateError
from .ledger import Ledger, stage_outputs
from .options import parse_options, parse_prune_options
from .redact import redact_logging
from .reports import RunReport, markdown_summary
from .ui import Reporter, make_console

# Imported by the sessions that use them: a pipeline stage pays only for its own code.
if TYPE_CHECKING:
    from python_on_whales import DockerClient
    from python_on_whales.exceptions import DockerException

    from .stages.preflight import Check


def stage(name: str, posargs: Sequence[str], root: Path, *, bin_dir: str | None = None) -> str | None:
    """Run the pipeline stage ``name`` with the session's posargs; the failure line, or None.

    ``bin_dir`` (a session's virtualenv) goes first on the PATH of the programs it runs.
    """
    _quiet_libraries()
    env = dict(os.environ)
    if bin_dir:
        env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    try:  # held for the life of this process: the stages after this one find it held
        runlock.acquire(artifacts_dir(root, env), what=name)
    except StagegateError as refused:
        pipeline.report_refusal(Reporter(make_console()), refused)
        return f"{refused.code}: {refused.message}"
    return pipeline.run_stage(
        name, posargs, root=root, reporter=Reporter(make_console()), env=env
    ).failure_line()


def e2e_requirements(root: Path) -> list[str]:
    """What the e2e session installs into its virtualenv, with the run's profile applied (none
    when the config is broken: the e2e stage then reports the configuration error itself; none
    when the run's cluster stage reused a pass from the e2e result cache: nothing will run)."""
    try:
        run = Ledger(artifacts_dir(root)).read_run() or {}
        cluster = stage_outputs(run, "cluster")
        if cluster.get("cached"):  # passed from the e2e result cache: no test runs here
            return []
        profile = run.get("profile") or {}
        config = load_config(root, profile=profile.get("name") if isinstance(profile, dict) else None)
    except StagegateError:
        return []
    return list(config.e2e.requirements) if config.e2e else []


def teardown(root: Path, posargs: Sequence[str] = ()) -> str | None:
    """Remove what stagegate created on the run's target; the failure line, or None.

    Takes the pipeline's options (nox hands ``nox -s e2e teardown -- …`` the same posargs):
    ``--target`` chooses the target when run.json does not name one; unknown ones are refused.
    """
    from python_on_whales.exceptions import DockerException

    from .dockerclient import docker_client
    from .stages.verify_smoke import remove_leftover_smoke_containers
    from .targets import open_target, select_target

    _quiet_libraries()
    console = make_console()
    try:
        options = parse_options(posargs)  # the pipeline's set: --target chooses when run.json names none
        config = load_config(root)
        runlock.acquire(config.artifacts, what="teardown")  # never while a run is active
        ledger = Ledger(config.artifacts)
        record = ledger.read_run() or {}
        outputs = stage_outputs(record, "cluster")
        name = outputs.get("target") or select_target(options.target or config.target)[0]
        try:
            target = open_target(name, config, docker_client(), recorded=outputs.get("cluster") or {})
            outcome = target.remove_ours()
            if smoke := remove_leftover_smoke_containers(docker_client(), config.artifacts):
                outcome["deleted"] += f" and {smoke} smoke container(s) left by an interrupted verify"
        except DockerException as exc:
            raise _engine_unavailable("teardown", exc) from None
        ledger.note("teardown", outcome)
    except StagegateError as error:
        _print_error(console, error)
        return f"{error.code}: {error.message}"
    console.print(f"✓ teardown ({name} target, {outcome['cluster']}): removed {outcome['deleted']}")
    return None


def _engine_unavailable(session: str, exc: DockerException) -> StagegateError:
    return StagegateError(
        Code.DOCKER_UNAVAILABLE,
        f"{session} could not talk to the Docker engine: {runner.last_line(exc.stderr or '') or exc}",
        f"start the Docker engine (docker info must answer), then run nox -s {session} again",
    )


def _print_error(console: Console, error: StagegateError) -> None:
    console.print(
        f"[bold red]✗ {error.code}[/bold red]: {escape(error.message)}\n  hint: {escape(error.hint)}"
    )


def prune(root: Path, posargs: Sequence[str], *, docker: DockerClient | None = None) -> str | None:
    """Remove stagegate's old ``sg-`` tags of the configured images (``--keep N``, ``--dry-run``);
    the failure line, or None."""
    from python_on_whales.exceptions import DockerException

    from .dockerclient import docker_client
    from .prune import prune_images

    _quiet_libraries()
    console = make_console()
    try:
        options = parse_prune_options(posargs)
        config = load_config(root)
        run = Ledger(config.artifacts).read_run()
        try:
            result = prune_images(
                docker or docker_client(),
                list(config.images),
                run,
                keep=options.keep,
                dry_run=options.dry_run,
            )
        except DockerException as exc:
            raise _engine_unavailable("prune", exc) from None
    except StagegateError as error:
        _print_error(console, error)
        return f"{error.code}: {error.message}"
    verb = "would remove" if result.dry_run else "removed"
    for ref in result.removed:
        console.print(f"  {verb} {ref}")
    for ref, reason in sorted(result.kept.items()):
        console.print(f"  kept {ref}: {reason}", style="dim")
    freed = f"{result.freed_bytes / 1e6:.1f} MB" if result.freed_bytes else "nothing"
    console.print(
        f"✓ prune: {verb} {len(result.removed)} tag(s), kept {len(result.kept)}"
        + ("" if result.dry_run else f"; {len(result.deleted_images)} image(s) deleted, freed {freed}")
    )
    return None


def report(root: Path, posargs: Sequence[str]) -> str | None:
    """Render a run's summary again from an artifacts dir (``[DIR] [--markdown]``)."""
    args = [a for a in posargs if a != "--markdown"]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        return f"usage: nox -s report -- [ARTIFACTS_DIR] [--markdown] (got {' '.join(posargs)})"
    artifacts = Path(args[0]).resolve() if args else artifacts_dir(root)
    loaded = RunReport.load(artifacts)
    if loaded is None:
        return f"no run.json in {artifacts}: nothing to report"
    console = make_console()
    Reporter(console).summary(loaded.run, loaded.error, artifacts)
    if "--markdown" in posargs:
        print(markdown_summary(loaded))
    return None


def doctor(root: Path) -> int:
    """Print the environment report (preflight's checks); always 0."""
    from .dockerclient import DeferredDockerClient
    from .stages.preflight import Check, environment_checks

    _quiet_libraries()
    console = make_console()
    checks: list[Check] = []
    try:
        config = load_config(root)
        checks.append(Check("config", True, f"{len(config.images)} image(s) in pyproject.toml"))
        checks += environment_checks(
            config, DeferredDockerClient(), list(config.images), dict(os.environ), {}
        )
    except StagegateError as error:
        checks.append(Check("config", False, error.message, error))
    for check in checks:
        mark = "[yellow]![/yellow]" if check.warning else "[green]✓[/green]" if check.ok else "[red]✗[/red]"
        console.print(f"{mark} {check.name}: {check.detail}")
        if check.error is not None:
            console.print(f"    [bold]{check.error.code}[/bold] — hint: {check.error.hint}")
    git = pipeline.git_info(root)
    console.print(f"[dim]git {git['sha'] or 'not a repository'}{' (dirty)' if git['dirty'] else ''}[/dim]")
    return 0


def _quiet_libraries() -> None:
    """nox sets the root logger to DEBUG; keep library chatter (every docker argv) out of the
    terminal unless STAGEGATE_DEBUG is set. The build logs keep the full output."""
    level = logging.DEBUG if os.environ.get("STAGEGATE_DEBUG") else logging.WARNING
    for name in ("python_on_whales", "stagegate", "filelock"):
        logging.getLogger(name).setLevel(level)
    redact_logging()


def init(root: Path) -> str | None:
    """Write a starting ``[tool.stagegate]``, noxfile and ``.dockerignore`` lines into the
    repository at ``root`` (:mod:`stagegate.init`); the failure line, or None."""
    from .init import describe, init_repository

    console = make_console()
    try:
        actions = init_repository(root)
    except StagegateError as error:
        _print_error(console, error)
        return f"{error.code}: {error.message}"
    for line in describe(actions):
        console.print(escape(line))
    return None
