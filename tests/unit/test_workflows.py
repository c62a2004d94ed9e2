"""The GitHub workflows the project ships and its action.yml, validated against SchemaStore's
GitHub workflow and action schemas as vendored by check-jsonschema (``check-jsonschema
--builtin-schema vendor.github-workflows`` / ``vendor.github-actions``), and the
build-once-test-many example checked for the flows README describes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _validate(*paths: Path, schema: str = "vendor.github-workflows") -> subprocess.CompletedProcess[str]:
    tool = shutil.which("check-jsonschema")
    if tool is None:
        pytest.skip("check-jsonschema is not installed (pip install -e .[test])")
    return subprocess.run(
        [tool, "--builtin-schema", schema, *map(str, paths)],
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
    broken["jobs"]["registry-e2e"]["needs"] = {
        "registry-build": True
    }  # needs: a string or a list, never a mapping
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert _validate(tmp_path / "broken.yml").returncode != 0


def test_the_action_is_valid_and_a_broken_one_is_refused(tmp_path: Path) -> None:
    assert _validate(ROOT / "action.yml", schema="vendor.github-actions").returncode == 0
    broken = yaml.safe_load((ROOT / "action.yml").read_text())
    broken["runs"]["using"] = "node20-composite"  # neither a runtime nor composite
    (tmp_path / "action.yml").write_text(yaml.safe_dump(broken))
    assert _validate(tmp_path / "action.yml", schema="vendor.github-actions").returncode != 0


def _jobs() -> dict:
    return yaml.safe_load((ROOT / ".github/workflows/build-once-test-many.yml").read_text())["jobs"]


def _stagegate(job: dict) -> dict:
    """The inputs of the job's step that runs the repository's own action."""
    return next(step for step in job["steps"] if step.get("uses") == "./")["with"]


def _uses(job: dict, action: str) -> dict:
    return next(step for step in job["steps"] if step.get("uses", "").startswith(action + "@"))["with"]


def test_build_once_test_many_pushes_in_one_job_and_deploys_the_pushed_run_in_each_matrix_job() -> None:
    build, e2e = _jobs()["registry-build"], _jobs()["registry-e2e"]
    assert (_stagegate(build)["sessions"], _stagegate(build)["args"]) == ("verify", "--push")
    # run.json only, not owner.json: one namespace per job
    assert _uses(build, "actions/upload-artifact")["path"] == ".stagegate/run.json"
    assert e2e["needs"] == "registry-build" and len(e2e["strategy"]["matrix"]["suite"]) > 1
    deploy = _stagegate(e2e)
    assert (deploy["nox-options"], deploy["sessions"]) == ("--no-dependencies", "cluster deploy e2e")
    assert "--target existing" in deploy["args"] and "--context" in deploy["args"]
    assert deploy.get("teardown", "true") == "true"  # the action tears down with the same options


def test_build_once_test_many_hands_a_bundle_to_a_matrix_over_two_kubernetes_versions() -> None:
    from stagegate.config import load_config

    build, e2e = _jobs()["bundle-build"], _jobs()["bundle-e2e"]
    assert "--bundle-out bundle" in _stagegate(build)["args"]
    assert _uses(build, "actions/upload-artifact")["path"] == "bundle"
    assert e2e["needs"] == "bundle-build"
    assert _uses(e2e, "actions/download-artifact")["path"] == "bundle"
    assert "--bundle-in bundle" in _stagegate(e2e)["args"]
    assert "--profile ${{ matrix.profile }}" in _stagegate(e2e)["args"]
    profiles = e2e["strategy"]["matrix"]["profile"]
    config = {name: load_config(ROOT, {}, profile=name) for name in profiles}
    images = {config[name].cluster.node_image for name in profiles}
    assert len(profiles) == len(images) == 2  # two Kubernetes versions, one node image each
    assert all(image.startswith("kindest/node:v1.") and "@sha256:" in image for image in images)


def test_the_real_kind_test_runs_in_e2e_yml_and_fails_there_rather_than_skip_without_kind() -> None:
    from tests.integration.test_real_kind import without_kind

    job = yaml.safe_load((ROOT / ".github/workflows/e2e.yml").read_text())["jobs"]["real-kind-test"]
    assert job["env"]["STAGEGATE_REQUIRE_KIND"] == "1"
    assert "tests/integration/test_real_kind.py" in _stagegate(job)["args"]
    assert _stagegate(job).get("install-kind", "true") == "true"
    assert without_kind(None, required=True) == "fail"
    assert without_kind(None, required=False) == "skip"
    assert without_kind("/usr/local/bin/kind", required=True) is None
