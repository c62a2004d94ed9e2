"""One run at a time per artifacts dir.

The lock is ``fcntl.flock`` on ``<artifacts>/run.lock``, taken by the first stage (or teardown)
a process runs and held on an open descriptor until the process ends: ``nox -s e2e`` runs
every stage in one process, so one lock covers the whole chain, and no other process can
slip in between two stages. The operating system drops the lock when its process dies, however
it dies (``kill -9`` included), so a lock cannot go stale: the file a killed run leaves holds
its pid and run id, and the next run takes it over, saying so.

A second process is refused at once with ``RUN_IN_PROGRESS``, naming the holder (run id, pid,
since when, what it runs) from what the holder wrote into the lock file. Artifacts dirs are
independent: runs in two checkouts never wait for each other. (``flock`` is per host: an
artifacts dir on a network file system shared by two machines is not protected.)
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clock import Clock, iso
from .errors import Code, StagegateError, artifacts_unwritable

LOG = logging.getLogger(__name__)

LOCK_FILE = "run.lock"


@dataclass
class _Held:
    descriptor: int
    record: dict[str, Any]


# The locks this process holds, by resolved artifacts dir: a later stage of the same process
# (the next session of `nox -s e2e`) finds its lock here and goes on.
_HELD: dict[Path, _Held] = {}


def acquire(artifacts: Path, *, what: str, clock: Clock | None = None) -> dict[str, Any] | None:
    """Hold the run lock of ``artifacts`` for this process (again: a no-op).

    Returns the record a dead holder left (the lock then was taken over), else None; raises
    ``RUN_IN_PROGRESS`` when another live process holds it."""
    key = _key(artifacts)
    if key in _HELD:
        held = _HELD[key]
        if held.record.get("what") != what:
            held.record["what"] = what
            _write(held.descriptor, held.record)
        return None
    clock = clock or Clock()
    path = key / LOCK_FILE
    try:
        key.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        problem = "it is not a directory" if key.exists() and not key.is_dir() else exc.strerror or exc
        raise artifacts_unwritable(artifacts, problem, path) from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _read(descriptor)
        os.close(descriptor)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise StagegateError(
                Code.CONFIG_INVALID,
                f"cannot lock {path}: {exc.strerror or exc}",
                "put the artifacts dir on a local file system that supports flock",
                {"key": "artifacts", "file": str(path)},
            ) from None
        raise in_progress(artifacts, holder) from None
    previous = _read(descriptor)
    record = {"pid": os.getpid(), "run_id": None, "started_at": iso(clock.now()), "what": what}
    _HELD[key] = _Held(descriptor, record)
    _write(descriptor, record)
    if previous.get("pid") and previous.get("pid") != os.getpid():
        LOG.info(
            "took over the run lock of %s: run %s (pid %s) is gone",
            path,
            previous.get("run_id") or "?",
            previous.get("pid"),
        )
        return previous
    return None


def note_run(artifacts: Path, run_id: str) -> None:
    """Write the run id into the lock this process holds, for the message a second run gets."""
    held = _HELD.get(_key(artifacts))
    if held is not None and held.record.get("run_id") != run_id:
        held.record["run_id"] = run_id
        _write(held.descriptor, held.record)


def release(artifacts: Path) -> None:
    """Give the lock back before the process ends (library use and tests)."""
    held = _HELD.pop(_key(artifacts), None)
    if held is not None:
        os.close(held.descriptor)  # closing the descriptor drops the flock


def release_all() -> None:
    for key in list(_HELD):
        release(key)


def in_progress(artifacts: Path, holder: dict[str, Any]) -> StagegateError:
    run_id = holder.get("run_id") or "(starting)"
    pid = holder.get("pid", "?")
    since = holder.get("started_at") or "?"
    what = holder.get("what") or "a stage"
    return StagegateError(
        Code.RUN_IN_PROGRESS,
        f"another stagegate run is active in {artifacts}: run {run_id}, pid {pid}, {what} since {since}",
        f"wait until it ends (or stop it: kill {pid}); a run in another checkout, or with "
        "STAGEGATE_ARTIFACTS pointing elsewhere, is independent of it",
        {"run_id": run_id, "pid": pid, "since": since, "what": what, "file": str(artifacts / LOCK_FILE)},
    )


def _key(artifacts: Path) -> Path:
    return Path(os.path.abspath(artifacts)).resolve()


def _read(descriptor: int) -> dict[str, Any]:
    try:
        text = os.pread(descriptor, 4096, 0).decode("utf-8", "replace")
        found = json.loads(text)
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _write(descriptor: int, record: dict[str, Any]) -> None:
    data = (json.dumps(record) + "\n").encode()
    os.pwrite(descriptor, data, 0)  # then cut what is left of a longer record: never empty
    os.ftruncate(descriptor, len(data))
