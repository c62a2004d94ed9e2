"""The e2e workflow runs its pipeline once more only when error.json says a re-run may pass.
The deciding step's own shell script runs here with bash and jq, against the error files
stagegate writes for a failure of the machine, of the product and of the configuration, and
without one; the second attempt is the same action with the same inputs, run only when the
deciding step passed."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from stagegate.errors import Code, StagegateError
from stagegate.ledger import Ledger

from tests.conftest import ROOT
from tests.unit.test_ledger import GIT, fixed_clock

WORKFLOW = ROOT / ".github" / "workflows" / "e2e.yml"


def steps() -> tuple[dict, dict, dict]:
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["e2e"]
    pipeline = next(step for step in job["steps"] if step.get("id") == "pipeline")
    decide = next(step for step in job["steps"] if step.get("id") == "decide")
    again = next(step for step in job["steps"] if step.get("if") == "steps.decide.outcome == 'success'")
    return pipeline, decide, again


def test_the_pipeline_step_leaves_the_verdict_to_the_deciding_step_and_the_retry_runs_the_same() -> None:
    pipeline, decide, again = steps()
    assert pipeline["continue-on-error"] is True
    assert decide["if"] == "steps.pipeline.outcome == 'failure'"
    assert "continue-on-error" not in decide  # its failure (no re-run) fails the job
    assert again["uses"] == pipeline["uses"]
    mine = {k: v for k, v in pipeline["with"].items() if k != "artifact-name"}
    theirs = {k: v for k, v in again["with"].items() if k != "artifact-name"}
    assert mine == theirs
    assert again["with"]["artifact-name"] != pipeline["with"]["artifact-name"]  # both uploads kept


def run_decide(tmp_path: Path, error: StagegateError | None) -> tuple[int, str]:
    """The deciding step's script in a checkout whose artifacts dir holds ``error``'s error.json."""
    for tool in ("bash", "jq"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if error is not None:
        ledger = Ledger(tmp_path / ".stagegate", fixed_clock())
        ledger.begin("preflight", git=GIT, options={})
        ledger.record_failure("preflight", error, 1.0, {})
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", steps()[1]["run"]],  # GitHub's `bash`
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout


def test_a_failure_of_the_machine_is_run_again(tmp_path: Path) -> None:
    error = StagegateError(Code.DOCKER_UNAVAILABLE, "t/app: the Docker daemon went away during the build")
    code, out = run_decide(tmp_path, error)
    assert code == 0, out
    assert "re-running: DOCKER_UNAVAILABLE (environment) in preflight" in out


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (StagegateError(Code.BUILD_FAILED, "`RUN exit 3` failed"), "BUILD_FAILED (product)"),
        (StagegateError(Code.CONFIG_INVALID, "unknown key"), "CONFIG_INVALID (configuration)"),
        (None, "no error.json"),
    ],
)
def test_a_failure_a_rerun_cannot_fix_is_not_run_again_and_fails_the_job(
    tmp_path: Path, error: StagegateError | None, said: str
) -> None:
    code, out = run_decide(tmp_path, error)
    assert code == 1, out
    assert f"not re-run: {said}" in out
