"""Which processes a fail-fast stop of the build stage signals, and how a cancelled build is
shown: the ``docker build`` clients of the running builds' tags (and what they started) are
found among this process's descendants by their command lines, nothing else is; the summary
and the live lines say "cancelled"."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from stagegate.signals import _command_lines_from_ps, processes_below
from stagegate.stages.build_stop import _build_of
from stagegate.ui import BuildProgress, Reporter

TAGS = {"example/api:sg-0123456789abcdef": "example/api"}


def test_a_build_naming_a_running_builds_tag_is_that_builds_client() -> None:
    legacy = ["docker", "build", "--quiet", "--tag", "example/api:sg-0123456789abcdef", "ctx"]
    buildx_plugin = ["docker-buildx", "buildx", "build", "--tag", "example/api:sg-0123456789abcdef", "."]
    assert _build_of(legacy, TAGS) == "example/api"
    assert _build_of(buildx_plugin, TAGS) == "example/api"


def test_other_commands_and_other_tags_are_no_client_of_a_running_build() -> None:
    assert _build_of(["docker", "image", "inspect", "example/api:sg-0123456789abcdef"], TAGS) is None
    assert _build_of(["docker", "build", "--tag", "example/api:sg-ffffffffffffffff", "."], TAGS) is None
    assert _build_of(["docker", "build", "--tag", "example/api:latest", "."], TAGS) is None
    assert _build_of(["sleep", "300"], TAGS) is None


def _wait_for_grandchild(child: subprocess.Popen) -> list:
    for _ in range(200):
        below = [p for p in processes_below() if p.parent == child.pid]
        if below:
            return below
        subprocess.run(["sleep", "0.05"])
    return []


def test_processes_below_carry_their_parent_and_command_line() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import subprocess; subprocess.run(['sleep', '31'])", "marker-arg"],
    )
    try:
        [grandchild] = _wait_for_grandchild(child)
        found = {p.pid: p for p in processes_below()}
        assert found[child.pid].argv == (sys.executable, "-c", found[child.pid].argv[2], "marker-arg")
        assert found[child.pid].parent == os.getpid()
        assert grandchild.argv == ("sleep", "31") and grandchild.parent == child.pid
        ordered = list(found)
        assert ordered.index(child.pid) < ordered.index(grandchild.pid)  # parents first
        assert os.getpid() not in found and os.getppid() not in found
        assert [p.pid for p in processes_below(grandchild.pid)] == []
    finally:
        for process in processes_below(child.pid):
            os.kill(process.pid, signal.SIGKILL)
        child.kill()
        child.wait()


def test_without_proc_the_command_lines_come_from_ps() -> None:
    child = subprocess.Popen(["sleep", "32"])
    try:
        assert _command_lines_from_ps([child.pid]) == {child.pid: ("sleep", "32")}
    finally:
        child.kill()
        child.wait()
    assert _command_lines_from_ps([child.pid]) == {}  # ended: not there, and no error
    assert _command_lines_from_ps([]) == {}


def test_the_summary_counts_cancelled_images_after_failed_ones() -> None:
    stream = io.StringIO()
    images = {
        "a": {"status": "not started"},
        "b": {"status": "cancelled"},
        "c": {"status": "failed"},
        "d": {"status": "built"},
        "e": {"status": "cancelled"},
    }
    run = {
        "run_id": "r1",
        "stages": {"build": {"status": "failed", "duration_s": 1.0, "outputs": {"images": images}}},
    }
    Reporter(Console(file=stream, width=200)).summary(run, None, Path("."))
    assert "1 built, 1 failed, 2 cancelled, 1 not started" in stream.getvalue()


def test_a_cancelled_build_ends_its_live_line_with_its_time_and_why() -> None:
    stream = io.StringIO()
    progress = BuildProgress(Console(file=stream, width=200), ["example/api"])
    progress.update("example/api", "building")
    progress.update(
        "example/api", "cancelled", "stopped when example/web failed (--keep-going builds the rest)"
    )
    row = progress.rows["example/api"]
    assert row.ended is not None and row.ended >= (row.started or 0)
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("  example/api: cancelled (")
    assert last.endswith("s) — stopped when example/web failed (--keep-going builds the rest)")
