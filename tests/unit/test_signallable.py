"""`tests.conftest.signallable`: a child that a test signals gets the signal even when the
test run itself was started with it ignored (a suite run in the background from a script)."""

from __future__ import annotations

import signal
import subprocess

import pytest

from tests.conftest import SIGNALS_TESTS_SEND, signallable

# Sent right after the signal under test: higher-numbered, so the kernel delivers it second; it
# ends a child that ignored the first one.
FOLLOW_UP = signal.SIGPROF


@pytest.mark.parametrize("signum", SIGNALS_TESTS_SEND, ids=lambda s: signal.Signals(s).name)
def test_a_child_started_by_signallable_gets_a_signal_its_parent_ignores(signum: int) -> None:
    previous = signal.signal(signum, signal.SIG_IGN)  # the test run's own disposition, as with `cmd &`
    try:
        inherited = subprocess.Popen(["sleep", "600"])
        restored = signallable(["sleep", "600"])
    finally:
        signal.signal(signum, previous)
    try:
        for process in (inherited, restored):
            process.send_signal(signum)
            process.send_signal(FOLLOW_UP)
        assert restored.wait(timeout=60) == -signum
        # the condition it guards against, reproduced: a plain child never sees the signal
        assert inherited.wait(timeout=60) == -FOLLOW_UP
    finally:
        for process in (inherited, restored):
            process.kill()
            process.wait()
