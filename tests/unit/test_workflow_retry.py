"""The e2e workflow runs its pipeline step once more only when error.json says a re-run may
pass. The retry step's own shell script runs here with bash, jq and nox: against the error
files stagegate writes for a failure of the machine, of the product and of the configuration,
and without one; nox runs a noxfile of the test's whose ``e2e`` session records its arguments."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from stagegate.errors import Code, StagegateError
from stagegate.ledger import Ledger

from tests.conftest import ROOT
from tests.unit.test_ledger import GIT, fixed_clock

WORKFLOW = ROOT / ".github" / "workflows" / "e2e.yml"

NOXFILE = """\
import nox

@nox.session(venv_backend="none")
def e2e(session):
    with open("e2e-ran", "a") as out:
        out.write(" ".join(session.posargs) + "\\n")
"""


def steps() -> tuple[dict, dict]:
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["e2e"]
    pipeline = next(step for step in job["steps"] if step.get("id") == "pipeline")
    retry = next(step for step in job["steps"] if step.get("name") == "Retry when a re-run may pass")
    return pipeline, retry


def test_the_pipeline_step_leaves_the_verdict_to_the_retry_step_which_runs_the_same_command() -> None:
    pipeline, retry = steps()
    assert pipeline["continue-on-error"] is True
    assert retry["if"] == "steps.pipeline.outcome == 'failure'"
    assert retry["run"].rstrip().splitlines()[-1].strip() == pipeline["run"]


def run_retry(tmp_path: Path, error: StagegateError | None) -> tuple[int, str, list[str]]:
    """The retry step's script in a checkout whose artifacts dir holds ``error``'s error.json."""
    for tool in ("bash", "jq"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    artifacts = tmp_path / ".stagegate"
    if error is not None:
        ledger = Ledger(artifacts, fixed_clock())
        ledger.begin("preflight", git=GIT, options={})
        ledger.record_failure("preflight", error, 1.0, {})
    (tmp_path / "noxfile.py").write_text(NOXFILE)
    env = {
        **os.environ,
        "STAGEGATE_ARTIFACTS": str(artifacts),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # this venv's nox
    }
    result = subprocess.run(
        [
            "bash",
            "--noprofile",
            "--norc",
            "-eo",
            "pipefail",
            "-c",
            steps()[1]["run"],
        ],  # GitHub's `bash` shell
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    ran = tmp_path / "e2e-ran"
    return result.returncode, result.stdout, ran.read_text().splitlines() if ran.exists() else []


def test_a_failure_of_the_machine_is_run_again(tmp_path: Path) -> None:
    error = StagegateError(Code.DOCKER_UNAVAILABLE, "t/app: the Docker daemon went away during the build")
    code, out, ran = run_retry(tmp_path, error)
    assert (code, ran) == (0, ["--target kind"]), out
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
    code, out, ran = run_retry(tmp_path, error)
    assert code == 1 and ran == [], out
    assert f"not re-run: {said}" in out
