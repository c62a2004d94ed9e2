"""The gate around every stage: unexpected errors and Ctrl-C still leave one error.json."""

from __future__ import annotations

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
    )


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
