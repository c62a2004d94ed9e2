"""Teardown with the Docker engine unreachable: a clear error, never a traceback. The engine
is made unreachable for this process only, by pointing DOCKER_HOST at a socket nobody serves."""

from __future__ import annotations

from pathlib import Path

import pytest
from stagegate.cli import teardown

from tests.conftest import Repo


def test_teardown_with_the_engine_down_is_docker_unavailable(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    repo.config('target = "docker"\n[tool.stagegate.cluster]\nname = "gone"\n')
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'nobody-listens.sock'}")
    line = teardown(repo.root)
    assert line is not None and line.startswith(
        "DOCKER_UNAVAILABLE: teardown could not talk to the Docker engine"
    )
    shown = capfd.readouterr()
    assert "Traceback" not in shown.out + shown.err
    printed = " ".join(shown.err.split())  # as wrapped at the console's width (COLUMNS, if set)
    assert (
        "hint: start the Docker engine (docker info must answer), then run nox -s teardown again" in printed
    )
