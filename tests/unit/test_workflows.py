"""The GitHub workflows the project ships, validated against the GitHub workflow schema
(SchemaStore's ``github-workflow.json`` as vendored by check-jsonschema:
``check-jsonschema --builtin-schema vendor.github-workflows``), and the build-once-test-many
example checked for the flow README describes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("check-jsonschema")
    if tool is None:
        pytest.skip("check-jsonschema is not installed (pip install -e .[test])")
    return subprocess.run(
        [tool, "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_workflow_is_valid() -> None:
    assert WORKFLOWS
    result = _validate(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_refuses_a_broken_workflow(tmp_path: Path) -> None:
    broken = yaml.safe_load((ROOT / ".github/workflows/build-once-test-many.yml").read_text())
    broken["jobs"]["e2e"]["needs"] = {"build": True}  # needs: a string or a list, never a mapping
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert _validate(tmp_path / "broken.yml").returncode != 0


def test_build_once_test_many_builds_in_one_job_and_deploys_the_pushed_run_in_each_matrix_job() -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/build-once-test-many.yml").read_text())
    build, e2e = workflow["jobs"]["build"], workflow["jobs"]["e2e"]
    runs = lambda job: [step.get("run", "") for step in job["steps"]]  # noqa: E731
    assert "nox -s verify -- --push" in runs(build)
    uploaded = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert uploaded["with"]["path"] == ".stagegate/run.json"  # not owner.json: one namespace per job
    assert e2e["needs"] == "build" and len(e2e["strategy"]["matrix"]["suite"]) > 1
    deploy = next(r for r in runs(e2e) if "cluster deploy e2e" in r)
    assert "--no-dependencies" in deploy and "--target existing" in deploy and "--context" in deploy
    assert any("teardown -- --target existing" in r for r in runs(e2e))
