"""The one way stagegate runs external programs (git now; kind and kubectl with the targets).

Docker is not run here: it goes through a ``python_on_whales.DockerClient`` handed to the
stages. Everything else is an argv list run by :func:`run`: no shell, a timeout, the output
captured and, when asked, written to a log file.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str


class CommandFailed(Exception):
    """A command exited non-zero, timed out or could not start; keeps the evidence."""

    def __init__(
        self, argv: Sequence[str], exit_code: int | None, stdout: str = "", stderr: str = "", reason: str = ""
    ):
        self.argv = list(argv)
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.reason = reason or f"exit code {exit_code}"
        super().__init__(f"{' '.join(self.argv)}: {self.reason}")


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    log_file: Path | None = None,
    check: bool = True,
) -> Result:
    """Run ``argv`` and return its output; :class:`CommandFailed` when it fails and ``check``."""
    argv = [str(a) for a in argv]
    log.debug("run %s", argv)
    full_env = {**os.environ, **env} if env is not None else None
    try:
        completed = subprocess.run(
            argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise CommandFailed(argv, None, reason=f"{argv[0]} not found on PATH") from None
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        _write_log(log_file, argv, None, out, err)
        raise CommandFailed(argv, None, out, err, reason=f"timed out after {timeout:g} s") from None
    result = Result(argv, completed.returncode, completed.stdout, completed.stderr)
    _write_log(log_file, argv, completed.returncode, completed.stdout, completed.stderr)
    if check and completed.returncode != 0:
        raise CommandFailed(argv, completed.returncode, completed.stdout, completed.stderr)
    return result


def _write_log(path: Path | None, argv: list[str], exit_code: int | None, stdout: str, stderr: str) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as stream:
        stream.write(f"$ {' '.join(argv)}\n{stdout}{stderr}[exit code {exit_code}]\n")
