"""verify's smoke commands: each image's in a container of its own (no network), side by side,
killed at its timeout or when the stage is interrupted, the container removed on every path;
and the removal, by teardown, of those a run ended at once left behind.
"""

from __future__ import annotations

import concurrent.futures
import logging
import secrets
import shlex
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from python_on_whales import Container, DockerClient
from python_on_whales.exceptions import DockerException
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_incrementing

from .. import runner
from ..clock import Clock
from ..config import ImageSpec
from ..errors import Code, CommandEvidence, StagegateError
from ..imageinputs import BuiltImage
from ..ownership import OWNER_LABEL, owner_id
from ..retry import retry_transient
from ..runner import log_excerpt
from ..signals import SIGNAL_POLL_S

log = logging.getLogger(__name__)

LABEL_PURPOSE = "dev.stagegate.purpose"
LABEL_RUN = "dev.stagegate.run"


def run_smoke_tests(
    docker: DockerClient,
    specs: list[ImageSpec],
    built: dict[str, BuiltImage],
    run_id: str,
    clock: Clock,
    parallel: int,
    *,
    owner: str | None = None,
) -> Iterable[tuple[ImageSpec, StagegateError | None, str]]:
    """Each image's smoke command in a container of its own; results in ``specs`` order.

    On Ctrl-C (or another stop signal) the running smoke commands are killed at their next
    poll (a tenth of a second) and their containers removed before the interrupt goes on; none
    still queued starts. Each container carries ``owner`` (the artifacts dir's owner id): one
    left behind by a run ended at once (a second signal) is removed by teardown.
    """
    if not specs:
        return []
    cancel = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=max(1, parallel), thread_name_prefix="smoke"
    ) as pool:
        futures = [
            pool.submit(smoke_test, docker, spec, built[spec.name].ref, run_id, clock, cancel, owner)
            for spec in specs
        ]
        try:
            pending = set(futures)
            while pending:  # with a timeout: a Ctrl-C the kernel gave another thread is seen
                _, pending = concurrent.futures.wait(pending, timeout=SIGNAL_POLL_S)
            return [(spec, *future.result()) for spec, future in zip(specs, futures, strict=True)]
        except BaseException:
            cancel.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise  # leaving the with block waits for the cancelled ones to clean up


def smoke_test(
    docker: DockerClient,
    spec: ImageSpec,
    ref: str,
    run_id: str,
    clock: Clock,
    cancel: threading.Event | None = None,
    owner: str | None = None,
) -> tuple[StagegateError | None, str]:
    """Run ``spec.smoke`` in ``ref`` (no network), kill it at ``spec.smoke_timeout`` or when
    ``cancel`` is set. Its container is removed on every path."""
    cancel = cancel or threading.Event()
    command = list(spec.smoke or ())
    entrypoint = smoke_entrypoint(spec)
    argv = ["docker", "run", "--network", "none"]
    if entrypoint is not None:
        argv += ["--entrypoint", entrypoint]
    argv += [ref, *command]
    subject = {"image": spec.name, "command": command}
    name = f"stagegate-smoke-{secrets.token_hex(4)}"
    if cancel.is_set():
        return _cancelled(spec, argv, subject), ""
    try:
        container = docker.run(
            ref,
            command,
            detach=True,
            name=name,
            entrypoint=entrypoint,
            networks=["none"],
            labels={LABEL_PURPOSE: "smoke", LABEL_RUN: run_id, **({OWNER_LABEL: owner} if owner else {})},
        )
    except DockerException as exc:
        # `docker run -d` creates the container before it fails to start it: remove it.
        _remove_container(docker, name, clock.sleep)
        output = (exc.stderr or "") + (exc.stdout or "")
        return _not_started(spec, argv, subject, exc.return_code, output), output
    ended = _wait(docker, container, spec.smoke_timeout, clock, cancel)
    if ended is None:
        return _cancelled(spec, argv, subject), ""
    timed_out, output, exit_code = ended
    return _verdict(spec, argv, subject, timed_out, exit_code, output), output


def _wait(
    docker: DockerClient, container: Container, timeout: float, clock: Clock, cancel: threading.Event
) -> tuple[bool, str, int | None] | None:
    """Whether ``container`` ran past ``timeout`` (and was killed), its output and exit code;
    None when ``cancel`` was set first. The container is removed on every path."""
    try:
        deadline = clock.monotonic() + timeout
        timed_out = False
        while retry_transient(lambda: container.state.running, sleep=clock.sleep):
            if cancel.is_set():
                return None
            if clock.monotonic() >= deadline:
                _kill(docker, container)
                timed_out = True
                break
            clock.sleep(0.1)
        output = docker.container.logs(container)
        exit_code = docker.container.inspect(container.id).state.exit_code
    finally:
        _remove_container(docker, container.id, clock.sleep)
    return timed_out, output, exit_code


def _not_started(
    spec: ImageSpec, argv: list[str], subject: dict[str, Any], exit_code: int | None, output: str
) -> StagegateError:
    return StagegateError(
        Code.SMOKE_FAILED,
        f"{spec.name}: smoke command `{' '.join(subject['command'])}` could not start: {runner.last_line(output)}",
        f"check the smoke command of {spec.key} (is it installed in the image?)",
        {**subject, "exit_code": exit_code},
        command=CommandEvidence(argv, exit_code),
        log_excerpt=log_excerpt(output),
    )


def _verdict(
    spec: ImageSpec,
    argv: list[str],
    subject: dict[str, Any],
    timed_out: bool,
    exit_code: int | None,
    output: str,
) -> StagegateError | None:
    """``SMOKE_FAILED`` for a smoke command killed at its timeout or ended with an exit code
    other than 0; None when it passed."""
    command = subject["command"]
    if timed_out:
        return StagegateError(
            Code.SMOKE_FAILED,
            f"{spec.name}: smoke command `{' '.join(command)}` did not finish within {spec.smoke_timeout:g} s and was killed",
            f"make the smoke command finish quickly, or raise smoke_timeout in {spec.key}",
            {**subject, "timeout_s": spec.smoke_timeout, "reason": "timeout"},
            command=CommandEvidence(argv, None),
            log_excerpt=log_excerpt(output),
        )
    if exit_code != 0:
        return StagegateError(
            Code.SMOKE_FAILED,
            f"{spec.name}: smoke command `{' '.join(command)}` exited with {exit_code}",
            "run it yourself to see why: " + shlex.join(argv),
            {**subject, "exit_code": exit_code},
            command=CommandEvidence(argv, exit_code),
            log_excerpt=log_excerpt(output),
        )
    return None


def smoke_entrypoint(spec: ImageSpec) -> str | None:
    """``--entrypoint`` of the smoke container: "" (cleared, so that the smoke command runs
    itself and not as arguments of a server the ENTRYPOINT starts), None (the image's own:
    ``smoke_entrypoint = "image"``), or the configured program."""
    if spec.smoke_entrypoint is None:
        return ""
    if spec.smoke_entrypoint == "image":
        return None
    return spec.smoke_entrypoint


def _cancelled(spec: ImageSpec, argv: list[str], subject: dict[str, Any]) -> StagegateError:
    return StagegateError(
        Code.INTERRUPTED,
        f"{spec.name}: smoke command interrupted",
        "re-run when ready",
        {**subject, "reason": "interrupted"},
        command=CommandEvidence(argv, None),
    )


#: How long teardown waits for a smoke container whose removal the ended run had already asked for.
REMOVAL_WAIT_S = 30.0


def remove_leftover_smoke_containers(
    docker: DockerClient, artifacts: Path, *, sleep: Callable[[float], None] = time.sleep
) -> int:
    """Remove the smoke containers of this artifacts dir's owner that a run ended at once (a
    second stop signal during its clean-up) left behind; how many there were.

    The ended run may have asked the engine to remove one just before it was killed: the engine
    then answers "removal … is already in progress", and this waits until that removal is done."""
    filters = [("label", f"{LABEL_PURPOSE}=smoke"), ("label", f"{OWNER_LABEL}={owner_id(artifacts)}")]
    left = docker.container.list(all=True, filters=filters)
    for container in left:
        try:
            docker.container.remove(container, force=True)
        except DockerException as exc:
            said = exc.stderr or ""
            if "already in progress" not in said and "No such container" not in said:
                raise
    deadline = time.monotonic() + REMOVAL_WAIT_S
    while (still := docker.container.list(all=True, filters=filters)) and time.monotonic() < deadline:
        sleep(0.2)
    if still:  # a removal the engine never finished: ask once more, and say why if it fails
        docker.container.remove(still, force=True)
    return len(left)


def _kill(docker: DockerClient, container: Container) -> None:
    try:
        docker.container.kill(container)
    except DockerException as exc:  # it ended between the poll and the kill
        log.debug("smoke container %s: kill: %s", container.id[:12], runner.last_line(exc.stderr or ""))


def _remove_container(
    docker: DockerClient, name_or_id: str, sleep: Callable[[float], None], *, attempts: int = 3
) -> None:
    """Remove a smoke container, whatever state it is in (or nothing, when it was never made).

    Removing is idempotent, so any refusal is tried again: a loaded engine may answer a forced
    removal with "could not kill … did not receive an exit event" and remove it a moment later.
    """
    try:
        for attempt in Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, DockerException) and not _gone(exc)),
            stop=stop_after_attempt(attempts),
            wait=wait_incrementing(start=0.5, increment=0.5),
            sleep=sleep,
            reraise=True,
        ):
            with attempt:
                docker.container.remove(name_or_id, force=True, volumes=True)
    except DockerException as exc:
        if not _gone(exc):
            log.warning(
                "could not remove smoke container %s: %s", name_or_id, runner.last_line(exc.stderr or "")
            )


def _gone(exc: BaseException) -> bool:
    return isinstance(exc, DockerException) and "No such container" in (exc.stderr or "")
