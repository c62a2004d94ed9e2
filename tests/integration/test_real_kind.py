"""The example end to end on a real kind cluster: runs where kind is installed (the GitHub
workflow, a developer's machine) and skips elsewhere — no cluster can run on every machine."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.integration.test_sessions import nox

FAKES = ROOT / "tests" / "fakes"


def real_kind() -> str | None:
    found = shutil.which("kind")
    if found is None or Path(found).resolve().is_relative_to(FAKES):
        return None
    return found


pytestmark = [
    pytest.mark.docker,
    pytest.mark.kind,
    pytest.mark.skipif(
        real_kind() is None,
        reason="kind is not on PATH (.github/workflows/e2e.yml runs this pipeline on a real kind cluster)",
    ),
]


def test_the_example_passes_e2e_on_a_real_kind_cluster(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    env = {
        "STAGEGATE_ARTIFACTS": str(artifacts),
        "BASE_IMAGE": os.environ.get("BASE_IMAGE", "python:3.12-slim"),
    }
    try:
        result = nox(ROOT, "-s", "e2e", "--", "--target", "kind", "--keep-cluster", env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        record = json.loads((artifacts / "run.json").read_text())
        assert record["target"] == "kind"
        assert record["stages"]["e2e"]["outputs"]["tests"]["exit_code"] == 0
    finally:
        nox(ROOT, "-s", "teardown", env=env)
