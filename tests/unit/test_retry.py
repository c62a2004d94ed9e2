"""Transient Docker failures are retried; everything else surfaces after one attempt."""

from __future__ import annotations

import pytest
from python_on_whales.exceptions import DockerException
from stagegate.retry import retry_transient


def failing(stderr: str, times: int):
    calls = {"n": 0}

    def call() -> str:
        calls["n"] += 1
        if calls["n"] <= times:
            raise DockerException(["docker", "image", "inspect", "x"], 1, stderr=stderr.encode())
        return "ok"

    return call, calls


def test_transient_error_is_retried_until_it_passes() -> None:
    sleeps: list[float] = []
    call, calls = failing("read unix @->/var/run/docker.sock: read: connection reset by peer", times=2)
    assert retry_transient(call, sleep=sleeps.append) == "ok"
    assert calls["n"] == 3 and len(sleeps) == 2


def test_permanent_error_surfaces_after_one_attempt() -> None:
    sleeps: list[float] = []
    call, calls = failing("Error: No such image: x", times=5)
    with pytest.raises(DockerException) as caught:
        retry_transient(call, sleep=sleeps.append)
    assert calls["n"] == 1 and sleeps == []
    assert "No such image" in caught.value.stderr


def test_the_last_real_error_is_raised_when_attempts_run_out() -> None:
    call, calls = failing("net/http: TLS handshake timeout", times=10)
    with pytest.raises(DockerException) as caught:  # not tenacity's RetryError
        retry_transient(call, attempts=3, sleep=lambda seconds: None)
    assert calls["n"] == 3
    assert "TLS handshake timeout" in caught.value.stderr
