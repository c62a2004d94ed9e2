"""One run at a time per artifacts dir: a second process is refused at once, naming the run
that holds it; a killed holder's lock is taken over; other artifacts dirs are independent.

The lock is per process, so the holder is always a subprocess of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from stagegate import runlock
from stagegate.cli import teardown
from stagegate.errors import Code, StagegateError
from stagegate.pipeline import run_stage

from tests.conftest import Repo

# A process that runs preflight through run_stage with a stage that waits for a file: it holds
# the lock (and stays "running" in the ledger) until the test lets it go, or kills it.
HOLDER = textwrap.dedent(
    """
    import io, sys, time
    from pathlib import Path
    from rich.console import Console
    from stagegate.pipeline import run_stage
    from stagegate.ui import Reporter

    root, release = Path(sys.argv[1]), Path(sys.argv[2])

    def waiting(ctx):
        print("holding", flush=True)
        while not release.exists():
            time.sleep(0.05)

    code = run_stage(
        "preflight", [], root=root, reporter=Reporter(Console(file=io.StringIO())), env={},
        stages={"preflight": waiting}, docker=object(),
    ).exit_code
    sys.exit(code)
    """
)


class NotADockerClient:
    """The stages below never touch Docker."""


@pytest.fixture
def configured(repo: Repo) -> Repo:
    repo.write("app/Dockerfile", "FROM scratch\n")
    repo.config('target = "docker"\n[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n')
    return repo


def start_holder(repo: Repo, tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    release = tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(repo.root), str(release)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    return holder, release


def run_preflight(repo: Repo, reporter, stage=lambda ctx: None) -> int:
    return run_stage(
        "preflight",
        [],
        root=repo.root,
        reporter=reporter,
        docker=NotADockerClient(),
        env={},
        stages={"preflight": stage},
    ).exit_code


def test_a_second_run_is_refused_at_once_naming_the_run_its_pid_and_since_when(
    configured: Repo, reporter, tmp_path: Path
) -> None:
    holder, release = start_holder(configured, tmp_path)
    try:
        record = configured.run_record()
        run_id = record["run_id"]
        since = json.loads((configured.artifacts / runlock.LOCK_FILE).read_text())["started_at"]
        ran = []
        started = time.monotonic()
        assert run_preflight(configured, reporter, lambda ctx: ran.append(1)) == 1
        # refused while the holder still holds the lock (it lets go only when told to, below):
        # no waiting for it; the bound only has to tell "at once" from a lock wait of its own
        assert holder.poll() is None
        assert time.monotonic() - started < 30  # a margin for a loaded machine
        printed = " ".join(reporter.console.file.getvalue().split())
        assert "RUN_IN_PROGRESS" in printed
        assert f"run {run_id}, pid {holder.pid}, preflight since {since}" in printed
        assert ran == []
        # the active run's ledger is its own: still running, no error file of the refused one
        assert configured.run_record() == record
        assert configured.error() is None
        # teardown is refused too: it must not remove what an active run deploys
        line = teardown(configured.root)
        assert line is not None and line.startswith("RUN_IN_PROGRESS") and str(holder.pid) in line
    finally:
        release.touch()
        assert holder.wait(timeout=20) == 0
    # the holder ended: the next run goes ahead
    assert run_preflight(configured, reporter) == 0


def test_a_killed_holders_lock_is_taken_over(configured: Repo, reporter, tmp_path: Path) -> None:
    holder, _ = start_holder(configured, tmp_path)
    run_id = configured.run_record()["run_id"]
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    left = json.loads((configured.artifacts / runlock.LOCK_FILE).read_text())
    assert (left["pid"], left["run_id"]) == (holder.pid, run_id)  # what the dead run left
    previous = runlock.acquire(configured.artifacts, what="preflight")
    assert previous is not None and previous["pid"] == holder.pid
    assert run_preflight(configured, reporter) == 0
    now = json.loads((configured.artifacts / runlock.LOCK_FILE).read_text())
    assert now["pid"] == os.getpid() and now["run_id"] == configured.run_record()["run_id"] != run_id


def test_runs_in_another_artifacts_dir_are_independent(configured: Repo, reporter, tmp_path: Path) -> None:
    holder, release = start_holder(configured, tmp_path)
    try:
        other = Repo(tmp_path / "other")
        other.root.mkdir()
        other.write("app/Dockerfile", "FROM scratch\n")
        other.config('[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n')
        assert run_preflight(other, reporter) == 0
    finally:
        release.touch()
        holder.wait(timeout=20)


def test_the_stages_of_one_process_share_its_lock(configured: Repo, reporter) -> None:
    # `nox -s e2e` runs every stage in one process: the second stage must not refuse the first
    assert run_preflight(configured, reporter) == 0
    assert run_preflight(configured, reporter) == 0
    held = json.loads((configured.artifacts / runlock.LOCK_FILE).read_text())
    assert held["pid"] == os.getpid()


def test_an_artifacts_dir_that_is_a_file_is_said_to_be_one(tmp_path: Path) -> None:
    artifacts = tmp_path / ".stagegate"
    artifacts.write_text("")
    with pytest.raises(StagegateError) as caught:
        runlock.acquire(artifacts, what="preflight")
    assert caught.value.code == Code.ARTIFACTS_UNWRITABLE
    assert caught.value.message.endswith("cannot be written: it is not a directory")
    assert "[tool.stagegate] artifacts" in caught.value.hint
