"""How a stop signal becomes an interruption: SIGINT (Ctrl-C), SIGTERM and SIGHUP alike.

CI systems stop a job with SIGTERM (GitHub Actions sends SIGINT, then SIGTERM 7.5 s later;
GitLab, Jenkins, ``docker stop``, ``timeout`` and Kubernetes send SIGTERM at once), and a job
started with ``cmd &`` from a script inherits SIGINT as ignored. :func:`stop_signals_interrupt`
makes every one of them end the running stage the way Ctrl-C does:

- the first signal stops this process's child processes (SIGTERM to every descendant: the
  ``docker build`` and ``docker run`` clients, port-forwards, the e2e command), calls
  ``on_stop`` — the gate writes the stage's ``interrupted`` record there, before any slow
  clean-up — and raises :class:`Interrupted` (a ``KeyboardInterrupt``) in the main thread;
- a second signal while that clean-up runs ends the process at once: SIGKILL to every
  descendant, exit status 128 + the signal's number. Whatever the first one recorded stays.

A signal whose disposition was "ignored" when the stage started stays ignored (``nohup``
means it; a background job's SIGINT too): only signals at their default disposition (or
Python's default SIGINT handler) are taken over, and every handler is put back afterwards.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

#: The signals that stop a run, in the order CI systems tend to send them.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

#: Stages wait on their worker threads in slices of this: the kernel may deliver a SIGINT to any
#: thread, and a main thread blocked on a lock without a timeout would see it only once the lock
#: is released (a whole build, or a whole smoke command, later).
SIGNAL_POLL_S = 0.2


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; ``signal_name`` says which (``SIGTERM``)."""

    def __init__(self, signum: int) -> None:
        self.signal_name = signal.Signals(signum).name
        super().__init__(self.signal_name)


def signal_name(exc: KeyboardInterrupt) -> str:
    """The signal behind a ``KeyboardInterrupt``: Python's own one comes from SIGINT."""
    return exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"


@contextmanager
def stop_signals_interrupt(on_stop: Callable[[str], None]) -> Iterator[None]:
    """Within the block, a stop signal is an :class:`Interrupted` (see the module docstring).

    ``on_stop(signal_name)`` runs in the handler of the first signal, after the child
    processes were told to stop; what it raises is logged, never lost in the handler. Outside
    the main thread (where Python allows no handler) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    state = _Handler(on_stop)
    previous: dict[signal.Signals, object] = {}
    for signum in STOP_SIGNALS:
        current = signal.getsignal(signum)
        if current in (signal.SIG_DFL, signal.default_int_handler):
            previous[signum] = current
            signal.signal(signum, state.handle)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


class _Handler:
    """The first signal interrupts; a second one ends the process at once."""

    def __init__(self, on_stop: Callable[[str], None]) -> None:
        self.on_stop = on_stop
        self.received: list[int] = []
        self.recording = False
        self.exit_after_recording: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            if self.recording:  # the record is being written: end right after it
                self.exit_after_recording = signum
                return
            _exit_now(signum)
        self.received.append(signum)
        name = signal.Signals(signum).name
        terminate_descendants(signal.SIGTERM)
        self.recording = True
        try:
            self.on_stop(name)
        except Exception:  # the gate records the interruption again after the clean-up
            log.exception("recording the interruption by %s failed", name)
        finally:
            self.recording = False
        if self.exit_after_recording is not None:
            _exit_now(self.exit_after_recording)
        raise Interrupted(signum)


#: How long the sweeps before exiting may look for processes still running below.
EXIT_SWEEP_S = 2.0


def _exit_now(signum: int) -> None:
    """No clean-up: kill what still runs below this process and exit 128 + ``signum``.

    Another thread may be starting one more program (a ``docker`` call of the clean-up) while
    this runs, so the sweep is repeated until two looks in a row find nothing running below
    (the killed ones are zombies then), for at most :data:`EXIT_SWEEP_S`."""
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    deadline = time.monotonic() + EXIT_SWEEP_S
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:
        running = any(_running(pid) for pid in terminate_descendants(signal.SIGKILL))
        quiet = 0 if running else quiet + 1
        time.sleep(0.005)
    os._exit(128 + signum)


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs: not ended, not a zombie (where there is no /proc: assumed)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self/stat").exists() and _exists(pid)
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[:1] != ["Z"]


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def terminate_descendants(signum: int = signal.SIGTERM, pid: int | None = None) -> list[int]:
    """Send ``signum`` to every process below ``pid`` (this process by default); their ids.

    The processes python-on-whales starts (``docker build``, ``docker run``) are not handed
    to stagegate, so they are found from the process table, as ``pkill -P`` does.
    """
    found = descendants(os.getpid() if pid is None else pid)
    for child in found:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(child, signum)
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children before grandchildren."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = [c for p in frontier for c in children.get(p, ()) if c not in found]
        found += below
        frontier = below
    return found


@dataclass(frozen=True)
class Process:
    """A process below this one: its id, its parent's, and its command line."""

    pid: int
    parent: int
    argv: tuple[str, ...]


def processes_below(pid: int | None = None) -> list[Process]:
    """Every process below ``pid`` (this process by default) with its command line, children
    before grandchildren: what a caller that must stop only some of them selects from (the
    ``docker build`` clients of certain tags, not a test's own helper processes). A process that
    ended while it was looked at is left out."""
    parents = _parents()
    found = descendants(os.getpid() if pid is None else pid)
    argvs = _command_lines(found)
    return [Process(child, parents.get(child, 0), argvs[child]) for child in found if child in argvs]


def _command_lines(pids: list[int]) -> dict[int, tuple[str, ...]]:
    """The argv of each of ``pids`` that still runs: ``/proc/<pid>/cmdline``, else ``ps``."""
    if not Path("/proc/self/cmdline").exists():
        return _command_lines_from_ps(pids)
    found: dict[int, tuple[str, ...]] = {}
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # it ended while we looked
            continue
        if raw:  # empty: a zombie, which no signal can stop any more
            found[pid] = tuple(arg.decode(errors="replace") for arg in raw.rstrip(b"\0").split(b"\0"))
    return found


def _command_lines_from_ps(pids: list[int]) -> dict[int, tuple[str, ...]]:
    """Where there is no /proc (macOS): ``ps -o pid=,args=``, the arguments split at spaces
    (enough to find an image tag among them: tags hold no space)."""
    if not pids:
        return {}
    from . import runner  # the one way to run a program

    try:
        table = runner.run(
            ["ps", "-o", "pid=,args=", "-p", ",".join(map(str, pids))], timeout=5, check=False
        ).stdout  # exit 1 when every one of them ended meanwhile
    except runner.CommandFailed as exc:
        log.warning("cannot read the command lines of child processes: %s", exc)
        return {}
    found: dict[int, tuple[str, ...]] = {}
    for line in table.splitlines():
        words = line.split()
        if len(words) > 1 and words[0].isdigit():
            found[int(words[0])] = tuple(words[1:])
    return found


def _parents() -> dict[int, int]:
    """Process id -> parent id of every process this user can see."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return _parents_from_ps()
    parents: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended while we looked
            continue
        # "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")"
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1:
            parents[int(entry.name)] = int(fields[1])
    return parents


def _parents_from_ps() -> dict[int, int]:
    """The process table where there is no /proc (macOS): ``ps -A -o pid=,ppid=``."""
    from . import runner  # the one way to run a program

    try:
        table = runner.run(["ps", "-A", "-o", "pid=,ppid="], timeout=5).stdout
    except runner.CommandFailed as exc:
        log.warning("cannot list child processes: %s", exc)
        return {}
    parents: dict[int, int] = {}
    for line in table.splitlines():
        words = line.split()
        if len(words) == 2 and words[0].isdigit() and words[1].isdigit():
            parents[int(words[0])] = int(words[1])
    return parents
