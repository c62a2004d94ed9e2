"""stagegate.signals: which stop signals become an interruption, and the child processes found."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from stagegate.signals import Interrupted, descendants, signal_name, stop_signals_interrupt


@pytest.fixture
def default_dispositions():
    """The stop signals at their default disposition for the test, whatever the test run
    inherited (a suite started with `cmd &` or under nohup has SIGINT or SIGHUP ignored)."""
    inherited = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    yield
    for signum, handler in inherited.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_is_recorded_then_raised_and_the_handlers_are_put_back(
    signum, default_dispositions
) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    seen: list[str] = []
    with pytest.raises(Interrupted) as raised, stop_signals_interrupt(seen.append):
        os.kill(os.getpid(), signum)  # its handler runs before the next line
        pytest.fail("not interrupted")
    assert seen == [signal.Signals(signum).name] == [signal_name(raised.value)]
    assert isinstance(raised.value, KeyboardInterrupt)  # what nox treats as an interruption
    assert {s: signal.getsignal(s) for s in before} == before


def test_an_ignored_signal_stays_ignored(default_dispositions) -> None:
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_signals_interrupt(lambda name: None):
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # taken over
            os.kill(os.getpid(), signal.SIGHUP)  # nohup's promise: nothing happens
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_a_plain_keyboard_interrupt_is_sigint() -> None:
    assert signal_name(KeyboardInterrupt()) == "SIGINT"
    assert signal_name(Interrupted(signal.SIGTERM)) == "SIGTERM"


def test_descendants_are_children_and_grandchildren_only() -> None:
    # the test run may have children of its own (a registry a fixture started): only the
    # child started here, and its own child, are looked at — and only they are killed
    child = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '30'])"],
    )
    try:
        for _ in range(200):
            below_child = descendants(child.pid)
            if below_child:
                break
            subprocess.run(["sleep", "0.05"])
        assert len(below_child) == 1  # its sleep
        [sleep] = below_child
        found = descendants(os.getpid())
        assert child.pid in found and sleep in found
        assert found.index(child.pid) < found.index(sleep)  # children before grandchildren
        assert descendants(sleep) == []
        assert os.getpid() not in found and os.getppid() not in found
    finally:
        for pid in reversed(descendants(child.pid)):
            os.kill(pid, signal.SIGKILL)
        child.kill()
        child.wait()
