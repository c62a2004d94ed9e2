"""The one way stagegate runs external programs (git now; kind and kubectl with the targets).

Docker is not run here: it goes through a ``python_on_whales.DockerClient`` handed to the
stages. Everything else is an argv list run by :func:`run`: no shell, a timeout, the output
captured and, when asked, written to a log file. What reaches a log file or a
:class:`CommandFailed` (and so error.json) is redacted (:mod:`stagegate.redact`); the
:class:`Result` a caller parses is the program's own output.
"""

from __future__ import annotations

import logging
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .redact import redact, redact_argv

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str


def last_line(text: str) -> str:
    """The last non-empty line of a program's output: the one that usually says why."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


# The docker CLI's deprecation banner around the legacy builder's output: no part of an excerpt.
BANNER = ("legacy builder is deprecated", "Install the buildx component", "docs.docker.com/go/buildx")


def log_excerpt(output: str, lines: int = 20) -> str:
    """The last ``lines`` non-empty lines of a command's output (without the docker CLI's
    deprecation banner): what error.json shows of a failed command."""
    kept = [ln.rstrip() for ln in output.splitlines() if ln.strip() and not any(n in ln for n in BANNER)]
    return "\n".join(kept[-lines:])


class CommandFailed(Exception):
    """A command exited non-zero, timed out or could not start; keeps the evidence, redacted."""

    def __init__(
        self, argv: Sequence[str], exit_code: int | None, stdout: str = "", stderr: str = "", reason: str = ""
    ):
        self.argv = redact_argv(argv)
        self.exit_code = exit_code
        self.stdout = redact(stdout)
        self.stderr = redact(stderr)
        self.reason = redact(reason) or f"exit code {exit_code}"
        super().__init__(f"{' '.join(self.argv)}: {self.reason}")


def _prepared(
    verb: str, argv: Sequence[str], env: Mapping[str, str] | None
) -> tuple[list[str], dict[str, str] | None]:
    """``argv`` as strings (logged, redacted) and the environment the program gets: this
    process's with ``env`` over it, or this process's as it is (None)."""
    argv = [str(a) for a in argv]
    log.debug("%s %s", verb, redact_argv(argv))
    return argv, ({**os.environ, **env} if env is not None else None)


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    log_file: Path | None = None,
    check: bool = True,
    input: str | None = None,
) -> Result:
    """Run ``argv`` and return its output; :class:`CommandFailed` when it fails and ``check``.

    ``input`` goes to its stdin (never to the log): how a secret reaches a program without
    being written to a file.
    """
    argv, full_env = _prepared("run", argv, env)
    try:
        completed = subprocess.run(
            argv,
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=input,
        )
    except FileNotFoundError:
        raise CommandFailed(argv, None, reason=f"{argv[0]} not found on PATH") from None
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        write_log(log_file, argv, None, out, err)
        raise CommandFailed(argv, None, out, err, reason=f"timed out after {timeout:g} s") from None
    result = Result(argv, completed.returncode, completed.stdout, completed.stderr)
    write_log(log_file, argv, completed.returncode, completed.stdout, completed.stderr)
    if check and completed.returncode != 0:
        raise CommandFailed(argv, completed.returncode, completed.stdout, completed.stderr)
    return result


def write_log(
    path: Path | None, argv: Sequence[str], exit_code: int | None, stdout: str, stderr: str
) -> None:
    """Append one command and its output, redacted, to the log file ``path`` (None: no log)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as stream:
        stream.write(redact(f"$ {' '.join(map(str, argv))}\n{stdout}{stderr}[exit code {exit_code}]\n"))


class Background:
    """A program running in the background (``kubectl port-forward``, a test suite).

    A reader thread moves its output lines (stdout and stderr merged) into a queue, copying
    them to the log file; :meth:`readline` takes them with a timeout. Always :meth:`stop` it.
    """

    def __init__(self, argv: list[str], process: subprocess.Popen[str], log_file: Path | None) -> None:
        self.argv = argv
        self.process = process
        self.log_file = log_file
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"read-{Path(argv[0]).name}", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        log_stream = self.log_file.open("a") if self.log_file is not None else None
        try:
            for line in self.process.stdout:
                if log_stream is not None:
                    log_stream.write(redact(line))
                    log_stream.flush()
                self._lines.put(line)
        finally:
            if log_stream is not None:
                log_stream.close()
            self._lines.put(None)  # end of output

    def readline(self, timeout: float) -> str | None:
        """The next output line; None when none came within ``timeout`` or the output ended."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if line is None:
            self._lines.put(None)  # keep reporting the end
        return line

    def finished(self) -> bool:
        """The program exited and all its output has been read."""
        return self.process.poll() is not None and not self._reader.is_alive() and self._lines.qsize() <= 1

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 3.0) -> int:
        """Terminate (then kill) it if it still runs; its exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(grace)
        return self.process.returncode


def start(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
) -> Background:
    """Start ``argv`` in the background, stdout and stderr merged; stop it with ``.stop()``."""
    argv, full_env = _prepared("start", argv, env)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.write_text(redact(f"$ {' '.join(argv)}\n"))
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
        )
    except FileNotFoundError:
        raise CommandFailed(argv, None, reason=f"{argv[0]} not found on PATH") from None
    return Background(argv, process, log_file)


def stream(
    argv: Sequence[str],
    *,
    on_line: Callable[[str], None],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 3600.0,
    log_file: Path | None = None,
) -> Result:
    """Run ``argv`` to its end, handing every output line to ``on_line`` as it comes.

    Returns the result whatever the exit code (the caller decides what a failure means);
    :class:`CommandFailed` only when it cannot start or outlives ``timeout`` (then killed).
    """
    process = start(argv, cwd=cwd, env=env, log_file=log_file)
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CommandFailed(
                    process.argv, None, "".join(lines), reason=f"timed out after {timeout:g} s"
                )
            line = process.readline(min(remaining, 1.0))
            if line is not None:
                lines.append(line)
                on_line(line.rstrip("\n"))
            elif process.finished():
                break
    finally:
        exit_code = process.stop()
    if log_file is not None:
        with log_file.open("a") as out:
            out.write(f"[exit code {exit_code}]\n")
    return Result(process.argv, exit_code, "".join(lines), "")
