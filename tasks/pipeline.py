"""The gate: every pipeline stage runs through :func:`run_stage`.

It first holds the artifacts dir's run lock (:mod:`stagegate.runlock`; a second process is
refused with ``RUN_IN_PROGRESS`` before it writes anything, so the active run's ledger stays
its own), then opens the stage in the ledger (refusing with ``UPSTREAM_FAILED`` when an earlier stage
of the run did not pass), times it, and records the outcome: outputs on success; on an
expected failure exactly one ``error.json``; on anything unexpected ``INTERNAL_ERROR`` with
the traceback; on a stop signal — Ctrl-C's SIGINT, SIGTERM, SIGHUP (:mod:`stagegate.signals`)
— ``INTERRUPTED`` naming the signal, written the moment it arrives (before the stage's own
clean-up, so that a second signal, which ends the process at once, cannot lose it) and again
with the final outputs when the clean-up is done. It returns a :class:`StageResult`; it never lets
an expected failure reach the user as a traceback.

With ``--bundle-in`` the stages before cluster are taken from the bundle instead of run, and a
failure of the bundle's run is recorded as the cluster stage's ``UPSTREAM_FAILED``; with
``--bundle-out`` the bundle is written after every stage's record (:mod:`stagegate.bundle`).
"""

from __future__ import annotations

import copy
import errno
import logging
import os
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import bundle, runlock, runner, signals
from .clock import Clock
from .config import Config, artifacts_dir, load_config
from .dockerclient import DeferredDockerClient
from .errors import Code, StagegateError, artifacts_unwritable
from .ledger import PIPELINE, Ledger, Status
from .options import Options, parse_options
from .profiles import choose_profile
from .redact import redact
from .reports import RunReport, markdown_summary, publish_to_github, update_summary, write_junit
from .stages import StageContext
from .ui import Reporter

if TYPE_CHECKING:
    from python_on_whales import DockerClient

log = logging.getLogger(__name__)


class _Stages(Mapping[str, Callable[[StageContext], None]]):
    """Each stage's ``run`` by name, its module (``stagegate.stages.<name>``) imported when the
    stage runs: ``nox -s build`` does not pay for the targets, readiness and e2e code."""

    def __getitem__(self, name: str) -> Callable[[StageContext], None]:
        if name not in PIPELINE:
            raise KeyError(name)
        # __import__, not importlib.import_module: the interpreter's own import, which
        # `python -X importtime` records (tests/integration/test_startup.py reads it)
        return __import__(f"{__package__}.stages.{name}", fromlist=["run"]).run

    def __iter__(self) -> Iterator[str]:
        return iter(PIPELINE)

    def __len__(self) -> int:
        return len(PIPELINE)


STAGES: Mapping[str, Callable[[StageContext], None]] = _Stages()
assert tuple(STAGES) == PIPELINE


@dataclass(frozen=True)
class StageResult:
    """How a stage ended. ``error`` is None when it passed. ``document`` is the error.json
    written for it: None when it passed, when it was refused before it began (another run
    holds the artifacts dir), when its record could not be written, or when the stage passed
    and only the bundle after it failed."""

    stage: str
    error: StagegateError | None = None
    document: dict[str, Any] | None = None
    error_file: Path | None = None
    unrecorded: bool = False  # the stage's record itself could not be written

    @property
    def passed(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def failure_line(self) -> str | None:
        """The one line a session ends with when the stage failed (None when it passed)."""
        if self.error is None:
            return None
        if self.unrecorded:
            return f"{self.stage} failed, and its record could not be written (see the lines above)"
        if self.document is not None and self.error_file is not None:
            where = os.path.relpath(self.error_file)
            return f"{self.document.get('code')}: {self.document.get('message')} (see {where})"
        return redact(f"{self.error.code}: {self.error.message}")  # as error.json would hold it


def run_stage(
    stage: str,
    argv: Sequence[str],
    *,
    root: Path,
    reporter: Reporter,
    docker: DockerClient | None = None,
    clock: Clock | None = None,
    env: Mapping[str, str] | None = None,
    stages: Mapping[str, Callable[[StageContext], None]] = STAGES,
) -> StageResult:
    """Run one pipeline stage; how it ended (``.exit_code``: 0 when it passed, 1 when it failed).

    A stop signal (SIGINT, SIGTERM, SIGHUP) records the stage ``interrupted`` and is raised
    again as a ``KeyboardInterrupt`` (:class:`stagegate.signals.Interrupted`), as nox expects.
    """
    env = dict(os.environ if env is None else env)
    clock = clock or Clock()
    artifacts = artifacts_dir(root, env)
    try:
        runlock.acquire(artifacts, what=stage, clock=clock)
    except StagegateError as refused:  # not this run's failure: no ledger entry, no error.json
        report_refusal(reporter, refused)
        return StageResult(stage, refused)
    gate = _Gate(stage, Ledger(artifacts, clock), clock, env)
    with signals.stop_signals_interrupt(gate.record_interruption):
        return gate.run(argv, root, reporter, docker, stages)


class _Gate:
    """One stage's run and its record; :meth:`record_interruption` is what the first stop
    signal calls, from its handler, while the stage still runs."""

    def __init__(self, stage: str, ledger: Ledger, clock: Clock, env: dict[str, str]) -> None:
        self.stage = stage
        self.ledger = ledger
        self.clock = clock
        self.env = env
        self.started = clock.monotonic()
        self.outputs: dict[str, Any] = {}
        self.begun = False
        self.options: Options | None = None
        self.config: Config | None = None

    def record_interruption(self, signal_name: str) -> None:
        if not self.begun:  # nothing of this stage is in run.json yet: the gate records it
            return
        self.ledger.record_failure(
            self.stage,
            interruption(self.stage, signal_name),
            self.clock.monotonic() - self.started,
            _settled(self.outputs),
            interrupted=True,
        )
        write_reports(self.ledger.artifacts, self.env)

    def run(
        self,
        argv: Sequence[str],
        root: Path,
        reporter: Reporter,
        docker: DockerClient | None,
        stages: Mapping[str, Callable[[StageContext], None]],
    ) -> StageResult:
        """The stage, its record, the summary and reports, then the bundle when asked for."""
        client = docker or DeferredDockerClient(self.env)
        interrupted: KeyboardInterrupt | None = None
        try:
            self._begin_and_run(argv, root, reporter, client, stages)
            error = None
        except StagegateError as exc:
            error = exc
        except OSError as exc:
            error = unwritable(exc, self.ledger.artifacts) or _internal_reported(self.stage, exc, reporter)
        except KeyboardInterrupt as exc:
            interrupted = exc
            error = interruption(self.stage, signals.signal_name(exc))
        except Exception as exc:
            error = _internal_reported(self.stage, exc, reporter)
        try:
            recorded, document = self._record(error, interrupted is not None)
        except OSError as exc:  # the record itself cannot be written: say so on the terminal
            problem = unwritable(exc, self.ledger.artifacts)
            if problem is None:
                raise
            report_refusal(reporter, problem)
            if error is not None and error is not problem and error.code != problem.code:
                reporter.info(f"the {self.stage} stage itself ended with {error.code}: {error.message}")
            if interrupted is not None:
                raise interrupted from None
            return StageResult(self.stage, error or problem, unrecorded=True)
        reporter.summary(self.ledger.read_run() or {}, document, self.ledger.artifacts)
        publish_reports(recorded, self.ledger.artifacts, self.env, reporter)
        if interrupted is not None:
            raise interrupted.with_traceback(None) from None
        problem = None
        if self.options is not None and self.options.bundle_out is not None:  # a failed run's too
            problem = self._write_bundle(root, client, reporter)
        if error is not None:
            return StageResult(self.stage, error, document, self.ledger.error_path if document else None)
        return StageResult(self.stage, problem)

    def _begin_and_run(
        self,
        argv: Sequence[str],
        root: Path,
        reporter: Reporter,
        client: DockerClient,
        stages: Mapping[str, Callable[[StageContext], None]],
    ) -> None:
        """Open the stage in the ledger (options parsed first, so that run.json records them
        even when they are refused), choose the profile, then run the stage or take it from
        the bundle."""
        stage, ledger = self.stage, self.ledger
        bad_options: StagegateError | None = None
        try:
            self.options = parse_options(argv)
        except StagegateError as exc:  # recorded as this stage's failure once it has begun
            bad_options = exc
        parsed = self.options.to_json() if self.options is not None else {}
        run = ledger.begin(stage, git=lambda: git_info(root), options={"argv": list(argv), **parsed})
        self.begun = True
        runlock.note_run(ledger.artifacts, str(run.get("run_id")))
        if bad_options is not None:
            raise bad_options
        assert self.options is not None  # parsed, or the error was raised
        self.config = load_config(root, self.env)
        choice = choose_profile(self.config, self.options, run)
        if choice.name is not None:
            self.config = load_config(root, self.env, profile=choice.name)
        if not isinstance(run.get("profile"), dict):  # chosen now: the run's first stage
            run["profile"] = choice.to_json()
            ledger.note("profile", run["profile"])
            reporter.info(choice.describe())
        context = StageContext(
            config=self.config,
            options=self.options,
            docker=client,
            ledger=ledger,
            reporter=reporter,
            clock=self.clock,
            run=run,
            env=self.env,
            outputs=self.outputs,
        )
        if self.options.bundle_in is not None and stage in bundle.TAKEN:
            bundle.take_stage(context, stage)
        else:
            stages[stage](context)

    def _record(self, error: StagegateError | None, interrupted: bool) -> tuple[str, dict[str, Any] | None]:
        """The stage's outcome in the ledger: the stage it is recorded as (a failure of the
        bundle's run is the first stage of ours), and error.json's document when it failed."""
        stage, ledger = self.stage, self.ledger
        duration = self.clock.monotonic() - self.started
        if error is None:
            ledger.record_pass(stage, duration, self.outputs, Status.PASSED)
            return stage, None
        if isinstance(error, bundle.UpstreamInBundle):  # the bundle's run failed: no stage of ours ran
            for name, record in error.taken.items():
                ledger.record_taken(name, record)
            return bundle.FIRST_OWN, ledger.record_failure(
                bundle.FIRST_OWN, error, 0.0, {}, cause=error.cause
            )
        return stage, ledger.record_failure(stage, error, duration, self.outputs, interrupted=interrupted)

    def _write_bundle(self, root: Path, client: DockerClient, reporter: Reporter) -> StagegateError | None:
        """``--bundle-out``: the run's images and records in one archive, after the stage's
        record; the problem when it could not be written (the run's record stands)."""
        assert self.options is not None and self.options.bundle_out is not None
        artifacts = self.ledger.artifacts
        try:
            written = bundle.write_bundle(
                bundle.resolve(self.options.bundle_out, root),
                artifacts,
                client,
                config=self.config,
                clock=self.clock,
            )
        except (StagegateError, OSError) as exc:  # the run's record stands; the hand-over failed
            problem = exc if isinstance(exc, StagegateError) else unwritable(exc, artifacts)
            problem = problem or _internal(self.stage, exc, traceback.format_exc())
            report_refusal(reporter, problem)
            reporter.info("the bundle was not written: a job given it would not find this run")
            return problem
        reporter.info(
            f"bundle written to {self.options.bundle_out}: {len(written.images)} image(s), "
            + ", ".join(sorted(written.files))
        )
        return None


def interruption(stage: str, signal_name: str) -> StagegateError:
    """``INTERRUPTED`` of ``stage``, naming the signal. From the cluster stage on, the target
    keeps what the run started (for debugging, as after a failure): the hint says how to remove it."""
    kept = PIPELINE.index(stage) >= PIPELINE.index("cluster")
    return StagegateError(
        Code.INTERRUPTED,
        f"{stage} was interrupted by {signal_name}",
        "what the run started is kept for debugging: nox -s teardown removes it; re-run when ready"
        if kept
        else "re-run when ready",
        {"stage": stage, "signal": signal_name},
    )


def _settled(outputs: dict[str, Any]) -> dict[str, Any]:
    """A copy of a stage's outputs as they are now (a build thread may be adding to them)."""
    for _ in range(3):
        try:
            return copy.deepcopy(outputs)
        except RuntimeError:  # changed size while copied: once more
            continue
    return {}


def unwritable(exc: OSError, artifacts: Path) -> StagegateError | None:
    """``ARTIFACTS_UNWRITABLE`` when ``exc`` is the artifacts dir refusing a write (full,
    read-only, no permission), else None."""
    inside = bool(exc.filename) and Path(os.path.abspath(exc.filename)).is_relative_to(
        os.path.abspath(artifacts)
    )
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) and not (
        inside and exc.errno in (errno.EACCES, errno.EPERM, errno.ENOTDIR)
    ):
        return None
    return artifacts_unwritable(
        artifacts,
        exc.strerror or exc,
        exc.filename or artifacts,
        "free space on its file system or make it writable, or point STAGEGATE_ARTIFACTS "
        "(or [tool.stagegate] artifacts) elsewhere; the run's record could not be kept",
    )


def _internal_reported(stage: str, exc: BaseException, reporter: Reporter) -> StagegateError:
    """``INTERNAL_ERROR`` for an exception no stage expected, its traceback shown."""
    trace = traceback.format_exc()
    reporter.internal_error(trace)
    return _internal(stage, exc, trace)


def _internal(stage: str, exc: BaseException, trace: str) -> StagegateError:
    return StagegateError(
        Code.INTERNAL_ERROR,
        f"{stage}: unexpected {type(exc).__name__}: {exc}",
        "this is a bug in stagegate; please report it with error.json",
        {"stage": stage},
        log_excerpt=trace,
    )


def report_refusal(reporter: Reporter, error: StagegateError) -> None:
    """A stage or teardown that did not start (another run holds the artifacts dir)."""
    reporter.info(f"✗ {error.code}: {error.message}")
    if error.hint:
        reporter.info(f"hint: {error.hint}")


def publish_reports(stage: str, artifacts: Path, env: Mapping[str, str], reporter: Reporter) -> None:
    """junit.xml after every stage; under GitHub Actions the annotation and the job summary."""
    report = RunReport.load(artifacts)
    if report is None:
        return
    # A report that cannot be written must not change the run's outcome, nor keep the others
    # from being written: each is a warning on its own.
    try:
        write_junit(report)
    except OSError as exc:
        log.warning("could not write junit.xml (no stale one is left behind): %s", exc)
    try:
        failed_here = report.error is not None and report.error.get("stage") == stage
        publish_to_github(report, env, reporter.workflow_command if failed_here else lambda line: None)
    except OSError as exc:
        log.warning("could not write the GitHub job summary: %s", exc)


def write_reports(artifacts: Path, env: Mapping[str, str]) -> None:
    """junit.xml and the GitHub job summary as the ledger now stands (no annotation: that is
    printed once, by :func:`publish_reports`); what cannot be written is a warning."""
    report = RunReport.load(artifacts)
    if report is None:
        return
    try:
        write_junit(report)
        if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_STEP_SUMMARY"):
            update_summary(Path(env["GITHUB_STEP_SUMMARY"]), markdown_summary(report))
    except OSError as exc:
        log.warning("could not write the reports of the interrupted stage: %s", exc)


def git_info(root: Path) -> dict[str, Any]:
    """The repository's revision and whether the work tree has changes (None outside git)."""
    try:
        sha = runner.run(["git", "rev-parse", "HEAD"], cwd=root, timeout=10).stdout.strip()
        status = runner.run(["git", "status", "--porcelain"], cwd=root, timeout=30).stdout
    except runner.CommandFailed:
        return {"sha": None, "dirty": None}
    return {"sha": sha, "dirty": bool(status.strip())}
