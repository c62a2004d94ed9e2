"""Stopping the build stage's running builds: after the first failure (the fail-fast stop: the
``docker build`` clients of the builds still running, found by the tags they build) and on an
interruption (every ``docker`` client below this process). The engine cancels a build whose
client went away; the layers it finished stay in its cache.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import signals
from ..signals import SIGNAL_POLL_S

log = logging.getLogger(__name__)

# After the first failure the running builds' clients get SIGTERM, and SIGKILL when they still
# run this long after it.
CANCEL_GRACE_S = 3.0


class NotStarted(Exception):
    """The stage stopped before this image's build started."""


class Cancelled(Exception):
    """The stage stopped this image's running build."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass
class BuildStop:
    """The fail-fast stop of one build stage: the image whose failure stopped it, the builds
    running (image -> the tag its ``docker build`` carries), the images whose client the stop
    signalled, and when SIGTERM turns into SIGKILL."""

    clock: Callable[[], float]
    _gate: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stopped_by: str | None = field(default=None, init=False)
    _building: dict[str, str] = field(default_factory=dict, init=False)
    _cut: set[str] = field(default_factory=set, init=False)
    _terminated: set[int] = field(default_factory=set, init=False)  # pids sent SIGTERM
    _kill_at: float = field(default=0.0, init=False)

    def stop_after(self, failed: str) -> None:
        """The first failure (without ``--keep-going``): no build starts any more, and the
        running ones are cancelled (:meth:`signal_cut_builds`, called until they returned)."""
        with self._gate:
            self._stopped_by = failed
        self._kill_at = self.clock() + CANCEL_GRACE_S

    def started(self, name: str, ref: str) -> None:
        """The build of ``name`` under the tag ``ref`` starts: never after the stop
        (:class:`NotStarted`), nor unseen by it."""
        with self._gate:
            if self._stopped_by is not None:
                raise NotStarted
            self._building[name] = ref

    def finished(self, name: str) -> None:
        with self._gate:
            self._building.pop(name, None)

    def cut_by(self, name: str) -> str | None:
        """The image whose failure stopped the build of ``name``, when the stop signalled its
        client (its failure is then not its own); else None."""
        with self._gate:
            return self._stopped_by if name in self._cut else None

    def signal_cut_builds(self) -> None:
        """Stop the ``docker build`` clients of the builds still running: SIGTERM once, SIGKILL
        to those still there :data:`CANCEL_GRACE_S` after the failure. The engine cancels a
        build whose client went away (legacy builder and BuildKit alike; the legacy builder's
        ``--force-rm`` removes the step's container). Only these clients are signalled — found
        among this process's descendants by a build argv naming a running build's tag (and
        what they started) — never another child of the process (a test's registry, a
        port-forward of the user's own nox session)."""
        with self._gate:
            tags = {ref: name for name, ref in self._building.items()}
        if not tags:
            return
        kill = self.clock() >= self._kill_at
        clients: dict[int, str] = {}
        for process in signals.processes_below():  # parents before their children
            name = clients.get(process.parent) or _build_of(process.argv, tags)
            if name is not None:
                clients[process.pid] = name
        for pid, name in clients.items():
            with self._gate:
                self._cut.add(name)
            first = pid not in self._terminated
            self._terminated.add(pid)
            if first or kill:
                log.debug("stopping the build of %s (pid %d) after %s failed", name, pid, self._stopped_by)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)


def _build_of(argv: Sequence[str], tags: Mapping[str, str]) -> str | None:
    """The image whose running build ``argv`` is (a ``build`` naming its tag), if any."""
    if "build" not in argv:
        return None
    return next((tags[arg] for arg in argv if arg in tags), None)


def stop_interrupted_builds(
    running: Mapping[concurrent.futures.Future[Any], str], grace: float = 3.0
) -> None:
    """Stop the running builds of an interrupted stage: their ``docker`` clients are told to stop
    (SIGTERM, then SIGKILL after ``grace`` seconds) until every build thread has returned — a
    thread between two commands may start one more after the first round. The engine cancels a
    build whose client went away."""
    deadline = time.monotonic() + grace
    while not all(future.done() for future in running):
        signals.terminate_descendants(signal.SIGTERM if time.monotonic() < deadline else signal.SIGKILL)
        concurrent.futures.wait(running, timeout=SIGNAL_POLL_S)
