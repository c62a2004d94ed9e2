"""An artifacts dir that fills up during a run: a clear message and a non-zero exit, never a
traceback. The file system is real: a tmpfs of 64 KiB mounted for the test (root only)."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from stagegate import runlock
from stagegate.errors import Code, StagegateError
from stagegate.pipeline import run_stage
from stagegate.ui import Reporter

from tests.conftest import Repo


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        runlock.release_all()
        subprocess.run(["umount", str(mount)], check=False)


def test_a_full_artifacts_dir_is_said_to_be_full_and_the_stages_own_error_is_shown(
    repo: Repo, small_fs: Path
) -> None:
    repo.config("")
    artifacts = small_fs / "sg"

    def fills_the_disk_then_fails(ctx) -> None:
        with (artifacts / "filler").open("wb", buffering=0) as filler, pytest.raises(OSError):
            while True:
                filler.write(b"x" * 4096)
        raise StagegateError(Code.BUILD_FAILED, "the build broke", "fix it", {"image": "a"})

    stream = io.StringIO()
    result = run_stage(
        "preflight",
        [],
        root=repo.root,
        reporter=Reporter(Console(file=stream, width=200)),
        env={"STAGEGATE_ARTIFACTS": str(artifacts), "PATH": "/usr/bin:/bin"},
        stages={"preflight": fills_the_disk_then_fails},
    )
    shown = stream.getvalue()
    assert result.exit_code == 1
    assert (
        result.failure_line() == "preflight failed, and its record could not be written (see the lines above)"
    )
    assert (
        f"✗ ARTIFACTS_UNWRITABLE: the artifacts dir {artifacts} cannot be written: No space left on device"
        in shown
    )
    assert "the preflight stage itself ended with BUILD_FAILED: the build broke" in shown
    assert "Traceback" not in shown
    assert not (artifacts / "error.json").exists()  # never half-written


def test_an_owner_id_that_cannot_be_written_is_the_artifacts_dir_unwritable(small_fs: Path) -> None:
    """The owner id is the first file some runs write there: a full file system says so with the
    same code as the run lock and the ledger (an environment failure a re-run may pass), not
    as a configuration mistake."""
    from stagegate.ownership import OWNER_FILE, owner_id

    artifacts = small_fs / ".stagegate"
    artifacts.mkdir()
    with pytest.raises(OSError), (small_fs / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()
    with pytest.raises(StagegateError) as caught:
        owner_id(artifacts)
    assert caught.value.code == Code.ARTIFACTS_UNWRITABLE
    assert caught.value.subject == {"key": "artifacts", "file": str(artifacts)}
    assert "No space left" in caught.value.message
    assert not (artifacts / OWNER_FILE).exists()
    assert list(artifacts.iterdir()) == []  # its draft removed
