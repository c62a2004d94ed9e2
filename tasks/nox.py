"""stagegate's sessions for any repository's noxfile, in three lines::

    import stagegate.nox

    stagegate.nox.register()

That defines the pipeline — ``preflight`` → ``build`` → ``verify`` → ``cluster`` → ``deploy`` →
``e2e``, each ``requires=`` the one before, so ``nox -s e2e`` runs the whole chain — and the
sessions around it: ``teardown``, ``prune``, ``report``, ``doctor``, ``init``. All are ``default=False``
(a bare ``nox`` runs the repository's own default sessions). Options after ``--`` reach every
pipeline session (``nox -s e2e -- --target docker``). The configuration is ``[tool.stagegate]``
in the repository's ``pyproject.toml`` (or ``stagegate.toml``), read from ``root``: by default
the folder of the noxfile that calls :func:`register`.

This repository's own noxfile uses this very function: there is one definition of the sessions.

:func:`register` also keeps nox from saying "uv binary not found." in every session on a machine
without uv (nox looks for uv before it creates any session's environment, even ``python=False``
ones). Only that one line is dropped: where uv is installed nox finds and uses it as before.
"""

from __future__ import annotations

import atexit
import functools
import gc
import json
import logging
import sys
import types
from pathlib import Path

import nox
from packaging.requirements import InvalidRequirement, Requirement

from .stagelist import PIPELINE, STAGES

#: Every session :func:`register` defines, in the order ``nox -l`` lists them.
SESSIONS = (
    *PIPELINE,
    "teardown",
    "prune",
    "report",
    "doctor",
    "init",
)


def register(root: str | Path | None = None) -> tuple[str, ...]:
    """Define stagegate's sessions in the calling noxfile; returns their names.

    ``root`` is the repository the sessions work on (where ``[tool.stagegate]`` is); by default
    the folder of the calling noxfile, else the current directory (nox runs from the noxfile's).
    """
    repo = _caller_root() if root is None else Path(root).resolve()
    quiet_uv_probe()

    for position, stage in enumerate(PIPELINE):  # each requires= the one before
        _pipeline_session(stage, PIPELINE[position - 1] if position else None, repo)

    @nox.session(name="teardown", python=False, default=False)
    def teardown(session: nox.Session) -> None:
        """Remove what stagegate created: its cluster, or what it applied to yours."""
        _options_help(session)
        _fail_on(session, _cli().teardown(repo, session.posargs))

    @nox.session(name="prune", python=False, default=False)
    def prune(session: nox.Session) -> None:
        """Remove stagegate's old sg- image tags, keeping the current run's and the newest: -- --keep N."""
        _options_help(session, "prune")
        _fail_on(session, _cli().prune(repo, session.posargs))

    @nox.session(name="report", python=False, default=False)
    def report(session: nox.Session) -> None:
        """Show a run's summary again from an artifacts dir: nox -s report -- [DIR] [--markdown]."""
        _fail_on(session, _cli().report(repo, session.posargs))

    @nox.session(name="doctor", python=False, default=False)
    def doctor(session: nox.Session) -> None:
        """Print the environment report (the preflight checks); never fails."""
        _cli().doctor(repo)

    @nox.session(name="init", python=False, default=False)
    def init(session: nox.Session) -> None:
        """Write a starting [tool.stagegate], noxfile and .dockerignore lines; never overwrites a file."""
        _fail_on(session, _cli().init(repo))

    return SESSIONS


def _pipeline_session(stage: str, before: str | None, repo: Path) -> None:
    """Define the session of ``stage``, run after ``before``, described as :data:`STAGES` says.
    The stages run in nox's own environment; e2e in a virtualenv of its own (reused), where its
    test requirements are installed."""

    def session_function(session: nox.Session) -> None:
        _options_help(session)
        bin_dir = None
        if stage == "e2e":
            if requirements := _cli().e2e_requirements(repo):
                install_once(session, requirements)
            bin_dir = session.bin
        _fail_on(session, _cli().stage(stage, session.posargs, repo, bin_dir=bin_dir))

    session_function.__name__ = session_function.__qualname__ = stage
    session_function.__doc__ = STAGES[stage]
    where = {"reuse_venv": True} if stage == "e2e" else {"python": False}
    nox.session(name=stage, default=False, requires=[before] if before else [], **where)(session_function)


def _cli() -> types.ModuleType:
    """:mod:`stagegate.cli`, imported when a session runs: ``nox -l`` lists the sessions without
    loading what they run (pydantic, rich, the stages)."""
    from . import cli

    _no_collection_at_exit()
    return cli


@functools.cache
def _no_collection_at_exit() -> None:
    """Once a session loaded stagegate, let nox's process end without the interpreter's last
    garbage collections walking every object those imports made (pydantic's schemas, rich, the
    stages): a tenth of a second of CPU at every exit, most of what a no-op session costs beyond
    nox itself. ``gc.freeze`` at exit leaves them to the operating system, which takes the
    memory back anyway; everything else about the exit is unchanged (atexit handlers, flushed
    streams, objects freed by their reference count)."""
    atexit.register(gc.freeze)


#: In the e2e session's virtualenv: the requirements last installed there.
INSTALLED = "stagegate-requirements.json"


def install_once(session: nox.Session, requirements: list[str]) -> None:
    """``session.install(*requirements)``, unless this same list went into this virtualenv
    before (nox keeps it: ``reuse_venv``): pip would only say "Requirement already satisfied",
    a second or more on every run. A local path or URL is installed every time (its content
    may have changed); a new virtualenv has no record and installs."""
    location = getattr(session.virtualenv, "location", None)  # none with --no-venv
    if not location:
        session.install(*requirements)
        return
    record = Path(location) / INSTALLED
    wanted = json.dumps(sorted(requirements))
    if all(_named(r) for r in requirements) and record.is_file() and record.read_text() == wanted:
        session.log(f"e2e requirements already installed: {', '.join(requirements)}")
        return
    record.unlink(missing_ok=True)
    session.install(*requirements)
    record.write_text(wanted)


def _named(requirement: str) -> bool:
    """A requirement by name and version only (``pytest>=8``), not a path, URL or pip option."""
    try:
        return Requirement(requirement).url is None and not requirement.lstrip().startswith(("-", ".", "/"))
    except InvalidRequirement:
        return False


_HELP_SHOWN: set[str] = set()


def _options_help(session: nox.Session, which: str = "pipeline") -> None:
    """With ``-- --help`` (or ``-h``), print the session's options and skip it: nothing runs.
    nox hands the posargs to every prerequisite too, so one invocation prints them once
    (``nox -s e2e -- --help`` skips the six sessions and shows the pipeline's options once)."""
    from . import options

    if not options.wants_help(session.posargs):
        return
    if which not in _HELP_SHOWN:
        _HELP_SHOWN.add(which)
        text = options.prune_options_help() if which == "prune" else options.options_help()
        print(text, end="", flush=True)
    session.skip("options listed above; nothing ran")


def _fail_on(session: nox.Session, failure: str | None) -> None:
    if failure:
        session.error(failure)


def _caller_root() -> Path:
    """The folder of the noxfile calling :func:`register` (two frames up: register, its caller)."""
    caller = sys._getframe(2).f_globals.get("__file__")
    return Path(caller).resolve().parent if caller else Path.cwd().resolve()


class _NoUvNotFound(logging.Filter):
    """Drops nox's "uv binary not found." (said when uv is not installed, which is no fault)."""

    MESSAGE = "uv binary not found."

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.MESSAGE


def quiet_uv_probe() -> None:
    """Install :class:`_NoUvNotFound` on nox's logger, once."""
    logger = logging.getLogger("nox")
    if not any(isinstance(f, _NoUvNotFound) for f in logger.filters):
        logger.addFilter(_NoUvNotFound())
