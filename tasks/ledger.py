"""The ledger of a run: ``run.json``, ``error.json`` and the upstream guard.

``run.json`` records the current run: id, git revision, and per stage its status, start,
duration and outputs. ``error.json`` exists if and only if the run failed, and there is
exactly one. Both are written atomically (temporary file, then rename) under a file lock.
Every file written through :func:`write_text_atomic` or :func:`write_json_atomic` — these
two, the inputs files, the rendered manifests, the docker target's plan — is redacted first
(:mod:`stagegate.redact`): no secret is ever written in clear.

A stage refuses to start unless every stage before it in :data:`PIPELINE` passed in the
same run (``UPSTREAM_FAILED``) — read from the ledger on disk, so the guard holds for a
session started on its own (another CI job, ``nox --no-dependencies``).
"""

from __future__ import annotations

import enum
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import filelock

from .clock import Clock, iso
from .errors import Code, StagegateError, failure_class_of
from .redact import clean_json, redact, redact_json
from .stagelist import PIPELINE  # the gated stages, in order

SCHEMA_VERSION = 1


class Status(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    NOT_RUN = "not-run"
    INTERRUPTED = "interrupted"
    RUNNING = "running"


OK = (Status.PASSED, Status.SKIPPED)

# Files of one run that a new run must not inherit (a stale e2e report, old diagnostics).
RUN_SCOPED = ("junit.xml", "e2e-junit.xml", "manifests.yaml", "diagnostics")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text``, redacted, to ``path`` so that readers see the old file or the new, never half."""
    _write_atomic(path, redact(text))


def write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    """``document`` as indented JSON, every string in it redacted, written atomically."""
    _write_atomic(path, json.dumps(redact_json(document), indent=2) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Ledger:
    """``run.json`` and ``error.json`` in one artifacts dir."""

    def __init__(self, artifacts: Path, clock: Clock | None = None) -> None:
        self.artifacts = artifacts
        self.clock = clock or Clock()
        self.run_path = artifacts / "run.json"
        self.error_path = artifacts / "error.json"
        self._lock = filelock.FileLock(str(artifacts / ".ledger.lock"))

    # -- reading -------------------------------------------------------------------------
    def read_run(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.run_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def read_error(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.error_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    # -- the stage lifecycle -------------------------------------------------------------
    def begin(
        self,
        stage: str,
        *,
        git: dict[str, Any] | Callable[[], dict[str, Any]],
        options: dict[str, Any],
    ) -> dict[str, Any]:
        """Open ``stage``: start a new run (first stage) or continue the current one.

        ``git`` is the repository's state a new run records (a callable: asked only then).

        Resets ``stage`` and everything after it, removes an error file they left, and
        raises ``UPSTREAM_FAILED`` when a stage before it did not pass in this run.
        """
        with self._locked():
            run = self.read_run()
            if stage == PIPELINE[0] or run is None or run.get("schema_version") != SCHEMA_VERSION:
                run = self._new_run(git)
                self.error_path.unlink(missing_ok=True)
                for name in RUN_SCOPED:
                    path = self.artifacts / name
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
            position = PIPELINE.index(stage)
            for later in PIPELINE[position:]:
                run["stages"][later] = _blank_stage()
            error = self.read_error()
            if error is not None and error.get("stage") in PIPELINE[position:]:
                self.error_path.unlink()
            for earlier in PIPELINE[:position]:
                status = run["stages"][earlier]["status"]
                if status not in OK:
                    self._write_run(run)
                    raise _upstream_error(stage, earlier, status)
            run["options"] = options
            run["stages"][stage].update(status=Status.RUNNING, started_at=iso(self.clock.now()))
            self._write_run(run)
            return run

    def record_pass(
        self, stage: str, duration_s: float, outputs: dict[str, Any], status: Status = Status.PASSED
    ) -> None:
        with self._locked():
            run = self._current()
            run["stages"][stage].update(status=status, duration_s=round(duration_s, 3), outputs=outputs)
            run.update(_run_level(outputs))
            self._write_run(run)

    def record_failure(
        self,
        stage: str,
        error: StagegateError,
        duration_s: float,
        outputs: dict[str, Any],
        *,
        interrupted: bool = False,
        cause: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Mark ``stage`` failed and write the run's one error file; returns it. ``cause``: the
        upstream error of an ``UPSTREAM_FAILED`` that comes from elsewhere (a bundle's run)."""
        with self._locked():
            run = self._current()
            if not run["stages"][stage].get("started_at"):
                run["stages"][stage]["started_at"] = iso(self.clock.now())
            run["stages"][stage].update(
                status=Status.INTERRUPTED if interrupted else Status.FAILED,
                duration_s=round(duration_s, 3),
                outputs=outputs,
                error={"code": str(error.code), "message": error.message},
            )
            run.update(_run_level(outputs))
            # what people and CI read: redacted, and without the terminal escapes programs print
            document = clean_json(self._error_document(run, stage, error, duration_s, cause))
            write_json_atomic(self.error_path, document)
            self._write_run(run)
            return document

    def record_taken(self, stage: str, record: dict[str, Any]) -> None:
        """Put ``stage``'s record as another run left it (a bundle's) into this run."""
        with self._locked():
            run = self._current()
            run["stages"][stage] = {**_blank_stage(), **record}
            self._write_run(run)

    def note(self, key: str, value: Any) -> None:
        """Record something outside the stages (teardown) in run.json."""
        with self._locked():
            run = self.read_run()
            if run is not None:
                run[key] = value
                self._write_run(run)

    # -- internals -----------------------------------------------------------------------
    def _error_document(
        self,
        run: dict[str, Any],
        stage: str,
        error: StagegateError,
        duration_s: float,
        cause: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        document: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run["run_id"],
            "stage": stage,
            "code": str(error.code),
            "class": str(error.failure_class),
            "retry": error.failure_class.rerun_may_pass,
            "message": error.message,
            "hint": error.hint,
            "subject": error.subject,
            "command": error.command.to_json() if error.command else None,
            "log_excerpt": error.log_excerpt,
            "log_file": error.log_file,
            "failed_at": iso(self.clock.now()),
            "duration_s": round(duration_s, 3),
            "not_run": list(PIPELINE[PIPELINE.index(stage) + 1 :]),
            "git": run["git"],
        }
        if error.others:
            document["others"] = [other.summary_json() for other in error.others]
        if error.code == Code.UPSTREAM_FAILED:
            previous = cause if cause is not None else self.read_error()
            if previous is not None and (cause is not None or previous.get("run_id") == run["run_id"]):
                document["cause"] = previous
                # the upstream failure is what a re-run meets again (or not)
                cause_class = failure_class_of(previous)
                document.update({"class": str(cause_class), "retry": cause_class.rerun_may_pass})
        return document

    def _new_run(self, git: dict[str, Any] | Callable[[], dict[str, Any]]) -> dict[str, Any]:
        git = git() if callable(git) else git
        now = self.clock.now()
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}",
            "started_at": iso(now),
            "git": git,
            "target": None,
            "profile": None,  # chosen by the first stage: {name, reason, target} (stagegate.profiles)
            "builder": None,
            "options": {},
            "stages": {stage: _blank_stage() for stage in PIPELINE},
        }

    def _current(self) -> dict[str, Any]:
        run = self.read_run()
        if run is None:
            raise RuntimeError(f"{self.run_path} vanished during the run")
        return run

    def _write_run(self, run: dict[str, Any]) -> None:
        write_json_atomic(self.run_path, run)

    @contextmanager
    def _locked(self):  # type: ignore[no-untyped-def]
        self.artifacts.mkdir(parents=True, exist_ok=True)
        with self._lock:
            yield


def stage_record(run: Mapping[str, Any] | None, stage: str) -> dict[str, Any]:
    """``stage``'s record in a run.json document; ``{}`` when the run, or the stage, has none."""
    record = ((run or {}).get("stages") or {}).get(stage)
    return record if isinstance(record, dict) else {}


def stage_outputs(run: Mapping[str, Any] | None, stage: str) -> dict[str, Any]:
    """``stage``'s outputs in a run.json document; ``{}`` when it has none (yet)."""
    outputs = stage_record(run, stage).get("outputs")
    return outputs if isinstance(outputs, dict) else {}


def _blank_stage() -> dict[str, Any]:
    return {"status": Status.NOT_RUN, "started_at": None, "duration_s": None, "outputs": {}}


def _run_level(outputs: dict[str, Any]) -> dict[str, Any]:
    """Outputs that describe the whole run (the builder, the target)."""
    return {key: outputs[key] for key in ("builder", "target") if key in outputs}


def _upstream_error(stage: str, upstream: str, status: str) -> StagegateError:
    what = "never ran" if status in (Status.NOT_RUN, Status.RUNNING) else status
    if status == Status.RUNNING:
        what = "did not finish"
    return StagegateError(
        Code.UPSTREAM_FAILED,
        f"{stage} refuses to run: {upstream} {what} in this run",
        f"run `nox -s {stage}` with its prerequisites, or fix {upstream} first (see error.json 'cause')"
        if status == Status.FAILED
        else f"run `nox -s {stage}` (it runs {upstream} first), or `nox -s {upstream}` before this session",
        {"stage": upstream, "status": str(status)},
    )
