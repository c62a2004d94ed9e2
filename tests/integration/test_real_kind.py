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


# Where kind must be there (the e2e workflow's job for this test), a missing kind fails the
# test instead of skipping it: that job must not pass on a test that never ran.
REQUIRE_KIND = os.environ.get("STAGEGATE_REQUIRE_KIND") == "1"


def without_kind(found: str | None, required: bool) -> str | None:
    """What a missing kind makes of the test: "skip", or "fail" where it is required; None
    when a real kind is there."""
    if found is not None:
        return None
    return "fail" if required else "skip"


pytestmark = [
    pytest.mark.docker,
    pytest.mark.kind,
    pytest.mark.skipif(
        without_kind(real_kind(), REQUIRE_KIND) == "skip",
        reason="kind is not on PATH (.github/workflows/e2e.yml runs this pipeline on a real kind cluster)",
    ),
]


def test_the_example_passes_e2e_on_a_real_kind_cluster(tmp_path: Path) -> None:
    if without_kind(real_kind(), REQUIRE_KIND) == "fail":
        pytest.fail("STAGEGATE_REQUIRE_KIND=1, but no real kind is on PATH")
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
