"""Retries for Docker calls that can fail transiently, with tenacity.

Only errors whose output says the connection hiccupped are retried (a daemon restarting, a
reset connection, a registry timing out); everything else — a failing Dockerfile above
all — surfaces at once. ``reraise=True``: the caller sees the real exception: python-on-whales'
``DockerException``, or :class:`stagegate.runner.CommandFailed` of a ``docker`` command run
directly (:mod:`stagegate.engine`).
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from .runner import CommandFailed

T = TypeVar("T")

TRANSIENT = re.compile(
    r"connection reset by peer|unexpected EOF|i/o timeout|TLS handshake timeout|"
    r"503 Service Unavailable|502 Bad Gateway|server misbehaving|"
    r"error during connect|request canceled while waiting for connection",
    re.IGNORECASE,
)


def is_transient(exc: BaseException) -> bool:
    if not isinstance(exc, (CommandFailed, *docker_exceptions())):
        return False
    return bool(TRANSIENT.search(f"{exc.stderr or ''}\n{exc.stdout or ''}"))


def docker_exceptions() -> tuple[type[BaseException], ...]:
    """python-on-whales' ``DockerException`` once it is imported (before, none can be raised):
    asking must not import it."""
    module = sys.modules.get("python_on_whales.exceptions")
    return (module.DockerException,) if module is not None else ()


def retry_transient(
    call: Callable[[], T], *, attempts: int = 3, sleep: Callable[[float], None] = time.sleep
) -> T:
    """``call()``, retried up to ``attempts`` times while it fails transiently."""
    for attempt in Retrying(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.5, max=4),
        sleep=sleep,
        reraise=True,
    ):
        with attempt:
            return call()
    raise AssertionError("unreachable")  # pragma: no cover
