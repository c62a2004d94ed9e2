"""The gate around every stage: unexpected errors and Ctrl-C still leave one error.json."""

from __future__ import annotations

import os

import pytest
from stagegate.errors import Code, StagegateError
from stagegate.pipeline import run_stage
from stagegate.stages import StageContext


class NotADockerClient:
    """The stages below never touch Docker; any use of this would fail loudly."""


def stages_with(preflight):
    return {"preflight": preflight, "build": lambda ctx: None}


@pytest.fixture
def repo_with_config(repo):
    repo.write("app/Dockerfile", "FROM scratch\n")
    repo.config('[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n')
    return repo


def run(repo, reporter, preflight) -> int:
    return run_stage(
        "preflight",
        [],
        root=repo.root,
        reporter=reporter,
        docker=NotADockerClient(),
        env={},
        stages=stages_with(preflight),
    ).exit_code


def test_an_unexpected_exception_is_internal_error_with_its_traceback(repo_with_config, reporter) -> None:
    def broken(ctx: StageContext) -> None:
        ctx.outputs["partial"] = True
        raise ZeroDivisionError("oops")

    assert run(repo_with_config, reporter, broken) == 1
    error = repo_with_config.error()
    assert (error["stage"], error["code"]) == ("preflight", "INTERNAL_ERROR")
    assert "ZeroDivisionError: oops" in error["log_excerpt"]
    assert "Traceback" in error["log_excerpt"]
    assert repo_with_config.run_record()["stages"]["preflight"]["outputs"] == {"partial": True}


def test_an_expected_failure_prints_no_traceback(repo_with_config, reporter) -> None:
    def failing(ctx: StageContext) -> None:
        raise StagegateError(Code.BASE_IMAGE_MISSING, "base image x is missing", "pull it", {"image": "x"})

    assert run(repo_with_config, reporter, failing) == 1
    printed = reporter.console.file.getvalue()
    assert "BASE_IMAGE_MISSING: base image x is missing" in printed
    assert "hint: pull it" in printed
    assert "Traceback" not in printed


def test_ctrl_c_is_recorded_as_interrupted_and_raised_again(repo_with_config, reporter) -> None:
    def interrupted(ctx: StageContext) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(repo_with_config, reporter, interrupted)
    assert repo_with_config.error()["code"] == "INTERRUPTED"
    assert repo_with_config.run_record()["stages"]["preflight"]["status"] == "interrupted"


def test_a_passing_stage_leaves_no_error_file(repo_with_config, reporter) -> None:
    assert run(repo_with_config, reporter, lambda ctx: ctx.outputs.update(builder="legacy")) == 0
    assert repo_with_config.error() is None
    record = repo_with_config.run_record()
    assert record["stages"]["preflight"]["status"] == "passed"
    assert record["builder"] == "legacy"


def test_the_result_of_a_failed_stage_is_its_error_json_and_the_sessions_line_names_it(
    repo_with_config, reporter
) -> None:
    def failing(ctx: StageContext) -> None:
        raise StagegateError(Code.BASE_IMAGE_MISSING, "base image x is missing", "pull it", {"image": "x"})

    result = run_stage(
        "preflight", [], root=repo_with_config.root, reporter=reporter, docker=NotADockerClient(), env={},
        stages=stages_with(failing),
    )  # fmt: skip
    assert (result.passed, result.exit_code, result.error.code) == (False, 1, Code.BASE_IMAGE_MISSING)
    assert result.document == repo_with_config.error()
    assert result.error_file == repo_with_config.artifacts / "error.json"
    where = os.path.relpath(repo_with_config.artifacts / "error.json")
    assert result.failure_line() == f"BASE_IMAGE_MISSING: base image x is missing (see {where})"


def test_the_result_of_a_passing_stage_has_no_failure_line(repo_with_config, reporter) -> None:
    result = run_stage(
        "preflight", [], root=repo_with_config.root, reporter=reporter, docker=NotADockerClient(), env={},
        stages=stages_with(lambda ctx: None),
    )  # fmt: skip
    assert (result.passed, result.exit_code, result.error, result.document) == (True, 0, None, None)
    assert result.failure_line() is None


def test_a_bundle_that_cannot_be_written_after_a_passing_stage_is_the_sessions_line(
    repo_with_config, reporter, tmp_path
) -> None:
    """The stage passed and its record stands (no error.json); the line names the bundle's
    problem, not a record that could not be written."""
    (tmp_path / "not-a-dir").write_text("")
    result = run_stage(
        "preflight", ["--bundle-out", str(tmp_path / "not-a-dir" / "bundle")], root=repo_with_config.root,
        reporter=reporter, docker=NotADockerClient(), env={}, stages=stages_with(lambda ctx: None),
    )  # fmt: skip
    assert repo_with_config.run_record()["stages"]["preflight"]["status"] == "passed"
    assert repo_with_config.error() is None
    assert (result.passed, result.exit_code, result.document) == (False, 1, None)
    assert result.error.code == Code.BUNDLE_INVALID  # bad input, not a bug of stagegate
    assert result.error.subject == {"bundle": str(tmp_path / "not-a-dir" / "bundle")}
    assert result.failure_line() == (
        f"BUNDLE_INVALID: the bundle {tmp_path / 'not-a-dir' / 'bundle'} cannot be written: "
        f"File exists ({tmp_path / 'not-a-dir'})"
    )


def test_a_failure_line_without_an_error_file_is_redacted_as_error_json_would_be() -> None:
    """The line of a failure no error.json holds (a refused run, a bundle that could not be
    written) ends the session on the terminal and in CI's log: a registered secret is hidden."""
    from stagegate import redact
    from stagegate.pipeline import StageResult

    redact.register("hunter2-hunter2")
    try:
        line = StageResult(
            "build",
            StagegateError(Code.BUNDLE_INVALID, "the bundle /x/hunter2-hunter2 cannot be written", ""),
        ).failure_line()
    finally:
        redact.SECRETS.clear()
    assert line == "BUNDLE_INVALID: the bundle /x/<redacted> cannot be written"
