"""stagegate.signals: which stop signals become an interruption, and the child processes found."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from stagegate.signals import Interrupted, descendants, signal_name, stop_signals_interrupt


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_is_recorded_then_raised_and_the_handlers_are_put_back(signum) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    seen: list[str] = []
    with pytest.raises(Interrupted) as raised, stop_signals_interrupt(seen.append):
        os.kill(os.getpid(), signum)  # its handler runs before the next line
        pytest.fail("not interrupted")
    assert seen == [signal.Signals(signum).name] == [signal_name(raised.value)]
    assert isinstance(raised.value, KeyboardInterrupt)  # what nox treats as an interruption
    assert {s: signal.getsignal(s) for s in before} == before


def test_an_ignored_signal_stays_ignored() -> None:
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
    child = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.run(['sleep', '30'])"],
    )
    try:
        for _ in range(100):
            found = descendants(os.getpid())
            if len(found) >= 2:
                break
            subprocess.run(["sleep", "0.05"])
        assert found[0] == child.pid and len(found) == 2  # the child, then its sleep
        assert descendants(found[1]) == []
        assert os.getppid() not in found
    finally:
        for pid in reversed(descendants(os.getpid())):
            os.kill(pid, signal.SIGKILL)
        child.wait()
